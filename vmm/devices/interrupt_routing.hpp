// Interrupt messages on the guest's virtual APIC bus, and where they may go.
//
// Every interrupt the guest can cause, an IPI written to a local APIC's ICR, an I/O APIC
// redirection entry or an MSI, is the same xAPIC message (Intel SDM Vol. 3A 11.6.1 "Interrupt
// Command Register", 11.6.2 "Determining IPI Destination", 11.11 "Message Signalled Interrupts"):
// vector, delivery mode, physical or logical destination, destination shorthand, trigger mode.
// resolve_destinations() turns one into the set of the guest's own vCPUs that receive it. It
// looks only at the guest's local APICs, so by construction no message reaches a CPU the guest
// does not have; a destination that names no guest vCPU is reported as blocked, and SMIs are
// never delivered. IpiFilter adds the counts and the last blocked message for the VM's report
// ("blocked IPI to apic id 5 from vcpu 0: fixed vector 0x41").
//
// Guest vCPU i has local APIC ID i (VirtualLapic keeps its ID register fixed); the VMM maps vCPU
// indexes to host CPUs. Pure logic: no hardware, no heap.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace vlibos::vmm::devices {

// Up to 64 vCPUs per guest: one bit each in a VcpuSet (bit i = the vCPU with APIC ID i).
constexpr size_t kMaxVcpus = 64;
using VcpuSet = uint64_t;

// Delivery modes, as encoded in ICR[10:8], I/O APIC redirection entries [10:8] and MSI data
// [10:8] (SDM Vol. 3A 11.6.1, 11.11.2).
enum class DeliveryMode : uint8_t {
    Fixed = 0,
    LowestPriority = 1,  // delivered as Fixed to one target: the lowest-numbered matching vCPU
    Smi = 2,             // never delivered to a guest
    Reserved3 = 3,
    Nmi = 4,
    Init = 5,
    Startup = 6,         // SIPI; `vector` is the start page
    ExtInt = 7,          // legacy 8259 vector (LINT0, I/O APIC); not valid in the ICR
};

enum class DestinationMode : uint8_t { Physical = 0, Logical = 1 };

// ICR[19:18] (SDM Vol. 3A 11.6.1).
enum class Shorthand : uint8_t { None = 0, Self = 1, AllIncludingSelf = 2, AllExcludingSelf = 3 };

const char* delivery_mode_name(DeliveryMode mode);

struct InterruptMessage {
    uint8_t vector = 0;
    DeliveryMode delivery = DeliveryMode::Fixed;
    DestinationMode destination_mode = DestinationMode::Physical;
    Shorthand shorthand = Shorthand::None;
    uint8_t destination = 0;       // xAPIC: a physical APIC ID, or a logical message destination address
    bool level_triggered = false;  // the receiving LAPIC sets TMR, and EOI goes back to the I/O APIC
};

// xAPIC broadcast destination, physical and logical (SDM Vol. 3A 11.6.2.1, 11.6.2.2).
constexpr uint8_t kBroadcast = 0xff;

// A local APIC's logical identity: LDR (0xD0) and DFR (0xE0) as the guest programmed them.
struct LogicalId {
    uint32_t ldr = 0;
    uint32_t dfr = 0xffff'ffff;  // reset value: flat model
};

// DFR[31:28] (SDM Vol. 3A 11.6.2.2).
constexpr uint32_t kDfrModelFlat = 0xf;
constexpr uint32_t kDfrModelCluster = 0x0;

// Does a LAPIC with this LDR/DFR accept logical destination `mda`? Flat model: LDR[31:24] AND
// MDA is non-zero. Cluster model: MDA[7:4] names the cluster LDR[31:28], MDA[3:0] AND LDR[27:24]
// is non-zero. Any other DFR model matches nothing. 0xFF is broadcast and matches every LAPIC.
bool logical_match(const LogicalId& id, uint8_t mda);

// The guest's local APICs as routing sees them. The VMM refreshes `logical[i]` from
// VirtualLapic::logical_id() (or simply before each routing); count <= kMaxVcpus.
struct GuestApics {
    size_t count = 0;
    LogicalId logical[kMaxVcpus] = {};

    VcpuSet all() const;
};

// The source of a message that does not come from a vCPU (I/O APIC, MSI): it has no "self".
constexpr uint32_t kNoSource = 0xffff'ffff;

enum class RouteVerdict : uint8_t {
    Deliver,  // `targets` (non-empty) receive it
    None,     // nobody by the message's own rules ("all excluding self" on a one-vCPU guest)
    Blocked,  // the destination names no vCPU of this guest (another partition's CPU, or nothing)
    Refused,  // a delivery mode never delivered to a guest: SMI and the reserved encodings
};

struct Route {
    VcpuSet targets = 0;  // never outside GuestApics::all()
    RouteVerdict verdict = RouteVerdict::None;
};

// Where `message` goes among the guest's vCPUs. `source` is the sending vCPU (its APIC ID) for an
// IPI, kNoSource for the I/O APIC or MSI. Rules (SDM Vol. 3A 11.6.2):
//   - shorthand Self: the source; AllIncludingSelf: every guest vCPU; AllExcludingSelf: every
//     guest vCPU but the source. The guest's "everybody" is its own vCPUs only.
//   - physical: destination 0xFF is every guest vCPU; an APIC ID below the vCPU count is that
//     vCPU; any other ID is Blocked (no such CPU in this guest: it is never forwarded).
//   - logical: every guest vCPU whose LDR/DFR match (logical_match); Blocked if none does.
//   - LowestPriority: only the lowest-numbered matching vCPU (a valid "lowest priority" choice:
//     the SDM leaves the arbitration model-specific), then delivered as Fixed.
//   - Smi and Reserved3: Refused. A Self or AllIncludingSelf shorthand without a source vCPU
//     (kNoSource): Blocked.
Route resolve_destinations(const InterruptMessage& message, const GuestApics& apics, uint32_t source);

// resolve_destinations() with counts and a record of the last message that was not delivered,
// for the VM's report. One per VM; not thread-safe.
class IpiFilter {
public:
    struct Stats {
        uint64_t delivered = 0;  // messages with a non-empty target set
        uint64_t empty = 0;      // RouteVerdict::None
        uint64_t blocked = 0;    // destinations outside the guest
        uint64_t refused = 0;    // SMI, reserved delivery modes
    };
    struct Dropped {
        bool valid = false;
        InterruptMessage message;
        uint32_t source = kNoSource;
        RouteVerdict verdict = RouteVerdict::None;
    };

    Route route(const InterruptMessage& message, const GuestApics& apics, uint32_t source);

    const Stats& stats() const { return stats_; }
    // The last Blocked or Refused message (valid == false if there was none).
    const Dropped& last_dropped() const { return last_; }

private:
    Stats stats_;
    Dropped last_;
};

// One line for a dropped message, e.g. "blocked IPI to apic id 5 from vcpu 0: fixed vector 0x41",
// "blocked IPI to logical destination 0x80 from vcpu 1: nmi", "refused IPI to apic id 1 from
// vcpu 0: smi", "blocked interrupt to apic id 9 from a device: fixed vector 0x30" (I/O APIC or
// MSI). Returns the length the full line has, like snprintf.
size_t format_dropped(char* buffer, size_t size, const IpiFilter::Dropped& dropped);

} // namespace vlibos::vmm::devices

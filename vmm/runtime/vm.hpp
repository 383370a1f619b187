// A running VM on the calling CPU: its guest memory, one vCPU, and the exit loop that applies
// the monitor's policies (vmm/*_policy, vmm/hypercall) to every exit. The loop ends when the
// guest asks to exit, or when the monitor stops it (a fault, an access outside its memory, an
// exit it does not handle); either way the monitor and the other partitions keep running.
#pragma once

#include <stdint.h>

#include "vmm/backend.hpp"
#include "vmm/cpuid_policy.hpp"
#include "vmm/exit_stats.hpp"
#include "vmm/guest_memory.hpp"

namespace vlibos::vmm {

enum class StopKind : uint8_t {
    GuestExit,           // the Exit hypercall; `code` holds its argument
    OutsideMemory,       // a guest-physical access to no region
    ReadOnlyViolation,   // a write (or fetch) the region does not allow
    TripleFault,
    EntryFailed,
    HaltedForever,       // HLT with interrupts disabled and nothing pending
    UnsupportedIo,       // string or REP port I/O
    Unhandled,           // an exit the monitor has no handler for
    TimedOut,            // the run's time budget ran out
    SetupFailed,
};

const char* stop_kind_name(StopKind kind);

struct StopReport {
    StopKind kind = StopKind::Unhandled;
    uint64_t code = 0;          // GuestExit
    uint64_t guest_rip = 0;
    uint64_t guest_physical = 0;
    ExitInfo exit{};            // the exit that stopped it
    Vcpu::ControlState control{};
};

struct VmSpec {
    const char* name;
    uint16_t tag;               // VPID / ASID, unique per VM
    const GuestMemory* memory;
    EntryState entry;
    uint64_t initial_rsi;       // handed to the guest in RSI (the test scenario)
    uint64_t time_budget_us;    // stop the VM if it runs longer
};

class Vm {
public:
    // Prepares `vcpu` (created on the calling CPU) for `spec` and runs it until it stops.
    // A vCPU can be prepared and run again for the next VM.
    StopReport run(Vcpu& vcpu, Vendor vendor, const VmSpec& spec);
    const ExitStats& stats() const { return stats_; }

private:
    ExitStats stats_;
};

} // namespace vlibos::vmm

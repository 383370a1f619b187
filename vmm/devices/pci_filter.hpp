// The guest's PCI configuration space: configuration mechanism #1 (ports 0xCF8/0xCFC, PCI Local
// Bus Specification 3.0, 3.2.2.3.2), filtered so the guest sees only the functions assigned to
// it, and may not use them against anyone else.
//
// The VMM traps the guest's port I/O to 0xCF8-0xCFF and calls io_read()/io_write(); the MSI-X
// table pages of assigned functions are trapped too (msix_table() says where) and go to
// msix_read()/msix_write(). Real configuration cycles go through the VMM's PciHost.
//
// What the guest sees and may do:
//   - CONFIG_ADDRESS (0xCF8) is a virtual register; only dword accesses reach it (3.2.2.3.2);
//     other accesses to 0xCF8-0xCFB read all ones and are dropped (this includes the reset
//     control register at 0xCF9).
//   - A function not assigned reads all ones (no device, 6.1) and its writes are dropped. An
//     optional read-only host bridge at 00:00.0 lets Linux's probe of mechanism #1 succeed.
//   - Assigned functions (type 0 headers only) pass reads and writes through, except:
//     * BARs (0x10-0x24): a BAR stays where the VMM found it (GPA == HPA, so moving it could lay
//       a device over someone else's memory). A dword write of all ones is BAR sizing: it is
//       answered from a probe taken at assign() and never reaches the device; a write of the
//       original value is passed (it restores the BAR after a device reset); anything else is
//       refused and counted.
//     * the expansion ROM BAR (0x30) reads 0 (no ROM) and its writes are dropped.
//     * MSI (capability 05h, 6.8.1) and MSI-X (11h, 6.8.2) messages must be ordinary interrupts
//       to the guest's own vCPUs: address 0xFEExxxxx (upper 32 bits 0) naming vCPUs of the guest
//       (physical APIC ID below the vCPU count, or a logical destination one of its LAPICs
//       matches; not broadcast), data with delivery mode Fixed or Lowest Priority and vectors the
//       MsiPolicy allows. A field that breaks these rules is refused and counted. The guest reads
//       back what it wrote; the device is given the same message translated to the host CPU of
//       the target vCPU (physical, Fixed, edge), and an MSI stays disabled (an MSI-X entry
//       masked) in the device until both its address and data are valid.
//   - INTx-only mode (set_interrupt_mode(IntxOnly), for a VMM that cannot deliver MSIs): the MSI
//     and MSI-X capabilities are hidden instead. The capability pointer and the next pointers of
//     the other capabilities skip them, their dwords read 0 and writes to them are dropped (and
//     counted); with nothing left, the Status Capabilities List bit reads 0 too. assign() turns
//     MSI, MSI-X and Bus Master off in the device and never touches the MSI-X table.
//   - Capability lists are walked at assign() with a bound and loop detection; a malformed list
//     (loop, pointer below 0x40, capability past the end, two MSI or MSI-X capabilities) makes
//     assign() fail, so no device is passed whose MSI registers might be missed.
//
// Limits: 256-byte configuration space only (no ECAM); no bridges; a function whose BARs the
// firmware did not program cannot be used (Linux may not move them). This is configuration-
// space filtering only: without an IOMMU a bus-mastering device that the guest drives can still
// DMA anywhere, including to 0xFEExxxxx (an MSI by another name). See docs/virtualisation.md.
//
// Pure logic: no hardware, no heap. One per VM; not thread-safe (the VMM serialises access).
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "lib/result.hpp"
#include "vmm/devices/interrupt_routing.hpp"

namespace vlibos::vmm::devices {

struct Bdf {
    uint8_t bus = 0;
    uint8_t device = 0;    // 0-31
    uint8_t function = 0;  // 0-7

    constexpr bool valid() const { return device < 32 && function < 8; }
    friend constexpr bool operator==(const Bdf&, const Bdf&) = default;
};

enum class PciError : uint8_t {
    BadPort,              // not 0xCF8-0xCFF
    BadSize,              // not 1, 2 or 4 bytes (MSI-X table: 4 or 8)
    Crossing,             // the access crosses its dword, or from 0xCF8-0xCFB into the data port
    BadBdf,               // device above 31 or function above 7
    TooManyDevices,       // assign(): kMaxDevices already assigned
    AlreadyAssigned,
    NoDevice,             // assign(): vendor ID reads 0xFFFF
    NotEndpoint,          // assign(): not a type 0 header (bridges are not passed)
    CapabilityLoop,       // assign(): the capability list visits a capability twice
    CapabilityOutOfRange, // assign(): a pointer below 0x40, or ID 0xFF (no device answering)
    CapabilityTruncated,  // assign(): an MSI or MSI-X capability runs past offset 0xFF
    DuplicateCapability,  // assign(): two MSI or two MSI-X capabilities
    BadMsixTable,         // assign(): MSI-X table in a BAR that is not memory or is too small
    NotAssigned,          // MSI-X access for a function that is not assigned
    NoMsix,               // MSI-X access for a function without MSI-X
    OutsideMsixTable,     // MSI-X access outside the table (the PBA is the VMM's to pass on)
    Unaligned,            // MSI-X access not aligned to its size
};

const char* describe(PciError error);

// How an assigned function may interrupt the guest.
enum class InterruptMode : uint8_t {
    Msi,       // MSI and MSI-X, filtered (the default)
    IntxOnly,  // legacy INTx only: MSI and MSI-X are hidden from the guest and off in the device
};

// How the VMM reaches real configuration space and the MSI-X tables of assigned functions.
class PciHost {
public:
    // `size` bytes (1, 2, 4) at `offset` (0-255) of `bdf`'s configuration space; the access never
    // crosses a dword.
    virtual uint32_t config_read(Bdf bdf, uint8_t offset, uint8_t size) = 0;
    virtual void config_write(Bdf bdf, uint8_t offset, uint8_t size, uint32_t value) = 0;
    // A dword of `bdf`'s MSI-X table, `offset` bytes into the table (in the BAR msix_table() names).
    virtual uint32_t msix_read(Bdf bdf, uint32_t offset) = 0;
    virtual void msix_write(Bdf bdf, uint32_t offset, uint32_t value) = 0;

protected:
    ~PciHost() = default;
};

// Where MSIs may go: guest vCPU i runs on the host CPU with local APIC ID host_apic_id[i]; the
// device is programmed with that ID (physical mode), so host IDs must be below 0xFF. The vectors
// a device may use are the VMM's choice (those it does not use itself on the guest's CPUs).
struct MsiPolicy {
    size_t vcpu_count = 0;
    uint8_t host_apic_id[kMaxVcpus] = {};
    uint64_t allowed_vectors[4] = {0xffff'ffff'0000'0000ull, ~0ull, ~0ull, ~0ull};  // 0x20-0xFF

    bool allows(uint8_t vector) const { return vector >= 16 && ((allowed_vectors[vector >> 6] >> (vector & 63u)) & 1u); }
    void set_vectors(uint8_t first, uint8_t last, bool allowed);
};

class PciFilter {
public:
    static constexpr uint16_t kConfigAddress = 0xcf8;
    static constexpr uint16_t kConfigData = 0xcfc;
    static constexpr uint32_t kConfigEnable = 1u << 31;
    static constexpr size_t kMaxDevices = 8;
    static constexpr size_t kMaxMsixEntries = 64;  // shadowed per function; entries above stay masked

    // Type 0 header offsets (PCI 3.0, 6.1).
    static constexpr uint8_t kVendorId = 0x00;
    static constexpr uint8_t kCommand = 0x04;
    static constexpr uint8_t kStatus = 0x06;
    static constexpr uint8_t kHeaderType = 0x0e;
    static constexpr uint8_t kBar0 = 0x10;
    static constexpr uint8_t kBarCount = 6;
    static constexpr uint8_t kRomBar = 0x30;
    static constexpr uint8_t kCapabilityPointer = 0x34;
    static constexpr uint8_t kCapMsi = 0x05;
    static constexpr uint8_t kCapMsix = 0x11;
    static constexpr uint8_t kInterruptLine = 0x3c;
    static constexpr uint8_t kInterruptPin = 0x3d;
    static constexpr uint8_t kFirstCapability = 0x40;  // 6.7: capabilities live after the header
    static constexpr unsigned kMaxCapabilities = 48;   // (256 - 64) / 4 dwords

    struct Stats {
        uint64_t config_reads = 0;
        uint64_t config_writes = 0;
        uint64_t unassigned_reads = 0;   // functions the guest does not have: all ones
        uint64_t unassigned_writes = 0;  // dropped
        uint64_t bar_refused = 0;        // BAR writes other than sizing or the original value
        uint64_t rom_dropped = 0;        // expansion ROM BAR writes
        uint64_t msi_refused = 0;        // MSI/MSI-X fields and enables refused
        uint64_t msix_unshadowed = 0;    // writes to MSI-X entries beyond kMaxMsixEntries
        uint64_t other_io = 0;           // non-dword 0xCF8-0xCFB, data port with the enable bit clear
        uint64_t bridge_writes = 0;      // writes to the emulated host bridge: dropped
        uint64_t hidden_writes = 0;      // IntxOnly: writes to a hidden MSI/MSI-X capability
        Bdf last_refused{};              // the function and offset of the latest refusal
        uint8_t last_refused_offset = 0;
    };

    struct MsixTableInfo {
        bool present = false;
        uint8_t bar = 0;          // BAR index (BIR)
        uint32_t offset = 0;      // bytes into the BAR
        uint32_t entries = 0;     // table size (16 bytes each)
    };

    // A BAR as assign() found it (6.2.5.1). A 64-bit BAR is described at its low index; the high
    // index, an unimplemented BAR and one whose probe is inconsistent (size not a power of two,
    // base not aligned to it, read-only type bits changing, a reserved type, I/O beyond 64 KiB)
    // read present = false.
    struct BarInfo {
        bool present = false;
        bool io = false;
        bool is64 = false;
        bool prefetchable = false;
        uint64_t base = 0;
        uint64_t size = 0;
    };

    // `apics` is the guest's live LAPIC view (logical destinations); both must outlive the filter.
    PciFilter(PciHost& host, const GuestApics& apics, const MsiPolicy& policy);

    // Before any assign(): the mode every function assigned afterwards is given (default Msi).
    void set_interrupt_mode(InterruptMode mode) { mode_ = mode; }

    // Gives the guest `bdf`: probes the header, the BARs (decoding off meanwhile) and the
    // capability list through the host, disables MSI and masks every MSI-X entry (Msi), or
    // disables MSI, MSI-X and bus mastering (IntxOnly; the MSI-X table is not touched).
    Status<PciError> assign(Bdf bdf);
    // Emulate a read-only host bridge at 00:00.0 (on by default; ignored if 00:00.0 is assigned).
    void set_host_bridge(bool enabled) { host_bridge_ = enabled; }

    static bool claims_port(uint16_t port) { return port >= kConfigAddress && port <= kConfigData + 3; }
    // Port I/O to 0xCF8-0xCFF; the VMM completes a failed read with all ones.
    Result<uint32_t, PciError> io_read(uint16_t port, uint8_t size);
    Status<PciError> io_write(uint16_t port, uint8_t size, uint32_t value);

    // A configuration access as the guest makes it (what a data-port access becomes).
    Result<uint32_t, PciError> config_read(Bdf bdf, uint8_t offset, uint8_t size);
    Status<PciError> config_write(Bdf bdf, uint8_t offset, uint8_t size, uint32_t value);

    MsixTableInfo msix_table(Bdf bdf) const;
    // 4- or 8-byte accesses inside the MSI-X table (`offset` bytes into it).
    Result<uint64_t, PciError> msix_read(Bdf bdf, uint32_t offset, uint8_t size);
    Status<PciError> msix_write(Bdf bdf, uint32_t offset, uint8_t size, uint64_t value);

    bool assigned(Bdf bdf) const { return find(bdf) != nullptr; }
    size_t device_count() const { return device_count_; }
    Bdf device_bdf(size_t i) const { return i < device_count_ ? devices_[i].bdf : Bdf{}; }  // i < device_count()

    // What assign() found; a function not assigned reads as absent / 0.
    BarInfo bar(Bdf bdf, unsigned index) const;  // index 0-5
    uint8_t interrupt_pin(Bdf bdf) const;   // 0x3D: 0 none, 1-4 INTA#-INTD# (6.2.4); others are the device's
    uint8_t interrupt_line(Bdf bdf) const;  // 0x3C: the firmware's IRQ (6.2.4)

    uint32_t config_address() const { return address_; }
    const Stats& stats() const { return stats_; }

private:
    struct MsiMessage {
        uint32_t address = 0;
        uint32_t upper = 0;
        uint32_t data = 0;
        bool address_set = false;  // a valid address was written
        bool data_set = false;     // valid data was written
    };
    struct MsixEntry {
        MsiMessage message;
        bool masked = true;
    };
    struct Device {
        Bdf bdf;
        uint32_t bar_original[kBarCount] = {};
        uint32_t bar_probe[kBarCount] = {};   // what the BAR reads after all ones were written
        bool bar_sizing[kBarCount] = {};
        uint8_t interrupt_line = 0;
        uint8_t interrupt_pin = 0;
        bool intx_only = false;
        // The capability list in order, and (IntxOnly) the dwords hidden from the guest, one bit
        // per dword from 0x40, and the list the guest is shown instead.
        uint8_t caps[kMaxCapabilities] = {};
        uint8_t cap_count = 0;
        uint64_t hidden = 0;
        uint8_t visible[kMaxCapabilities] = {};
        uint8_t visible_count = 0;
        uint8_t msi = 0;                      // capability offset, 0 = none
        bool msi_64bit = false;
        bool msi_per_vector_mask = false;
        uint8_t msi_capable = 0;              // multiple message capable (log2 of the vectors it has)
        uint16_t msi_control = 0;             // guest's enable (bit 0) and multiple message enable (6:4)
        MsiMessage msi_message;
        uint8_t msix = 0;
        MsixTableInfo msix_info;
        MsixEntry msix_entries[kMaxMsixEntries];
    };

    Device* find(Bdf bdf);
    const Device* find(Bdf bdf) const;
    bool is_host_bridge(Bdf bdf) const;
    Status<PciError> walk_capabilities(Device& device);
    Status<PciError> check_msix_table(const Device& device) const;
    Status<PciError> check_msix_access(const Device* device, uint32_t offset, uint8_t size) const;
    BarInfo bar_info(const Device& device, unsigned index) const;
    void hide_msi(Device& device);
    bool hidden(const Device& device, uint8_t reg) const;
    uint32_t visible_view(const Device& device, uint8_t reg, uint32_t dword) const;

    uint32_t read_dword(Device& device, uint8_t reg);
    void write_dword(Device& device, uint8_t reg, uint32_t byte_mask, uint32_t value, uint8_t offset, uint8_t size);
    void write_bar(Device& device, unsigned index, uint32_t byte_mask, uint32_t value);
    void write_msi(Device& device, uint8_t reg, uint32_t byte_mask, uint32_t value);

    // MSI rules (see above).
    bool address_ok(uint32_t address) const;
    bool data_ok(uint32_t data, unsigned vectors) const;
    bool host_address(uint32_t guest_address, uint32_t& host) const;
    uint8_t msi_data_offset(const Device& device) const;
    unsigned msi_enabled_log2(const Device& device) const;
    unsigned msi_vectors(const Device& device) const;
    bool msi_ready(const Device& device) const;
    void sync_msi(Device& device);
    void sync_msix(Device& device, size_t index);
    void note_refusal(uint64_t& counter, Bdf bdf, uint8_t offset);

    PciHost& host_;
    const GuestApics& apics_;
    const MsiPolicy& policy_;
    uint32_t address_ = 0;
    bool host_bridge_ = true;
    InterruptMode mode_ = InterruptMode::Msi;
    Device devices_[kMaxDevices];
    size_t device_count_ = 0;
    Stats stats_;
};

} // namespace vlibos::vmm::devices

// PCI functions passed through to the Linux VM (the `pci =` key of its partition).
//
//   guest port I/O 0xCF8-0xCFF ──> PciFilter (vmm/devices) ──> real configuration space
//   guest MMIO to a memory BAR ──> mapped GPA == HPA, uncached (no exit)
//   guest port I/O to an I/O BAR ──> the real port, after a range check
//   device INTx ──> real I/O APIC pin (GSI) ──> monitor vector 0x30+n on vCPU 0's CPU:
//       the handler masks the pin ──> poll() raises the VM's I/O APIC pin (same number) ──> Linux
//       Linux's EOI of that level-triggered vector ──> the pin is lowered and the real pin unmasked
//       (if the device still asserts, it fires again: "resampling")
//
// Interrupts are INTx only: the filter hides MSI and MSI-X (the monitor cannot yet forward a
// device's message interrupt to a vCPU) and the guest gets pci=nomsi. A function's INTx line is
// its Interrupt Line register (the firmware's ISA IRQ), through the MADT's overrides; platforms
// that wire PCI interrupts only through ACPI _PRT (GSI 16 and up) are refused.
// Without an IOMMU, a device the guest drives can DMA anywhere: see docs/virtualisation.md.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "lib/spinlock.hpp"
#include "vmm/devices/pci_filter.hpp"
#include "vmm/exit.hpp"
#include "vmm/guest_memory.hpp"
#include "vmm/guest_registers.hpp"
#include "vmm/linux/mp_table.hpp"

namespace vlibos {
struct Machine;
}

namespace vlibos::vmm {

class LinuxBoard;

class LinuxPci {
public:
    static constexpr size_t kMaxLines = 8;    // distinct GSIs; one monitor vector each
    static constexpr size_t kMaxIoBars = 12;

    LinuxPci();

    // Probes and assigns the partition's functions and routes their lines (masked) to the CPU
    // with local APIC ID `apic_id`. False, with every reason printed, if one cannot be given.
    bool assign(const Machine& machine, size_t partition, uint32_t apic_id);
    size_t count() const { return filter_.device_count(); }

    // The MP table's PCI bus and interrupt entries, and each memory BAR in the guest map.
    void describe(linux_boot::MpConfig& mp) const;
    bool map_bars(const Machine& machine, GuestMemory& memory) const;

    // Port I/O the VM does to configuration space or an assigned I/O BAR.
    bool owns_port(uint16_t port) const;
    void handle(const IoExit& io, GuestRegisters& regs);

    // Starts forwarding: `board`'s pins follow the real lines from now on.
    void start(LinuxBoard& board);
    // vCPU 0, each loop turn: the lines that fired since are raised in the VM's I/O APIC.
    void poll();
    // The guest EOI'd the level-triggered pins `pins` (the board has lowered them): unmask.
    void resample(uint32_t pins);

    // The VM's I/O APIC pins that follow real lines.
    uint32_t pins() const;
    // The VM has stopped: its lines stay masked and its functions stop bus mastering, so a
    // device it left running neither interrupts nor writes memory any more.
    void quiesce();

    void report() const;

private:
    struct Line {
        uint32_t gsi = 0;
        bool level = true;
        bool active_low = true;
        uint64_t fired = 0;      // real interrupts taken
        uint64_t resampled = 0;  // guest EOIs that unmasked it again
    };
    struct IoBar {
        uint16_t first = 0;
        uint16_t last = 0;
    };

    static void on_interrupt(unsigned index);
    // Ports first..last lie in one assigned I/O BAR.
    bool in_io_bar(uint16_t first, uint32_t last) const;
    bool add_line(const Machine& machine, devices::Bdf bdf, uint8_t& gsi_out);

    devices::GuestApics apics_;    // unused in INTx-only mode (no MSI destinations)
    devices::MsiPolicy policy_;
    devices::PciFilter filter_;
    Spinlock lock_;                // the filter: port I/O from every vCPU
    Line lines_[kMaxLines];
    size_t line_count_ = 0;
    linux_boot::MpPciInterrupt interrupts_[linux_boot::kMaxMpPciInterrupts];
    size_t interrupt_count_ = 0;
    IoBar io_bars_[kMaxIoBars];
    size_t io_bar_count_ = 0;
    LinuxBoard* board_ = nullptr;
    uint32_t pending_ = 0;       // lines that fired (bit n = line n), set by the handler
    uint64_t io_forwarded_ = 0;  // I/O BAR accesses
};

} // namespace vlibos::vmm

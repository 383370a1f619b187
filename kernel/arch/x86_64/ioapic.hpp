// The machine's I/O APICs (Intel 82093AA datasheet, order no. 290566): IOREGSEL at +0x00 and
// IOWIN at +0x10 (3.1), the version register (3.2.2) and the redirection table (3.2.4).
//
// The monitor programs only the pins it forwards to the Linux VM (the lines of the PCI functions
// assigned to it); every other pin stays as the firmware left it, masked. Each access is an
// index write followed by a data access, so all of them take one lock with interrupts off:
// the forwarding handler masks its pin from interrupt context.
#pragma once

#include <stdint.h>

#include "acpi/acpi.hpp"

namespace vlibos::x86 {

class Ioapic {
public:
    // How a GSI is delivered: fixed, physical destination (3.2.4).
    struct Route {
        uint8_t vector = 0;
        uint8_t apic_id = 0;
        bool level = false;       // trigger mode
        bool active_low = false;  // polarity
    };

    // Records the I/O APICs ACPI describes (mapped uncached by kernel_paging) and reads each
    // one's pin count from its version register. Once, before the other calls (the Linux VM's
    // setup does it before it routes a pin).
    static void init(const acpi::Platform& platform);

    static bool has_gsi(uint32_t gsi);
    // Writes the entry of `gsi`, masked or not. False if no I/O APIC has that GSI.
    static bool route(uint32_t gsi, const Route& route, bool masked);
    static void mask(uint32_t gsi);
    static void unmask(uint32_t gsi);
    // The entry as it is now (for reports); 0 if there is no such GSI.
    static uint64_t entry(uint32_t gsi);

    // An ISA IRQ's GSI, trigger and polarity: the MADT's interrupt source overrides, else the
    // ISA defaults (GSI = IRQ, edge, active high; ACPI 6.4, 5.2.12.5).
    struct IsaIrq {
        uint32_t gsi = 0;
        bool level = false;
        bool active_low = false;
        bool overridden = false;
    };
    static IsaIrq isa_irq(const acpi::Platform& platform, uint8_t irq);

private:
    static constexpr uint32_t kRegSelect = 0x00;
    static constexpr uint32_t kWindow = 0x10;
    static constexpr uint8_t kRegVersion = 0x01;
    static constexpr uint8_t kRegRedirection = 0x10;  // entry n: 0x10 + 2n (low), 0x11 + 2n (high)
    static constexpr uint64_t kMasked = 1ull << 16;
    static constexpr uint64_t kLevel = 1ull << 15;
    static constexpr uint64_t kActiveLow = 1ull << 13;
    static constexpr unsigned kDestinationShift = 56;

    struct Chip {
        uint64_t base = 0;
        uint32_t gsi_base = 0;
        uint32_t pins = 0;
    };
    static const Chip* chip_of(uint32_t gsi);
    static uint32_t read(const Chip& chip, uint8_t reg);
    static void write(const Chip& chip, uint8_t reg, uint32_t value);
    static void modify_low(uint32_t gsi, uint32_t clear, uint32_t set);

    static constexpr unsigned kMaxChips = acpi::kMaxIoApics;
    static Chip chips_[kMaxChips];
    static unsigned chip_count_;
};

} // namespace vlibos::x86

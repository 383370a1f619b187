// Intel MultiProcessor Specification 1.4 tables for the Linux guest, which has no ACPI: they tell
// Linux its CPUs (local APIC IDs, which one boots), its buses, its I/O APIC and how the ISA
// interrupts and the local APIC's LINT pins are wired. Also the BIOS data area fields that point
// Linux at the EBDA, where the VMM puts the tables.
//
// Written into a caller-provided buffer that the guest will see at `guest_physical`: the pointers
// inside the tables are guest-physical. Layout references: MP spec 1.4, chapter 4 ("MP
// Configuration Table"), table 4-1 (floating pointer), 4-2 (header), 4-4..4-10 (entries).
// What Linux checks is in arch/x86/kernel/mpparse.c (smp_scan_config, smp_check_mpc).
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "lib/result.hpp"

namespace vlibos::vmm::linux_boot {

// The x86 PC's fixed interrupt controller addresses (the MP spec's defaults, and Linux's
// IO_APIC_DEFAULT_PHYS_BASE / APIC_DEFAULT_PHYS_BASE).
constexpr uint32_t kDefaultIoApicAddress = 0xfec00000;
constexpr uint32_t kDefaultLocalApicAddress = 0xfee00000;

// One APIC ID per byte, 0xFF being "all local APICs" in interrupt entries. The limit keeps the
// whole table inside one 4 KiB EBDA page with room to spare (static_assert in mp_table.cpp).
constexpr size_t kMaxMpProcessors = 64;

struct MpProcessor {
    uint8_t apic_id = 0;
    bool bsp = false;          // the processor that starts Linux; exactly one
};

// A PCI function's interrupt pin wired to an I/O APIC pin (MP spec 4.3.4, Table 4-8 note: the
// source bus IRQ of a PCI interrupt is (device << 2) | pin). Level-triggered, active low, as PCI
// interrupts are (PCI 3.0, 2.2.6).
constexpr size_t kMaxMpPciInterrupts = 8;
struct MpPciInterrupt {
    uint8_t device = 0;      // 0-31, on PCI bus 0
    uint8_t pin = 0;         // 0 = INTA# ... 3 = INTD#
    uint8_t ioapic_pin = 0;  // 0-23, not the timer's pins 0 and 2
};

struct MpConfig {
    MpProcessor processors[kMaxMpProcessors] = {};
    size_t processor_count = 0;
    uint8_t local_apic_version = 0x14;   // an integrated xAPIC (MP spec table 4-4: 1xh)
    uint32_t local_apic_address = kDefaultLocalApicAddress;
    uint32_t cpu_signature = 0;          // CPUID.1:EAX family/model/stepping; Linux ignores it
    uint32_t cpu_features = 0x201;       // CPUID.1:EDX; FPU and APIC set; Linux ignores it
    uint8_t ioapic_id = 0;               // must differ from every local APIC ID
    uint8_t ioapic_version = 0x11;       // 82093AA
    uint32_t ioapic_address = kDefaultIoApicAddress;
    bool pci_bus = false;                // add a PCI bus entry (bus 0; ISA becomes bus 1)
    // PCI interrupts (need pci_bus). An ISA IRQ whose pin a PCI interrupt uses gets no entry:
    // one pin, one trigger mode.
    MpPciInterrupt pci_interrupts[kMaxMpPciInterrupts] = {};
    size_t pci_interrupt_count = 0;
};

enum class MpErrorKind : uint8_t {
    None,
    NoProcessors,
    TooManyProcessors,   // value: count
    BroadcastApicId,     // value: 0xFF, which means "all" and cannot name one APIC
    DuplicateApicId,     // value: the APIC ID
    NoBsp,
    SeveralBsps,         // value: the second BSP's APIC ID
    IoApicIdClash,       // value: the I/O APIC ID, also a local APIC's
    BadApicAddress,      // value: the address (below 1 MiB, not 4 KiB aligned, or I/O APIC == local APIC)
    BufferTooSmall,      // value: bytes given; limit: bytes needed
    BadGuestAddress,     // value: the guest-physical address (not 16-byte aligned, or the table reaches 4 GiB)
    BadPciInterrupt,     // value: index of the entry (no PCI bus, device > 31, pin > 3, I/O APIC pin 0, 2 or > 23,
                         // more than kMaxMpPciInterrupts, or the same device and pin twice)
};

struct MpError {
    MpErrorKind kind = MpErrorKind::None;
    uint64_t value = 0;
    uint64_t limit = 0;
};

const char* describe(MpErrorKind kind);
size_t format_mp_error(char* buffer, size_t size, const MpError& error);

// MP spec 1.4 sizes.
constexpr size_t kMpFloatingPointerSize = 16;
constexpr size_t kMpConfigHeaderSize = 44;
constexpr size_t kMpProcessorEntrySize = 20;
constexpr size_t kMpEntrySize = 8;      // bus, I/O APIC, I/O and local interrupt entries
// ISA IRQs 0, 1 and 3-15: IRQ 2 is the 8259 cascade and never reaches the I/O APIC (pin 2 gets
// the timer, IRQ 0, as on every PC; Linux's own default table does the same).
constexpr size_t kMpIsaInterruptEntries = 15;
constexpr size_t kMpLocalInterruptEntries = 2;   // ExtINT on LINT0, NMI on LINT1

// Entry types (MP spec table 4-3).
constexpr uint8_t kMpEntryProcessor = 0;
constexpr uint8_t kMpEntryBus = 1;
constexpr uint8_t kMpEntryIoApic = 2;
constexpr uint8_t kMpEntryIoInterrupt = 3;
constexpr uint8_t kMpEntryLocalInterrupt = 4;

// Interrupt types (MP spec table 4-8).
constexpr uint8_t kMpInterruptInt = 0;
constexpr uint8_t kMpInterruptNmi = 1;
constexpr uint8_t kMpInterruptExtInt = 3;

// The checks write_mp_table() makes on the configuration, on their own.
Status<MpError> check_mp_config(const MpConfig& config);

// Bytes write_mp_table() writes: the floating pointer and the configuration table after it.
size_t mp_table_size(const MpConfig& config);

struct MpTableInfo {
    uint64_t floating_pointer;   // guest-physical, 16-byte aligned
    uint64_t config_table;       // guest-physical, right after the floating pointer
    size_t config_length;        // base table length (header + entries)
    size_t entry_count;
};

// Writes the MP floating pointer structure at buffer[0, 16) and the configuration table right
// after it, for the guest to find at `guest_physical`. Linux finds the floating pointer only where
// it scans (the first KiB of the EBDA, the KiB below 640 KiB, 0xF0000-0xFFFFF), so the caller picks
// such an address. Both checksums are filled in. Nothing is written if the configuration is
// refused.
Result<MpTableInfo, MpError> write_mp_table(uint8_t* buffer, size_t size, uint64_t guest_physical,
                                            const MpConfig& config);

// BIOS data area (segment 0x40; read by Linux's get_bios_ebda() and reserve_bios_regions()).
constexpr size_t kBdaEbdaSegment = 0x40e;    // u16, EBDA address >> 4
constexpr size_t kBdaBaseMemoryKib = 0x413;  // u16, KiB of base memory below the EBDA (INT 12h)
constexpr size_t kBdaEnd = 0x500;

// Writes the EBDA segment and the base memory size (everything below the EBDA) into page 0 of the
// guest, `page0` being at least kBdaEnd bytes. `ebda` must be 1 KiB aligned, above 128 KiB and
// below 640 KiB, the window Linux believes (BIOS_START_MIN/MAX in arch/x86/kernel/ebda.c);
// BadGuestAddress otherwise, and nothing is written.
Status<MpError> write_bda(uint8_t* page0, size_t size, uint64_t ebda);

} // namespace vlibos::vmm::linux_boot

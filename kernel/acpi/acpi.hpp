// ACPI table parser: RSDP -> RSDT/XSDT -> MADT (CPUs, I/O APICs, overrides) and FADT/DSDT
// (power-off and reset). ACPI 6.5 §5.2.
// Firmware tables are untrusted input: every table is read through PhysicalMemory, its
// length is capped, its checksum verified, and every field read is checked against its length.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "lib/result.hpp"

namespace vlibos::acpi {

constexpr size_t kMaxCpus = 64;
constexpr size_t kMaxIoApics = 8;
constexpr size_t kMaxOverrides = 24;

struct Cpu {
    uint32_t apic_id;
    uint32_t uid;            // ACPI processor UID
    bool enabled;            // MADT flags bit 0: usable now
    bool online_capable;     // MADT flags bit 1: may be enabled later (ACPI 6.3+)
    bool from_x2apic_entry;  // described by a type-9 (x2APIC) entry
};

struct IoApic {
    uint32_t id;
    uint64_t address;
    uint32_t gsi_base;
};

// An ISA IRQ that is wired to a different GSI or with non-default polarity/trigger (§5.2.12.5).
struct InterruptOverride {
    uint8_t bus;
    uint8_t source_irq;
    uint32_t gsi;
    uint16_t flags;          // MPS INTI flags: polarity bits 1:0, trigger mode bits 3:2
};

// Generic Address Structure address space IDs (§5.2.3.2).
constexpr uint8_t kAddressSpaceMemory = 0;
constexpr uint8_t kAddressSpaceIo = 1;
constexpr uint8_t kAddressSpacePciConfig = 2;

struct Platform {
    char oem_id[7] = {};            // RSDP OEM ID, NUL-terminated, non-printables replaced by '?'
    uint8_t rsdp_revision = 0;

    uint64_t lapic_address = 0;     // MADT field, or the type-5 override when present
    bool pcat_compat = false;       // MADT flags bit 0: dual 8259 present
    Cpu cpus[kMaxCpus] = {};        // in MADT order; includes disabled entries with enabled=false
    size_t cpu_count = 0;
    IoApic ioapics[kMaxIoApics] = {};
    size_t ioapic_count = 0;
    InterruptOverride overrides[kMaxOverrides] = {};
    size_t override_count = 0;

    // FADT (optional): power-off and reset.
    bool has_fadt = false;
    bool hw_reduced = false;        // FADT flags bit 20: no PM1 blocks, use the sleep registers
    uint32_t pm1a_control_port = 0; // X_PM1a_CNT_BLK (I/O space) when nonzero, else PM1a_CNT_BLK
    uint32_t pm1b_control_port = 0;
    bool has_s5 = false;            // \_S5_ package found in the DSDT (byte-pattern search, bounded)
    uint8_t s5_sleep_type_a = 0;
    uint8_t s5_sleep_type_b = 0;
    bool has_reset_register = false;
    uint8_t reset_space_id = 0;     // kAddressSpace*
    uint64_t reset_address = 0;
    uint8_t reset_value = 0;
    bool has_sleep_control = false; // hardware-reduced ACPI: SLEEP_CONTROL_REG (§4.8.3.7)
    uint8_t sleep_control_space_id = 0;
    uint64_t sleep_control_address = 0;
};

// Reads host physical memory. The kernel implements it over its identity map with range
// checks; tests implement it over a fake memory. Returns false if any byte is unreadable.
class PhysicalMemory {
public:
    virtual bool read(uint64_t phys, void* out, size_t length) const = 0;

protected:
    ~PhysicalMemory() = default;
};

enum class Error {
    RsdpTooShort,
    RsdpBadSignature,
    RsdpBadChecksum,
    RsdpBadLength,
    RsdpBadExtendedChecksum,
    RsdpNotFound,
    NoRootTable,
    UnreadableMemory,
    RootTableBadSignature,
    RootTableTooShort,
    RootTableTooLarge,
    RootTableBadChecksum,
    RootTableBadLength,
    MadtMissing,
    MadtDuplicate,
    MadtTooShort,
    MadtTooLarge,
    MadtBadChecksum,
    MadtBadEntryLength,
    MadtEntryOverrun,
    TooManyCpus,
    TooManyIoApics,
    TooManyOverrides,
    DuplicateApicId,
    NoUsableCpu,
    FadtDuplicate,
    FadtTooShort,
    FadtTooLarge,
    FadtBadChecksum,
    DsdtBadSignature,
    DsdtTooShort,
    DsdtTooLarge,
    DsdtBadChecksum,
};

const char* describe(Error error);

// Tables longer than this are refused; AML tables (DSDT) may be larger.
constexpr uint32_t kMaxTableLength = 1u << 20;
constexpr uint32_t kMaxAmlTableLength = 4u << 20;

// rsdp/rsdp_length: the RSDP bytes (from Multiboot2, or read by the caller from find_rsdp()).
// On failure `out` holds partial data and must not be used.
Status<Error> parse(const uint8_t* rsdp, size_t rsdp_length, const PhysicalMemory& memory, Platform& out);

// Like parse(), reading the RSDP itself from physical memory (e.g. the result of find_rsdp()).
Status<Error> parse_at(uint64_t rsdp_address, const PhysicalMemory& memory, Platform& out);

// Legacy search (§5.2.5.1): the first KiB of the EBDA (segment at 0x40E), then 0xE0000-0xFFFFF,
// on 16-byte boundaries, checksum-verified. Returns the RSDP's physical address.
Result<uint64_t, Error> find_rsdp(const PhysicalMemory& memory);

} // namespace vlibos::acpi

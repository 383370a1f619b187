// MP spec 1.4 table builder. See mp_table.hpp. Offsets are the MP spec's (tables 4-1 to 4-10).
#include "vmm/linux/mp_table.hpp"

#include "lib/format.hpp"
#include "vmm/linux/store.hpp"

#include <string.h>

namespace vlibos::vmm::linux_boot {

namespace {

unsigned long long ull(uint64_t v) { return static_cast<unsigned long long>(v); }

Failure<MpError> refuse(MpErrorKind kind, uint64_t value = 0, uint64_t limit = 0)
{
    return fail(MpError{kind, value, limit});
}

// MP floating pointer structure (MP spec table 4-1).
constexpr size_t kFpSignature = 0;      // "_MP_"
constexpr size_t kFpPhysicalPointer = 4; // u32, configuration table address
constexpr size_t kFpLength = 8;          // u8, in 16-byte paragraphs: 1
constexpr size_t kFpSpecRev = 9;         // u8, 4 for version 1.4
constexpr size_t kFpChecksum = 10;       // u8, the 16 bytes sum to 0
constexpr size_t kFpFeature1 = 11;       // u8, 0: a configuration table is present
constexpr size_t kFpFeature2 = 12;       // u8, bit 7 IMCRP: 0 = virtual wire mode, no IMCR

// Configuration table header (MP spec table 4-2).
constexpr size_t kCtSignature = 0;       // "PCMP"
constexpr size_t kCtBaseLength = 4;      // u16, header + base entries
constexpr size_t kCtSpecRev = 6;         // u8
constexpr size_t kCtChecksum = 7;        // u8, the base table sums to 0
constexpr size_t kCtOemId = 8;           // 8 chars, space padded
constexpr size_t kCtProductId = 16;      // 12 chars, space padded
constexpr size_t kCtEntryCount = 34;     // u16
constexpr size_t kCtLocalApicAddress = 36; // u32
// OEM table pointer/size (28, 32) and the extended table length/checksum (40, 42) stay zero.

constexpr uint8_t kSpecRev14 = 4;
constexpr uint8_t kCpuEnabled = 1u << 0;     // processor entry CPU flags (table 4-5)
constexpr uint8_t kCpuBootProcessor = 1u << 1;
constexpr uint8_t kIoApicEnabled = 1u << 0;  // I/O APIC entry flags (table 4-7)
constexpr uint8_t kAllLocalApics = 0xff;     // local interrupt entry destination (table 4-10)
// Interrupt entry flags 0: polarity and trigger "conform to the bus" (table 4-9), i.e. ISA edge, high.
constexpr uint16_t kConformingFlags = 0;
constexpr uint8_t kTimerIrq = 0;
constexpr uint8_t kTimerPin = 2;
constexpr uint8_t kCascadeIrq = 2;

// The whole table fits in the EBDA page the layout gives it (after the EBDA's first paragraph) for
// every configuration accepted.
constexpr size_t kMaxTableSize = kMpFloatingPointerSize + kMpConfigHeaderSize +
                                 kMaxMpProcessors * kMpProcessorEntrySize +
                                 (2 + 1 + kMpIsaInterruptEntries + kMaxMpPciInterrupts + kMpLocalInterruptEntries) *
                                     kMpEntrySize;
static_assert(kMaxTableSize <= 4096 - 16, "the MP table must fit in the EBDA page after its first paragraph");

size_t bus_count(const MpConfig& c) { return c.pci_bus ? 2 : 1; }

constexpr uint8_t kIoApicPins = 24;
// PCI interrupt entries: level-triggered (bits 3:2 = 11), active low (bits 1:0 = 11), Table 4-9.
constexpr uint16_t kPciInterruptFlags = 0x0f;

size_t bounded_pci(const MpConfig& c)
{
    return c.pci_interrupt_count < kMaxMpPciInterrupts ? c.pci_interrupt_count : kMaxMpPciInterrupts;
}

// Whether a PCI interrupt takes I/O APIC pin `pin` (then ISA IRQ `pin` gets no entry).
bool pci_uses_pin(const MpConfig& c, uint8_t pin)
{
    for (size_t i = 0; i < bounded_pci(c); ++i)
        if (c.pci_interrupts[i].ioapic_pin == pin)
            return true;
    return false;
}

size_t isa_entries(const MpConfig& c)
{
    size_t n = 0;
    for (uint8_t irq = 0; irq < 16; ++irq)
        if (irq != kCascadeIrq && (irq == kTimerIrq || !pci_uses_pin(c, irq)))
            ++n;
    return n;
}

// Counts are bounded so that a refused configuration still gives a meaningful size.
size_t bounded_processors(const MpConfig& c)
{
    return c.processor_count < kMaxMpProcessors ? c.processor_count : kMaxMpProcessors;
}

size_t entry_count(const MpConfig& c)
{
    return bounded_processors(c) + bus_count(c) + 1 + isa_entries(c) + bounded_pci(c) + kMpLocalInterruptEntries;
}

size_t config_length(const MpConfig& c)
{
    return kMpConfigHeaderSize + bounded_processors(c) * kMpProcessorEntrySize +
           (bus_count(c) + 1 + isa_entries(c) + bounded_pci(c) + kMpLocalInterruptEntries) * kMpEntrySize;
}

// Above the first MiB (the guest's low memory and legacy hole), on a page of its own.
bool valid_apic_address(uint32_t address) { return address >= 0x100000 && (address & 0xfffu) == 0; }

// Writes an I/O (type 3) or local (type 4) interrupt assignment entry; both share the layout of
// MP spec tables 4-8 and 4-10.
uint8_t* put_interrupt(uint8_t* p, uint8_t entry_type, uint8_t interrupt_type, uint8_t source_bus,
                       uint8_t source_irq, uint8_t destination, uint8_t pin, uint16_t flags = kConformingFlags)
{
    store_u8(p, 0, entry_type);
    store_u8(p, 1, interrupt_type);
    store_u16(p, 2, flags);
    store_u8(p, 4, source_bus);
    store_u8(p, 5, source_irq);
    store_u8(p, 6, destination);
    store_u8(p, 7, pin);
    return p + kMpEntrySize;
}

uint8_t* put_bus(uint8_t* p, uint8_t id, const char (&type)[7])
{
    store_u8(p, 0, kMpEntryBus);
    store_u8(p, 1, id);
    memcpy(p + 2, type, 6); // bus type string, space padded (table 4-6)
    return p + kMpEntrySize;
}

} // namespace

const char* describe(MpErrorKind kind)
{
    switch (kind) {
    case MpErrorKind::None: return "no error";
    case MpErrorKind::NoProcessors: return "the MP table needs at least one processor";
    case MpErrorKind::TooManyProcessors: return "the MP table has room for at most 64 processors";
    case MpErrorKind::BroadcastApicId: return "APIC ID 0xFF means 'all APICs' and cannot name a processor";
    case MpErrorKind::DuplicateApicId: return "two processors have the same APIC ID";
    case MpErrorKind::NoBsp: return "no processor is marked as the bootstrap processor";
    case MpErrorKind::SeveralBsps: return "more than one processor is marked as the bootstrap processor";
    case MpErrorKind::IoApicIdClash: return "the I/O APIC ID is also a local APIC ID";
    case MpErrorKind::BadApicAddress: return "an APIC register address is below 1 MiB, not 4 KiB aligned, or shared by the I/O APIC and the local APICs";
    case MpErrorKind::BufferTooSmall: return "the buffer is too small for the MP table";
    case MpErrorKind::BadGuestAddress: return "the MP table's guest-physical address is misaligned or out of range";
    case MpErrorKind::BadPciInterrupt: return "a PCI interrupt entry is invalid (no PCI bus, device above 31, pin above INTD#, I/O APIC pin 0, 2 or above 23, the same device pin twice, or more than 8)";
    }
    return "unknown MP table error";
}

size_t format_mp_error(char* buffer, size_t size, const MpError& e)
{
    switch (e.kind) {
    case MpErrorKind::TooManyProcessors:
        return format(buffer, size, "the MP table has room for at most %llu processors, not %llu",
                      ull(kMaxMpProcessors), ull(e.value));
    case MpErrorKind::DuplicateApicId:
        return format(buffer, size, "two processors have APIC ID %llu", ull(e.value));
    case MpErrorKind::SeveralBsps:
        return format(buffer, size,
                      "more than one processor is marked as the bootstrap processor (the second: APIC ID %llu)",
                      ull(e.value));
    case MpErrorKind::IoApicIdClash:
        return format(buffer, size, "the I/O APIC ID %llu is also a processor's local APIC ID", ull(e.value));
    case MpErrorKind::BadApicAddress:
        return format(buffer, size,
                      "APIC register address 0x%llx is below 1 MiB, not 4 KiB aligned, or shared by the I/O APIC "
                      "and the local APICs",
                      ull(e.value));
    case MpErrorKind::BufferTooSmall:
        return format(buffer, size, "the MP table needs %llu bytes, the buffer has %llu", ull(e.limit), ull(e.value));
    case MpErrorKind::BadPciInterrupt:
        return format(buffer, size, "PCI interrupt entry %llu is invalid: %s", ull(e.value), describe(e.kind));
    case MpErrorKind::BadGuestAddress:
        return format(buffer, size,
                      "guest-physical address 0x%llx cannot hold the MP table (16-byte alignment, 32-bit "
                      "pointers, or the BIOS data area's EBDA window 128-640 KiB)",
                      ull(e.value));
    case MpErrorKind::None:
    case MpErrorKind::NoProcessors:
    case MpErrorKind::BroadcastApicId:
    case MpErrorKind::NoBsp:
        break;
    }
    return format(buffer, size, "%s", describe(e.kind));
}

Status<MpError> check_mp_config(const MpConfig& c)
{
    if (c.processor_count == 0)
        return refuse(MpErrorKind::NoProcessors);
    if (c.processor_count > kMaxMpProcessors)
        return refuse(MpErrorKind::TooManyProcessors, c.processor_count);
    bool seen[256] = {};
    bool have_bsp = false;
    for (size_t i = 0; i < c.processor_count; ++i) {
        const MpProcessor& p = c.processors[i];
        if (p.apic_id == kAllLocalApics)
            return refuse(MpErrorKind::BroadcastApicId, p.apic_id);
        if (seen[p.apic_id])
            return refuse(MpErrorKind::DuplicateApicId, p.apic_id);
        seen[p.apic_id] = true;
        if (p.bsp) {
            if (have_bsp)
                return refuse(MpErrorKind::SeveralBsps, p.apic_id);
            have_bsp = true;
        }
    }
    if (!have_bsp)
        return refuse(MpErrorKind::NoBsp);
    // MP spec 3.6.6 / 4.3.3: I/O APICs and local APICs share one ID space on the APIC bus.
    if (seen[c.ioapic_id] || c.ioapic_id == kAllLocalApics)
        return refuse(MpErrorKind::IoApicIdClash, c.ioapic_id);
    if (!valid_apic_address(c.local_apic_address))
        return refuse(MpErrorKind::BadApicAddress, c.local_apic_address);
    if (!valid_apic_address(c.ioapic_address) || c.ioapic_address == c.local_apic_address)
        return refuse(MpErrorKind::BadApicAddress, c.ioapic_address);
    if (c.pci_interrupt_count > kMaxMpPciInterrupts)
        return refuse(MpErrorKind::BadPciInterrupt, kMaxMpPciInterrupts);
    for (size_t i = 0; i < c.pci_interrupt_count; ++i) {
        const MpPciInterrupt& e = c.pci_interrupts[i];
        bool bad = !c.pci_bus || e.device > 31 || e.pin > 3 || e.ioapic_pin >= kIoApicPins || e.ioapic_pin == 0 ||
                   e.ioapic_pin == kTimerPin;
        for (size_t j = 0; j < i && !bad; ++j)
            bad = c.pci_interrupts[j].device == e.device && c.pci_interrupts[j].pin == e.pin;
        if (bad)
            return refuse(MpErrorKind::BadPciInterrupt, i);
    }
    return {};
}

size_t mp_table_size(const MpConfig& c) { return kMpFloatingPointerSize + config_length(c); }

Result<MpTableInfo, MpError> write_mp_table(uint8_t* buffer, size_t size, uint64_t gpa, const MpConfig& c)
{
    TRY(check_mp_config(c));
    size_t total = mp_table_size(c);
    if (buffer == nullptr || size < total)
        return refuse(MpErrorKind::BufferTooSmall, buffer == nullptr ? 0 : size, total);
    // The floating pointer is found on 16-byte boundaries (MP spec 4.1); both pointers are 32-bit.
    if (gpa % 16 != 0 || gpa >= (1ull << 32) || total > (1ull << 32) - gpa)
        return refuse(MpErrorKind::BadGuestAddress, gpa);

    memset(buffer, 0, total);
    MpTableInfo info{gpa, gpa + kMpFloatingPointerSize, config_length(c), entry_count(c)};

    uint8_t* table = buffer + kMpFloatingPointerSize;
    memcpy(table + kCtSignature, "PCMP", 4);
    store_u16(table, kCtBaseLength, static_cast<uint16_t>(info.config_length));
    store_u8(table, kCtSpecRev, kSpecRev14);
    memcpy(table + kCtOemId, "VLIBOS  ", 8);
    memcpy(table + kCtProductId, "LINUX VM    ", 12);
    store_u16(table, kCtEntryCount, static_cast<uint16_t>(info.entry_count));
    store_u32(table, kCtLocalApicAddress, c.local_apic_address);

    // Entries in the order MP spec 4.3 asks for: processors, buses, I/O APICs, I/O interrupts,
    // local interrupts.
    uint8_t* p = table + kMpConfigHeaderSize;
    for (size_t i = 0; i < c.processor_count; ++i) {
        const MpProcessor& cpu = c.processors[i];
        store_u8(p, 0, kMpEntryProcessor);
        store_u8(p, 1, cpu.apic_id);
        store_u8(p, 2, c.local_apic_version);
        store_u8(p, 3, static_cast<uint8_t>(kCpuEnabled | (cpu.bsp ? kCpuBootProcessor : 0)));
        store_u32(p, 4, c.cpu_signature);
        store_u32(p, 8, c.cpu_features);
        p += kMpProcessorEntrySize; // bytes 12-19 reserved
    }
    // Bus IDs as SeaBIOS numbers them: PCI buses first, ISA after them.
    uint8_t isa_bus = 0;
    if (c.pci_bus) {
        p = put_bus(p, 0, "PCI   ");
        isa_bus = 1;
    }
    p = put_bus(p, isa_bus, "ISA   ");

    store_u8(p, 0, kMpEntryIoApic);
    store_u8(p, 1, c.ioapic_id);
    store_u8(p, 2, c.ioapic_version);
    store_u8(p, 3, kIoApicEnabled);
    store_u32(p, 4, c.ioapic_address);
    p += kMpEntrySize;

    // ISA IRQ n -> I/O APIC pin n, except the timer (IRQ 0 -> pin 2, where the 8259 cascade would
    // be) and the cascade itself (IRQ 2, no entry).
    for (uint8_t irq = 0; irq < 16; ++irq) {
        if (irq == kCascadeIrq || (irq != kTimerIrq && pci_uses_pin(c, irq)))
            continue;
        uint8_t pin = irq == kTimerIrq ? kTimerPin : irq;
        p = put_interrupt(p, kMpEntryIoInterrupt, kMpInterruptInt, isa_bus, irq, c.ioapic_id, pin);
    }
    for (size_t i = 0; i < c.pci_interrupt_count; ++i) {
        const MpPciInterrupt& e = c.pci_interrupts[i];
        p = put_interrupt(p, kMpEntryIoInterrupt, kMpInterruptInt, 0, static_cast<uint8_t>((e.device << 2) | e.pin),
                          c.ioapic_id, e.ioapic_pin, kPciInterruptFlags);
    }
    // Virtual wire mode (MP spec 3.6.2.2): the 8259's output on every LINT0 as ExtINT, NMI on LINT1.
    p = put_interrupt(p, kMpEntryLocalInterrupt, kMpInterruptExtInt, isa_bus, 0, kAllLocalApics, 0);
    p = put_interrupt(p, kMpEntryLocalInterrupt, kMpInterruptNmi, isa_bus, 0, kAllLocalApics, 1);

    store_u8(table, kCtChecksum, checksum_byte(table, info.config_length));

    memcpy(buffer + kFpSignature, "_MP_", 4);
    store_u32(buffer, kFpPhysicalPointer, static_cast<uint32_t>(info.config_table));
    store_u8(buffer, kFpLength, 1);
    store_u8(buffer, kFpSpecRev, kSpecRev14);
    store_u8(buffer, kFpFeature1, 0);
    store_u8(buffer, kFpFeature2, 0);
    store_u8(buffer, kFpChecksum, checksum_byte(buffer, kMpFloatingPointerSize));
    return info;
}

Status<MpError> write_bda(uint8_t* page0, size_t size, uint64_t ebda)
{
    if (page0 == nullptr || size < kBdaEnd)
        return refuse(MpErrorKind::BufferTooSmall, page0 == nullptr ? 0 : size, kBdaEnd);
    // arch/x86/kernel/ebda.c: an EBDA at or below BIOS_START_MIN (128 KiB), or base memory outside
    // 128-640 KiB, is ignored and 640 KiB assumed.
    constexpr uint64_t kBiosStartMin = 0x20000;
    constexpr uint64_t kBiosStartMax = 0xa0000;
    if (ebda % 1024 != 0 || ebda <= kBiosStartMin || ebda >= kBiosStartMax)
        return refuse(MpErrorKind::BadGuestAddress, ebda);
    store_u16(page0, kBdaEbdaSegment, static_cast<uint16_t>(ebda >> 4));
    store_u16(page0, kBdaBaseMemoryKib, static_cast<uint16_t>(ebda / 1024));
    return {};
}

} // namespace vlibos::vmm::linux_boot

// MP spec 1.4 tables: checksums re-summed here, entries parsed back with the spec's offsets (as
// Linux's arch/x86/kernel/mpparse.c reads them), every refusal, and the BDA fields.
#include <catch2/catch.hpp>

#include <stdint.h>
#include <string.h>

#include <string>
#include <vector>

#include "fixtures/linux/synthetic_bzimage.hpp"
#include "vmm/linux/mp_table.hpp"

using namespace vlibos;
using namespace vlibos::vmm::linux_boot;
using namespace vlibos::test;

namespace {

MpConfig cpus(std::initializer_list<uint8_t> apic_ids, size_t bsp_index = 0)
{
    MpConfig c;
    for (uint8_t id : apic_ids) {
        c.processors[c.processor_count] = MpProcessor{id, c.processor_count == bsp_index};
        ++c.processor_count;
    }
    c.ioapic_id = 0x20;
    return c;
}

unsigned sum(const uint8_t* p, size_t n)
{
    unsigned s = 0;
    for (size_t i = 0; i < n; ++i)
        s += p[i];
    return s & 0xff;
}

struct Entry {
    uint8_t type;
    std::vector<uint8_t> bytes;
};

// Walks the configuration table the way smp_read_mpc() does: header, then entries by type size.
std::vector<Entry> entries_of(const uint8_t* table)
{
    std::vector<Entry> out;
    size_t length = get16(table, 4);
    size_t at = 44;
    while (at < length) {
        uint8_t type = table[at];
        size_t size = type == 0 ? 20 : 8;
        REQUIRE(type <= 4);
        REQUIRE(at + size <= length);
        out.push_back({type, std::vector<uint8_t>(table + at, table + at + size)});
        at += size;
    }
    CHECK(at == length);
    return out;
}

std::string message(const MpError& e)
{
    char text[256];
    format_mp_error(text, sizeof text, e);
    return text;
}

} // namespace

TEST_CASE("linux mp table: floating pointer and header", "[linux]")
{
    MpConfig c = cpus({0, 1, 2, 3});
    std::vector<uint8_t> buf(4096, 0xee);
    const uint64_t gpa = 0x9f010;
    auto r = write_mp_table(buf.data(), buf.size(), gpa, c);
    REQUIRE(r.ok());
    const MpTableInfo& info = r.value();
    CHECK(info.floating_pointer == gpa);
    CHECK(info.config_table == gpa + 16);
    CHECK(info.entry_count == 4 + 1 + 1 + 15 + 2);
    CHECK(info.config_length == 44 + 4 * 20 + (1 + 1 + 15 + 2) * 8);
    CHECK(mp_table_size(c) == 16 + info.config_length);

    // MP spec table 4-1, checked as smp_scan_config() does.
    const uint8_t* fp = buf.data();
    CHECK(memcmp(fp, "_MP_", 4) == 0);
    CHECK(get32(fp, 4) == gpa + 16);  // physical address pointer
    CHECK(fp[8] == 1);                // length in paragraphs
    CHECK(fp[9] == 4);                // spec revision 1.4
    CHECK(sum(fp, 16) == 0);          // checksum
    CHECK(fp[11] == 0);               // a configuration table is present
    CHECK(fp[12] == 0);               // virtual wire mode (no IMCR)
    CHECK(fp[13] == 0);
    CHECK(fp[14] == 0);
    CHECK(fp[15] == 0);

    // Table 4-2, checked as smp_check_mpc() does.
    const uint8_t* t = buf.data() + 16;
    CHECK(memcmp(t, "PCMP", 4) == 0);
    CHECK(get16(t, 4) == info.config_length);
    CHECK(t[6] == 4);
    CHECK(sum(t, info.config_length) == 0);
    CHECK(memcmp(t + 8, "VLIBOS  ", 8) == 0);
    CHECK(memcmp(t + 16, "LINUX VM    ", 12) == 0);
    CHECK(get32(t, 28) == 0);         // no OEM table
    CHECK(get16(t, 32) == 0);
    CHECK(get16(t, 34) == info.entry_count);
    CHECK(get32(t, 36) == 0xfee00000);
    CHECK(get16(t, 40) == 0);         // no extended table
    CHECK(t[42] == 0);
    // Nothing written past the table.
    CHECK(buf[16 + info.config_length] == 0xee);
}

TEST_CASE("linux mp table: entries parse back", "[linux]")
{
    MpConfig c = cpus({0, 2, 4, 6, 7}, 2);
    c.cpu_signature = 0x806ec;
    c.cpu_features = 0x178bfbff;
    std::vector<uint8_t> buf(mp_table_size(c));
    REQUIRE(write_mp_table(buf.data(), buf.size(), 0x9fc00, c).ok());
    std::vector<Entry> entries = entries_of(buf.data() + 16);
    REQUIRE(entries.size() == 5 + 1 + 1 + 15 + 2);

    // Ordered by type (MP spec 4.3).
    for (size_t i = 1; i < entries.size(); ++i)
        CHECK(entries[i - 1].type <= entries[i].type);

    // Processors (table 4-4): APIC ID, version, EN and BP flags, signature, features.
    const uint8_t ids[] = {0, 2, 4, 6, 7};
    for (size_t i = 0; i < 5; ++i) {
        const uint8_t* p = entries[i].bytes.data();
        CHECK(p[0] == 0);
        CHECK(p[1] == ids[i]);
        CHECK(p[2] == 0x14);
        CHECK(p[3] == (i == 2 ? 0x3 : 0x1));
        CHECK(get32(p, 4) == 0x806ec);
        CHECK(get32(p, 8) == 0x178bfbff);
        CHECK(get64(p, 12) == 0);
    }
    // One ISA bus (table 4-6), id 0.
    const uint8_t* bus = entries[5].bytes.data();
    CHECK(bus[0] == 1);
    CHECK(bus[1] == 0);
    CHECK(memcmp(bus + 2, "ISA   ", 6) == 0);
    // The I/O APIC (table 4-7).
    const uint8_t* io = entries[6].bytes.data();
    CHECK(io[0] == 2);
    CHECK(io[1] == 0x20);
    CHECK(io[2] == 0x11);
    CHECK(io[3] == 1);
    CHECK(get32(io, 4) == 0xfec00000);
    // ISA IRQs (table 4-8): 0 -> pin 2, no IRQ 2, n -> n.
    std::vector<std::pair<int, int>> irq_to_pin;
    for (size_t i = 7; i < 7 + 15; ++i) {
        const uint8_t* e = entries[i].bytes.data();
        CHECK(e[0] == 3);
        CHECK(e[1] == 0);             // INT
        CHECK(get16(e, 2) == 0);      // conforms to the bus
        CHECK(e[4] == 0);             // ISA bus
        CHECK(e[6] == 0x20);          // the I/O APIC
        irq_to_pin.push_back({e[5], e[7]});
    }
    std::vector<std::pair<int, int>> want = {{0, 2}, {1, 1}, {3, 3}, {4, 4}, {5, 5}, {6, 6}, {7, 7}, {8, 8},
                                             {9, 9}, {10, 10}, {11, 11}, {12, 12}, {13, 13}, {14, 14}, {15, 15}};
    CHECK(irq_to_pin == want);
    // Local interrupts (table 4-10): ExtINT on LINT0, NMI on LINT1, to every local APIC.
    const uint8_t* l0 = entries[22].bytes.data();
    const uint8_t* l1 = entries[23].bytes.data();
    CHECK(l0[0] == 4);
    CHECK(l0[1] == 3);
    CHECK(l0[6] == 0xff);
    CHECK(l0[7] == 0);
    CHECK(l1[0] == 4);
    CHECK(l1[1] == 1);
    CHECK(l1[6] == 0xff);
    CHECK(l1[7] == 1);
}

TEST_CASE("linux mp table: with a PCI bus", "[linux]")
{
    MpConfig c = cpus({0});
    c.pci_bus = true;
    c.ioapic_address = 0xfec01000;
    c.ioapic_version = 0x20;
    std::vector<uint8_t> buf(mp_table_size(c));
    auto r = write_mp_table(buf.data(), buf.size(), 0xf0000, c);
    REQUIRE(r.ok());
    CHECK(r.value().entry_count == 1 + 2 + 1 + 15 + 2);
    CHECK(sum(buf.data(), 16) == 0);
    CHECK(sum(buf.data() + 16, r.value().config_length) == 0);
    std::vector<Entry> entries = entries_of(buf.data() + 16);
    CHECK(memcmp(entries[1].bytes.data() + 2, "PCI   ", 6) == 0);
    CHECK(entries[1].bytes[1] == 0);
    CHECK(memcmp(entries[2].bytes.data() + 2, "ISA   ", 6) == 0);
    CHECK(entries[2].bytes[1] == 1);
    CHECK(entries[3].bytes[2] == 0x20);
    CHECK(get32(entries[3].bytes.data(), 4) == 0xfec01000);
    for (size_t i = 4; i < entries.size(); ++i)
        CHECK(entries[i].bytes[4] == 1); // every interrupt entry names the ISA bus
}

TEST_CASE("linux mp table: PCI interrupts", "[linux]")
{
    MpConfig c = cpus({0, 1});
    c.pci_bus = true;
    c.pci_interrupts[0] = MpPciInterrupt{3, 0, 11};   // 00:03.0 INTA# -> pin 11
    c.pci_interrupts[1] = MpPciInterrupt{4, 0, 10};   // 00:04.0 INTA# -> pin 10
    c.pci_interrupts[2] = MpPciInterrupt{4, 1, 20};   // INTB# -> pin 20 (no ISA IRQ there)
    c.pci_interrupt_count = 3;
    std::vector<uint8_t> buf(mp_table_size(c));
    auto r = write_mp_table(buf.data(), buf.size(), 0xf0000, c);
    REQUIRE(r.ok());
    // ISA IRQs 10 and 11 lose their entries: one pin, one trigger mode.
    CHECK(r.value().entry_count == 2 + 2 + 1 + 13 + 3 + 2);
    CHECK(sum(buf.data() + 16, r.value().config_length) == 0);
    std::vector<Entry> entries = entries_of(buf.data() + 16);
    REQUIRE(entries.size() == r.value().entry_count);
    std::vector<std::vector<uint8_t>> pci, isa;
    for (const Entry& e : entries) {
        if (e.type != kMpEntryIoInterrupt)
            continue;
        (e.bytes[4] == 0 ? pci : isa).push_back(e.bytes);
    }
    REQUIRE(pci.size() == 3);
    // Source bus IRQ = device << 2 | pin; level, active low (flags 0x0f); destination the I/O APIC.
    CHECK(pci[0][5] == (3 << 2));
    CHECK(pci[0][7] == 11);
    CHECK(get16(pci[0].data(), 2) == 0x0f);
    CHECK(pci[1][5] == (4 << 2));
    CHECK(pci[1][7] == 10);
    CHECK(pci[2][5] == ((4 << 2) | 1));
    CHECK(pci[2][7] == 20);
    CHECK(pci[2][6] == c.ioapic_id);
    for (const auto& e : isa) {
        CHECK(e[5] != 10);
        CHECK(e[5] != 11);
        CHECK(get16(e.data(), 2) == 0);
    }
    CHECK(isa.size() == 13);
}

TEST_CASE("linux mp table: bad PCI interrupts are refused", "[linux]")
{
    std::vector<uint8_t> buf(4096);
    auto refused = [&](const MpConfig& c) {
        auto r = write_mp_table(buf.data(), buf.size(), 0x9f010, c);
        return !r.ok() && r.error().kind == MpErrorKind::BadPciInterrupt;
    };
    MpConfig good = cpus({0});
    good.pci_bus = true;
    good.pci_interrupts[0] = MpPciInterrupt{3, 0, 11};
    good.pci_interrupt_count = 1;
    CHECK(check_mp_config(good).ok());
    MpConfig c = good;
    c.pci_bus = false;
    CHECK(refused(c));
    for (MpPciInterrupt bad : {MpPciInterrupt{32, 0, 11}, MpPciInterrupt{3, 4, 11}, MpPciInterrupt{3, 0, 0},
                               MpPciInterrupt{3, 0, 2}, MpPciInterrupt{3, 0, 24}}) {
        c = good;
        c.pci_interrupts[0] = bad;
        CHECK(refused(c));
    }
    c = good;
    c.pci_interrupts[1] = MpPciInterrupt{3, 0, 10};  // the same device pin twice
    c.pci_interrupt_count = 2;
    CHECK(refused(c));
    c = good;
    c.pci_interrupt_count = kMaxMpPciInterrupts + 1;
    auto r = write_mp_table(buf.data(), buf.size(), 0x9f010, c);
    REQUIRE_FALSE(r.ok());
    CHECK(message(r.error()).find("PCI interrupt entry 8 is invalid") == 0);
}

TEST_CASE("linux mp table: the largest table", "[linux]")
{
    MpConfig c;
    for (size_t i = 0; i < kMaxMpProcessors; ++i)
        c.processors[i] = MpProcessor{static_cast<uint8_t>(i), i == 5};
    c.processor_count = kMaxMpProcessors;
    c.ioapic_id = 200;
    c.pci_bus = true;
    for (size_t i = 0; i < kMaxMpPciInterrupts; ++i)
        c.pci_interrupts[i] = MpPciInterrupt{static_cast<uint8_t>(i + 1), 0, static_cast<uint8_t>(16 + i)};
    c.pci_interrupt_count = kMaxMpPciInterrupts;
    std::vector<uint8_t> buf(4096 - 16);
    auto r = write_mp_table(buf.data(), buf.size(), 0x9f010, c);
    REQUIRE(r.ok());
    CHECK(sum(buf.data() + 16, r.value().config_length) == 0);
    CHECK(entries_of(buf.data() + 16).size() == kMaxMpProcessors + 2 + 1 + 15 + kMaxMpPciInterrupts + 2);
}

TEST_CASE("linux mp table: refusals", "[linux]")
{
    std::vector<uint8_t> buf(4096);
    auto error_for = [&](const MpConfig& c) {
        std::vector<uint8_t> before = buf;
        auto r = write_mp_table(buf.data(), buf.size(), 0x9f010, c);
        REQUIRE_FALSE(r.ok());
        CHECK(buf == before); // nothing written
        CHECK(check_mp_config(c).ok() == (r.error().kind == MpErrorKind::BadGuestAddress ||
                                          r.error().kind == MpErrorKind::BufferTooSmall));
        return r.error();
    };
    MpConfig c = cpus({});
    CHECK(error_for(c).kind == MpErrorKind::NoProcessors);
    c.processor_count = kMaxMpProcessors + 1;
    c.processors[0].bsp = true;
    MpError e = error_for(c);
    CHECK(e.kind == MpErrorKind::TooManyProcessors);
    CHECK(message(e) == "the MP table has room for at most 64 processors, not 65");
    CHECK(error_for(cpus({0, 0xff})).kind == MpErrorKind::BroadcastApicId);
    e = error_for(cpus({0, 3, 3}));
    CHECK(e.kind == MpErrorKind::DuplicateApicId);
    CHECK(message(e) == "two processors have APIC ID 3");
    CHECK(error_for(cpus({0, 1}, 9)).kind == MpErrorKind::NoBsp);
    c = cpus({0, 1, 2});
    c.processors[2].bsp = true;
    e = error_for(c);
    CHECK(e.kind == MpErrorKind::SeveralBsps);
    CHECK(e.value == 2);
    c = cpus({0, 1});
    c.ioapic_id = 1;
    e = error_for(c);
    CHECK(e.kind == MpErrorKind::IoApicIdClash);
    CHECK(message(e) == "the I/O APIC ID 1 is also a processor's local APIC ID");
    c.ioapic_id = 0xff;
    CHECK(error_for(c).kind == MpErrorKind::IoApicIdClash);
    for (uint32_t address : {0u, 0xfec00800u, 0xa0000u, 0xfee00000u}) {
        c = cpus({0});
        c.ioapic_address = address; // the last one is the local APIC's
        INFO("I/O APIC at " << std::hex << address);
        CHECK(error_for(c).kind == MpErrorKind::BadApicAddress);
    }
    c = cpus({0});
    c.local_apic_address = 0;
    CHECK(error_for(c).kind == MpErrorKind::BadApicAddress);

    c = cpus({0, 1});
    auto small = write_mp_table(buf.data(), mp_table_size(c) - 1, 0x9f010, c);
    CHECK(small.error().kind == MpErrorKind::BufferTooSmall);
    CHECK(message(small.error()) == "the MP table needs 252 bytes, the buffer has 251");
    CHECK(write_mp_table(nullptr, 4096, 0x9f010, c).error().kind == MpErrorKind::BufferTooSmall);
    CHECK(write_mp_table(buf.data(), buf.size(), 0x9f018, c).error().kind == MpErrorKind::BadGuestAddress);
    CHECK(write_mp_table(buf.data(), buf.size(), 0xfffffff0, c).error().kind == MpErrorKind::BadGuestAddress);
    CHECK(write_mp_table(buf.data(), buf.size(), 0x100000000, c).error().kind == MpErrorKind::BadGuestAddress);
    CHECK(write_mp_table(buf.data(), buf.size(), 0x100000000 - 256, c).ok()); // ends 4 bytes below 4 GiB
}

TEST_CASE("linux mp table: every error has a sentence", "[linux]")
{
    for (int e = static_cast<int>(MpErrorKind::NoProcessors); e <= static_cast<int>(MpErrorKind::BadPciInterrupt); ++e) {
        CHECK(strlen(describe(static_cast<MpErrorKind>(e))) > 20);
        CHECK(message(MpError{static_cast<MpErrorKind>(e), 1, 2}).size() > 20);
    }
    CHECK(std::string(describe(static_cast<MpErrorKind>(200))) == "unknown MP table error");
}

TEST_CASE("linux mp table: the BIOS data area", "[linux]")
{
    std::vector<uint8_t> page(4096, 0);
    REQUIRE(write_bda(page.data(), page.size(), 0x9f000).ok());
    CHECK(get16(page.data(), 0x40e) == 0x9f00); // EBDA segment
    CHECK(get16(page.data(), 0x413) == 636);    // KiB of base memory
    for (size_t i = 0; i < page.size(); ++i)
        if (i != 0x40e && i != 0x40f && i != 0x413 && i != 0x414)
            CHECK(page[i] == 0);
    REQUIRE(write_bda(page.data(), 0x500, 0x3f000).ok());
    CHECK(get16(page.data(), 0x40e) == 0x3f00);
    CHECK(get16(page.data(), 0x413) == 252);

    std::vector<uint8_t> before = page;
    CHECK(write_bda(page.data(), 0x4ff, 0x9f000).error().kind == MpErrorKind::BufferTooSmall);
    CHECK(write_bda(nullptr, 4096, 0x9f000).error().kind == MpErrorKind::BufferTooSmall);
    for (uint64_t ebda : {uint64_t{0}, uint64_t{0x20000}, uint64_t{0x9f200}, uint64_t{0xa0000}, uint64_t{0x100000}})
        CHECK(write_bda(page.data(), page.size(), ebda).error().kind == MpErrorKind::BadGuestAddress);
    CHECK(page == before);
    CHECK(write_bda(page.data(), page.size(), 0x20400).ok());
}

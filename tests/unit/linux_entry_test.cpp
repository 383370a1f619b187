// Entry plans, boot GDTs, the 64-bit entry's identity map (walked here like the MMU would), and
// the whole low memory as write_low_memory() leaves it, read back the way Linux reads it.
#include <catch2/catch.hpp>

#include <stdint.h>
#include <string.h>

#include <optional>
#include <string>
#include <vector>

#include "fixtures/linux/synthetic_bzimage.hpp"
#include "vmm/linux/entry.hpp"
#include "vmm/linux/low_memory.hpp"

using namespace vlibos;
using namespace vlibos::vmm::linux_boot;
using namespace vlibos::test;
using mm::PhysRange;

namespace {

struct Booted {
    Bytes image;
    BzImage kernel;
    BootLayout layout;
};

Booted boot(const SyntheticKernel& k, std::vector<PhysRange> ram, uint64_t low = 640 * KiB, uint64_t cmdline = 0,
            uint64_t initrd = 4 * MiB)
{
    Booted b;
    b.image = k.bytes();
    auto parsed = parse_bzimage(b.image.data(), b.image.size());
    REQUIRE(parsed.ok());
    b.kernel = parsed.value();
    LayoutRequest r;
    r.ram = ram.data();
    r.ram_count = ram.size();
    r.low_memory_size = low;
    r.cmdline_length = cmdline;
    r.initrd_size = initrd;
    r.mp.processors[0] = {0, true};
    r.mp.processors[1] = {1, false};
    r.mp.processor_count = 2;
    r.mp.ioapic_id = 2;
    auto planned = plan_layout(b.kernel, r);
    REQUIRE(planned.ok());
    b.layout = planned.value();
    return b;
}

// A 4-level walk with 2 MiB pages only (what the identity map uses); memory is [base, base+size).
std::optional<uint64_t> translate(const Bytes& memory, uint64_t memory_gpa, uint64_t cr3, uint64_t va)
{
    constexpr uint64_t kAddress = 0x000ffffffffff000;
    auto entry = [&](uint64_t table, uint64_t index) -> std::optional<uint64_t> {
        uint64_t at = table + index * 8;
        if (at < memory_gpa || at + 8 > memory_gpa + memory.size())
            return std::nullopt; // a table outside the buffer: the test fails below
        return get64(memory.data(), at - memory_gpa);
    };
    auto pml4e = entry(cr3, (va >> 39) & 511);
    if (!pml4e || (*pml4e & 1) == 0)
        return std::nullopt;
    CHECK((*pml4e & 0x80) == 0);
    auto pdpte = entry(*pml4e & kAddress, (va >> 30) & 511);
    if (!pdpte || (*pdpte & 1) == 0)
        return std::nullopt;
    CHECK((*pdpte & 0x80) == 0); // no 1 GiB pages: not every CPU has them
    auto pde = entry(*pdpte & kAddress, (va >> 21) & 511);
    if (!pde || (*pde & 1) == 0)
        return std::nullopt;
    CHECK((*pde & 0x80) != 0);   // a 2 MiB page
    CHECK((*pde & 2) != 0);      // writable
    CHECK((*pde & (1ull << 63)) == 0);
    return (*pde & 0x000fffffffe00000) | (va & 0x1fffff);
}

struct Descriptor {
    uint64_t base, limit;
    unsigned type, s, dpl, p, l, db, g;
};

Descriptor decode(uint64_t d)
{
    Descriptor out{};
    out.limit = (d & 0xffff) | ((d >> 32) & 0xf0000);
    out.base = ((d >> 16) & 0xffffff) | (((d >> 56) & 0xff) << 24);
    out.type = (d >> 40) & 0xf;
    out.s = (d >> 44) & 1;
    out.dpl = (d >> 45) & 3;
    out.p = (d >> 47) & 1;
    out.l = (d >> 53) & 1;
    out.db = (d >> 54) & 1;
    out.g = (d >> 55) & 1;
    return out;
}

std::string message(const LayoutError& e)
{
    char text[256];
    format_layout_error(text, sizeof text, e);
    return text;
}

} // namespace

TEST_CASE("linux entry: the 32-bit plan", "[linux]")
{
    SyntheticKernel k;
    k.code32_start = 0x100040;
    Booted b = boot(k, {PhysRange{0x400000, 0xc400000}});
    auto plan = plan_entry(b.layout, EntryMode::Protected32);
    REQUIRE(plan.ok());
    const EntryPlan& p = plan.value();
    CHECK(p.mode == EntryMode::Protected32);
    CHECK(p.rip == 0x1000040);
    CHECK(p.rsi == 0x4000);
    CHECK(p.rsp == 0x4000);
    CHECK(p.rflags == 0x2);        // IF clear
    CHECK(p.cr0 == 0x11);          // PE, ET; paging off
    CHECK(p.cr3 == 0);
    CHECK(p.cr4 == 0);
    CHECK(p.efer == 0);
    CHECK(p.gdtr_base == 0x1000);
    CHECK(p.gdtr_limit == 31);
    CHECK(p.cs.selector == 0x10);
    CHECK(p.cs.base == 0);
    CHECK(p.cs.limit == 0xffffffff);
    CHECK(p.cs.access_rights == 0xc09b);
    CHECK(p.ds.selector == 0x18);
    CHECK(p.ds.base == 0);
    CHECK(p.ds.limit == 0xffffffff);
    CHECK(p.ds.access_rights == 0xc093);
}

TEST_CASE("linux entry: the 64-bit plan", "[linux]")
{
    SyntheticKernel k;
    Booted b = boot(k, {PhysRange{0x400000, 0xc400000}});
    auto plan = plan_entry(b.layout, EntryMode::Long64);
    REQUIRE(plan.ok());
    const EntryPlan& p = plan.value();
    CHECK(p.mode == EntryMode::Long64);
    CHECK(p.rip == 0x1000200);
    CHECK(p.rsi == 0x4000);
    CHECK(p.cr0 == 0x80000011);    // PG, PE, ET
    CHECK(p.cr3 == 0x6000);
    CHECK(p.cr4 == 0x20);          // PAE
    CHECK(p.efer == 0x500);        // LME, LMA
    CHECK(p.gdtr_base == 0x1020);
    CHECK(p.gdtr_limit == 31);
    CHECK(p.cs.selector == 0x10);
    CHECK(p.cs.access_rights == 0xa09b);
    CHECK(p.ds.selector == 0x18);
    CHECK(p.ds.access_rights == 0xc093);
}

TEST_CASE("linux entry: unavailable plans", "[linux]")
{
    SyntheticKernel k;
    Booted high = boot(k, {PhysRange{0x100000000, 0x140000000}}, 640 * KiB, 0, 0);
    auto p32 = plan_entry(high.layout, EntryMode::Protected32);
    REQUIRE_FALSE(p32.ok());
    CHECK(p32.error().kind == LayoutErrorKind::EntryUnavailable);
    CHECK(message(p32.error()) == "the kernel cannot be entered through the 32-bit boot protocol: it lies above 4 GiB");
    CHECK(plan_entry(high.layout, EntryMode::Long64).ok());

    k.xloadflags = 0;
    Booted only32 = boot(k, {PhysRange{0x1000000, 0x9000000}});
    auto p64 = plan_entry(only32.layout, EntryMode::Long64);
    REQUIRE_FALSE(p64.ok());
    CHECK(p64.error().value == 64);
    CHECK(message(p64.error()) ==
          "the kernel cannot be entered through the 64-bit boot protocol: it has no 64-bit entry (XLF_KERNEL_64) or "
          "lies beyond the identity map");
    CHECK(plan_entry(only32.layout, EntryMode::Protected32).ok());
}

TEST_CASE("linux entry: the GDTs", "[linux]")
{
    for (EntryMode mode : {EntryMode::Protected32, EntryMode::Long64}) {
        uint8_t gdt[32];
        memset(gdt, 0xaa, sizeof gdt);
        write_gdt(gdt, mode);
        CHECK(get64(gdt, 0) == 0);
        CHECK(get64(gdt, 8) == 0);
        Descriptor cs = decode(get64(gdt, 0x10));
        Descriptor ds = decode(get64(gdt, 0x18));
        // 4 GiB flat: base 0, limit 0xfffff pages.
        CHECK(cs.base == 0);
        CHECK(cs.limit == 0xfffff);
        CHECK(cs.g == 1);
        CHECK(ds.base == 0);
        CHECK(ds.limit == 0xfffff);
        CHECK(ds.g == 1);
        // Present, ring 0, code/data, accessed.
        CHECK(cs.p == 1);
        CHECK(cs.s == 1);
        CHECK(cs.dpl == 0);
        CHECK(cs.type == 0xb); // execute/read, accessed
        CHECK(ds.p == 1);
        CHECK(ds.s == 1);
        CHECK(ds.dpl == 0);
        CHECK(ds.type == 0x3); // read/write, accessed
        CHECK(ds.db == 1);
        if (mode == EntryMode::Long64) {
            CHECK(cs.l == 1);
            CHECK(cs.db == 0);
        } else {
            CHECK(cs.l == 0);
            CHECK(cs.db == 1);
        }
        // The access rights the plan gives the backend agree with the descriptor.
        auto ar = [](uint64_t d) { return static_cast<uint16_t>(((d >> 40) & 0xff) | (((d >> 52) & 0xf) << 12)); };
        CHECK(ar(get64(gdt, 0x10)) == (mode == EntryMode::Long64 ? kAccessCode64 : kAccessCode32));
        CHECK(ar(get64(gdt, 0x18)) == kAccessData);
    }
}

TEST_CASE("linux entry: identity map page counts", "[linux]")
{
    CHECK(identity_map_pages(0x1000000, 0x3000000) == 6);          // inside the first 4 GiB
    CHECK(identity_map_pages(0x100000000, 0x102000000) == 7);      // + GiB 4
    CHECK(identity_map_pages(0xff000000, 0x101000000) == 7);       // crosses 4 GiB
    CHECK(identity_map_pages(0x8000000000, 0x8002000000) == 8);    // GiB 512: + a PDPT and a PD
    // The worst case: a window of almost 4 GiB starting mid-GiB across the 512 GiB boundary.
    CHECK(identity_map_pages(0x7f60000000, 0x7f60000000 + 0xfffff000) == 1 + 2 + 4 + 5); // 509.5 GiB
    // Beyond the first 512 GiB slot and across the next boundary: three PDPTs.
    CHECK(identity_map_pages(0xffe0000000, 0xffe0000000 + 0xfffff000) == low_memory::kMaxPageTablePages);
    CHECK(identity_map_pages(0x3000000, 0x3000000) == 0);          // empty
    CHECK(identity_map_pages(1ull << 47, (1ull << 47) + 0x1000) == 0);
    CHECK(identity_map_pages(0, 1ull << 40) == 0);                 // far more than the tables hold
}

TEST_CASE("linux entry: the identity map translates what Linux touches", "[linux]")
{
    SECTION("kernel below 4 GiB")
    {
        Bytes tables(6 * 4096, 0xcc);
        REQUIRE(write_identity_map(tables.data(), tables.size(), 0x6000, 0x1000000, 0x3000000).ok());
        for (uint64_t va : {uint64_t{0}, uint64_t{0x4000}, uint64_t{0x5000}, uint64_t{0x9f000}, uint64_t{0x1000200},
                            uint64_t{0x2ffffff}, uint64_t{0xfee00000}, uint64_t{0xffffffff}}) {
            INFO("va 0x" << std::hex << va);
            auto pa = translate(tables, 0x6000, 0x6000, va);
            REQUIRE(pa.has_value());
            CHECK(*pa == va);
        }
        CHECK_FALSE(translate(tables, 0x6000, 0x6000, 0x100000000).has_value());
        CHECK_FALSE(translate(tables, 0x6000, 0x6000, 0x8000000000).has_value());
    }
    SECTION("kernel across the 512 GiB boundary")
    {
        uint64_t base = 0x7fc0000000 + 0x20000000; // 511.5 GiB
        uint64_t end = base + 0xfffff000;
        size_t pages = identity_map_pages(base, end);
        Bytes tables(pages * 4096);
        REQUIRE(write_identity_map(tables.data(), tables.size(), 0x6000, base, end).ok());
        for (uint64_t va : {uint64_t{0x4000}, uint64_t{0xffffffff}, base, base + 0x200, uint64_t{0x8000000000}, end - 1}) {
            INFO("va 0x" << std::hex << va);
            auto pa = translate(tables, 0x6000, 0x6000, va);
            REQUIRE(pa.has_value());
            CHECK(*pa == va);
        }
        CHECK_FALSE(translate(tables, 0x6000, 0x6000, 0x100000000).has_value());
        CHECK_FALSE(translate(tables, 0x6000, 0x6000, 0x8000000000 + 10 * GiB).has_value());
        CHECK_FALSE(translate(tables, 0x6000, 0x6000, base - 1 * GiB).has_value());
    }
    SECTION("refusals")
    {
        Bytes tables(6 * 4096);
        CHECK(write_identity_map(tables.data(), tables.size() - 1, 0x6000, 0x1000000, 0x3000000).error().kind ==
              LayoutErrorKind::BufferMismatch);
        CHECK(write_identity_map(nullptr, tables.size(), 0x6000, 0x1000000, 0x3000000).error().kind ==
              LayoutErrorKind::BufferMismatch);
        CHECK(write_identity_map(tables.data(), tables.size(), 0x6800, 0x1000000, 0x3000000).error().kind ==
              LayoutErrorKind::BufferMismatch);
        CHECK(write_identity_map(tables.data(), tables.size(), 0x6000, 0x3000000, 0x1000000).error().kind ==
              LayoutErrorKind::BufferMismatch);
    }
}

TEST_CASE("linux low memory: everything Linux reads, where it reads it", "[linux]")
{
    SyntheticKernel k;
    const std::string cmdline = "console=ttyS0 earlyprintk=serial acpi=off root=/dev/ram0";
    Booted b = boot(k, {PhysRange{0x400000, 0xc400000}}, 640 * KiB, cmdline.size());
    Bytes low(640 * KiB, 0x5a);
    REQUIRE(write_low_memory(low.data(), low.size(), b.image.data(), b.image.size(), b.kernel, b.layout,
                             cmdline.c_str())
                .ok());
    const uint8_t* m = low.data();

    // The IVT is zero; the BDA points at the EBDA in the last page.
    CHECK(get64(m, 0) == 0);
    CHECK(get16(m, 0x40e) == (640 * KiB - 4096) >> 4);
    CHECK(get16(m, 0x413) == 636);
    uint64_t ebda = uint64_t{get16(m, 0x40e)} << 4;
    CHECK(m[ebda] == 4); // EBDA size in KiB

    // The zero page and the command line it points at.
    const uint8_t* zp = m + 0x4000;
    CHECK(get16(zp, 0x1fe) == 0xaa55);
    CHECK(get8(zp, 0x210) == 0xff);
    uint32_t cmd = get32(zp, 0x228);
    CHECK(cmd == 0x5000);
    CHECK(std::string(reinterpret_cast<const char*>(m + cmd)) == cmdline);
    CHECK(zp[0x1e8] == 5);

    // Both GDTs.
    CHECK(get64(m, 0x1010) == kGdtCode32);
    CHECK(get64(m, 0x1018) == kGdtData);
    CHECK(get64(m, 0x1030) == kGdtCode64);
    CHECK(get64(m, 0x1038) == kGdtData);

    // The 64-bit entry's page tables map the zero page, the command line and the kernel window.
    auto plan = plan_entry(b.layout, EntryMode::Long64);
    REQUIRE(plan.ok());
    for (uint64_t va : {plan.value().rsi, uint64_t{cmd}, plan.value().rip, b.layout.kernel_end - 1, ebda - 8192}) {
        auto pa = translate(low, 0, plan.value().cr3, va);
        REQUIRE(pa.has_value());
        CHECK(*pa == va);
    }

    // Linux's MP scan (mpparse.c default_find_smp_config): the first KiB, the KiB below 640 KiB,
    // (0xF0000-0xFFFFF, not in low memory), then the first KiB of the EBDA from the BDA.
    auto scan = [&](uint64_t base, uint64_t length) -> std::optional<uint64_t> {
        for (uint64_t at = base; at + 16 <= base + length && at + 16 <= low.size(); at += 16) {
            const uint8_t* fp = m + at;
            unsigned s = 0;
            for (int i = 0; i < 16; ++i)
                s += fp[i];
            if (memcmp(fp, "_MP_", 4) == 0 && fp[8] == 1 && (s & 0xff) == 0 && (fp[9] == 1 || fp[9] == 4))
                return at;
        }
        return std::nullopt;
    };
    CHECK_FALSE(scan(0, 0x400).has_value());
    CHECK_FALSE(scan(639 * 0x400, 0x400).has_value());
    auto found = scan(ebda, 0x400);
    REQUIRE(found.has_value());
    CHECK(*found == b.layout.mp_floating_pointer);
    uint32_t physptr = get32(m + *found, 4);
    const uint8_t* table = m + physptr;
    CHECK(memcmp(table, "PCMP", 4) == 0);
    unsigned s = 0;
    for (size_t i = 0; i < get16(table, 4); ++i)
        s += table[i];
    CHECK((s & 0xff) == 0);
    CHECK(table[44] == 0);         // the first entry: a processor
    CHECK(table[44 + 1] == 0);     // APIC ID 0
    CHECK(table[44 + 3] == 3);     // enabled, BSP
    CHECK(physptr + get16(table, 4) <= 640 * KiB); // the whole table inside the EBDA page

    // Nothing written between the boot data and the EBDA: Linux's trampolines go there.
    for (uint64_t i = low_memory::kBootDataEnd; i < ebda; ++i)
        REQUIRE(m[i] == 0);
}

TEST_CASE("linux low memory: the smallest low memory and a 32-bit-only kernel", "[linux]")
{
    SyntheticKernel k;
    k.xloadflags = 0;
    Booted b = boot(k, {PhysRange{0x1000000, 0x9000000}}, 256 * KiB);
    Bytes low(256 * KiB, 0x77);
    REQUIRE(write_low_memory(low.data(), low.size(), b.image.data(), b.image.size(), b.kernel, b.layout, nullptr).ok());
    CHECK(get16(low.data(), 0x40e) == 0x3f00);
    CHECK(get16(low.data(), 0x413) == 252);
    CHECK(low[0x5000] == 0); // an empty command line
    for (uint64_t i = 0x6000; i < 0x13000; ++i)
        REQUIRE(low[i] == 0); // no page tables
}

TEST_CASE("linux low memory: mismatched buffers are refused", "[linux]")
{
    SyntheticKernel k;
    Booted b = boot(k, {PhysRange{0x1000000, 0x9000000}}, 640 * KiB, 4);
    Bytes low(640 * KiB);
    auto kind = [&](uint8_t* memory, size_t size, const Bytes& image, const BootLayout& layout, const char* cmdline) {
        auto s = write_low_memory(memory, size, image.data(), image.size(), b.kernel, layout, cmdline);
        REQUIRE_FALSE(s.ok());
        return s.error().kind;
    };
    CHECK(kind(low.data(), low.size() - 4096, b.image, b.layout, "abcd") == LayoutErrorKind::BufferMismatch);
    CHECK(kind(nullptr, low.size(), b.image, b.layout, "abcd") == LayoutErrorKind::BufferMismatch);
    CHECK(kind(low.data(), low.size(), b.image, b.layout, nullptr) == LayoutErrorKind::BufferMismatch);
    Bytes shorter(b.image.begin(), b.image.end() - 1);
    CHECK(kind(low.data(), low.size(), shorter, b.layout, "abcd") == LayoutErrorKind::BufferMismatch);
    BootLayout bad = b.layout;
    bad.ebda = 0x9e000;
    CHECK(kind(low.data(), low.size(), b.image, bad, "abcd") == LayoutErrorKind::BufferMismatch);
    bad = b.layout;
    bad.page_table_pages = 5; // not what the window needs
    CHECK(kind(low.data(), low.size(), b.image, bad, "abcd") == LayoutErrorKind::BufferMismatch);
    bad = b.layout;
    bad.mp.processor_count = 0;
    CHECK(kind(low.data(), low.size(), b.image, bad, "abcd") == LayoutErrorKind::MpTable);
}

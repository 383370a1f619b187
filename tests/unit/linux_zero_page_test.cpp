// Zero page and e820: every byte the writer sets, checked at the offsets of
// arch/x86/include/uapi/asm/bootparam.h (spelled out as numbers here), every other byte checked
// to be the image's setup header or zero, and the e820 table sorted, merged and disjoint.
#include <catch2/catch.hpp>

#include <stdint.h>
#include <string.h>

#include <vector>

#include "fixtures/linux/synthetic_bzimage.hpp"
#include "vmm/linux/zero_page.hpp"

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

Booted boot(const SyntheticKernel& k, std::vector<PhysRange> ram, uint64_t initrd, uint64_t cmdline = 100,
            std::vector<PhysRange> reserved = {})
{
    Booted b;
    b.image = k.bytes();
    auto parsed = parse_bzimage(b.image.data(), b.image.size());
    REQUIRE(parsed.ok());
    b.kernel = parsed.value();
    LayoutRequest r;
    r.ram = ram.data();
    r.ram_count = ram.size();
    r.reserved = reserved.data();
    r.reserved_count = reserved.size();
    r.initrd_size = initrd;
    r.cmdline_length = cmdline;
    r.mp.processors[0] = {0, true};
    r.mp.processor_count = 1;
    r.mp.ioapic_id = 1;
    auto planned = plan_layout(b.kernel, r);
    REQUIRE(planned.ok());
    b.layout = planned.value();
    return b;
}

Bytes zero_page_of(const Booted& b)
{
    Bytes page(4096, 0xcc);
    REQUIRE(write_zero_page(page.data(), page.size(), b.image.data(), b.image.size(), b.kernel, b.layout).ok());
    return page;
}

struct E820 {
    uint64_t base, size;
    uint32_t type;
    bool operator==(const E820&) const = default;
};

std::vector<E820> e820_of(const Bytes& page)
{
    std::vector<E820> out;
    size_t count = page[0x1e8];
    for (size_t i = 0; i < count; ++i) {
        const uint8_t* e = page.data() + 0x2d0 + i * 20;
        out.push_back({get64(e, 0), get64(e, 8), get32(e, 16)});
    }
    return out;
}

} // namespace

TEST_CASE("linux zero page: every field at its bootparam.h offset", "[linux]")
{
    SyntheticKernel k;
    Booted b = boot(k, {PhysRange{0x400000, 0xc400000}}, 5 * MiB);
    const BootLayout& l = b.layout;
    Bytes page = zero_page_of(b);
    const uint8_t* p = page.data();

    // Written by the loader (boot.rst "Details of Header Fields"; bootparam.h struct boot_params).
    CHECK(get16(p, 0x1fa) == 0xffff);                       // vid_mode: normal
    CHECK(get8(p, 0x210) == 0xff);                          // type_of_loader: undefined
    CHECK(get8(p, 0x211) == 0x01);                          // loadflags: LOADED_HIGH only
    CHECK(get16(p, 0x224) == 0);                            // heap_end_ptr
    CHECK(get8(p, 0x226) == 0);                             // ext_loader_ver
    CHECK(get8(p, 0x227) == 0);                             // ext_loader_type
    CHECK(get32(p, 0x214) == 0x1000000);                    // code32_start, relocated
    CHECK(get32(p, 0x218) == l.initrd);                     // ramdisk_image
    CHECK(get32(p, 0x21c) == 5 * MiB);                      // ramdisk_size
    CHECK(get32(p, 0x228) == 0x5000);                       // cmd_line_ptr
    CHECK(get32(p, 0x0c0) == 0);                            // ext_ramdisk_image
    CHECK(get32(p, 0x0c4) == 0);                            // ext_ramdisk_size
    CHECK(get32(p, 0x0c8) == 0);                            // ext_cmd_line_ptr
    CHECK(get32(p, 0x23c) == 0);                            // hardware_subarch: X86_SUBARCH_PC
    CHECK(get64(p, 0x240) == 0);                            // hardware_subarch_data
    CHECK(get64(p, 0x250) == 0);                            // setup_data
    CHECK(get64(p, 0x070) == 0);                            // acpi_rsdp_addr
    CHECK(get8(p, 0x1ef) == 0);                             // sentinel
    CHECK(get32(p, 0x1e4) == 0);                            // scratch

    // Read by the kernel, copied unchanged from the image.
    CHECK(get8(p, 0x1f1) == 4);                             // setup_sects
    CHECK(get32(p, 0x1f4) == 0x1000);                       // syssize
    CHECK(get16(p, 0x1fe) == 0xaa55);                       // boot_flag
    CHECK(get32(p, 0x202) == 0x53726448);                   // "HdrS"
    CHECK(get16(p, 0x206) == 0x020f);                       // version
    CHECK(get32(p, 0x22c) == 0x7fffffff);                   // initrd_addr_max
    CHECK(get32(p, 0x230) == 0x200000);                     // kernel_alignment
    CHECK(get8(p, 0x234) == 1);                             // relocatable_kernel
    CHECK(get16(p, 0x236) == 3);                            // xloadflags
    CHECK(get32(p, 0x238) == 2047);                         // cmdline_size
    CHECK(get64(p, 0x258) == 0x1000000);                    // pref_address
    CHECK(get32(p, 0x260) == 0x2000000);                    // init_size
    CHECK(get32(p, 0x268) == 0x800);                        // kernel_info_offset

    // Nothing else: the setup header range is the image's except the written fields, and the
    // rest of the page is zero except the e820 table.
    struct Field {
        size_t at, size;
    };
    const Field written[] = {{0x1fa, 2}, {0x210, 1}, {0x211, 1}, {0x214, 4}, {0x218, 4}, {0x21c, 4},
                             {0x224, 2}, {0x226, 1}, {0x227, 1}, {0x228, 4}, {0x23c, 4}, {0x240, 8}, {0x250, 8}};
    auto is_written = [&](size_t i) {
        for (const Field& f : written)
            if (i >= f.at && i < f.at + f.size)
                return true;
        return false;
    };
    size_t e820_bytes = page[0x1e8] * 20;
    for (size_t i = 0; i < 4096; ++i) {
        INFO("offset 0x" << std::hex << i);
        if (i >= 0x1f1 && i < 0x26c) {
            if (!is_written(i))
                CHECK(page[i] == b.image[i]);
        } else if (i == 0x1e8 || (i >= 0x2d0 && i < 0x2d0 + e820_bytes)) {
            continue;
        } else {
            CHECK(page[i] == 0);
        }
    }
}

TEST_CASE("linux zero page: loadflags drop everything but LOADED_HIGH", "[linux]")
{
    SyntheticKernel k;
    k.loadflags = 0xff; // QUIET, KEEP_SEGMENTS, CAN_USE_HEAP, KASLR and reserved bits as linked
    Booted b = boot(k, {PhysRange{0x1000000, 0x5000000}}, 0);
    Bytes page = zero_page_of(b);
    CHECK(page[0x211] == 0x01);
    CHECK(get32(page.data(), 0x218) == 0); // no initrd
    CHECK(get32(page.data(), 0x21c) == 0);
}

TEST_CASE("linux zero page: an initrd and kernel above 4 GiB", "[linux]")
{
    SyntheticKernel k;
    k.initrd_addr_max = 0xffffffff;
    Booted b = boot(k, {PhysRange{0x100000000, 0x140000000}, PhysRange{0x1000000, 0x9000000}}, 16 * MiB);
    CHECK(b.layout.kernel_load == 0x1000000);
    // The initrd must stay below initrd_addr_max: the low range.
    CHECK(b.layout.initrd == 0x9000000 - 16 * MiB);
    // Move it above 4 GiB by hand to check the ext_ halves.
    b.layout.initrd = 0x123456000;
    b.layout.initrd_size = 0x100000010;
    Bytes page = zero_page_of(b);
    CHECK(get32(page.data(), 0x218) == 0x23456000);
    CHECK(get32(page.data(), 0x0c0) == 0x1);
    CHECK(get32(page.data(), 0x21c) == 0x10);
    CHECK(get32(page.data(), 0x0c4) == 0x1);

    // A kernel above 4 GiB: code32_start is left as linked (the 32-bit entry is unavailable).
    Booted high = boot(k, {PhysRange{0x100000000, 0x140000000}}, 0);
    CHECK_FALSE(high.layout.entry32_available);
    Bytes high_page = zero_page_of(high);
    CHECK(get32(high_page.data(), 0x214) == 0x100000);
}

TEST_CASE("linux zero page: the e820 map", "[linux]")
{
    SyntheticKernel k;
    SECTION("one range")
    {
        Booted b = boot(k, {PhysRange{0x400000, 0xc400000}}, 0);
        std::vector<E820> want = {
            {0, 0x9f000, 1},               // low memory below the EBDA
            {0x9f000, 0x61000, 2},         // EBDA, VGA and ROM hole up to 1 MiB
            {0x400000, 0xc000000, 1},      // the partition
            {0xfec00000, 0x1000, 2},       // I/O APIC
            {0xfee00000, 0x1000, 2},       // local APIC
        };
        CHECK(e820_of(zero_page_of(b)) == want);
    }
    SECTION("unsorted, adjacent and far ranges")
    {
        Booted b = boot(k,
                        {PhysRange{0x200000000, 0x210000000}, PhysRange{0x2000000, 0x4000000},
                         PhysRange{0x1000000, 0x2000000}, PhysRange{0x100000, 0x800000}},
                        0);
        std::vector<E820> want = {
            {0, 0x9f000, 1},
            {0x9f000, 0x61000, 2},
            {0x100000, 0x700000, 1},       // starts right at 1 MiB: not merged with the reserved hole
            {0x1000000, 0x3000000, 1},     // two adjacent ranges, merged
            {0xfec00000, 0x1000, 2},
            {0xfee00000, 0x1000, 2},
            {0x200000000, 0x10000000, 1},
        };
        CHECK(e820_of(zero_page_of(b)) == want);
    }
}

TEST_CASE("linux zero page: reserved (shared) ranges in the e820 map", "[linux]")
{
    SyntheticKernel k;
    SECTION("the default 2-CPU configuration: the rpc region right after the partition")
    {
        Booted b = boot(k, {PhysRange{0x400000, 0xc400000}}, 0, 100, {PhysRange{0xc400000, 0xc800000}});
        std::vector<E820> want = {
            {0, 0x9f000, 1},
            {0x9f000, 0x61000, 2},
            {0x400000, 0xc000000, 1},      // RAM, then touching it but of another type: its own entry
            {0xc400000, 0x400000, 2},      // the shared region, reserved
            {0xfec00000, 0x1000, 2},
            {0xfee00000, 0x1000, 2},
        };
        CHECK(e820_of(zero_page_of(b)) == want);
    }
    SECTION("unsorted, between RAM ranges, above 4 GiB, and merged with the I/O APIC page it touches")
    {
        Booted b = boot(k, {PhysRange{0x1000000, 0x8000000}, PhysRange{0x10000000, 0x20000000}}, 0, 100,
                        {PhysRange{0x300000000, 0x300200000}, PhysRange{0xfebfe000, 0xfec00000},
                         PhysRange{0x8000000, 0x8400000}, PhysRange{0xf000000, 0x10000000}});
        std::vector<E820> want = {
            {0, 0x9f000, 1},
            {0x9f000, 0x61000, 2},
            {0x1000000, 0x7000000, 1},
            {0x8000000, 0x400000, 2},      // right after the first RAM range
            {0xf000000, 0x1000000, 2},     // right before the second
            {0x10000000, 0x10000000, 1},
            {0xfebfe000, 0x3000, 2},       // two reserved pages and the I/O APIC page: one entry
            {0xfee00000, 0x1000, 2},
            {0x300000000, 0x200000, 2},
        };
        CHECK(e820_of(zero_page_of(b)) == want);
    }
    SECTION("the most RAM and reserved ranges still fit the table")
    {
        std::vector<PhysRange> ram, reserved;
        for (uint64_t i = 0; i < kMaxRamRanges; ++i)
            ram.push_back(PhysRange{0x1000000 + i * 0x8000000, 0x1000000 + i * 0x8000000 + 0x4000000});
        for (uint64_t i = 0; i < kMaxReservedRanges; ++i)
            reserved.push_back(PhysRange{0x100000000 + i * 0x800000, 0x100000000 + i * 0x800000 + 0x400000});
        Booted b = boot(k, ram, 0, 100, reserved);
        std::vector<E820> e = e820_of(zero_page_of(b));
        CHECK(e.size() == 2 + kMaxRamRanges + kMaxReservedRanges + 2);
        size_t reserved_entries = 0;
        for (size_t i = 0; i < e.size(); ++i) {
            if (i > 0)
                CHECK(e[i - 1].base + e[i - 1].size <= e[i].base);
            if (e[i].base >= 0x100000000)
                reserved_entries += e[i].type == 2 ? 1 : 0;
        }
        CHECK(reserved_entries == kMaxReservedRanges);
    }
}

TEST_CASE("linux zero page: e820_add sorts, merges and refuses overlaps", "[linux]")
{
    E820Table t;
    REQUIRE(e820_add(t, 0x3000, 0x1000, E820Type::Ram).ok());
    REQUIRE(e820_add(t, 0x1000, 0x1000, E820Type::Ram).ok());
    REQUIRE(t.count == 2);
    CHECK(t.entries[0].base == 0x1000);
    // Filling the gap joins all three.
    REQUIRE(e820_add(t, 0x2000, 0x1000, E820Type::Ram).ok());
    REQUIRE(t.count == 1);
    CHECK(t.entries[0].base == 0x1000);
    CHECK(t.entries[0].size == 0x3000);
    // Touching but of another type: a separate entry.
    REQUIRE(e820_add(t, 0x4000, 0x1000, E820Type::Reserved).ok());
    REQUIRE(t.count == 2);
    // Joins the one after it only.
    REQUIRE(e820_add(t, 0x0, 0x1000, E820Type::Ram).ok());
    REQUIRE(t.count == 2);
    CHECK(t.entries[0].base == 0);
    CHECK(t.entries[0].size == 0x4000);
    // Joins the reserved one before it.
    REQUIRE(e820_add(t, 0x5000, 0x1000, E820Type::Reserved).ok());
    REQUIRE(t.count == 2);
    CHECK(t.entries[1].size == 0x2000);
    // Empty: nothing.
    REQUIRE(e820_add(t, 0x9000, 0, E820Type::Ram).ok());
    CHECK(t.count == 2);
    // Overlaps, on either side, inside, or wrapping.
    CHECK(e820_add(t, 0x3fff, 2, E820Type::Ram).error().kind == LayoutErrorKind::E820Overlap);
    CHECK(e820_add(t, 0x5fff, 2, E820Type::Reserved).error().kind == LayoutErrorKind::E820Overlap);
    CHECK(e820_add(t, 0x1000, 0x10, E820Type::Ram).error().kind == LayoutErrorKind::E820Overlap);
    CHECK(e820_add(t, UINT64_MAX - 10, 100, E820Type::Ram).error().kind == LayoutErrorKind::E820Overlap);
    CHECK(t.count == 2);
    // Full.
    E820Table full;
    for (uint64_t i = 0; i < kMaxE820Entries; ++i)
        REQUIRE(e820_add(full, i * 0x2000, 0x1000, E820Type::Ram).ok());
    CHECK(e820_add(full, 0x100000000, 0x1000, E820Type::Ram).error().kind == LayoutErrorKind::E820Full);
    // Still joinable when full.
    CHECK(e820_add(full, 0x1000, 0x1000, E820Type::Ram).ok());
    CHECK(full.count == kMaxE820Entries - 1);
    for (size_t i = 1; i < full.count; ++i)
        CHECK(full.entries[i - 1].base + full.entries[i - 1].size < full.entries[i].base);
}

TEST_CASE("linux zero page: a mismatched image or buffer is refused", "[linux]")
{
    SyntheticKernel k;
    Booted b = boot(k, {PhysRange{0x1000000, 0x5000000}}, 0);
    Bytes page(4096);
    CHECK(write_zero_page(nullptr, 4096, b.image.data(), b.image.size(), b.kernel, b.layout).error().kind ==
          LayoutErrorKind::BufferMismatch);
    CHECK(write_zero_page(page.data(), 4095, b.image.data(), b.image.size(), b.kernel, b.layout).error().kind ==
          LayoutErrorKind::BufferMismatch);
    CHECK(write_zero_page(page.data(), 4096, nullptr, b.image.size(), b.kernel, b.layout).error().kind ==
          LayoutErrorKind::BufferMismatch);
    CHECK(write_zero_page(page.data(), 4096, b.image.data(), b.image.size() - 1, b.kernel, b.layout).error().kind ==
          LayoutErrorKind::BufferMismatch);
    Bytes other = b.image;
    memset(other.data() + 0x202, 0, 4);
    CHECK(write_zero_page(page.data(), 4096, other.data(), other.size(), b.kernel, b.layout).error().kind ==
          LayoutErrorKind::BufferMismatch);
}

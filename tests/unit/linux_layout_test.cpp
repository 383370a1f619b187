// Boot layout: where the kernel, the initrd and the boot data go for the Linux guest, every
// refusal with its numbers, and a property test over random partitions.
#include <catch2/catch.hpp>

#include <stdint.h>
#include <string.h>

#include <set>
#include <string>
#include <vector>

#include "fixtures/linux/synthetic_bzimage.hpp"
#include "test_random.hpp"
#include "vmm/linux/boot_layout.hpp"

using namespace vlibos;
using namespace vlibos::vmm::linux_boot;
using namespace vlibos::test;
using mm::PhysRange;

namespace {

BzImage kernel_of(const SyntheticKernel& k)
{
    Bytes bytes = k.bytes();
    auto parsed = parse_bzimage(bytes.data(), bytes.size());
    REQUIRE(parsed.ok());
    return parsed.value();
}

MpConfig two_cpus()
{
    MpConfig mp;
    mp.processors[0] = {2, true};
    mp.processors[1] = {3, false};
    mp.processor_count = 2;
    mp.ioapic_id = 4;
    return mp;
}

struct Request {
    std::vector<PhysRange> ram;
    std::vector<PhysRange> reserved;
    uint64_t low = 640 * KiB;
    uint64_t initrd = 0;
    uint64_t cmdline = 40;
    MpConfig mp = two_cpus();

    LayoutRequest get() const
    {
        LayoutRequest r;
        r.ram = ram.data();
        r.ram_count = ram.size();
        r.reserved = reserved.empty() ? nullptr : reserved.data();
        r.reserved_count = reserved.size();
        r.low_memory_size = low;
        r.initrd_size = initrd;
        r.cmdline_length = cmdline;
        r.mp = mp;
        return r;
    }
};

PhysRange range(uint64_t base, uint64_t size) { return PhysRange{base, base + size}; }

std::string message(const LayoutError& e)
{
    char text[512];
    size_t n = format_layout_error(text, sizeof text, e);
    CHECK(n < sizeof text);
    return text;
}

BootLayout plan_ok(const SyntheticKernel& k, const Request& request)
{
    auto result = plan_layout(kernel_of(k), request.get());
    if (!result)
        FAIL("refused: " << message(result.error()));
    return result.value();
}

LayoutError error_of(const SyntheticKernel& k, const Request& request)
{
    auto result = plan_layout(kernel_of(k), request.get());
    REQUIRE_FALSE(result.ok());
    return result.error();
}

} // namespace

TEST_CASE("linux layout: one RAM range that contains pref_address", "[linux]")
{
    // The default 2-CPU configuration's Linux partition: 0x400000-0xc400000 (192 MiB).
    SyntheticKernel k;
    Request r;
    r.ram = {range(0x400000, 192 * MiB)};
    r.initrd = 5 * MiB + 123;
    BootLayout l = plan_ok(k, r);
    CHECK(l.kernel_load == 0x1000000); // pref_address lies inside: exactly there
    CHECK(l.kernel_end == 0x3000000);  // + init_size (32 MiB)
    CHECK(l.entry32 == 0x1000000);
    CHECK(l.entry64 == 0x1000200);
    CHECK(l.entry32_available);
    CHECK(l.entry64_available);
    // As high as possible: the RAM's end minus the page-rounded size.
    CHECK(l.initrd == 0xc400000 - 5 * MiB - 4096);
    CHECK(l.initrd_size == 5 * MiB + 123);
    CHECK(l.initrd % 4096 == 0);
    // Low memory, fixed offsets.
    CHECK(l.low_memory_size == 640 * KiB);
    CHECK(l.zero_page == 0x4000);
    CHECK(l.cmdline == 0x5000);
    CHECK(l.cmdline_length == 40);
    CHECK(l.page_tables == 0x6000);
    CHECK(l.page_table_pages == 6); // PML4, one PDPT, four PDs for [0, 4 GiB)
    CHECK(l.ebda == 636 * KiB);
    CHECK(l.mp_floating_pointer == 636 * KiB + 16);
    REQUIRE(l.ram_count == 1);
    CHECK(l.ram[0] == range(0x400000, 192 * MiB));
    CHECK(l.mp.processor_count == 2);
}

TEST_CASE("linux layout: kernel placement", "[linux]")
{
    SyntheticKernel k;
    Request r;
    SECTION("RAM starts above pref_address: its first aligned address")
    {
        r.ram = {range(0x5100000, 64 * MiB)};
        BootLayout l = plan_ok(k, r);
        CHECK(l.kernel_load == 0x5200000);
        CHECK(l.kernel_end == 0x7200000);
    }
    SECTION("a range entirely below pref_address is skipped (the kernel would move itself to pref_address)")
    {
        r.ram = {range(0x400000, 8 * MiB), range(0x10000000, 64 * MiB)};
        BootLayout l = plan_ok(k, r);
        CHECK(l.kernel_load == 0x10000000);
    }
    SECTION("a range that is too small is skipped; the lowest fitting address wins")
    {
        r.ram = {range(0x20000000, 64 * MiB), range(0x1000000, 16 * MiB), range(0x8000000, 32 * MiB)};
        BootLayout l = plan_ok(k, r);
        CHECK(l.kernel_load == 0x8000000);
        CHECK(l.kernel_end == 0xa000000); // exactly fills the 32 MiB range
        // Ranges come back sorted.
        REQUIRE(l.ram_count == 3);
        CHECK(l.ram[0].base == 0x1000000);
        CHECK(l.ram[1].base == 0x8000000);
        CHECK(l.ram[2].base == 0x20000000);
    }
    SECTION("adjacent ranges are one block")
    {
        r.ram = {range(0x1000000, 16 * MiB), range(0x2000000, 16 * MiB)};
        CHECK(plan_ok(k, r).kernel_load == 0x1000000);
    }
    SECTION("a 16 MiB kernel_alignment")
    {
        k.kernel_alignment = 0x1000000;
        k.min_alignment = 21;
        r.ram = {range(0x1100000, 256 * MiB)};
        CHECK(plan_ok(k, r).kernel_load == 0x2000000);
    }
    SECTION("init_size is rounded up to a page")
    {
        k.init_size = 0x1000001;
        r.ram = {range(0x1000000, 256 * MiB)};
        CHECK(plan_ok(k, r).kernel_end == 0x1000000 + 0x1001000);
    }
    SECTION("pref_address 0 still keeps the kernel above 1 MiB")
    {
        k.pref_address = 0;
        r.ram = {range(0x200000, 64 * MiB)};
        CHECK(plan_ok(k, r).kernel_load == 0x200000);
    }
    SECTION("a relocated code32_start keeps its offset")
    {
        k.code32_start = 0x100400;
        r.ram = {range(0x40000000, 64 * MiB)};
        BootLayout l = plan_ok(k, r);
        CHECK(l.kernel_load == 0x40000000);
        CHECK(l.entry32 == 0x40000400);
    }
}

TEST_CASE("linux layout: the kernel does not fit", "[linux]")
{
    SyntheticKernel k;
    Request r;
    r.ram = {range(0x400000, 8 * MiB), range(0x1100000, 30 * MiB)};
    LayoutError e = error_of(k, r);
    CHECK(e.kind == LayoutErrorKind::KernelDoesNotFit);
    CHECK(e.value == 32 * MiB);
    CHECK(e.limit == 0x1000000);
    CHECK(e.largest == 29 * MiB); // 0x1200000-0x2f00000
    CHECK(message(e) ==
          "the kernel needs 32 MiB (init_size) at a multiple of 0x200000 (kernel_alignment) at or above 0x1000000 "
          "(pref_address), and the partition's RAM has no such block (largest: 29 MiB)");
}

TEST_CASE("linux layout: above 4 GiB", "[linux]")
{
    SyntheticKernel k;
    Request r;
    r.ram = {range(0x100000000, 1 * GiB)};
    SECTION("a kernel that may be loaded there gets the 64-bit entry only")
    {
        BootLayout l = plan_ok(k, r);
        CHECK(l.kernel_load == 0x100000000);
        CHECK_FALSE(l.entry32_available);
        CHECK(l.entry64_available);
        CHECK(l.page_table_pages == 7); // one more page directory for GiB 4
        // An initrd cannot follow it there: initrd_addr_max is below 4 GiB.
        r.initrd = 16 * MiB;
        k.initrd_addr_max = 0xffffffff;
        CHECK(error_of(k, r).kind == LayoutErrorKind::InitrdDoesNotFit);
    }
    SECTION("one that may not is refused")
    {
        k.xloadflags = 1; // XLF_KERNEL_64 only
        LayoutError e = error_of(k, r);
        CHECK(e.kind == LayoutErrorKind::KernelAbove4G);
        CHECK(message(e) ==
              "the only place for the kernel is 0x100000000, above 4 GiB, and this kernel cannot be loaded there (it "
              "needs XLF_KERNEL_64 and XLF_CAN_BE_LOADED_ABOVE_4G)");
        k.xloadflags = 0;
        CHECK(error_of(k, r).kind == LayoutErrorKind::KernelAbove4G);
    }
    SECTION("a window that crosses 4 GiB is no 32-bit entry either")
    {
        // Only possible with the APICs moved out of the way.
        r.mp.ioapic_address = 0xd0000000;
        r.mp.local_apic_address = 0xd0001000;
        r.ram = {range(0xff000000, 1 * GiB)};
        BootLayout l = plan_ok(k, r);
        CHECK(l.kernel_load == 0xff000000);
        CHECK(l.kernel_end == 0x101000000);
        CHECK_FALSE(l.entry32_available);
        CHECK(l.entry64_available);
    }
    SECTION("below 128 TiB only")
    {
        r.ram = {range(1ull << 47, 1 * GiB)};
        CHECK(error_of(k, r).kind == LayoutErrorKind::KernelBeyondIdentityMap);
    }
    SECTION("a 32-bit-only kernel below 4 GiB has no page tables")
    {
        k.xloadflags = 0;
        r.ram = {range(0x1000000, 64 * MiB)};
        BootLayout l = plan_ok(k, r);
        CHECK(l.entry32_available);
        CHECK_FALSE(l.entry64_available);
        CHECK(l.page_table_pages == 0);
    }
}

TEST_CASE("linux layout: initrd placement", "[linux]")
{
    SyntheticKernel k;
    Request r;
    SECTION("no initrd")
    {
        r.ram = {range(0x1000000, 64 * MiB)};
        BootLayout l = plan_ok(k, r);
        CHECK(l.initrd == 0);
        CHECK(l.initrd_size == 0);
    }
    SECTION("below initrd_addr_max: the last byte may be exactly initrd_addr_max")
    {
        r.ram = {range(0x1000000, 3 * GiB)};
        r.initrd = 40 * MiB;
        BootLayout l = plan_ok(k, r);
        CHECK(l.initrd == 0x80000000 - 40 * MiB);
        CHECK(l.initrd + l.initrd_size - 1 == 0x7fffffff);
    }
    SECTION("an unaligned initrd_addr_max")
    {
        k.initrd_addr_max = 0x37ffffff - 0x800;
        r.ram = {range(0x1000000, 3 * GiB)};
        r.initrd = 1 * MiB;
        BootLayout l = plan_ok(k, r);
        CHECK(l.initrd + 1 * MiB <= uint64_t{k.initrd_addr_max} + 1);
        CHECK(l.initrd == 0x37fff000 - 1 * MiB);
    }
    SECTION("in a lower range when the higher one is above initrd_addr_max")
    {
        r.ram = {range(0x1000000, 64 * MiB), range(0x100000000, 1 * GiB)};
        r.initrd = 8 * MiB;
        BootLayout l = plan_ok(k, r);
        CHECK(l.initrd == 0x5000000 - 8 * MiB);
    }
    SECTION("highest across ranges")
    {
        r.ram = {range(0x40000000, 64 * MiB), range(0x1000000, 64 * MiB)};
        r.initrd = 8 * MiB;
        BootLayout l = plan_ok(k, r);
        CHECK(l.kernel_load == 0x1000000);
        CHECK(l.initrd == 0x44000000 - 8 * MiB);
    }
    SECTION("never in the kernel's window: below it when that is the only room")
    {
        r.ram = {range(0x1000000, 34 * MiB)};
        k.pref_address = 0x1200000;
        r.initrd = 2 * MiB;
        BootLayout l = plan_ok(k, r);
        CHECK(l.kernel_load == 0x1200000);
        CHECK(l.kernel_end == 0x3200000);
        CHECK(l.initrd == 0x1000000);
    }
    SECTION("right after the window when that is the highest room")
    {
        r.ram = {range(0x1000000, 36 * MiB)};
        r.initrd = 4 * MiB;
        BootLayout l = plan_ok(k, r);
        CHECK(l.initrd == 0x3000000);
    }
    SECTION("too big")
    {
        r.ram = {range(0x400000, 192 * MiB)};
        r.initrd = 200 * MiB;
        LayoutError e = error_of(k, r);
        CHECK(e.kind == LayoutErrorKind::InitrdDoesNotFit);
        CHECK(e.value == 200 * MiB);
        CHECK(e.limit == 0x7fffffff);
        CHECK(e.largest == 0xc400000 - 0x3000000); // above the kernel's window: 148 MiB
        CHECK(message(e) ==
              "initrd of 200 MiB does not fit below initrd_addr_max 0x7fffffff in the partition's RAM (largest free "
              "block there: 148 MiB)");
    }
    SECTION("the example of the design: 40 MiB with only 30 MiB free")
    {
        r.ram = {range(0x1000000, 62 * MiB)};
        r.initrd = 40 * MiB;
        LayoutError e = error_of(k, r);
        CHECK(message(e) ==
              "initrd of 40 MiB does not fit below initrd_addr_max 0x7fffffff in the partition's RAM (largest free "
              "block there: 30 MiB)");
    }
    SECTION("all RAM above initrd_addr_max")
    {
        r.ram = {range(0x80000000, 1 * GiB)};
        r.initrd = 4096;
        LayoutError e = error_of(k, r);
        CHECK(e.kind == LayoutErrorKind::InitrdDoesNotFit);
        CHECK(e.largest == 0);
        CHECK(message(e) ==
              "initrd of 4 KiB does not fit below initrd_addr_max 0x7fffffff in the partition's RAM (largest free "
              "block there: 0 bytes)");
    }
    SECTION("an absurd size")
    {
        r.ram = {range(0x1000000, 64 * MiB)};
        r.initrd = UINT64_MAX;
        CHECK(error_of(k, r).kind == LayoutErrorKind::InitrdDoesNotFit);
    }
}

TEST_CASE("linux layout: command line", "[linux]")
{
    SyntheticKernel k;
    Request r;
    r.ram = {range(0x1000000, 64 * MiB)};
    r.cmdline = 2047;
    CHECK(plan_ok(k, r).cmdline_length == 2047);
    r.cmdline = 2048;
    LayoutError e = error_of(k, r);
    CHECK(e.kind == LayoutErrorKind::CommandLineTooLong);
    CHECK(message(e) == "the Linux command line is 2048 characters; this kernel and vlibos accept at most 2047");
    // A kernel that allows more is still held to the 4 KiB page the command line gets.
    k.cmdline_size = 65535;
    r.cmdline = 4095;
    CHECK(plan_ok(k, r).cmdline_length == 4095);
    r.cmdline = 4096;
    e = error_of(k, r);
    CHECK(e.limit == 4095);
    r.cmdline = 0;
    CHECK(plan_ok(k, r).cmdline_length == 0);
}

TEST_CASE("linux layout: low memory size", "[linux]")
{
    SyntheticKernel k;
    Request r;
    r.ram = {range(0x1000000, 64 * MiB)};
    for (uint64_t low : {uint64_t{0}, 252 * KiB, 644 * KiB, 1 * MiB, 300 * KiB + 1}) {
        r.low = low;
        INFO("low memory " << low);
        LayoutError e = error_of(k, r);
        CHECK(e.kind == LayoutErrorKind::BadLowMemorySize);
    }
    r.low = 252 * KiB;
    CHECK(message(error_of(k, r)) ==
          "the guest's low memory is 258048 bytes; it must be a multiple of 4 KiB between 256 KiB and 640 KiB");
    r.low = 256 * KiB;
    BootLayout l = plan_ok(k, r);
    CHECK(l.ebda == 252 * KiB);
    CHECK(l.mp_floating_pointer == 252 * KiB + 16);
}

TEST_CASE("linux layout: RAM ranges are checked", "[linux]")
{
    SyntheticKernel k;
    Request r;
    SECTION("none")
    {
        CHECK(error_of(k, r).kind == LayoutErrorKind::NoRam);
        LayoutRequest raw = r.get();
        raw.ram_count = 3; // count without a pointer
        raw.ram = nullptr;
        CHECK(plan_layout(kernel_of(k), raw).error().kind == LayoutErrorKind::NoRam);
    }
    SECTION("too many")
    {
        for (uint64_t i = 0; i < kMaxRamRanges + 1; ++i)
            r.ram.push_back(range(0x1000000 + i * 4 * MiB, 2 * MiB));
        LayoutError e = error_of(k, r);
        CHECK(e.kind == LayoutErrorKind::TooManyRamRanges);
        CHECK(message(e) == "the Linux VM's RAM comes in 17 ranges, at most 16 are supported");
    }
    SECTION("empty, unaligned, beyond 52 bits")
    {
        r.ram = {range(0x1000000, 0)};
        CHECK(error_of(k, r).kind == LayoutErrorKind::BadRamRange);
        r.ram = {range(0x1000800, 64 * MiB)};
        CHECK(error_of(k, r).kind == LayoutErrorKind::BadRamRange);
        r.ram = {range(0x1000000, 64 * MiB + 1)};
        CHECK(error_of(k, r).kind == LayoutErrorKind::BadRamRange);
        r.ram = {PhysRange{0x2000000, 0x1000000}};
        CHECK(error_of(k, r).kind == LayoutErrorKind::BadRamRange);
        r.ram = {range((1ull << 52) - 2 * MiB, 4 * MiB)};
        LayoutError e = error_of(k, r);
        CHECK(e.kind == LayoutErrorKind::BadRamRange);
        CHECK(message(e) ==
              "RAM range 0xfffffffe00000-0x10000000200000 of the Linux VM is empty, not 4 KiB aligned, or beyond the "
              "52-bit physical address limit");
    }
    SECTION("in the first MiB")
    {
        r.ram = {range(0xff000, 64 * MiB)};
        LayoutError e = error_of(k, r);
        CHECK(e.kind == LayoutErrorKind::RamInFirstMegabyte);
        CHECK(message(e) ==
              "RAM range 0xff000-0x40ff000 of the Linux VM starts in the first MiB, which is the guest's low memory and "
              "legacy hole");
    }
    SECTION("overlapping")
    {
        r.ram = {range(0x4000000, 64 * MiB), range(0x1000000, 64 * MiB)};
        LayoutError e = error_of(k, r);
        CHECK(e.kind == LayoutErrorKind::RamRangesOverlap);
        CHECK(message(e) == "RAM range 0x4000000-0x8000000 of the Linux VM overlaps another one");
    }
    SECTION("covering an APIC")
    {
        r.ram = {range(0xfe000000, 32 * MiB)};
        LayoutError e = error_of(k, r);
        CHECK(e.kind == LayoutErrorKind::RamOverlapsApic);
        CHECK(message(e) ==
              "RAM range 0xfe000000-0x100000000 of the Linux VM covers the APIC registers at 0xfec00000");
        r.mp.ioapic_address = 0xfe000000 - 0x1000; // moved away: the local APIC is still covered
        e = error_of(k, r);
        CHECK(e.largest == 0xfee00000);
    }
}

TEST_CASE("linux layout: reserved (shared) ranges", "[linux]")
{
    SyntheticKernel k;
    Request r;
    r.ram = {range(0x400000, 192 * MiB)};
    SECTION("none: the default")
    {
        BootLayout l = plan_ok(k, r);
        CHECK(l.reserved_count == 0);
    }
    SECTION("copied sorted; adjacent to RAM and to each other is fine; placement ignores them")
    {
        // The default 2-CPU configuration's rpc region right after the Linux partition, one far
        // above 4 GiB, one right below the I/O APIC page.
        r.reserved = {range(0x200000000, 2 * MiB), range(0xc400000, 4 * MiB), range(0xfebff000, 4 * KiB),
                      range(0xc800000, 4 * KiB)};
        r.initrd = 5 * MiB;
        BootLayout l = plan_ok(k, r);
        REQUIRE(l.reserved_count == 4);
        CHECK(l.reserved[0] == range(0xc400000, 4 * MiB));
        CHECK(l.reserved[1] == range(0xc800000, 4 * KiB));
        CHECK(l.reserved[2] == range(0xfebff000, 4 * KiB));
        CHECK(l.reserved[3] == range(0x200000000, 2 * MiB));
        // The same kernel and initrd addresses as without them: only RAM is used.
        CHECK(l.kernel_load == 0x1000000);
        CHECK(l.initrd == 0xc400000 - 5 * MiB);
        REQUIRE(l.ram_count == 1);
    }
    SECTION("a kernel with no room in RAM is not put into a reserved range")
    {
        r.ram = {range(0x1000000, 16 * MiB)};
        r.reserved = {range(0x2000000, 64 * MiB)};
        CHECK(error_of(k, r).kind == LayoutErrorKind::KernelDoesNotFit);
    }
    SECTION("the most there may be")
    {
        for (uint64_t i = 0; i < kMaxReservedRanges; ++i)
            r.reserved.push_back(range(0x10000000 + i * 4 * MiB, 4 * MiB));
        CHECK(plan_ok(k, r).reserved_count == kMaxReservedRanges);
    }
    SECTION("too many")
    {
        for (uint64_t i = 0; i < kMaxReservedRanges + 1; ++i)
            r.reserved.push_back(range(0x10000000 + i * 4 * MiB, 4 * MiB));
        LayoutError e = error_of(k, r);
        CHECK(e.kind == LayoutErrorKind::TooManyReservedRanges);
        CHECK(message(e) == "the Linux VM has 9 reserved (shared) ranges, at most 8 are supported");
    }
    SECTION("a count without a pointer")
    {
        LayoutRequest raw = r.get();
        raw.reserved = nullptr;
        raw.reserved_count = 1;
        CHECK(plan_layout(kernel_of(k), raw).error().kind == LayoutErrorKind::BadReservedRange);
    }
    SECTION("empty, unaligned, beyond 52 bits")
    {
        r.reserved = {range(0x10000000, 0)};
        CHECK(error_of(k, r).kind == LayoutErrorKind::BadReservedRange);
        r.reserved = {range(0x10000800, 4 * MiB)};
        CHECK(error_of(k, r).kind == LayoutErrorKind::BadReservedRange);
        r.reserved = {range(0x10000000, 4 * MiB + 1)};
        CHECK(error_of(k, r).kind == LayoutErrorKind::BadReservedRange);
        r.reserved = {PhysRange{0x20000000, 0x10000000}};
        CHECK(error_of(k, r).kind == LayoutErrorKind::BadReservedRange);
        r.reserved = {range((1ull << 52) - 2 * MiB, 4 * MiB)};
        LayoutError e = error_of(k, r);
        CHECK(e.kind == LayoutErrorKind::BadReservedRange);
        CHECK(message(e) ==
              "reserved (shared) range 0xfffffffe00000-0x10000000200000 of the Linux VM is empty, not 4 KiB aligned, "
              "or beyond the 52-bit physical address limit");
    }
    SECTION("in the first MiB")
    {
        r.reserved = {range(0xff000, 8 * KiB)};
        LayoutError e = error_of(k, r);
        CHECK(e.kind == LayoutErrorKind::ReservedInFirstMegabyte);
        CHECK(message(e) ==
              "reserved (shared) range 0xff000-0x101000 of the Linux VM starts in the first MiB, which is the guest's "
              "low memory and legacy hole");
    }
    SECTION("overlapping each other")
    {
        r.reserved = {range(0x10200000, 4 * MiB), range(0x10000000, 4 * MiB)};
        LayoutError e = error_of(k, r);
        CHECK(e.kind == LayoutErrorKind::ReservedRangesOverlap);
        CHECK(message(e) == "reserved (shared) range 0x10200000-0x10600000 of the Linux VM overlaps another one");
    }
    SECTION("overlapping RAM, by one page at either end or inside")
    {
        r.reserved = {range(0xc3ff000, 4 * MiB)};
        LayoutError e = error_of(k, r);
        CHECK(e.kind == LayoutErrorKind::ReservedOverlapsRam);
        CHECK(message(e) ==
              "reserved (shared) range 0xc3ff000-0xc7ff000 of the Linux VM overlaps its RAM range 0x400000-0xc400000");
        r.reserved = {range(0x200000, 0x201000)};
        CHECK(error_of(k, r).kind == LayoutErrorKind::ReservedOverlapsRam);
        r.reserved = {range(0x2000000, 4 * KiB)};
        CHECK(error_of(k, r).kind == LayoutErrorKind::ReservedOverlapsRam);
        // Against every RAM range, not only the first.
        r.ram = {range(0x400000, 16 * MiB), range(0x20000000, 64 * MiB)};
        r.reserved = {range(0x21000000, 4 * MiB)};
        e = error_of(k, r);
        CHECK(e.kind == LayoutErrorKind::ReservedOverlapsRam);
        CHECK(e.largest == 0x20000000);
        CHECK(e.alignment == 0x24000000);
    }
    SECTION("covering an APIC")
    {
        r.reserved = {range(0xfec00000, 4 * KiB)};
        LayoutError e = error_of(k, r);
        CHECK(e.kind == LayoutErrorKind::ReservedOverlapsApic);
        CHECK(message(e) ==
              "reserved (shared) range 0xfec00000-0xfec01000 of the Linux VM covers the APIC registers at 0xfec00000");
        r.reserved = {range(0xfe000000, 32 * MiB)};
        r.mp.ioapic_address = 0xfd000000;
        CHECK(error_of(k, r).largest == 0xfee00000);
    }
}

TEST_CASE("linux layout: the MP configuration is checked", "[linux]")
{
    SyntheticKernel k;
    Request r;
    r.ram = {range(0x1000000, 64 * MiB)};
    r.mp.processors[1].apic_id = 2;
    LayoutError e = error_of(k, r);
    CHECK(e.kind == LayoutErrorKind::MpTable);
    CHECK(e.mp.kind == MpErrorKind::DuplicateApicId);
    CHECK(message(e) == "MP table: two processors have APIC ID 2");
}

TEST_CASE("linux layout: every error has a sentence", "[linux]")
{
    std::set<std::string> seen;
    for (int e = static_cast<int>(LayoutErrorKind::NoRam); e <= static_cast<int>(LayoutErrorKind::E820Full); ++e) {
        const char* text = describe(static_cast<LayoutErrorKind>(e));
        REQUIRE(text != nullptr);
        CHECK(strlen(text) > 15);
        CHECK(seen.insert(text).second);
        LayoutError error;
        error.kind = static_cast<LayoutErrorKind>(e);
        char formatted[512];
        CHECK(format_layout_error(formatted, sizeof formatted, error) > 15);
    }
    CHECK(std::string(describe(static_cast<LayoutErrorKind>(200))) == "unknown boot layout error");
}

TEST_CASE("linux layout: random partitions keep every promise", "[linux][fuzz]")
{
    test::Lcg rng{0x1a7047};
    size_t placed = 0;
    std::set<int> errors;
    for (int iteration = 0; iteration < 5000; ++iteration) {
        SyntheticKernel k;
        static const uint32_t alignments[] = {0x200000, 0x400000, 0x1000000};
        k.kernel_alignment = alignments[rng.below(3)];
        k.pref_address = rng.below(2) == 0 ? 0x1000000 : k.kernel_alignment * rng.below(64);
        k.init_size = static_cast<uint32_t>(0x10000 + rng.below(128 * MiB));
        k.initrd_addr_max = rng.below(2) == 0 ? 0x7fffffff : static_cast<uint32_t>(0x1000000 + rng.below(4 * GiB - 0x1000001));
        k.xloadflags = static_cast<uint16_t>(rng.below(4));
        BzImage kernel = kernel_of(k);

        Request r;
        uint64_t at = 1 * MiB + rng.below(64) * 2 * MiB;
        size_t count = 1 + static_cast<size_t>(rng.below(5));
        for (size_t i = 0; i < count; ++i) {
            uint64_t size = (1 + rng.below(96)) * 2 * MiB;
            if (at >= 0xfe000000 && at < 4 * GiB)
                at = 4 * GiB;
            if (at < 0xfe000000 && at + size > 0xfe000000)
                size = 0xfe000000 - at;
            r.ram.push_back(range(at, size));
            at += size + rng.below(4) * (rng.below(2) == 0 ? 2 * MiB : 1 * GiB);
        }
        r.initrd = rng.below(3) == 0 ? 0 : rng.below(256 * MiB);
        auto result = plan_layout(kernel, r.get());
        if (!result) {
            errors.insert(static_cast<int>(result.error().kind));
            continue;
        }
        ++placed;
        const BootLayout& l = result.value();
        auto in_one_block = [&](uint64_t base, uint64_t end) {
            // Inside RAM, where adjacent ranges count as one block.
            uint64_t covered = base;
            for (size_t i = 0; i < l.ram_count && covered < end; ++i)
                if (l.ram[i].base <= covered && covered < l.ram[i].end)
                    covered = l.ram[i].end;
            return covered >= end;
        };
        INFO("iteration " << iteration);
        REQUIRE(l.kernel_load % kernel.kernel_alignment == 0);
        REQUIRE(l.kernel_load >= kernel.pref_address);
        REQUIRE(l.kernel_load >= 1 * MiB);
        REQUIRE(l.kernel_end - l.kernel_load >= kernel.init_size);
        REQUIRE(l.kernel_end - l.kernel_load >= kernel.kernel_size);
        REQUIRE(in_one_block(l.kernel_load, l.kernel_end));
        REQUIRE((l.entry32_available || l.entry64_available));
        if (l.kernel_end > 4 * GiB)
            REQUIRE((kernel.has_entry64() && kernel.can_load_above_4g()));
        if (r.initrd != 0) {
            REQUIRE(l.initrd % 4096 == 0);
            REQUIRE(in_one_block(l.initrd, l.initrd + r.initrd));
            REQUIRE(l.initrd + r.initrd - 1 <= kernel.initrd_addr_max);
            REQUIRE((l.initrd + r.initrd <= l.kernel_load || l.initrd >= l.kernel_end));
        }
    }
    CHECK(placed > 1000);
    CHECK(errors.size() >= 3);
}

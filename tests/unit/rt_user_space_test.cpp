#include "rt/user_space.hpp"

#include <catch2/catch.hpp>

using namespace vlibos::rt;
using vlibos::elf::Program;
using vlibos::elf::Segment;

namespace {

constexpr uint64_t kText = kUserWindowBase + 0x10000;

Program two_segments()
{
    Program p{};
    p.entry = kText + 0x10;
    p.segments[0] = Segment{kText, 0x1800, 0x1000, 0x1800, true, false, true};            // 2 pages R-X
    p.segments[1] = Segment{kText + 0x3000, 0x2000, 0x3000, 0x100, true, true, false};    // 2 pages RW- (.bss)
    p.segment_count = 2;
    return p;
}

} // namespace

TEST_CASE("User space: the plan puts segments where linked and the stack at the top", "[rt][user]")
{
    UserSpace space;
    REQUIRE(space.plan(two_segments(), 1 << 20, 64 * 1024));
    REQUIRE(space.region_count() == 3);
    CHECK(space.region(0).base == kText);
    CHECK(space.region(0).end == kText + 0x2000);
    CHECK(space.region(0).execute);
    CHECK_FALSE(space.region(0).write);
    CHECK(space.region(1).write);
    CHECK(space.region(1).file_size == 0x100);
    CHECK(space.region(2).stack);
    CHECK(space.region(2).end == kUserWindowEnd);
    CHECK(space.stack_top() == kUserWindowEnd);
    CHECK(space.pages() == 2 + 2 + 16);
    CHECK(space.entry() == kText + 0x10);
}

TEST_CASE("User space: plan refusals", "[rt][user]")
{
    UserSpace space;
    CHECK(space.plan(two_segments(), 16 * 4096, 64 * 1024).error() == UserSpaceError::DoesNotFit);
    CHECK(space.region_count() == 0);
    CHECK(space.plan(two_segments(), 1 << 20, 4096).error() == UserSpaceError::StackTooSmall);
    CHECK(space.plan(two_segments(), 1 << 20, 10000).error() == UserSpaceError::StackTooSmall);

    Program low = two_segments();
    low.segments[0].vaddr = 0x400000;  // linked for a classic Linux address, outside the window
    CHECK(space.plan(low, 1 << 20, 64 * 1024).error() == UserSpaceError::SegmentOutsideWindow);

    Program into_stack = two_segments();
    into_stack.segments[1].vaddr = kUserWindowEnd - 0x8000;  // would overlap guard page and stack
    CHECK(space.plan(into_stack, 1 << 20, 64 * 1024).error() == UserSpaceError::SegmentOutsideWindow);

    Program data_entry = two_segments();
    data_entry.entry = kText + 0x3000;
    CHECK(space.plan(data_entry, 1 << 20, 64 * 1024).error() == UserSpaceError::NotExecutable);
}

TEST_CASE("User space: pointer checks", "[rt][user]")
{
    UserSpace space;
    REQUIRE(space.plan(two_segments(), 1 << 20, 64 * 1024));
    CHECK(space.check(kText, 16, Access::Read));
    CHECK(space.check(kText, 16, Access::Execute));
    CHECK(space.check(kText, 16, Access::Write).error() == UserSpaceError::NotWritable);
    CHECK(space.check(kText + 0x3000, 0x2000, Access::Write));
    CHECK(space.check(kText + 0x3000, 0x2001, Access::Write).error() == UserSpaceError::NotMapped);
    // Between the segments: the page at kText + 0x2000 is not mapped.
    CHECK(space.check(kText + 0x1ff0, 0x20, Access::Read).error() == UserSpaceError::NotMapped);
    CHECK(space.check(0, 1, Access::Read).error() == UserSpaceError::Null);
    CHECK(space.check(0, 0, Access::Read));  // nothing touched
    CHECK(space.check(0xffff'ffff'ffff'fff0, 64, Access::Read).error() == UserSpaceError::Wraps);
    CHECK(space.check(0x200000, 8, Access::Read).error() == UserSpaceError::NotMapped);  // monitor text
    CHECK(space.check(0xffff'8000'0000'0000, 8, Access::Read).error() == UserSpaceError::NotMapped);
    CHECK(space.check(kUserWindowEnd - 64 * 1024 - 8, 8, Access::Write).error() == UserSpaceError::NotMapped);
    CHECK(space.check(kUserWindowEnd - 16, 16, Access::Write));
    CHECK(space.check(kUserWindowEnd - 16, 17, Access::Write).error() == UserSpaceError::NotMapped);
}

TEST_CASE("User space: a buffer may span adjacent regions with the same right", "[rt][user]")
{
    Program p = two_segments();
    p.segments[1].vaddr = kText + 0x2000;  // .data right after .text
    p.segments[2] = Segment{kText + 0x4000, 0x1000, 0x5000, 0, true, true, false};
    p.segment_count = 3;
    UserSpace space;
    REQUIRE(space.plan(p, 1 << 20, 64 * 1024));
    CHECK(space.check(kText + 0x3ff0, 0x20, Access::Write));     // .data into the next RW segment
    CHECK(space.check(kText + 0x1ff0, 0x20, Access::Read));      // .text into .data: readable
    CHECK(space.check(kText + 0x1ff0, 0x20, Access::Write).error() == UserSpaceError::NotWritable);
}

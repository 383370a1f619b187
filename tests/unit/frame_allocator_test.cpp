#include "mm/frame_allocator.hpp"

#include <catch2/catch.hpp>

#include "test_random.hpp"

#include <set>
#include <vector>

using namespace vlibos::mm;

namespace {

constexpr uint64_t MiB = 1024 * 1024;

constexpr PhysRange frames(uint64_t first, uint64_t count) { return {first * PAGE_SIZE, (first + count) * PAGE_SIZE}; }

using vlibos::test::Lcg;

} // namespace

TEST_CASE("FrameAllocator add_range validation", "[mm][frame_allocator]")
{
    uint64_t bitmap[4];  // Covers 256 frames = 1 MiB.
    FrameAllocator fa;
    fa.init(bitmap, 4);

    auto check = [&](PhysRange r, FrameError e) {
        auto status = fa.add_range(r);
        REQUIRE_FALSE(status);
        CHECK(status.error() == e);
    };
    check({0x1000, 0x1000}, FrameError::Empty);
    check({0x1000, 0x1800}, FrameError::Unaligned);
    check({0x800, 0x2000}, FrameError::Unaligned);
    check({0xff000, 0x101000}, FrameError::BitmapTooSmall);
    REQUIRE(fa.add_range({0xff000, 0x100000}));  // The very last frame the bitmap covers.
    REQUIRE(fa.add_range(frames(16, 16)));
    check(frames(31, 2), FrameError::Overlap);
    CHECK(fa.total_frames() == 17);
    CHECK(fa.free_frames() == 17);

    FrameAllocator none;
    none.init(nullptr, 0);
    auto status = none.add_range(frames(0, 1));
    REQUIRE_FALSE(status);
    CHECK(status.error() == FrameError::BitmapTooSmall);

    for (auto e : {FrameError::Empty, FrameError::Unaligned, FrameError::BitmapTooSmall, FrameError::Overlap,
                   FrameError::TooManyRanges, FrameError::InvalidRequest, FrameError::OutOfMemory,
                   FrameError::NotManaged, FrameError::DoubleFree})
        CHECK(describe(e)[0] != '\0');
}

TEST_CASE("FrameAllocator runs out of range slots", "[mm][frame_allocator]")
{
    std::vector<uint64_t> bitmap(64);
    FrameAllocator fa;
    fa.init(bitmap.data(), bitmap.size());
    for (uint64_t i = 0; i < FrameAllocator::MAX_RANGES; ++i)
        REQUIRE(fa.add_range(frames(2 * i, 1)));
    auto status = fa.add_range(frames(1000, 1));
    REQUIRE_FALSE(status);
    CHECK(status.error() == FrameError::TooManyRanges);
    CHECK(fa.total_frames() == FrameAllocator::MAX_RANGES);
    REQUIRE(fa.add_range(frames(1, 1)));  // Touching ranges merge, so this still fits.
}

TEST_CASE("FrameAllocator exhausts exactly its frames, all inside the ranges", "[mm][frame_allocator]")
{
    uint64_t bitmap[8] = {};
    FrameAllocator fa;
    fa.init(bitmap, 8);
    REQUIRE(fa.add_range(frames(3, 5)));
    REQUIRE(fa.add_range(frames(100, 7)));

    std::set<uint64_t> seen;
    for (int i = 0; i < 12; ++i) {
        auto frame = fa.allocate();
        REQUIRE(frame);
        uint64_t pa = frame.value();
        CHECK((frames(3, 5).contains(pa) || frames(100, 7).contains(pa)));
        CHECK(seen.insert(pa).second);
        CHECK_FALSE(fa.is_free(pa));
    }
    CHECK(fa.free_frames() == 0);
    auto exhausted = fa.allocate();
    REQUIRE_FALSE(exhausted);
    CHECK(exhausted.error() == FrameError::OutOfMemory);

    REQUIRE(fa.free(104 * PAGE_SIZE));
    CHECK(fa.allocate().value() == 104 * PAGE_SIZE);  // The only free frame.
}

TEST_CASE("FrameAllocator contiguous runs, alignment and below-limit", "[mm][frame_allocator]")
{
    std::vector<uint64_t> bitmap(1024);  // 64 Ki frames = 256 MiB.
    FrameAllocator fa;
    fa.init(bitmap.data(), bitmap.size());
    REQUIRE(fa.add_range({0x1000, 0x9f000}));
    REQUIRE(fa.add_range({1 * MiB, 64 * MiB}));

    SECTION("lowest fit first, runs never span a hole")
    {
        CHECK(fa.allocate().value() == 0x1000);
        CHECK(fa.allocate(200).value() == 1 * MiB);  // Does not fit below 0x9f000 any more.
        CHECK(fa.allocate(4).value() == 0x2000);
    }
    SECTION("alignment in frames")
    {
        CHECK(fa.allocate(1, 16).value() == 0x10000);
        CHECK(fa.allocate(512, 512).value() == 2 * MiB);  // A 2 MiB-aligned 2 MiB block.
        CHECK(fa.allocate(1, 512).value() == 4 * MiB);
        auto bad = fa.allocate(1, 3);
        REQUIRE_FALSE(bad);
        CHECK(bad.error() == FrameError::InvalidRequest);
        CHECK(fa.allocate(1, 0).error() == FrameError::InvalidRequest);
        CHECK(fa.allocate(0).error() == FrameError::InvalidRequest);
    }
    SECTION("below limit: every byte below it")
    {
        CHECK(fa.allocate(1, 1, 0x2000).value() == 0x1000);
        CHECK(fa.allocate(1, 1, 0x2000).error() == FrameError::OutOfMemory);
        CHECK(fa.allocate(1, 1, 0x2fff).error() == FrameError::OutOfMemory);  // Would end at 0x3000.
        CHECK(fa.allocate(1, 1, 0x3000).value() == 0x2000);
        CHECK(fa.allocate(1, 1, 0).error() == FrameError::OutOfMemory);
        CHECK(fa.allocate(256, 1, 1 * MiB).error() == FrameError::OutOfMemory);
    }
    SECTION("skips past busy frames inside a candidate window")
    {
        REQUIRE(fa.allocate(1).value() == 0x1000);
        REQUIRE(fa.allocate(1).value() == 0x2000);
        REQUIRE(fa.free(0x1000));
        CHECK(fa.allocate(2).value() == 0x3000);  // 0x1000 alone is too short.
        CHECK(fa.allocate(1).value() == 0x1000);
    }
    SECTION("too large for any range")
    {
        CHECK(fa.allocate(64 * 256).error() == FrameError::OutOfMemory);
        CHECK(fa.allocate(63 * 256).value() == 1 * MiB);
    }
}

TEST_CASE("FrameAllocator free detects double free and foreign frames", "[mm][frame_allocator]")
{
    uint64_t bitmap[4] = {};
    FrameAllocator fa;
    fa.init(bitmap, 4);
    REQUIRE(fa.add_range(frames(10, 10)));
    uint64_t run = fa.allocate(4).value();
    REQUIRE(run == 10 * PAGE_SIZE);

    auto status = fa.free(run + 0x800);
    REQUIRE_FALSE(status);
    CHECK(status.error() == FrameError::Unaligned);
    CHECK(fa.free(run, 0).error() == FrameError::InvalidRequest);
    CHECK(fa.free(9 * PAGE_SIZE).error() == FrameError::NotManaged);
    CHECK(fa.free(200 * PAGE_SIZE).error() == FrameError::NotManaged);  // Beyond the bitmap.
    CHECK(fa.free(19 * PAGE_SIZE, 2).error() == FrameError::NotManaged);  // Runs past the range.
    CHECK(fa.free(UINT64_MAX & ~(PAGE_SIZE - 1), 2).error() == FrameError::NotManaged);  // Wraps.
    CHECK(fa.free(run + 3 * PAGE_SIZE, 2).error() == FrameError::DoubleFree);  // Second frame is free.
    CHECK(fa.free_frames() == 6);

    REQUIRE(fa.free(run, 2));
    CHECK(fa.free(run + PAGE_SIZE).error() == FrameError::DoubleFree);
    REQUIRE(fa.free(run + 2 * PAGE_SIZE, 2));
    CHECK(fa.free_frames() == 10);
    CHECK(fa.free(run, 4).error() == FrameError::DoubleFree);
    CHECK(fa.free_frames() == 10);
}

TEST_CASE("FrameAllocator matches a per-frame model under random use", "[mm][frame_allocator][property]")
{
    constexpr uint64_t FRAMES = 1024;
    std::vector<uint64_t> bitmap(FRAMES / 64);
    Lcg rng{42};
    for (int round = 0; round < 20; ++round) {
        FrameAllocator fa;
        fa.init(bitmap.data(), bitmap.size());
        // 0 = unmanaged, 1 = free, 2 = allocated.
        std::vector<int> model(FRAMES, 0);
        for (uint64_t f = 0; f < FRAMES; f += 64) {
            uint64_t first = f + rng.below(16), count = 1 + rng.below(40);
            REQUIRE(fa.add_range(frames(first, count)));
            for (uint64_t i = first; i < first + count; ++i)
                model[i] = 1;
        }
        std::vector<std::pair<uint64_t, size_t>> live;
        for (int op = 0; op < 500; ++op) {
            if (live.empty() || rng.below(3) != 0) {
                size_t count = 1 + rng.below(8);
                size_t align = size_t{1} << rng.below(4);
                uint64_t below = rng.below(2) ? UINT64_MAX : rng.below(FRAMES + 1) * PAGE_SIZE;
                // Lowest fitting aligned start in the model.
                int64_t expected = -1;
                for (uint64_t s = 0; s + count <= FRAMES && (s + count) * PAGE_SIZE <= below; s += align) {
                    bool fits = true;
                    for (uint64_t i = s; i < s + count; ++i)
                        fits = fits && model[i] == 1;
                    if (fits) {
                        expected = static_cast<int64_t>(s);
                        break;
                    }
                }
                auto got = fa.allocate(count, align, below);
                if (expected < 0) {
                    REQUIRE_FALSE(got);
                    REQUIRE(got.error() == FrameError::OutOfMemory);
                } else {
                    REQUIRE(got.value() == static_cast<uint64_t>(expected) * PAGE_SIZE);
                    for (uint64_t i = 0; i < count; ++i)
                        model[expected + i] = 2;
                    live.push_back({got.value(), count});
                }
            } else {
                size_t pick = rng.below(live.size());
                REQUIRE(fa.free(live[pick].first, live[pick].second));
                for (uint64_t i = 0; i < live[pick].second; ++i)
                    model[live[pick].first / PAGE_SIZE + i] = 1;
                REQUIRE(fa.free(live[pick].first, live[pick].second).error() == FrameError::DoubleFree);
                live.erase(live.begin() + static_cast<std::ptrdiff_t>(pick));
            }
            size_t free_count = 0, mismatches = 0;
            for (uint64_t f = 0; f < FRAMES; ++f) {
                free_count += model[f] == 1;
                mismatches += fa.is_free(f * PAGE_SIZE) != (model[f] == 1);
            }
            REQUIRE(mismatches == 0);
            REQUIRE(fa.free_frames() == free_count);
        }
    }
}

#include "mm/phys_range.hpp"

#include <catch2/catch.hpp>

#include "test_random.hpp"

#include <vector>

using namespace vlibos::mm;

namespace {

template <size_t N>
std::vector<PhysRange> ranges_of(const RangeSet<N>& set)
{
    return std::vector<PhysRange>(set.begin(), set.end());
}

// A small deterministic generator so property tests are reproducible.
using vlibos::test::Lcg;

template <size_t N>
void check_invariants(const RangeSet<N>& set)
{
    for (size_t i = 0; i < set.count(); ++i) {
        REQUIRE_FALSE(set[i].empty());
        if (i > 0)
            REQUIRE(set[i - 1].end < set[i].base);  // Sorted, disjoint and never touching.
    }
}

} // namespace

TEST_CASE("PhysRange basics", "[mm][phys_range]")
{
    PhysRange r{0x1000, 0x3000};
    CHECK(r.size() == 0x2000);
    CHECK_FALSE(r.empty());
    CHECK(PhysRange{0x3000, 0x1000}.empty());
    CHECK(PhysRange{0x3000, 0x1000}.size() == 0);
    CHECK(r.contains(uint64_t{0x1000}));
    CHECK(r.contains(uint64_t{0x2fff}));
    CHECK_FALSE(r.contains(uint64_t{0x3000}));
    CHECK(r.contains(PhysRange{0x1000, 0x3000}));
    CHECK(r.contains(PhysRange{0x2000, 0x2800}));
    CHECK_FALSE(r.contains(PhysRange{0x2000, 0x3001}));
    CHECK_FALSE(r.contains(PhysRange{0x2000, 0x2000}));  // Empty ranges are contained nowhere.
    CHECK(r.overlaps(PhysRange{0x2fff, 0x5000}));
    CHECK_FALSE(r.overlaps(PhysRange{0x3000, 0x5000}));  // Touching is not overlapping.
    CHECK_FALSE(r.overlaps(PhysRange{0x2000, 0x2000}));
    CHECK(PhysRange::from_size(UINT64_MAX - 10, 100).end == UINT64_MAX);
    CHECK(PhysRange{0x1001, 0x2fff}.shrunk_to(PAGE_SIZE).empty());
    CHECK(PhysRange{0x0fff, 0x3001}.shrunk_to(PAGE_SIZE) == PhysRange{0x1000, 0x3000});
    CHECK(PhysRange{0x1001, 0x2fff}.grown_to(PAGE_SIZE) == PhysRange{0x1000, 0x3000});
    CHECK(align_up(UINT64_MAX - 5, PAGE_SIZE) == align_down(UINT64_MAX, PAGE_SIZE));
}

TEST_CASE("RangeSet add merges overlapping and touching ranges", "[mm][phys_range]")
{
    RangeSet<4> set;
    REQUIRE(set.add({0x5000, 0x6000}));
    REQUIRE(set.add({0x1000, 0x2000}));
    REQUIRE(set.add({0x3000, 0x4000}));
    CHECK(ranges_of(set) == std::vector<PhysRange>{{0x1000, 0x2000}, {0x3000, 0x4000}, {0x5000, 0x6000}});

    REQUIRE(set.add({0x2000, 0x3000}));  // Touches both neighbours: all three merge.
    CHECK(ranges_of(set) == std::vector<PhysRange>{{0x1000, 0x4000}, {0x5000, 0x6000}});

    REQUIRE(set.add({0x0800, 0x7000}));  // Swallows everything.
    CHECK(ranges_of(set) == std::vector<PhysRange>{{0x0800, 0x7000}});

    REQUIRE(set.add({0x9000, 0x9000}));  // Empty: no-op.
    CHECK(set.count() == 1);
    CHECK(set.total() == 0x6800);
}

TEST_CASE("RangeSet remove trims, deletes and splits", "[mm][phys_range]")
{
    RangeSet<4> set;
    REQUIRE(set.add({0x1000, 0x9000}));
    REQUIRE(set.remove({0x3000, 0x4000}));
    CHECK(ranges_of(set) == std::vector<PhysRange>{{0x1000, 0x3000}, {0x4000, 0x9000}});
    REQUIRE(set.remove({0x0, 0x2000}));
    CHECK(ranges_of(set) == std::vector<PhysRange>{{0x2000, 0x3000}, {0x4000, 0x9000}});
    REQUIRE(set.remove({0x8000, 0xa000}));
    CHECK(ranges_of(set) == std::vector<PhysRange>{{0x2000, 0x3000}, {0x4000, 0x8000}});
    REQUIRE(set.remove({0x2000, 0x5000}));
    CHECK(ranges_of(set) == std::vector<PhysRange>{{0x5000, 0x8000}});
    REQUIRE(set.remove({0x0, 0x5000}));  // Touching only: nothing removed.
    CHECK(ranges_of(set) == std::vector<PhysRange>{{0x5000, 0x8000}});
    REQUIRE(set.remove({0x0, 0x10000}));
    CHECK(set.empty());
}

TEST_CASE("RangeSet reports Full and stays unchanged", "[mm][phys_range]")
{
    RangeSet<2> set;
    REQUIRE(set.add({0x1000, 0x2000}));
    REQUIRE(set.add({0x5000, 0x9000}));
    auto before = ranges_of(set);

    auto added = set.add({0x3000, 0x4000});
    REQUIRE_FALSE(added);
    CHECK(added.error() == RangeError::Full);
    CHECK(ranges_of(set) == before);

    auto removed = set.remove({0x6000, 0x7000});  // Would split into three.
    REQUIRE_FALSE(removed);
    CHECK(removed.error() == RangeError::Full);
    CHECK(ranges_of(set) == before);

    REQUIRE(set.add({0x2000, 0x5000}));  // Merging needs no room even when full.
    CHECK(ranges_of(set) == std::vector<PhysRange>{{0x1000, 0x9000}});
    CHECK(describe(RangeError::Full)[0] != '\0');
}

TEST_CASE("RangeSet queries", "[mm][phys_range]")
{
    RangeSet<8> set;
    CHECK(set.largest().empty());
    REQUIRE(set.add({0x1000, 0x3000}));
    REQUIRE(set.add({0x10000, 0x18000}));
    REQUIRE(set.add({0x20000, 0x28000}));
    CHECK(set.largest() == PhysRange{0x10000, 0x18000});  // Lowest on a tie.
    CHECK(set.total() == 0x2000 + 0x8000 + 0x8000);
    CHECK(set.contains(PhysRange{0x11000, 0x18000}));
    CHECK_FALSE(set.contains(PhysRange{0x2000, 0x11000}));  // Spans a hole.
    CHECK(set.contains(uint64_t{0x2fff}));
    CHECK_FALSE(set.contains(uint64_t{0x3000}));
    CHECK(set.overlaps(PhysRange{0x2fff, 0x4000}));
    CHECK_FALSE(set.overlaps(PhysRange{0x3000, 0x10000}));
    CHECK(set.capacity() == 8);
}

TEST_CASE("RangeSet matches a per-byte model under random operations", "[mm][phys_range][property]")
{
    constexpr uint64_t SPACE = 1024;
    Lcg rng{12345};
    for (int round = 0; round < 50; ++round) {
        RangeSet<6> set;
        std::vector<bool> model(SPACE, false);
        for (int op = 0; op < 200; ++op) {
            uint64_t base = rng.below(SPACE);
            PhysRange r{base, base + rng.below(SPACE / 8)};
            if (r.end > SPACE)
                r.end = SPACE;
            bool adding = rng.below(3) != 0;
            auto before = ranges_of(set);
            auto status = adding ? set.add(r) : set.remove(r);
            if (status) {
                for (uint64_t a = r.base; a < r.end; ++a)
                    model[a] = adding;
            } else {
                CHECK(status.error() == RangeError::Full);
                CHECK(ranges_of(set) == before);
            }
            check_invariants(set);
            uint64_t total = 0, mismatches = 0;
            for (uint64_t a = 0; a < SPACE; ++a) {
                mismatches += set.contains(a) != model[a];
                total += model[a] ? 1 : 0;
            }
            REQUIRE(mismatches == 0);
            REQUIRE(set.total() == total);
        }
    }
}

TEST_CASE("sanitize_memory_map subtracts reserved memory and aligns inward", "[mm][phys_range]")
{
    const FirmwareRegion map[] = {
        {0x100000, 0x7ff00000, true},    // Main RAM, overlapping the next entries.
        {0x0, 0x9fc00, true},            // Low RAM, unaligned end.
        {0x9fc00, 0x400, false},         // EBDA.
        {0x7000000, 0x10000, false},     // A reservation inside RAM.
        {0x7fff0800, 0x10000, false},    // Unaligned reservation at the end of RAM.
        {0x100000000, 0x0, true},        // Zero length: dropped.
        {0x100000000, 0x1800, true},     // Rounds down to one page.
        {0x200000800, 0x1000, true},     // Unaligned page: nothing whole survives.
        {0xFFFFFFFFFFFFF000, 0x5000, true},  // Wraps: clamped, last partial page dropped.
    };
    RangeSet<16> usable;
    REQUIRE(sanitize_memory_map(map, sizeof(map) / sizeof(map[0]), usable));
    CHECK(ranges_of(usable) == std::vector<PhysRange>{
                                   {0x0, 0x9f000},
                                   {0x100000, 0x7000000},
                                   {0x7010000, 0x7fff0000},
                                   {0x100000000, 0x100001000},
                               });
}

TEST_CASE("sanitize_memory_map: reserved wins over usable regardless of order", "[mm][phys_range]")
{
    const FirmwareRegion map[] = {
        {0x5000, 0x3000, false},
        {0x0, 0x10000, true},
        {0x4000, 0x1000, true},  // Usable inside a hole that is also next to a reservation.
        {0x8000, 0x1, false},    // One reserved byte costs its whole page.
    };
    RangeSet<4> usable;
    REQUIRE(sanitize_memory_map(map, 4, usable));
    CHECK(ranges_of(usable) == std::vector<PhysRange>{{0x0, 0x5000}, {0x9000, 0x10000}});
}

TEST_CASE("sanitize_memory_map matches a per-page model", "[mm][phys_range][property]")
{
    constexpr uint64_t SPACE = 64 * PAGE_SIZE;
    Lcg rng{777};
    for (int round = 0; round < 150; ++round) {
        std::vector<FirmwareRegion> regions;
        size_t n = 1 + rng.below(12);
        for (size_t i = 0; i < n; ++i)
            regions.push_back({rng.below(SPACE), rng.below(SPACE / 3), rng.below(3) != 0});

        // Per-byte ground truth, then a page is usable iff all of its bytes are.
        std::vector<bool> usable(SPACE, false), reserved(SPACE, false);
        for (auto& r : regions)
            for (uint64_t a = r.base; a < r.base + r.length && a < SPACE; ++a)
                (r.usable ? usable : reserved)[a] = true;

        RangeSet<12> set;
        REQUIRE(sanitize_memory_map(regions.data(), regions.size(), set));
        check_invariants(set);
        for (auto& r : set)
            REQUIRE(r.is_page_aligned());
        uint64_t mismatches = 0;
        for (uint64_t page = 0; page < SPACE; page += PAGE_SIZE) {
            bool whole = true;
            for (uint64_t a = page; a < page + PAGE_SIZE; ++a)
                whole = whole && usable[a] && !reserved[a];
            mismatches += set.contains(PhysRange{page, page + PAGE_SIZE}) != whole;
            mismatches += set.overlaps(PhysRange{page, page + PAGE_SIZE}) != whole;
        }
        REQUIRE(mismatches == 0);
    }
}

TEST_CASE("sanitize_memory_map reports Full when the output is too small", "[mm][phys_range]")
{
    const FirmwareRegion map[] = {
        {0x0, 0x1000, true}, {0x2000, 0x1000, true}, {0x4000, 0x1000, true},
    };
    RangeSet<2> usable;
    auto status = sanitize_memory_map(map, 3, usable);
    REQUIRE_FALSE(status);
    CHECK(status.error() == RangeError::Full);
}

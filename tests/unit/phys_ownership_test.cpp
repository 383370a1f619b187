#include "mm/phys_ownership.hpp"

#include <catch2/catch.hpp>

#include "test_random.hpp"

#include <vector>

using namespace vlibos::mm;

namespace {

constexpr OwnerId MONITOR = 0;
constexpr OwnerId RT = 1;
constexpr OwnerId LINUX = 2;

constexpr PhysRange pages(uint64_t first, uint64_t count) { return {first * PAGE_SIZE, (first + count) * PAGE_SIZE}; }

using vlibos::test::Lcg;

} // namespace

TEST_CASE("PhysOwnership rejects bad ranges", "[mm][phys_ownership]")
{
    PhysOwnership ledger;
    auto empty = ledger.claim({0x2000, 0x2000}, RT);
    REQUIRE_FALSE(empty);
    CHECK(empty.error() == OwnershipError::Empty);
    auto unaligned = ledger.claim({0x2000, 0x2800}, RT);
    REQUIRE_FALSE(unaligned);
    CHECK(unaligned.error() == OwnershipError::Unaligned);
    unaligned = ledger.claim({0x2800, 0x3000}, RT);
    REQUIRE_FALSE(unaligned);
    CHECK(unaligned.error() == OwnershipError::Unaligned);
    CHECK(ledger.count() == 0);
    for (auto e : {OwnershipError::Empty, OwnershipError::Unaligned, OwnershipError::Overlap, OwnershipError::Full,
                   OwnershipError::NotOwned})
        CHECK(describe(e)[0] != '\0');
}

TEST_CASE("PhysOwnership: two owners can never share a page", "[mm][phys_ownership]")
{
    PhysOwnership ledger;
    REQUIRE(ledger.claim(pages(0x100, 0x100), MONITOR));
    REQUIRE(ledger.claim(pages(0x400, 0x400), LINUX));

    auto clash = ledger.claim(pages(0x7ff, 2), RT);  // Last page of linux's memory.
    REQUIRE_FALSE(clash);
    CHECK(clash.error() == OwnershipError::Overlap);
    CHECK(ledger.last_conflict().owner == LINUX);
    CHECK(ledger.last_conflict().range == pages(0x400, 0x400));

    clash = ledger.claim(pages(0x0, 0x1000), LINUX);  // Covers both: the lowest clash is reported.
    REQUIRE_FALSE(clash);
    CHECK(ledger.last_conflict().owner == MONITOR);

    clash = ledger.claim(pages(0x150, 1), MONITOR);  // Claiming twice by the same owner is a bug too.
    REQUIRE_FALSE(clash);
    CHECK(clash.error() == OwnershipError::Overlap);

    REQUIRE(ledger.claim(pages(0x200, 0x200), RT));  // Exactly fills the gap.
    CHECK(ledger.count() == 3);
    CHECK(ledger.owner_of(0x1fffff).value() == MONITOR);
    CHECK(ledger.owner_of(0x200000).value() == RT);
    CHECK(ledger.owner_of(0x3fffff).value() == RT);
    CHECK(ledger.owner_of(0x400000).value() == LINUX);
    auto nobody = ledger.owner_of(0x800000);
    REQUIRE_FALSE(nobody);
    CHECK(nobody.error() == OwnershipError::NotOwned);
    CHECK(ledger.total_owned_by(LINUX) == 0x400000);
}

TEST_CASE("PhysOwnership merges adjacent claims of one owner", "[mm][phys_ownership]")
{
    PhysOwnership ledger;
    REQUIRE(ledger.claim(pages(10, 1), RT));
    REQUIRE(ledger.claim(pages(12, 1), RT));
    REQUIRE(ledger.claim(pages(11, 1), LINUX));
    CHECK(ledger.count() == 3);
    CHECK_FALSE(ledger.owned_entirely_by(pages(10, 3), RT));

    PhysOwnership other;
    REQUIRE(other.claim(pages(10, 1), RT));
    REQUIRE(other.claim(pages(12, 1), RT));
    REQUIRE(other.claim(pages(11, 1), RT));  // Joins both neighbours.
    REQUIRE(other.claim(pages(9, 1), RT));   // Joins on the left.
    REQUIRE(other.claim(pages(13, 2), RT));  // Joins on the right.
    REQUIRE(other.count() == 1);
    CHECK(other[0].range == pages(9, 6));
    CHECK(other.owned_entirely_by(pages(9, 6), RT));
    CHECK_FALSE(other.owned_entirely_by(pages(9, 7), RT));
    CHECK_FALSE(other.owned_entirely_by(pages(9, 1), LINUX));
    CHECK_FALSE(other.owned_entirely_by(pages(10, 0), RT));  // Never vacuously true.
    CHECK(other.any_claimed({0x8fff, 0x9001}));
    CHECK_FALSE(other.any_claimed(pages(15, 100)));
}

TEST_CASE("PhysOwnership reports Full and stays unchanged", "[mm][phys_ownership]")
{
    PhysOwnership ledger;
    for (uint64_t i = 0; i < PhysOwnership::CAPACITY; ++i)
        REQUIRE(ledger.claim(pages(2 * i, 1), static_cast<OwnerId>(i % 3)));
    auto full = ledger.claim(pages(1000, 1), RT);
    REQUIRE_FALSE(full);
    CHECK(full.error() == OwnershipError::Full);
    CHECK(ledger.count() == PhysOwnership::CAPACITY);
    CHECK_FALSE(ledger.owner_of(1000 * PAGE_SIZE));
    // Extending an existing entry needs no new slot.
    REQUIRE(ledger.claim(pages(1, 1), static_cast<OwnerId>(0)));
    CHECK(ledger.count() == PhysOwnership::CAPACITY);
}

TEST_CASE("PhysOwnership matches a per-page model under random claims", "[mm][phys_ownership][property]")
{
    constexpr uint64_t PAGES = 512;
    constexpr int NOBODY = -1;
    Lcg rng{0xC0FFEE};
    for (int round = 0; round < 40; ++round) {
        PhysOwnership ledger;
        std::vector<int> model(PAGES, NOBODY);
        for (int op = 0; op < 300; ++op) {
            uint64_t first = rng.below(PAGES);
            uint64_t count = 1 + rng.below(rng.below(4) == 0 ? 64 : 4);
            if (first + count > PAGES)
                count = PAGES - first;
            auto owner = static_cast<OwnerId>(rng.below(4));

            bool model_free = true;
            for (uint64_t p = first; p < first + count; ++p)
                model_free = model_free && model[p] == NOBODY;

            auto status = ledger.claim(pages(first, count), owner);
            if (!model_free) {
                REQUIRE_FALSE(status);
                REQUIRE(status.error() == OwnershipError::Overlap);
                REQUIRE(ledger.last_conflict().range.overlaps(pages(first, count)));
            } else if (!status) {
                REQUIRE(status.error() == OwnershipError::Full);
                REQUIRE(ledger.count() == PhysOwnership::CAPACITY);
            } else {
                for (uint64_t p = first; p < first + count; ++p)
                    model[p] = owner;
            }

            // Entries sorted, disjoint, aligned, and neighbours of one owner always merged.
            for (size_t i = 0; i < ledger.count(); ++i) {
                REQUIRE(ledger[i].range.is_page_aligned());
                if (i > 0) {
                    REQUIRE(ledger[i - 1].range.end <= ledger[i].range.base);
                    if (ledger[i - 1].range.end == ledger[i].range.base)
                        REQUIRE(ledger[i - 1].owner != ledger[i].owner);
                }
            }
        }
        for (uint64_t p = 0; p < PAGES; ++p) {
            auto owner = ledger.owner_of(p * PAGE_SIZE + (p % PAGE_SIZE));
            if (model[p] == NOBODY)
                REQUIRE_FALSE(owner);
            else
                REQUIRE(int{owner.value()} == model[p]);
        }
        for (int probe = 0; probe < 200; ++probe) {
            uint64_t first = rng.below(PAGES);
            uint64_t count = 1 + rng.below(PAGES - first);
            auto owner = static_cast<OwnerId>(rng.below(4));
            bool all = true, any = false;
            for (uint64_t p = first; p < first + count; ++p) {
                all = all && model[p] == owner;
                any = any || model[p] != NOBODY;
            }
            REQUIRE(ledger.owned_entirely_by(pages(first, count), owner) == all);
            REQUIRE(ledger.any_claimed(pages(first, count)) == any);
        }
        uint64_t total[4] = {};
        for (uint64_t p = 0; p < PAGES; ++p)
            if (model[p] != NOBODY)
                total[model[p]] += PAGE_SIZE;
        for (OwnerId o = 0; o < 4; ++o)
            REQUIRE(ledger.total_owned_by(o) == total[o]);
    }
}

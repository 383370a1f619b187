#include "mm/page_table.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <map>
#include <memory>
#include <vector>

using namespace vlibos::mm;
using vlibos::Result;

namespace {

constexpr uint64_t KiB4 = 0x1000;
constexpr uint64_t MiB2 = LARGE_PAGE_SIZE;
constexpr uint64_t GiB1 = HUGE_PAGE_SIZE;

constexpr Permissions RO{false, false, false};
constexpr Permissions RW{true, false, false};
constexpr Permissions RX{false, true, false};
constexpr Permissions RWX{true, true, false};
constexpr Permissions USER_RW{true, false, true};

// Fake physical memory: tables live at made-up physical addresses, and every entry store goes
// through write_entry() so the tests can see exactly what the builder wrote, in order.
struct FakeMemory {
    struct Write {
        uint64_t table;
        size_t index;
        uint64_t old_value;
        uint64_t new_value;
    };

    std::map<uint64_t, std::unique_ptr<std::array<uint64_t, ENTRIES_PER_TABLE>>> tables;
    std::map<const uint64_t*, uint64_t> phys_of_storage;  // Finds the table a store lands in.
    std::vector<Write> writes;
    size_t budget = SIZE_MAX;  // Tables still allowed.
    uint64_t next_phys = 0x7000'0000;

    uint64_t* table(uint64_t phys)
    {
        auto it = tables.find(phys);
        if (it == tables.end())
            FAIL("walked into memory that is not a page table");
        return it->second->data();
    }

    Result<uint64_t, PageTableError> allocate_table()
    {
        if (budget == 0)
            return vlibos::fail(PageTableError::OutOfMemory);
        --budget;
        uint64_t phys = next_phys;
        next_phys += KiB4;
        auto storage = std::make_unique<std::array<uint64_t, ENTRIES_PER_TABLE>>();
        storage->fill(0);
        phys_of_storage[storage->data()] = phys;
        tables[phys] = std::move(storage);
        return phys;
    }

    void write_entry(uint64_t* entry, uint64_t value)
    {
        auto it = phys_of_storage.upper_bound(entry);
        if (it == phys_of_storage.begin() || static_cast<size_t>(entry - (--it)->first) >= ENTRIES_PER_TABLE)
            FAIL("store outside any page table");
        auto index = static_cast<size_t>(entry - it->first);
        writes.push_back({it->second, index, *entry, value});
        *entry = value;
    }

    // The entries a hardware walk of `va` reads, top level first, down to the leaf.
    std::vector<uint64_t> walk(uint64_t root, uint64_t va)
    {
        std::vector<uint64_t> chain;
        uint64_t table_phys = root;
        for (int level = 3; level >= 0; --level) {
            uint64_t e = table(table_phys)[(va >> (12 + 9 * level)) % ENTRIES_PER_TABLE];
            chain.push_back(e);
            if ((e & pte::PRESENT) == 0 || level == 0 || (e & pte::LARGE) != 0)
                break;
            table_phys = e & pte::ADDRESS_MASK;
        }
        return chain;
    }

    // The builder must only ever fill empty slots: a live entry is never rewritten, so a
    // concurrent walk can never observe a mapping change.
    void check_only_empty_slots_written() const
    {
        size_t overwritten = 0;
        for (auto& w : writes)
            overwritten += w.old_value != 0;
        REQUIRE(overwritten == 0);
    }
};

struct Leaf {
    uint64_t va, pa, size;
    Permissions perms;
};

std::vector<Leaf> leaves(const PageTable<FakeMemory>& pt)
{
    std::vector<Leaf> out;
    pt.for_each_leaf([&](uint64_t va, uint64_t pa, uint64_t size, Permissions perms) {
        out.push_back({va, pa, size, perms});
    });
    return out;
}

std::vector<uint64_t> leaf_sizes(const PageTable<FakeMemory>& pt)
{
    std::vector<uint64_t> sizes;
    for (auto& l : leaves(pt))
        sizes.push_back(l.size);
    return sizes;
}

struct Fixture {
    FakeMemory mem;
    uint64_t root = PageTable<FakeMemory>::create_root(mem).value();
    PageTable<FakeMemory> pt{mem, root};
};

} // namespace

TEST_CASE("PageTable maps an aligned 1 GiB region with one PDPTE leaf", "[mm][page_table]")
{
    Fixture f;
    REQUIRE(f.pt.map(GiB1, 5 * GiB1, GiB1, RW));
    CHECK(f.mem.tables.size() == 2);  // PML4 and one PDPT.
    REQUIRE(f.mem.writes.size() == 2);
    auto link = f.mem.writes[0];
    CHECK(link.table == f.root);
    CHECK(link.index == 0);
    CHECK((link.new_value & ~pte::ADDRESS_MASK) == (pte::PRESENT | pte::WRITABLE | pte::USER));
    auto leaf = f.mem.writes[1];
    CHECK(leaf.index == 1);
    CHECK(leaf.new_value == (5 * GiB1 | pte::PRESENT | pte::WRITABLE | pte::LARGE | pte::NO_EXECUTE));

    auto t = f.pt.translate(GiB1 + 0x12345678);
    REQUIRE(t);
    CHECK(t.value().pa == 5 * GiB1 + 0x12345678);
    CHECK(t.value().page_size == GiB1);
    CHECK(t.value().perms == RW);
    CHECK(t.value().cache == CacheType::WriteBack);
    CHECK(f.pt.translate(2 * GiB1).error() == PageTableError::NotMapped);
    CHECK(f.pt.translate(GiB1 - 1).error() == PageTableError::NotMapped);
    f.mem.check_only_empty_slots_written();
}

TEST_CASE("PageTable stops at 2 MiB leaves when 1 GiB pages are not allowed", "[mm][page_table]")
{
    Fixture f;
    // Everything aligned for a 1 GiB leaf, but the CPU cannot map one: 512 PDE leaves instead.
    REQUIRE(f.pt.map(GiB1, 5 * GiB1, GiB1, RW, CacheType::WriteBack, true, false));
    auto sizes = leaf_sizes(f.pt);
    CHECK(sizes.size() == 512);
    CHECK(std::count(sizes.begin(), sizes.end(), MiB2) == 512);
    auto t = f.pt.translate(GiB1 + 0x12345678);
    REQUIRE(t);
    CHECK(t.value().pa == 5 * GiB1 + 0x12345678);
    CHECK(t.value().page_size == MiB2);
    f.mem.check_only_empty_slots_written();
}

TEST_CASE("PageTable uses 2 MiB leaves when only 2 MiB alignment holds", "[mm][page_table]")
{
    Fixture f;
    REQUIRE(f.pt.map(MiB2, GiB1 + 3 * MiB2, 2 * MiB2, RX));
    CHECK(f.mem.tables.size() == 3);  // PML4, PDPT, PD.
    CHECK(leaf_sizes(f.pt) == std::vector<uint64_t>{MiB2, MiB2});
    auto t = f.pt.translate(2 * MiB2 + 0x1234);
    REQUIRE(t);
    CHECK(t.value().pa == GiB1 + 4 * MiB2 + 0x1234);
    CHECK(t.value().page_size == MiB2);
    CHECK(t.value().perms == RX);

    // A whole, 1 GiB aligned gigabyte with a pa that is only 2 MiB aligned: 512 PDE leaves.
    REQUIRE(f.pt.map(4 * GiB1, 3 * MiB2, GiB1, RO));
    auto sizes = leaf_sizes(f.pt);
    CHECK(std::count(sizes.begin(), sizes.end(), MiB2) == 2 + 512);
    f.mem.check_only_empty_slots_written();
}

TEST_CASE("PageTable splits edges into smaller pages", "[mm][page_table]")
{
    Fixture f;
    // 2 x 4 KiB, 2 MiB, 1 GiB, 2 MiB, 4 KiB.
    uint64_t va = GiB1 - MiB2 - 2 * KiB4;
    uint64_t size = 2 * KiB4 + MiB2 + GiB1 + MiB2 + KiB4;
    uint64_t pa = va + 4 * GiB1;
    REQUIRE(f.pt.map(va, pa, size, RW));
    CHECK(leaf_sizes(f.pt) == std::vector<uint64_t>{KiB4, KiB4, MiB2, GiB1, MiB2, KiB4});
    for (auto& l : leaves(f.pt)) {
        CHECK(l.pa == l.va + 4 * GiB1);
        CHECK(l.va % l.size == 0);
        CHECK(l.pa % l.size == 0);
    }
    CHECK(f.pt.translate(va + size - 1).value().pa == pa + size - 1);
    CHECK(f.pt.translate(va + size).error() == PageTableError::NotMapped);
    CHECK(f.pt.translate(va - 1).error() == PageTableError::NotMapped);
    f.mem.check_only_empty_slots_written();
}

TEST_CASE("PageTable falls back to 4 KiB pages", "[mm][page_table]")
{
    SECTION("when pa is not aligned like va")
    {
        Fixture f;
        REQUIRE(f.pt.map(0, KiB4, 2 * MiB2, RW));
        auto sizes = leaf_sizes(f.pt);
        CHECK(sizes.size() == 1024);
        CHECK(std::all_of(sizes.begin(), sizes.end(), [](uint64_t s) { return s == KiB4; }));
    }
    SECTION("when large pages are not allowed")
    {
        Fixture f;
        REQUIRE(f.pt.map(0, 0, MiB2, RW, CacheType::WriteBack, false));
        CHECK(leaf_sizes(f.pt).size() == 512);
        CHECK(f.pt.translate(0x1ff000).value().page_size == KiB4);
    }
}

TEST_CASE("PageTable encodes permissions and cache types in the leaf", "[mm][page_table]")
{
    Fixture f;
    REQUIRE(f.pt.map(0x1000, 0xa000, KiB4, RO));
    REQUIRE(f.pt.map(0x2000, 0xb000, KiB4, RX));
    REQUIRE(f.pt.map(0x3000, 0xfee00000, KiB4, USER_RW, CacheType::Uncacheable));
    REQUIRE(f.pt.map(MiB2, 0xfec00000, MiB2, RW, CacheType::Uncacheable));

    auto leaf_entry = [&](uint64_t va) { return f.mem.walk(f.root, va).back(); };

    uint64_t ro = leaf_entry(0x1000);
    CHECK((ro & pte::WRITABLE) == 0);
    CHECK((ro & pte::USER) == 0);
    CHECK((ro & pte::NO_EXECUTE) != 0);
    CHECK((ro & (pte::CACHE_DISABLE | pte::WRITE_THROUGH | pte::PAT_4K)) == 0);

    uint64_t rx = leaf_entry(0x2000);
    CHECK((rx & pte::NO_EXECUTE) == 0);
    CHECK((rx & pte::WRITABLE) == 0);

    uint64_t mmio = leaf_entry(0x3000);
    CHECK((mmio & pte::WRITABLE) != 0);
    CHECK((mmio & pte::USER) != 0);
    CHECK((mmio & pte::NO_EXECUTE) != 0);
    CHECK((mmio & (pte::CACHE_DISABLE | pte::WRITE_THROUGH)) == (pte::CACHE_DISABLE | pte::WRITE_THROUGH));
    CHECK((mmio & pte::PAT_4K) == 0);  // PAT index 3 = UC with the power-on PAT.

    uint64_t large = leaf_entry(MiB2);
    CHECK((large & pte::LARGE) != 0);
    CHECK((large & pte::PAT_LARGE) == 0);
    CHECK((large & pte::CACHE_DISABLE) != 0);

    CHECK(f.pt.translate(0x1000).value().perms == RO);
    CHECK(f.pt.translate(0x2000).value().perms == RX);
    CHECK(f.pt.translate(0x3000).value().perms == USER_RW);
    CHECK(f.pt.translate(0x3000).value().cache == CacheType::Uncacheable);
    CHECK(f.pt.translate(0x3abc).value().pa == 0xfee00abc);
    CHECK(f.pt.translate(MiB2 + 5).value().cache == CacheType::Uncacheable);

    // Intermediate entries are permissive links; only leaves restrict.
    for (uint64_t va : {0x1000, 0x2000, 0x3000, 0x200000}) {
        auto chain = f.mem.walk(f.root, va);
        REQUIRE(chain.size() >= 2);
        for (size_t i = 0; i + 1 < chain.size(); ++i)
            CHECK((chain[i] & ~pte::ADDRESS_MASK) == (pte::PRESENT | pte::WRITABLE | pte::USER));
    }
    f.mem.check_only_empty_slots_written();
}

TEST_CASE("PageTable rejects conflicting mappings without touching existing entries", "[mm][page_table]")
{
    Fixture f;
    REQUIRE(f.pt.map(MiB2, 0, MiB2, RW));       // A 2 MiB leaf.
    REQUIRE(f.pt.map(0x5000, 0x5000, KiB4, RW));  // A 4 KiB leaf below it.
    auto writes = f.mem.writes.size();
    auto tables = f.mem.tables.size();

    auto expect_conflict = [&](uint64_t va, uint64_t size) {
        auto status = f.pt.map(va, 0x40000000, size, RO);
        REQUIRE_FALSE(status);
        CHECK(status.error() == PageTableError::AlreadyMapped);
        CHECK(f.mem.writes.size() == writes);
        CHECK(f.mem.tables.size() == tables);
    };
    expect_conflict(MiB2 + 0x3000, KiB4);       // Inside the large page.
    expect_conflict(MiB2 - KiB4, 2 * KiB4);     // Straddles its start.
    expect_conflict(2 * MiB2 - KiB4, MiB2);     // Straddles its end.
    expect_conflict(0, MiB2);                   // A 2 MiB leaf over the 4 KiB page.
    expect_conflict(0, GiB1);                   // A 1 GiB leaf over both.
    expect_conflict(0x5000, KiB4);              // Exactly the same page.

    CHECK(f.pt.translate(MiB2 + 0x3000).value().pa == 0x3000);
    CHECK(f.pt.translate(0x5000).value().perms == RW);

    // The free neighbours are still usable.
    REQUIRE(f.pt.map(0x4000, 0x4000, KiB4, RO));
    REQUIRE(f.pt.map(0x6000, 0x6000, MiB2 - 0x6000, RO));
    REQUIRE(f.pt.map(2 * MiB2, 0, MiB2, RO));
    CHECK_FALSE(f.pt.is_mapped(0, 0x4000));
    CHECK(f.pt.is_mapped(0, 0x4001));
    f.mem.check_only_empty_slots_written();
}

TEST_CASE("PageTable reports out of memory and leaves nothing half mapped", "[mm][page_table]")
{
    Fixture f;
    f.mem.budget = 0;
    auto status = f.pt.map(0x1000, 0x1000, KiB4, RW);
    REQUIRE_FALSE(status);
    CHECK(status.error() == PageTableError::OutOfMemory);
    CHECK(leaves(f.pt).empty());

    // Enough tables for the first PT of the range but not for the second.
    Fixture g;
    g.mem.budget = 3;  // PDPT, PD, one PT.
    status = g.pt.map(MiB2 - 4 * KiB4, 0x100000, 8 * KiB4, RW);
    REQUIRE_FALSE(status);
    CHECK(status.error() == PageTableError::OutOfMemory);
    CHECK(leaves(g.pt).empty());
    CHECK(g.pt.translate(MiB2 - 4 * KiB4).error() == PageTableError::NotMapped);
    for (auto& w : g.mem.writes)
        CHECK(g.mem.tables.count(w.new_value & pte::ADDRESS_MASK) == 1);  // Only links were written.

    // With more memory the same request succeeds, reusing the empty tables left behind.
    g.mem.budget = 1;
    REQUIRE(g.pt.map(MiB2 - 4 * KiB4, 0x100000, 8 * KiB4, RW));
    CHECK(leaves(g.pt).size() == 8);
    CHECK(g.pt.translate(MiB2).value().pa == 0x104000);
    g.mem.check_only_empty_slots_written();
}

TEST_CASE("PageTable descends into an existing empty table instead of using a large leaf", "[mm][page_table]")
{
    Fixture f;
    f.mem.budget = 2;  // PDPT and PD, then the PT fails.
    REQUIRE_FALSE(f.pt.map(GiB1 + KiB4, 0, KiB4, RW));
    f.mem.budget = 0;
    // The PDPTE for [1 GiB, 2 GiB) now links an empty PD, so 2 MiB leaves are used without
    // allocating anything.
    REQUIRE(f.pt.map(GiB1, 0, GiB1, RW));
    CHECK(leaf_sizes(f.pt).size() == 512);
    f.mem.check_only_empty_slots_written();
}

TEST_CASE("PageTable validates its arguments", "[mm][page_table]")
{
    Fixture f;
    auto error = [&](uint64_t va, uint64_t pa, uint64_t size) { return f.pt.map(va, pa, size, RW).error(); };
    CHECK(error(0x1000, 0x1000, 0) == PageTableError::Empty);
    CHECK(error(0x1001, 0x1000, KiB4) == PageTableError::Unaligned);
    CHECK(error(0x1000, 0x1800, KiB4) == PageTableError::Unaligned);
    CHECK(error(0x1000, 0x1000, 0x800) == PageTableError::Unaligned);
    CHECK(error(0x0000'8000'0000'0000, 0, KiB4) == PageTableError::NonCanonical);
    CHECK(error(0xFFFF'7FFF'FFFF'F000, 0, KiB4) == PageTableError::NonCanonical);
    CHECK(error(0x0000'7FFF'FFFF'F000, 0, 2 * KiB4) == PageTableError::NonCanonical);  // Runs into the hole.
    CHECK(error(0xFFFF'FFFF'FFFF'F000, 0, 2 * KiB4) == PageTableError::NonCanonical);  // Wraps around.
    CHECK(error(0x1000, PHYS_LIMIT, KiB4) == PageTableError::PhysicalTooHigh);
    CHECK(error(0x1000, PHYS_LIMIT - KiB4, 2 * KiB4) == PageTableError::PhysicalTooHigh);
    CHECK(f.mem.writes.empty());
    CHECK(f.pt.translate(0x0000'8000'0000'0000).error() == PageTableError::NonCanonical);

    for (auto e : {PageTableError::Empty, PageTableError::Unaligned, PageTableError::NonCanonical,
                   PageTableError::PhysicalTooHigh, PageTableError::AlreadyMapped, PageTableError::OutOfMemory,
                   PageTableError::NotMapped})
        CHECK(describe(e)[0] != '\0');
}

TEST_CASE("PageTable maps the upper canonical half", "[mm][page_table]")
{
    Fixture f;
    REQUIRE(f.pt.map(0xFFFF'8000'0000'0000, 0x200000, KiB4, RX));
    REQUIRE(f.pt.map(0xFFFF'FFFF'8000'0000, 0x0, GiB1 + MiB2, RW));  // The usual -2 GiB kernel window.
    REQUIRE(f.pt.map(0xFFFF'FFFF'FFFF'F000, 0x9000, KiB4, RO));
    REQUIRE(f.pt.map(0x0000'7FFF'FFFF'F000, 0x9000, KiB4, RO));  // Top of the lower half.

    auto all = leaves(f.pt);
    REQUIRE(all.size() >= 3);
    CHECK(all.front().va == 0x0000'7FFF'FFFF'F000);  // Lower half first.
    CHECK(all[1].va == 0xFFFF'8000'0000'0000);
    CHECK(all.back().va == 0xFFFF'FFFF'FFFF'F000);
    CHECK(f.pt.translate(0xFFFF'FFFF'FFFF'FFFF).value().pa == 0x9fff);
    CHECK(f.pt.translate(0xFFFF'8000'0000'0123).value().pa == 0x200123);
    CHECK(f.pt.is_mapped(0xFFFF'FFFF'FFFF'F000, 0x10000));
}

TEST_CASE("for_each_leaf feeds the W^X audit", "[mm][page_table]")
{
    CHECK_FALSE(writable_and_executable(RW));
    CHECK_FALSE(writable_and_executable(RX));
    CHECK(writable_and_executable(RWX));

    Fixture f;
    REQUIRE(f.pt.map(0x1000, 0x1000, 0x3000, RX));
    REQUIRE(f.pt.map(0x10000, 0x10000, 0x1000, RW));
    auto count_wx = [&] {
        int n = 0;
        f.pt.for_each_leaf([&](uint64_t, uint64_t, uint64_t, Permissions p) { n += writable_and_executable(p); });
        return n;
    };
    CHECK(count_wx() == 0);
    REQUIRE(f.pt.map(0x20000, 0x20000, 0x2000, RWX));
    CHECK(count_wx() == 2);
}

TEST_CASE("for_each_leaf covers exactly the mapped set under random mappings", "[mm][page_table][property]")
{
    struct Mapping {
        uint64_t va, pa, size;
        Permissions perms;
    };
    uint64_t state = 2024;
    auto rnd = [&](uint64_t bound) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        return (state >> 33) % bound;
    };
    const uint64_t alignments[] = {KiB4, MiB2, GiB1};
    const Permissions perms[] = {RO, RW, RX, USER_RW};

    std::map<uint64_t, size_t> leaves_by_size;
    size_t conflicts = 0;
    for (int round = 0; round < 20; ++round) {
        Fixture f;
        std::vector<Mapping> model;
        for (int op = 0; op < 60; ++op) {
            uint64_t align = alignments[rnd(3)];
            uint64_t va = rnd(16 * GiB1 / align) * align;
            if (rnd(4) == 0)
                va |= 0xFFFF'8000'0000'0000;
            uint64_t pa = rnd(64 * GiB1 / align) * align;
            uint64_t size = rnd(8) == 0 ? (1 + rnd(3)) * GiB1 + rnd(2) * MiB2 : (1 + rnd(600)) * KiB4;
            if (rnd(16) == 0)
                size = (1 + rnd(64)) * MiB2 + rnd(3) * KiB4;
            // Small mappings sometimes forbid large pages or misalign pa; big ones never do, since
            // a gigabyte of 4 KiB pages only slows the test down.
            bool small = size <= 4 * MiB2;
            bool allow_large = !small || rnd(4) != 0;
            if (!small)
                pa = rnd(64) * GiB1 + (va & (GiB1 - 1));  // Congruent with va: large pages fit.
            else if (rnd(4) == 0)
                pa += KiB4;
            Mapping m{va, pa, size, perms[rnd(4)]};

            bool disjoint = true;
            for (auto& o : model)
                disjoint = disjoint && (m.va + m.size <= o.va || o.va + o.size <= m.va);
            auto status = f.pt.map(m.va, m.pa, m.size, m.perms, CacheType::WriteBack, allow_large);
            if (disjoint) {
                REQUIRE(status);
                model.push_back(m);
            } else {
                REQUIRE_FALSE(status);
                REQUIRE(status.error() == PageTableError::AlreadyMapped);
                ++conflicts;
            }
        }

        // Every leaf lies inside one mapping with the right pa and rights, and the leaves add up
        // to the mapped total; leaves never overlap, so they cover exactly the mapped set.
        uint64_t mapped = 0, covered = 0;
        for (auto& m : model)
            mapped += m.size;
        std::sort(model.begin(), model.end(), [](const Mapping& a, const Mapping& b) { return a.va < b.va; });
        uint64_t previous_end = 0, bad = 0;
        size_t next = 0;
        for (auto& l : leaves(f.pt)) {
            bad += l.va % l.size != 0 || l.pa % l.size != 0 || l.va < previous_end;
            previous_end = l.va + l.size;
            while (next < model.size() && model[next].va + model[next].size <= l.va)
                ++next;
            REQUIRE(next < model.size());
            const Mapping& owner = model[next];
            bad += !(owner.va <= l.va && l.va + l.size <= owner.va + owner.size);
            bad += l.pa != owner.pa + (l.va - owner.va);
            bad += !(l.perms == owner.perms);
            covered += l.size;
            ++leaves_by_size[l.size];
        }
        REQUIRE(bad == 0);
        REQUIRE(covered == mapped);

        for (auto& m : model) {
            for (uint64_t probe : {m.va, m.va + m.size / 2, m.va + m.size - 1}) {
                auto t = f.pt.translate(probe);
                REQUIRE(t);
                REQUIRE(t.value().pa == m.pa + (probe - m.va));
                REQUIRE(t.value().perms == m.perms);
            }
        }
        f.mem.check_only_empty_slots_written();
    }
    // The random mix really exercised every page size and the conflict path.
    CHECK(leaves_by_size[KiB4] > 0);
    CHECK(leaves_by_size[MiB2] > 0);
    CHECK(leaves_by_size[GiB1] > 0);
    CHECK(conflicts > 0);
}

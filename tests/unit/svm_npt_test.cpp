// Nested page tables built from a GuestMemory map (AMD SVM, APM Vol. 2 §15.25).
#include "vmm/svm/npt.hpp"

#include <catch2/catch.hpp>

#include <array>
#include <map>
#include <memory>

using namespace vlibos;
using namespace vlibos::svm;

namespace {

constexpr uint64_t KiB4 = 0x1000;
constexpr uint64_t MiB2 = 2ull << 20;
constexpr uint64_t GiB1 = 1ull << 30;

struct FakeMemory {
    std::map<uint64_t, std::unique_ptr<std::array<uint64_t, 512>>> tables;
    uint64_t next = 0x7000'0000;

    uint64_t* table(uint64_t phys)
    {
        auto it = tables.find(phys);
        if (it == tables.end())
            FAIL("walked into memory that is not a page table");
        return it->second->data();
    }

    Result<uint64_t, mm::PageTableError> allocate_table()
    {
        auto t = std::make_unique<std::array<uint64_t, 512>>();
        t->fill(0);
        uint64_t phys = next;
        next += KiB4;
        tables[phys] = std::move(t);
        return phys;
    }
};

auto anything = [](uint64_t, uint64_t) { return true; };

vmm::GuestMemory map_of(std::initializer_list<vmm::GuestRegion> regions)
{
    vmm::GuestMemory m;
    for (const auto& r : regions)
        REQUIRE(m.add(r, anything));
    return m;
}

struct Built {
    FakeMemory memory;
    uint64_t root = 0;
    Status<vmm::VmError> status;
};

void build(Built& b, const vmm::GuestMemory& m, bool allow_1gb)
{
    b.root = b.memory.allocate_table().value();
    b.status = build_npt(b.memory, b.root, m, allow_1gb);
}

mm::PageTable<FakeMemory>::Translation lookup(Built& b, uint64_t gpa)
{
    mm::PageTable<FakeMemory> t(b.memory, b.root);
    auto r = t.translate(mm::paging_detail::sign_extend(gpa));
    REQUIRE(r);
    return r.value();
}

} // namespace

TEST_CASE("NPT leaves carry the region's rights, always user, host memory write-back", "[svm]")
{
    Built b;
    build(b,
          map_of({{0, 0x1000000, MiB2, {true, true, true}},
                  {MiB2, 0x1200000, KiB4, {true, false, false}},
                  {MiB2 + KiB4, 0x1201000, KiB4, {true, true, false}}}),
          true);
    REQUIRE(b.status);

    auto ram = lookup(b, 0x8000);
    CHECK(ram.pa == 0x1008000);
    CHECK(ram.perms == mm::Permissions{true, true, true});
    CHECK(ram.page_size == MiB2);  // guest and host both 2 MiB aligned
    CHECK(ram.cache == mm::CacheType::WriteBack);

    auto ro = lookup(b, MiB2 + 0x10);
    CHECK(ro.pa == 0x1200010);
    CHECK(ro.perms == mm::Permissions{false, false, true});
    CHECK(ro.page_size == KiB4);

    auto nx = lookup(b, MiB2 + KiB4);
    CHECK(nx.perms == mm::Permissions{true, false, true});

    mm::PageTable<FakeMemory> t(b.memory, b.root);
    CHECK_FALSE(t.is_mapped(MiB2 + 2 * KiB4, KiB4));
    CHECK_FALSE(t.is_mapped(0x40000000, KiB4));
}

TEST_CASE("NPT uses 4 KiB pages when guest and host are not aligned alike", "[svm]")
{
    Built b;
    build(b, map_of({{0, 0x1001000, 2 * MiB2, {true, true, true}}}), true);
    REQUIRE(b.status);
    CHECK(lookup(b, 0).page_size == KiB4);
    CHECK(lookup(b, MiB2 + 0x123).pa == 0x1001000 + MiB2 + 0x123);
}

TEST_CASE("1 GiB nested pages only when the CPU has them", "[svm]")
{
    auto m = map_of({{GiB1, 2 * GiB1, GiB1, {true, true, true}}});
    Built with;
    build(with, m, true);
    REQUIRE(with.status);
    CHECK(lookup(with, GiB1 + 5).page_size == GiB1);

    Built without;
    build(without, m, false);
    REQUIRE(without.status);
    auto t = lookup(without, GiB1 + 5);
    CHECK(t.page_size == MiB2);
    CHECK(t.pa == 2 * GiB1 + 5);
    CHECK(lookup(without, 2 * GiB1 - 1).pa == 3 * GiB1 - 1);
}

TEST_CASE("NPT refuses what it cannot express", "[svm]")
{
    Built write_only;
    build(write_only, map_of({{0, 0x1000000, KiB4, {false, true, false}}}), true);
    CHECK_FALSE(write_only.status);
    CHECK(write_only.status.error() == vmm::VmError::BadGuestMemory);

    Built execute_only;
    build(execute_only, map_of({{0, 0x1000000, KiB4, {false, false, true}}}), true);
    CHECK(execute_only.status.error() == vmm::VmError::BadGuestMemory);

    Built too_high;
    build(too_high, map_of({{1ull << 48, 0x1000000, KiB4, {true, true, true}}}), true);
    CHECK(too_high.status.error() == vmm::VmError::BadGuestMemory);
}

TEST_CASE("Guest-physical addresses up to 2^48 map, also across 2^47", "[svm]")
{
    Built b;
    build(b, map_of({{(1ull << 47) - MiB2, 0x4000000, 2 * MiB2, {true, true, false}}}), true);
    REQUIRE(b.status);
    CHECK(lookup(b, (1ull << 47) - 1).pa == 0x4000000 + MiB2 - 1);
    CHECK(lookup(b, 1ull << 47).pa == 0x4000000 + MiB2);
    // The upper half is the PML4's second half, as the CPU indexes a 48-bit GPA.
    CHECK((b.memory.table(b.root)[256] & mm::pte::PRESENT) != 0);
}

TEST_CASE("NPT reports running out of table memory", "[svm]")
{
    struct Tight : FakeMemory {
        int left = 2;
        Result<uint64_t, mm::PageTableError> allocate_table()
        {
            if (left-- <= 0)
                return fail(mm::PageTableError::OutOfMemory);
            return FakeMemory::allocate_table();
        }
    };
    Tight memory;
    uint64_t root = memory.allocate_table().value();
    auto status = build_npt(memory, root, map_of({{0, 0x1000000, KiB4, {true, true, true}}}), true);
    REQUIRE_FALSE(status);
    CHECK(status.error() == vmm::VmError::OutOfMemory);
}

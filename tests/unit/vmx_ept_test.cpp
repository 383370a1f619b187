#include "vmm/vmx/ept.hpp"

#include <catch2/catch.hpp>

#include <array>
#include <map>
#include <memory>

using namespace vlibos::vmm;
using namespace vlibos::vmm::vmx;

namespace {

constexpr uint64_t KiB4 = 0x1000;
constexpr uint64_t MiB2 = 0x200000;
constexpr uint64_t GiB1 = 0x40000000;
constexpr GuestAccess RWX{true, true, true};
constexpr GuestAccess RO{true, false, false};
constexpr GuestAccess RX{true, false, true};

struct FakeMemory {
    std::map<uint64_t, std::unique_ptr<std::array<uint64_t, EPT_ENTRIES>>> tables;
    uint64_t next_phys = 0x7000'0000;
    size_t budget = SIZE_MAX;

    uint64_t* table(uint64_t phys) { return tables.at(phys)->data(); }
    vlibos::Result<uint64_t, EptError> allocate_table()
    {
        if (budget == 0)
            return vlibos::fail(EptError::OutOfMemory);
        --budget;
        uint64_t phys = next_phys;
        next_phys += KiB4;
        tables[phys] = std::make_unique<std::array<uint64_t, EPT_ENTRIES>>();
        tables[phys]->fill(0);
        return phys;
    }
};

struct Fixture {
    FakeMemory memory;
    uint64_t root = memory.allocate_table().value();
    Ept<FakeMemory> ept{memory, root, EptCapabilities{}};
};

} // namespace

TEST_CASE("EPT leaf and link entries follow SDM Tables 29-1 to 29-6", "[vmx]")
{
    // 4 KiB leaf: RWX bits, WB memory type in bits 5:3, no large-page bit.
    CHECK(make_ept_leaf(0x1234000, 0, RWX) == (0x1234000 | 0x7 | (6 << 3)));
    // Read-only 2 MiB leaf: bit 7 set.
    CHECK(make_ept_leaf(0x400000, 1, RO) == (0x400000 | 0x1 | (6 << 3) | (1 << 7)));
    CHECK(make_ept_leaf(GiB1, 2, RX) == (GiB1 | 0x5 | (6 << 3) | (1 << 7)));
    // Links allow everything and have no memory type.
    CHECK(make_ept_link(0x5000) == (0x5000 | 0x7));
    // EPTP: WB (6) and page-walk length 4 encoded as 3 in bits 5:3.
    CHECK(make_eptp(0x9000) == (0x9000 | 6 | (3 << 3)));
}

TEST_CASE("EPT picks the largest page that GPA, HPA and size alignment allow", "[vmx]")
{
    EptCapabilities all{};
    CHECK(ept_leaf_level(0, 0, GiB1, all) == 2);
    CHECK(ept_leaf_level(0, 0, GiB1 - KiB4, all) == 1);
    CHECK(ept_leaf_level(0, MiB2, GiB1, all) == 1);       // HPA only 2 MiB aligned
    CHECK(ept_leaf_level(MiB2, 0, 4 * MiB2, all) == 1);   // GPA only 2 MiB aligned
    CHECK(ept_leaf_level(KiB4, 0, GiB1, all) == 0);
    CHECK(ept_leaf_level(0, KiB4, GiB1, all) == 0);
    CHECK(ept_leaf_level(0, 0, MiB2 - KiB4, all) == 0);
    EptCapabilities no_1g{true, false, true};
    CHECK(ept_leaf_level(0, 0, GiB1, no_1g) == 1);
    EptCapabilities none{false, false, true};
    CHECK(ept_leaf_level(0, 0, GiB1, none) == 0);
}

TEST_CASE("EPT maps a region with mixed page sizes and translates it", "[vmx]")
{
    Fixture f;
    // 4 KiB head, then 2 MiB pages, then a 4 KiB tail: GPA 0x1ff000..0x601000 -> HPA 0x41ff000.
    REQUIRE(f.ept.map(0x1ff000, 0x41ff000, 0x402000, RWX).ok());
    auto head = f.ept.translate(0x1ff123);
    REQUIRE(head.ok());
    CHECK(head.value().hpa == 0x41ff123);
    CHECK(head.value().page_size == KiB4);
    auto middle = f.ept.translate(0x300000);
    REQUIRE(middle.ok());
    CHECK(middle.value().hpa == 0x4300000);
    CHECK(middle.value().page_size == MiB2);
    auto tail = f.ept.translate(0x600fff);
    REQUIRE(tail.ok());
    CHECK(tail.value().hpa == 0x4600fff);
    CHECK(tail.value().page_size == KiB4);
    CHECK(f.ept.translate(0x601000).error() == EptError::NotMapped);
    CHECK(f.ept.translate(0x1fe000).error() == EptError::NotMapped);
}

TEST_CASE("EPT uses 1 GiB pages and keeps per-region rights", "[vmx]")
{
    Fixture f;
    REQUIRE(f.ept.map(GiB1, 2 * GiB1, GiB1, RWX).ok());
    REQUIRE(f.ept.map(0x200000, 0x800000, KiB4, RO).ok());
    auto big = f.ept.translate(GiB1 + 0x12345);
    REQUIRE(big.ok());
    CHECK(big.value().page_size == GiB1);
    CHECK(big.value().hpa == 2 * GiB1 + 0x12345);
    auto ro = f.ept.translate(0x200010);
    REQUIRE(ro.ok());
    CHECK(ro.value().access == RO);
    CHECK((ro.value().entry & ept::WRITE) == 0);
    // PML4 + PDPT (shared), then PD + PT for the read-only page.
    CHECK(f.memory.tables.size() == 4);
}

TEST_CASE("EPT refuses what it cannot express", "[vmx]")
{
    Fixture f;
    CHECK(f.ept.map(0, 0, 0, RWX).error() == EptError::Empty);
    CHECK(f.ept.map(0x800, 0, KiB4, RWX).error() == EptError::Unaligned);
    CHECK(f.ept.map(0, 0, KiB4, GuestAccess{false, true, false}).error() == EptError::WriteWithoutRead);
    CHECK(f.ept.map(0, 0, KiB4, GuestAccess{false, false, false}).error() == EptError::NoAccess);
    CHECK(f.ept.map(EPT_GUEST_LIMIT - KiB4, 0, 2 * KiB4, RWX).error() == EptError::TooHigh);
    Ept<FakeMemory> no_xo(f.memory, f.root, EptCapabilities{true, true, false});
    CHECK(no_xo.map(0, 0, KiB4, GuestAccess{false, false, true}).error() == EptError::ExecuteOnlyUnsupported);
    REQUIRE(f.ept.map(0, 0, MiB2, RWX).ok());
    CHECK(f.ept.map(0x1000, 0x1000, KiB4, RWX).error() == EptError::AlreadyMapped);
}

TEST_CASE("EPT reports running out of tables", "[vmx]")
{
    Fixture f;
    f.memory.budget = 1;
    CHECK(f.ept.map(0, 0, KiB4, RWX).error() == EptError::OutOfMemory);
}

TEST_CASE("EPT maps a whole guest memory map", "[vmx]")
{
    GuestMemory memory;
    auto any_host = [](uint64_t, uint64_t) { return true; };
    REQUIRE(memory.add(GuestRegion{0, 0x400000, MiB2, RWX}, any_host).ok());
    REQUIRE(memory.add(GuestRegion{MiB2, 0x600000, KiB4, RO}, any_host).ok());
    Fixture f;
    REQUIRE(f.ept.map_all(memory).ok());
    CHECK(f.ept.translate(0x8000).value().hpa == 0x408000);
    CHECK(f.ept.translate(0x8000).value().page_size == MiB2);
    CHECK(f.ept.translate(MiB2).value().access == RO);
    CHECK(f.ept.translate(MiB2 + KiB4).error() == EptError::NotMapped);
}

#include "vmm/guest_msrs.hpp"

#include <catch2/catch.hpp>

using vlibos::vmm::GuestMsrs;

TEST_CASE("Guest MSRs: what Linux reads unguarded has PC values", "[vmm][msr]")
{
    GuestMsrs bsp(true), ap(false);
    uint64_t v = 0;
    REQUIRE(bsp.read(GuestMsrs::kApicBase, v));
    CHECK(v == 0xfee00900);
    REQUIRE(ap.read(GuestMsrs::kApicBase, v));
    CHECK(v == 0xfee00800);
    REQUIRE(bsp.read(GuestMsrs::kMiscEnable, v));
    CHECK((v & (1ull << 34)) == 0);  // XD not disabled
    REQUIRE(bsp.read(GuestMsrs::kPat, v));
    CHECK(v == GuestMsrs::kPatPowerOn);
    CHECK_FALSE(bsp.read(0x10, v));     // TSC: not emulated here
    CHECK_FALSE(bsp.read(0x6e0, v));    // TSC deadline: the LAPIC's
}

TEST_CASE("Guest MSRs: writes keep the APIC where it is and PAT legal", "[vmm][msr]")
{
    GuestMsrs bsp(true);
    CHECK(bsp.write(GuestMsrs::kApicBase, 0xfee00900));
    CHECK_FALSE(bsp.write(GuestMsrs::kApicBase, 0xfee00d00));  // x2APIC enable
    CHECK_FALSE(bsp.write(GuestMsrs::kApicBase, 0xfec00900));  // moved
    CHECK_FALSE(bsp.write(GuestMsrs::kApicBase, 0xfee00100));  // disabled
    uint64_t linux_pat = 0x0007'0106'0007'0406;  // Linux's: WB WC UC- UC WB WC UC- UC
    CHECK(bsp.write(GuestMsrs::kPat, linux_pat));
    uint64_t v = 0;
    REQUIRE(bsp.read(GuestMsrs::kPat, v));
    CHECK(v == linux_pat);
    CHECK_FALSE(bsp.write(GuestMsrs::kPat, 0x0002'0000'0000'0000));  // reserved type 2
    CHECK_FALSE(bsp.write(GuestMsrs::kPat, 0x0800'0000'0000'0000));  // type > 7
    REQUIRE(bsp.read(GuestMsrs::kPat, v));
    CHECK(v == linux_pat);  // a refused write changes nothing
    CHECK_FALSE(bsp.write(0xc0010117, 0));  // VM_HSAVE_PA: never the guest's
}

#include "vmm/msr_policy.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace vlibos::vmm;

TEST_CASE("msr: every access is refused with #GP(0)", "[vmm][msr]")
{
    MsrPolicy p;
    for (uint32_t index : {0x0u, 0x10u, 0x1bu, 0x3au, 0x480u, 0x800u, 0x80bu, 0x8ffu, 0x900u,
                           0xc000'0080u, 0xc000'0081u, 0xc000'0100u, 0xffff'ffffu}) {
        for (MsrVerdict v : {p.read(index), p.write(index, ~0ull)}) {
            CHECK(v.vector == 13);
            CHECK(v.has_error_code);
            CHECK(v.error_code == 0);
            CHECK(v.reason == MsrPolicy::classify(index));
        }
        CHECK(p.last_index() == index);
    }
    CHECK(p.total() == 26);
}

TEST_CASE("msr: counts per reason and direction", "[vmm][msr]")
{
    MsrPolicy p;
    CHECK(MsrPolicy::classify(0x7ff) == MsrReason::Other);
    CHECK(MsrPolicy::classify(0x800) == MsrReason::X2apic);
    CHECK(MsrPolicy::classify(0x8ff) == MsrReason::X2apic);
    CHECK(MsrPolicy::classify(0x900) == MsrReason::Other);
    CHECK(MsrPolicy::classify(0xc000'0080) == MsrReason::Efer);
    CHECK(MsrPolicy::classify(0x1b) == MsrReason::Other);  // IA32_APIC_BASE: not emulated either

    (void)p.read(0x802);
    (void)p.read(0x830);
    (void)p.write(0x80b, 0);
    (void)p.write(0xc000'0080, 0x500);
    (void)p.read(0x10);
    (void)p.read(0x10);
    (void)p.write(0x10, 1);
    CHECK(p.reads(MsrReason::X2apic) == 2);
    CHECK(p.writes(MsrReason::X2apic) == 1);
    CHECK(p.reads(MsrReason::Efer) == 0);
    CHECK(p.writes(MsrReason::Efer) == 1);
    CHECK(p.reads(MsrReason::Other) == 2);
    CHECK(p.writes(MsrReason::Other) == 1);
    CHECK(p.total() == 7);
    CHECK(p.last_index() == 0x10);

    CHECK(std::string(msr_reason_name(MsrReason::X2apic)) == "x2apic");
    CHECK(std::string(msr_reason_name(MsrReason::Efer)) == "efer");
    CHECK(std::string(msr_reason_name(MsrReason::Other)) == "other");
}

#include "vmm/cpuid_policy.hpp"
#include "vmm/hypercall.hpp"

#include <catch2/catch.hpp>

#include <cstring>
#include <string>

using namespace vlibos::vmm;
using namespace vlibos::vmm::cpuid;

namespace {
constexpr CpuidResult kAllOnes{~0u, ~0u, ~0u, ~0u};
constexpr CpuidResult kSample{0x1234'5678, 0x9abc'def0, 0x0f0f'0f0f, 0xa5a5'a5a5};
}

TEST_CASE("cpuid: leaf 1 hides VMX, MONITOR, PDCM, x2APIC, TSC-deadline; sets hypervisor; APIC ID 0", "[vmm][cpuid]")
{
    for (Vendor v : {Vendor::Intel, Vendor::Amd}) {
        CpuidResult r = filter_cpuid(1, 0, kAllOnes, v);
        CHECK((r.ecx & (1u << 5)) == 0);   // VMX
        CHECK((r.ecx & (1u << 3)) == 0);   // MONITOR
        CHECK((r.ecx & (1u << 15)) == 0);  // PDCM
        CHECK((r.ecx & (1u << 21)) == 0);  // x2APIC
        CHECK((r.ecx & (1u << 24)) == 0);  // TSC-deadline
        CHECK((r.ecx & (1u << 31)) != 0);  // hypervisor present
        CHECK((r.ecx & (7u << 26)) == 0);  // XSAVE, OSXSAVE, AVX
        CHECK(r.ecx == (~0u & ~((1u << 5) | (1u << 3) | (1u << 15) | (1u << 21) | (1u << 24) | (7u << 26))));
        CHECK(r.ebx == 0x00ff'ffffu);       // initial APIC ID 0, the rest kept
        CHECK(r.eax == ~0u);
        CHECK(r.edx == ~0u);

        CpuidResult z = filter_cpuid(1, 0, {0, 0, 0, 0}, v);
        CHECK(z == CpuidResult{0, 0, kEcxHypervisor, 0});
    }
}

TEST_CASE("cpuid: hypervisor leaves", "[vmm][cpuid]")
{
    for (Vendor v : {Vendor::Intel, Vendor::Amd}) {
        CpuidResult sig = filter_cpuid(0x4000'0000, 0, kSample, v);
        CHECK(sig.eax == 0x4000'0001);
        char text[13] = {};
        std::memcpy(text + 0, &sig.ebx, 4);
        std::memcpy(text + 4, &sig.ecx, 4);
        std::memcpy(text + 8, &sig.edx, 4);
        CHECK(std::string(text) == "vlibosvlibos");

        CpuidResult itf = filter_cpuid(0x4000'0001, 0, kSample, v);
        CHECK(itf.eax == 1);
        CHECK(itf.ebx == (v == Vendor::Intel ? 1u : 2u));
        CHECK(itf.ecx == 0);
        CHECK(itf.edx == 0);

        for (uint32_t leaf : {0x4000'0002u, 0x4000'0003u, 0x4000'0100u, 0x4fff'ffffu})
            CHECK(filter_cpuid(leaf, 0, kAllOnes, v) == CpuidResult{0, 0, 0, 0});
        // Just outside the range: passed through.
        CHECK(filter_cpuid(0x3fff'ffff, 0, kSample, v) == kSample);
        CHECK(filter_cpuid(0x5000'0000, 0, kSample, v) == kSample);
    }
    CHECK(filter_cpuid(0x4000'0001, 0, kSample, Vendor::Intel).ebx ==
          static_cast<uint32_t>(vlibos::vmm::hypercall::Instruction::Vmcall));
}

TEST_CASE("cpuid: SVM, MONITORX and the AMD PMU are hidden in 0x80000001; 0x8000000a is empty", "[vmm][cpuid]")
{
    CpuidResult r = filter_cpuid(0x8000'0001, 0, kAllOnes, Vendor::Amd);
    CHECK((r.ecx & (1u << 2)) == 0);
    CHECK((r.ecx & (1u << 23)) == 0);
    CHECK((r.ecx & (1u << 29)) == 0);
    CHECK(r.ecx == (~0u & ~((1u << 2) | (1u << 23) | (1u << 29))));
    CHECK(r.eax == ~0u);
    CHECK(r.ebx == ~0u);
    CHECK(r.edx == (~0u & ~(1u << 27)));  // RDTSCP
    CHECK(filter_cpuid(0x8000'000a, 0, kAllOnes, Vendor::Amd) == CpuidResult{0, 0, 0, 0});
    CHECK(filter_cpuid(0x8000'000a, 0, kAllOnes, Vendor::Intel) == CpuidResult{0, 0, 0, 0});
}

TEST_CASE("cpuid: MWAIT and PMU leaves are empty; topology reads vCPU 0", "[vmm][cpuid]")
{
    for (Vendor v : {Vendor::Intel, Vendor::Amd}) {
        CHECK(filter_cpuid(0x5, 0, kAllOnes, v) == CpuidResult{0, 0, 0, 0});
        CHECK(filter_cpuid(0xa, 0, kAllOnes, v) == CpuidResult{0, 0, 0, 0});
        for (uint32_t sub : {0u, 1u, 2u}) {
            CHECK(filter_cpuid(0xb, sub, kSample, v) == CpuidResult{kSample.eax, kSample.ebx, kSample.ecx, 0});
            CHECK(filter_cpuid(0x1f, sub, kSample, v) == CpuidResult{kSample.eax, kSample.ebx, kSample.ecx, 0});
        }
    }
    CHECK(filter_cpuid(0x8000'001e, 0, kSample, Vendor::Amd) == CpuidResult{0, kSample.ebx, kSample.ecx, kSample.edx});
    CHECK(filter_cpuid(0x8000'001e, 0, kSample, Vendor::Intel) == kSample);
}

TEST_CASE("cpuid: other leaves pass through unchanged", "[vmm][cpuid]")
{
    // Leaf 7 beyond subleaf 0 is untouched (subleaf 0 loses INVPCID: see below).
    for (Vendor v : {Vendor::Intel, Vendor::Amd})
        for (uint32_t sub : {1u, 0xffff'ffffu})
            CHECK(filter_cpuid(0x7, sub, kAllOnes, v) == kAllOnes);
    for (Vendor v : {Vendor::Intel, Vendor::Amd})
        for (uint32_t leaf : {0x0u, 0x2u, 0x4u, 0xdu, 0x8000'0000u, 0x8000'0008u, 0xffff'ffffu})
            for (uint32_t sub : {0u, 1u, 0xffff'ffffu}) {
                CHECK(filter_cpuid(leaf, sub, kSample, v) == kSample);
                CHECK(filter_cpuid(leaf, sub, kAllOnes, v) == kAllOnes);
            }
}

TEST_CASE("CPUID policy: instructions the VMX backend does not enable are not offered", "[vmm][cpuid]")
{
    using namespace vlibos::vmm;
    for (Vendor vendor : {Vendor::Intel, Vendor::Amd}) {
        CpuidResult leaf7 = filter_cpuid(cpuid::kLeafStructuredFeatures, 0, CpuidResult{0, ~0u, ~0u, ~0u}, vendor);
        CHECK((leaf7.ebx & cpuid::kEbxInvpcid) == 0);
        CHECK((leaf7.ebx & ~cpuid::kEbxInvpcid) == ~cpuid::kEbxInvpcid);  // the rest passes
        CpuidResult leaf1 = filter_cpuid(cpuid::kLeafFeatures, 0, CpuidResult{0, 0, ~0u, ~0u}, vendor);
        CHECK((leaf1.ecx & (cpuid::kEcxXsave | cpuid::kEcxOsxsave | cpuid::kEcxAvx)) == 0);
        CpuidResult ext = filter_cpuid(cpuid::kLeafExtFeatures, 0, CpuidResult{0, 0, 0, ~0u}, vendor);
        CHECK((ext.edx & cpuid::kExtEdxRdtscp) == 0);
    }
}

TEST_CASE("cpuid: a VM with the virtual LAPIC sees TSC-deadline, ARAT and its own APIC ID", "[vmm][cpuid]")
{
    using namespace vlibos::vmm;
    for (Vendor v : {Vendor::Intel, Vendor::Amd}) {
        GuestCpu plain{v, 0, false};
        GuestCpu lapic{v, 1, true};
        // Without the virtual LAPIC: no TSC-deadline, leaf 6 empty, APIC ID 0.
        CHECK((filter_cpuid(1, 0, kAllOnes, plain).ecx & cpuid::kEcxTscDeadline) == 0);
        CHECK(filter_cpuid(6, 0, kAllOnes, plain) == CpuidResult{0, 0, 0, 0});
        // With it: TSC-deadline even if the host lacks it, ARAT alone in leaf 6, x2APIC still hidden.
        CpuidResult f = filter_cpuid(1, 0, {0, 0, 0, 0}, lapic);
        CHECK((f.ecx & cpuid::kEcxTscDeadline) != 0);
        CHECK((filter_cpuid(1, 0, kAllOnes, lapic).ecx & cpuid::kEcxX2apic) == 0);
        CHECK(f.ebx >> 24 == 1u);
        CHECK(filter_cpuid(6, 0, kAllOnes, lapic) == CpuidResult{cpuid::kEaxArat, 0, 0, 0});
        CHECK(filter_cpuid(0xb, 0, kSample, lapic).edx == 1u);
    }
    CHECK(filter_cpuid(0x8000'001e, 0, kSample, GuestCpu{Vendor::Amd, 1, true}).eax == 1u);
}

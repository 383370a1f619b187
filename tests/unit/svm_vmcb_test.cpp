// VMCB layout, intercept bits, permission maps and the software consistency check (AMD SVM).
#include "vmm/svm/permission_maps.hpp"
#include "vmm/svm/vmcb.hpp"
#include "vmm/svm/vmcb_check.hpp"

#include <catch2/catch.hpp>

#include <cstring>
#include <memory>
#include <vector>

using namespace vlibos::svm;

namespace {

constexpr CpuLimits kCpu{16, 48, true};

// A VMCB that passes every check: the state prepare() loads for a real-mode start.
std::unique_ptr<Vmcb> valid_vmcb()
{
    auto v = std::make_unique<Vmcb>();
    std::memset(v.get(), 0, sizeof(Vmcb));
    set_intercept(*v, Intercept::Vmrun, true);
    set_intercept(*v, Intercept::IoioProt, true);
    set_intercept(*v, Intercept::MsrProt, true);
    v->control.iopm_base_pa = 0x100000;
    v->control.msrpm_base_pa = 0x104000;
    v->control.guest_asid = 1;
    v->control.nested_ctl = nested_ctl::kNpEnable;
    v->control.nested_cr3 = 0x200000;
    v->save.efer = efer::kSvmEnable;
    v->save.cr0 = 0x10;
    v->save.dr6 = 0xffff0ff0;
    v->save.dr7 = 0x400;
    v->save.rflags = 2;
    v->save.g_pat = 0x0007040600070406;
    return v;
}

} // namespace

TEST_CASE("VMCB fields sit where APM Vol. 2 Appendix B puts them", "[svm]")
{
    // The static_asserts in vmcb.hpp already pin every offset; spot-check a few at run time too.
    Vmcb v{};
    auto at = [&](const void* field) { return static_cast<const char*>(field) - reinterpret_cast<const char*>(&v); };
    CHECK(sizeof(Vmcb) == 4096);
    CHECK(at(&v.control.exit_code) == 0x70);
    CHECK(at(&v.control.nested_cr3) == 0xb0);
    CHECK(at(&v.control.next_rip) == 0xc8);
    CHECK(at(&v.save.cs) == 0x410);
    CHECK(at(&v.save.efer) == 0x4d0);
    CHECK(at(&v.save.rip) == 0x578);
    CHECK(at(&v.save.rax) == 0x5f8);
    CHECK(at(&v.save.g_pat) == 0x668);
}

TEST_CASE("Intercept bits land in the right word and bit", "[svm]")
{
    Vmcb v{};
    std::memset(&v, 0, sizeof v);
    set_intercept(v, Intercept::Intr, true);
    set_intercept(v, Intercept::Cpuid, true);
    set_intercept(v, Intercept::Shutdown, true);
    set_intercept(v, Intercept::Vmrun, true);
    set_intercept(v, Intercept::Vmmcall, true);
    CHECK(v.control.intercepts[3] == ((1u << 0) | (1u << 18) | (1u << 31)));  // offset 00Ch
    CHECK(v.control.intercepts[4] == ((1u << 0) | (1u << 1)));                // offset 010h
    set_intercept(v, Intercept::Cpuid, false);
    CHECK_FALSE(has_intercept(v, Intercept::Cpuid));
    CHECK(has_intercept(v, Intercept::Shutdown));
    CHECK(intercept_mask(Intercept::Hlt) == (1u << 24));
    CHECK(intercept_word(Intercept::Clgi) == 4);
    CHECK(intercept_mask(Intercept::Clgi) == (1u << 5));
    // INVD (word 3 bit 22), WBINVD and XSETBV (word 4 bits 9 and 13): APM Table B-1.
    CHECK(intercept_word(Intercept::Invd) == 3);
    CHECK(intercept_mask(Intercept::Invd) == (1u << 22));
    CHECK(intercept_word(Intercept::Wbinvd) == 4);
    CHECK(intercept_mask(Intercept::Wbinvd) == (1u << 9));
    CHECK(intercept_word(Intercept::Xsetbv) == 4);
    CHECK(intercept_mask(Intercept::Xsetbv) == (1u << 13));
    CHECK(intercept_mask(Intercept::Nmi) == (1u << 1));
}

TEST_CASE("Exception intercepts are the word at offset 008h, one bit per vector", "[svm]")
{
    Vmcb v{};
    std::memset(&v, 0, sizeof v);
    set_exception_intercept(v, exception_vector::kDebug, true);
    set_exception_intercept(v, exception_vector::kAlignmentCheck, true);
    CHECK(v.control.intercepts[2] == ((1u << 1) | (1u << 17)));
    CHECK(offsetof(Vmcb, control.intercepts) + 2 * sizeof(uint32_t) == 0x008);
    CHECK(has_exception_intercept(v, 1));
    CHECK(has_exception_intercept(v, 17));
    CHECK_FALSE(has_exception_intercept(v, 13));
    set_exception_intercept(v, 32, true);  // not an exception vector: ignored
    CHECK(v.control.intercepts[2] == ((1u << 1) | (1u << 17)));
    CHECK(v.control.intercepts[1] == 0);
    CHECK(v.control.intercepts[3] == 0);
    set_exception_intercept(v, exception_vector::kDebug, false);
    CHECK(v.control.intercepts[2] == (1u << 17));
}

TEST_CASE("MSR permission map bit positions follow APM Table 15-11", "[svm]")
{
    CHECK(msrpm_bit(0x0).byte == 0);
    CHECK(msrpm_bit(0x0).bit == 0);
    CHECK(msrpm_bit(0x1b).byte == 6);  // IA32_APIC_BASE: bit 54
    CHECK(msrpm_bit(0x1b).bit == 6);
    CHECK(msrpm_bit(0x1fff).byte == 0x7ff);
    CHECK(msrpm_bit(0x1fff).bit == 6);
    CHECK(msrpm_bit(0xc0000080).byte == 0x820);  // EFER
    CHECK(msrpm_bit(0xc0000080).bit == 0);
    CHECK(msrpm_bit(0xc0010117).byte == 0x1000 + 0x117 * 2 / 8);
    CHECK(msrpm_bit(0xc0010117).bit == (0x117 * 2) % 8);
    CHECK_FALSE(msrpm_bit(0x2000).covered);
    CHECK_FALSE(msrpm_bit(0xc0002000).covered);
    CHECK_FALSE(msrpm_bit(0x40000000).covered);
}

TEST_CASE("The MSR map intercepts everything but EFER; the I/O map every port", "[svm]")
{
    std::vector<uint8_t> msrpm(kMsrpmBytes), iopm(kIopmBytes);
    const uint32_t pass[] = {0xc0000080};
    fill_msrpm(msrpm.data(), pass, 1);
    fill_iopm(iopm.data());
    CHECK(msrpm[0x820] == 0xfc);  // EFER read and write bits clear, its neighbours still intercepted
    size_t cleared = 0;
    for (size_t i = 0; i < msrpm.size(); ++i)
        cleared += msrpm[i] != 0xff;
    CHECK(cleared == 1);
    size_t intercepted = 0;
    for (uint8_t b : iopm)
        intercepted += b == 0xff;
    CHECK(intercepted == kIopmBytes);
}

TEST_CASE("A real-mode VMCB passes the software consistency check", "[svm]")
{
    auto v = valid_vmcb();
    CHECK(find_vmcb_inconsistency(*v, kCpu) == nullptr);
}

TEST_CASE("The consistency check names the field VMRUN would refuse", "[svm]")
{
    auto v = valid_vmcb();
    auto expect = [&](const char* words) {
        const char* problem = find_vmcb_inconsistency(*v, kCpu);
        REQUIRE(problem != nullptr);
        CHECK_THAT(problem, Catch::Contains(words));
        v = valid_vmcb();
    };

    v->save.efer = 0;
    expect("EFER.SVME");
    v->save.efer |= 1ull << 9;
    expect("EFER has a must-be-zero bit");
    v->save.cr0 = 0x10 | (1ull << 29);
    expect("CR0.NW");
    v->save.cr0 = 1ull << 32;
    expect("CR0 bits 63:32");
    v->save.cr4 = 1ull << 40;
    expect("CR4 bits 63:32");
    v->save.dr6 = 1ull << 33;
    expect("DR6");
    v->save.dr7 = 1ull << 33;
    expect("DR7");
    v->save.efer |= efer::kLongModeEnable;
    v->save.cr0 |= (1ull << 31) | 1;
    expect("CR4.PAE");
    v->save.efer |= efer::kLongModeEnable;
    v->save.cr0 |= 1ull << 31;
    v->save.cr4 = 1ull << 5;
    expect("CR0.PE");
    v->save.efer |= efer::kLongModeEnable | efer::kLongModeActive;
    v->save.cr0 |= (1ull << 31) | 1;
    v->save.cr4 = 1ull << 5;
    v->save.cs.attrib = seg_attr::kLong | seg_attr::kDefaultBig;
    expect("CS.L and CS.D");
    v->save.efer |= efer::kLongModeActive;
    v->save.cr3 = 1ull << 50;
    expect("CR3");
    set_intercept(*v, Intercept::Vmrun, false);
    expect("VMRUN intercept");
    v->control.msrpm_base_pa = (1ull << 48) - 4096;
    expect("MSRPM_BASE_PA");
    v->control.iopm_base_pa = 0x100800;
    expect("IOPM_BASE_PA");
    v->control.guest_asid = 0;
    expect("ASID is 0");
    v->control.guest_asid = 16;
    expect("number of ASIDs");
    v->control.event_inj = event::kValid | (5ull << event::kTypeShift);
    expect("reserved event type");
    v->control.event_inj = event::kValid | event::kTypeException | 2;
    expect("vector 2");
    v->control.nested_cr3 = 1ull << 60;
    expect("nCR3");
    v->save.g_pat = 0x0007040600070402;
    expect("reserved memory type");
    v->save.g_pat = 0x0007040600070446;
    expect("G_PAT has a reserved bit");

    CpuLimits no_long_mode{16, 48, false};
    v->save.efer |= efer::kLongModeEnable;
    const char* problem = find_vmcb_inconsistency(*v, no_long_mode);
    REQUIRE(problem != nullptr);
    CHECK_THAT(problem, Catch::Contains("no long mode"));
}

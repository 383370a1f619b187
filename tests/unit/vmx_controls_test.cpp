#include "vmm/vmx/controls.hpp"
#include "vmm/vmx/guest_state_check.hpp"
#include "vmm/vmx/vmcs.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace vlibos::vmm::vmx;

namespace {

// Bochs 2.7 corei7_skylake_x: IA32_VMX_PROCBASED_CTLS2 high word (platform.md) and typical fixed bits.
constexpr uint64_t kSecondaryCap = 0x02177fffull << 32;
constexpr uint64_t kCr0Fixed0 = 0x80000021;  // PG, NE, PE
constexpr uint64_t kCr0Fixed1 = 0xffffffff;
constexpr uint64_t kCr4Fixed0 = 0x2000;      // VMXE
constexpr uint64_t kCr4Fixed1 = 0x3767ff;

GuestState real_mode_state()
{
    namespace ar = access_rights;
    GuestState g;
    for (unsigned s = GuestState::Es; s <= GuestState::Gs; ++s)
        g.segment[s] = SegmentState{0, 0, 0xffff, ar::kRealModeData};
    g.segment[GuestState::Cs] = SegmentState{0x800, 0x8000, 0xffff, ar::kRealModeCode};
    g.segment[GuestState::Tr] = SegmentState{0, 0, 0xffff, ar::kBusyTss32};
    g.segment[GuestState::Ldtr] = SegmentState{0, 0, 0xffff, ar::kLdtPresent};
    g.cr0 = apply_fixed_bits(cr0::kExtensionType, guest_cr0_fixed0(kCr0Fixed0, true), kCr0Fixed1);
    g.cr4 = apply_fixed_bits(0, kCr4Fixed0, kCr4Fixed1);
    g.dr7 = kDr7Init;
    g.rflags = rflags::kFixedOne;
    g.gdtr_limit = g.idtr_limit = 0xffff;
    g.vmcs_link = ~0ull;
    g.entry_controls = entry_ctl::kLoadEfer | entry_ctl::kLoadDebugControls;
    g.unrestricted_guest = true;
    g.cr0_fixed0 = kCr0Fixed0;
    g.cr0_fixed1 = kCr0Fixed1;
    g.cr4_fixed0 = kCr4Fixed0;
    g.cr4_fixed1 = kCr4Fixed1;
    g.vmx_misc = misc::kActivityHlt | misc::kActivityShutdown;
    return g;
}

bool mentions(const char* message, const char* word)
{
    return message != nullptr && std::string(message).find(word) != std::string::npos;
}

} // namespace

TEST_CASE("VMX controls are fitted to the allowed-0 and allowed-1 settings", "[vmx]")
{
    // Bits 1 and 4 are forced to 1 (allowed-0); bit 31 may be 1, bit 30 may not.
    uint64_t cap = (uint64_t{0x80000000 | 0x12 | 0x80} << 32) | 0x12;
    AdjustedControls a = adjust_controls(cap, 0x80000000, 0x40000000);
    CHECK(a.value == 0x80000012);
    CHECK(a.missing == 0);
    AdjustedControls b = adjust_controls(cap, 0x40000080);
    CHECK(b.value == 0x92);
    CHECK(b.missing == 0x40000000);
    CHECK(controls_allowed(cap, 0x92));
    CHECK_FALSE(controls_allowed(cap, 0x80));        // misses a forced bit
    CHECK_FALSE(controls_allowed(cap, 0x40000012));  // sets a forbidden bit

    AdjustedControls s = adjust_controls(kSecondaryCap, secondary::kEnableEpt | secondary::kEnableVpid |
                                                            secondary::kUnrestrictedGuest);
    CHECK(s.missing == 0);
    CHECK(s.value == (secondary::kEnableEpt | secondary::kEnableVpid | secondary::kUnrestrictedGuest));
}

TEST_CASE("VMX fixed bits and the unrestricted-guest relaxation", "[vmx]")
{
    CHECK(apply_fixed_bits(0x10, kCr0Fixed0, kCr0Fixed1) == 0x80000031);
    CHECK(guest_cr0_fixed0(kCr0Fixed0, true) == 0x20);  // only NE is left
    CHECK(guest_cr0_fixed0(kCr0Fixed0, false) == kCr0Fixed0);
    CHECK(apply_fixed_bits(0x10, guest_cr0_fixed0(kCr0Fixed0, true), kCr0Fixed1) == 0x30);
    CHECK(apply_fixed_bits(1ull << 40, kCr4Fixed0, kCr4Fixed1) == 0x2000);
}

TEST_CASE("VMX-preemption timer value from TSC ticks", "[vmx]")
{
    CHECK(preemption_timer_value(1000, 0) == 1000);
    CHECK(preemption_timer_value(1024, 5) == 32);
    CHECK(preemption_timer_value(31, 5) == 0);
    CHECK(preemption_timer_value(~0ull, 0) == UINT32_MAX);
}

TEST_CASE("VMCS field encodings carry their width", "[vmx]")
{
    CHECK(width_of(Field::Vpid) == FieldWidth::Bits16);
    CHECK(width_of(Field::EptPointer) == FieldWidth::Bits64);
    CHECK(width_of(Field::ExitReason) == FieldWidth::Bits32);
    CHECK(width_of(Field::GuestRip) == FieldWidth::Natural);
    CHECK(width_of(Field::HostRip) == FieldWidth::Natural);
    CHECK(static_cast<uint32_t>(Field::GuestPreemptionTimer) == 0x482e);
    CHECK(static_cast<uint32_t>(Field::SecondaryProcessorControls) == 0x401e);
}

TEST_CASE("Interruption information encoding", "[vmx]")
{
    CHECK(interruption::make(0x20, interruption::Type::ExternalInterrupt, false) == 0x80000020);
    CHECK(interruption::make(13, interruption::Type::HardwareException, true) == 0x80000b0d);
    CHECK(interruption::exception_has_error_code(13));
    CHECK_FALSE(interruption::exception_has_error_code(6));
}

TEST_CASE("The real-mode guest state the backend writes passes the software checks", "[vmx]")
{
    CHECK(check_guest_state(real_mode_state()) == nullptr);
}

TEST_CASE("The software guest-state check names the broken field", "[vmx]")
{
    GuestState g = real_mode_state();
    g.cr0 &= ~cr0::kNumericError;
    CHECK(mentions(check_guest_state(g), "guest CR0"));

    g = real_mode_state();
    g.cr4 = 0;
    CHECK(mentions(check_guest_state(g), "guest CR4"));

    g = real_mode_state();
    g.unrestricted_guest = false;  // then PE and PG are required
    CHECK(mentions(check_guest_state(g), "guest CR0"));

    g = real_mode_state();
    g.rflags = 0;
    CHECK(mentions(check_guest_state(g), "RFLAGS: bit 1"));
    g.rflags = rflags::kFixedOne | (1 << 15);
    CHECK(mentions(check_guest_state(g), "RFLAGS: reserved"));

    g = real_mode_state();
    g.segment[GuestState::Cs].access_rights = 0x93 | (3 << 5);  // type-3 CS with DPL 3
    CHECK(mentions(check_guest_state(g), "guest CS access rights"));

    g = real_mode_state();
    g.segment[GuestState::Ds].access_rights = 0x92;  // not accessed
    CHECK(mentions(check_guest_state(g), "accessed"));

    g = real_mode_state();
    g.segment[GuestState::Ss].access_rights |= 3 << 5;  // SS.DPL 3 in real mode
    CHECK(mentions(check_guest_state(g), "SS's DPL"));  // caught by the CS/SS DPL rule first

    g = real_mode_state();
    g.segment[GuestState::Tr].access_rights = 0x89;  // available, not busy
    CHECK(mentions(check_guest_state(g), "guest TR access rights"));

    g = real_mode_state();
    g.segment[GuestState::Es].limit = 0xfffff;  // bits 11:0 all 1 and bit 31:20 clear: fine without G
    CHECK(check_guest_state(g) == nullptr);
    g.segment[GuestState::Es].limit = 0x100fff;  // bit 20 set needs G
    CHECK(mentions(check_guest_state(g), "G bit"));

    g = real_mode_state();
    g.activity = 3;  // wait-for-SIPI, not in vmx_misc
    CHECK(mentions(check_guest_state(g), "activity state"));

    g = real_mode_state();
    g.interruptibility = interruptibility::kBlockingBySti;  // with IF = 0
    CHECK(mentions(check_guest_state(g), "interruptibility"));

    g = real_mode_state();
    g.vmcs_link = 0;
    CHECK(mentions(check_guest_state(g), "VMCS link pointer"));
}

TEST_CASE("MSR bitmap positions follow SDM §25.6.9", "[vmx]")
{
    msr_bitmap::Position efer = msr_bitmap::read_position(0xc0000080);
    CHECK(efer.covered);
    CHECK(efer.byte == 1024 + 0x10);
    CHECK(efer.bit == 0);
    CHECK(efer.byte + msr_bitmap::kWriteDistance == 3072 + 0x10);
    msr_bitmap::Position apic_base = msr_bitmap::read_position(0x1b);
    CHECK(apic_base.covered);
    CHECK(apic_base.byte == 3);
    CHECK(apic_base.bit == 3);
    CHECK_FALSE(msr_bitmap::read_position(0x40000000).covered);
    CHECK_FALSE(msr_bitmap::read_position(0xc0002000).covered);
}

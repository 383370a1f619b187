// A software copy of the VM-entry guest-state checks (SDM Vol. 3 §27.3.1) that matter for the
// guests we start: a real-mode or protected-mode guest under "unrestricted guest", not in
// virtual-8086 mode, not IA-32e. Hardware reports any failure as "invalid guest state" (exit
// reason 33) and nothing more; this check runs before the first entry and names the field.
// Pure: the backend fills GuestState from the VMCS.
#pragma once

#include <stdint.h>

#include "vmm/vmx/controls.hpp"
#include "vmm/vmx/vmx_arch.hpp"

namespace vlibos::vmm::vmx {

struct SegmentState {
    uint16_t selector = 0;
    uint64_t base = 0;
    uint32_t limit = 0;
    uint32_t access_rights = 0;
};

struct GuestState {
    // Segments in VMCS order.
    enum : unsigned { Es, Cs, Ss, Ds, Fs, Gs, Ldtr, Tr, SegmentCount };
    SegmentState segment[SegmentCount];
    uint64_t cr0 = 0, cr3 = 0, cr4 = 0, dr7 = 0, efer = 0, rip = 0, rflags = 0;
    uint32_t gdtr_limit = 0, idtr_limit = 0;
    uint64_t gdtr_base = 0, idtr_base = 0;
    uint32_t activity = 0, interruptibility = 0;
    uint64_t vmcs_link = 0;
    uint32_t entry_interruption = 0;  // VM-entry interruption information
    // Controls and capabilities the checks depend on.
    uint32_t entry_controls = 0;
    bool unrestricted_guest = false;
    uint64_t cr0_fixed0 = 0, cr0_fixed1 = 0, cr4_fixed0 = 0, cr4_fixed1 = 0;
    uint64_t vmx_misc = 0;
};

constexpr const char* kSegmentNames[GuestState::SegmentCount] = {"ES", "CS", "SS", "DS", "FS", "GS", "LDTR", "TR"};

namespace guest_check_detail {
constexpr bool canonical(uint64_t v) { return static_cast<uint64_t>(static_cast<int64_t>(v << 16) >> 16) == v; }

// §27.3.1.2: if any of limit bits 11:0 is 0, G must be 0; if any of bits 31:20 is 1, G must be 1.
constexpr bool granularity_consistent(const SegmentState& s)
{
    bool g = (s.access_rights & access_rights::kGranularity) != 0;
    if ((s.limit & 0xfff) != 0xfff && g)
        return false;
    if ((s.limit & 0xfff00000) != 0 && !g)
        return false;
    return true;
}
} // namespace guest_check_detail

// Returns nullptr when the state passes, else a sentence naming the field and the rule.
constexpr const char* check_guest_state(const GuestState& g)
{
    using namespace guest_check_detail;
    namespace ar = access_rights;
    bool ia32e = (g.entry_controls & entry_ctl::kIa32eModeGuest) != 0;
    bool protected_mode = (g.cr0 & cr0::kProtectionEnable) != 0;

    // §27.3.1.1: control registers, debug registers and MSRs.
    uint64_t cr0_must_be_one = guest_cr0_fixed0(g.cr0_fixed0, g.unrestricted_guest);
    if ((g.cr0 & cr0_must_be_one) != cr0_must_be_one)
        return "guest CR0: a bit IA32_VMX_CR0_FIXED0 requires is 0 (SDM §27.3.1.1)";
    if ((g.cr0 & ~g.cr0_fixed1) != 0)
        return "guest CR0: a bit IA32_VMX_CR0_FIXED1 forbids is 1 (SDM §27.3.1.1)";
    if ((g.cr0 & cr0::kPaging) != 0 && !protected_mode)
        return "guest CR0: PG is 1 while PE is 0 (SDM §27.3.1.1)";
    if ((g.cr4 & g.cr4_fixed0) != g.cr4_fixed0)
        return "guest CR4: a bit IA32_VMX_CR4_FIXED0 requires is 0 (CR4.VMXE must be 1; SDM §27.3.1.1)";
    if ((g.cr4 & ~g.cr4_fixed1) != 0)
        return "guest CR4: a bit IA32_VMX_CR4_FIXED1 forbids is 1 (SDM §27.3.1.1)";
    if ((g.entry_controls & entry_ctl::kLoadDebugControls) != 0 && (g.dr7 >> 32) != 0)
        return "guest DR7: bits 63:32 must be 0 (SDM §27.3.1.1)";
    if ((g.entry_controls & entry_ctl::kLoadEfer) != 0) {
        if (((g.efer & efer::kLongModeActive) != 0) != ia32e)
            return "guest IA32_EFER: LMA differs from the \"IA-32e mode guest\" entry control (SDM §27.3.1.1)";
        if ((g.cr0 & cr0::kPaging) != 0 &&
            ((g.efer & efer::kLongModeActive) != 0) != ((g.efer & efer::kLongModeEnable) != 0))
            return "guest IA32_EFER: LMA differs from LME while CR0.PG is 1 (SDM §27.3.1.1)";
    }

    // §27.3.1.4: RIP and RFLAGS.
    if (!ia32e && (g.rip >> 32) != 0)
        return "guest RIP: bits 63:32 must be 0 outside IA-32e mode (SDM §27.3.1.4)";
    if ((g.rflags & rflags::kReservedZero) != 0)
        return "guest RFLAGS: reserved bits 63:22, 15, 5 or 3 are set (SDM §27.3.1.4)";
    if ((g.rflags & rflags::kFixedOne) == 0)
        return "guest RFLAGS: bit 1 must be 1 (SDM §27.3.1.4)";
    if ((ia32e || !protected_mode) && (g.rflags & rflags::kVirtual8086) != 0)
        return "guest RFLAGS: VM must be 0 in real mode or IA-32e mode (SDM §27.3.1.4)";
    if ((g.entry_interruption & interruption::kValid) != 0 &&
        interruption::type_of(g.entry_interruption) == interruption::Type::ExternalInterrupt &&
        (g.rflags & rflags::kInterruptEnable) == 0)
        return "guest RFLAGS: IF must be 1 to inject an external interrupt (SDM §27.3.1.4)";
    if ((g.rflags & rflags::kVirtual8086) != 0)
        return "guest RFLAGS: virtual-8086 mode is not supported by this monitor";

    // §27.3.1.2: segment registers (not virtual-8086 mode).
    const SegmentState& cs = g.segment[GuestState::Cs];
    const SegmentState& ss = g.segment[GuestState::Ss];
    const SegmentState& tr = g.segment[GuestState::Tr];
    const SegmentState& ldtr = g.segment[GuestState::Ldtr];
    constexpr uint16_t kTableIndicator = 1u << 2;
    if ((tr.selector & kTableIndicator) != 0)
        return "guest TR selector: TI must be 0 (SDM §27.3.1.2)";
    if ((ldtr.access_rights & ar::kUnusable) == 0 && (ldtr.selector & kTableIndicator) != 0)
        return "guest LDTR selector: TI must be 0 (SDM §27.3.1.2)";
    if (!g.unrestricted_guest && (ss.selector & 3) != (cs.selector & 3))
        return "guest SS selector: RPL must equal CS's RPL (SDM §27.3.1.2)";
    if (!canonical(tr.base) || !canonical(g.segment[GuestState::Fs].base) || !canonical(g.segment[GuestState::Gs].base))
        return "guest TR/FS/GS base: must be canonical (SDM §27.3.1.2)";
    if ((ldtr.access_rights & ar::kUnusable) == 0 && !canonical(ldtr.base))
        return "guest LDTR base: must be canonical (SDM §27.3.1.2)";
    if ((cs.base >> 32) != 0)
        return "guest CS base: bits 63:32 must be 0 (SDM §27.3.1.2)";
    constexpr unsigned kDataSegments[] = {GuestState::Ss, GuestState::Ds, GuestState::Es};
    for (unsigned s : kDataSegments)
        if ((g.segment[s].access_rights & ar::kUnusable) == 0 && (g.segment[s].base >> 32) != 0)
            return "guest SS/DS/ES base: bits 63:32 must be 0 (SDM §27.3.1.2)";

    // CS.
    uint32_t cs_type = ar::type(cs.access_rights);
    if ((cs.access_rights & ar::kUnusable) != 0)
        return "guest CS access rights: CS must be usable (SDM §27.3.1.2)";
    if (!(cs_type == 9 || cs_type == 11 || cs_type == 13 || cs_type == 15 ||
          (g.unrestricted_guest && cs_type == ar::kTypeDataReadWriteAccessed)))
        return "guest CS access rights: type must be an accessed code segment (9, 11, 13, 15), or 3 under unrestricted guest (SDM §27.3.1.2)";
    if (cs_type == ar::kTypeDataReadWriteAccessed && ar::dpl(cs.access_rights) != 0)
        return "guest CS access rights: DPL must be 0 for a type-3 CS (SDM §27.3.1.2)";
    if ((cs_type == 9 || cs_type == 11) && ar::dpl(cs.access_rights) != ar::dpl(ss.access_rights))
        return "guest CS access rights: DPL of a non-conforming CS must equal SS's DPL (SDM §27.3.1.2)";
    if ((cs_type == 13 || cs_type == 15) && ar::dpl(cs.access_rights) > ar::dpl(ss.access_rights))
        return "guest CS access rights: DPL of a conforming CS must not exceed SS's DPL (SDM §27.3.1.2)";
    if (ia32e && (cs.access_rights & ar::kLong) != 0 && (cs.access_rights & ar::kDefaultBig) != 0)
        return "guest CS access rights: L and D/B must not both be 1 (SDM §27.3.1.2)";

    // SS.
    if ((ss.access_rights & ar::kUnusable) == 0) {
        uint32_t t = ar::type(ss.access_rights);
        if (t != 3 && t != 7)
            return "guest SS access rights: type must be 3 or 7 (read/write accessed data) (SDM §27.3.1.2)";
    }
    if (g.unrestricted_guest && !protected_mode && ar::dpl(ss.access_rights) != 0)
        return "guest SS access rights: DPL must be 0 while CR0.PE is 0 (SDM §27.3.1.2)";
    if (!g.unrestricted_guest && ar::dpl(ss.access_rights) != (ss.selector & 3u))
        return "guest SS access rights: DPL must equal the selector's RPL (SDM §27.3.1.2)";

    // CS, SS, DS, ES, FS, GS when usable.
    for (unsigned s = GuestState::Es; s <= GuestState::Gs; ++s) {
        const SegmentState& seg = g.segment[s];
        if ((seg.access_rights & ar::kUnusable) != 0)
            continue;
        uint32_t t = ar::type(seg.access_rights);
        if ((t & ar::kTypeAccessed) == 0)
            return "guest segment access rights: type must have the accessed bit (bit 0) set (SDM §27.3.1.2)";
        if ((t & ar::kTypeCode) != 0 && (t & ar::kTypeReadableWritable) == 0 && s != GuestState::Cs)
            return "guest DS/ES/FS/GS access rights: a code segment there must be readable (SDM §27.3.1.2)";
        if ((seg.access_rights & ar::kCodeOrData) == 0)
            return "guest segment access rights: S must be 1 (code or data) (SDM §27.3.1.2)";
        if ((seg.access_rights & ar::kPresent) == 0)
            return "guest segment access rights: P must be 1 for a usable segment (SDM §27.3.1.2)";
        if ((seg.access_rights & (ar::kReserved11To8 | ar::kReserved31To17)) != 0)
            return "guest segment access rights: reserved bits 11:8 or 31:17 are set (SDM §27.3.1.2)";
        if (!granularity_consistent(seg))
            return "guest segment limit: inconsistent with the G bit (SDM §27.3.1.2)";
    }

    // TR.
    uint32_t tr_type = ar::type(tr.access_rights);
    if (ia32e ? tr_type != ar::kTypeTss32Busy : (tr_type != ar::kTypeTss16Busy && tr_type != ar::kTypeTss32Busy))
        return "guest TR access rights: type must be a busy TSS (3 or 11) (SDM §27.3.1.2)";
    if ((tr.access_rights & ar::kCodeOrData) != 0)
        return "guest TR access rights: S must be 0 (system segment) (SDM §27.3.1.2)";
    if ((tr.access_rights & ar::kPresent) == 0)
        return "guest TR access rights: P must be 1 (SDM §27.3.1.2)";
    if ((tr.access_rights & (ar::kReserved11To8 | ar::kReserved31To17)) != 0)
        return "guest TR access rights: reserved bits 11:8 or 31:17 are set (SDM §27.3.1.2)";
    if ((tr.access_rights & ar::kUnusable) != 0)
        return "guest TR access rights: TR must be usable (SDM §27.3.1.2)";
    if (!granularity_consistent(tr))
        return "guest TR limit: inconsistent with the G bit (SDM §27.3.1.2)";

    // LDTR when usable.
    if ((ldtr.access_rights & ar::kUnusable) == 0) {
        if (ar::type(ldtr.access_rights) != ar::kTypeLdt)
            return "guest LDTR access rights: type must be 2 (LDT) (SDM §27.3.1.2)";
        if ((ldtr.access_rights & ar::kCodeOrData) != 0)
            return "guest LDTR access rights: S must be 0 (SDM §27.3.1.2)";
        if ((ldtr.access_rights & ar::kPresent) == 0)
            return "guest LDTR access rights: P must be 1 (SDM §27.3.1.2)";
        if ((ldtr.access_rights & (ar::kReserved11To8 | ar::kReserved31To17)) != 0)
            return "guest LDTR access rights: reserved bits 11:8 or 31:17 are set (SDM §27.3.1.2)";
        if (!granularity_consistent(ldtr))
            return "guest LDTR limit: inconsistent with the G bit (SDM §27.3.1.2)";
    }

    // §27.3.1.3: descriptor-table registers.
    if (!canonical(g.gdtr_base) || !canonical(g.idtr_base))
        return "guest GDTR/IDTR base: must be canonical (SDM §27.3.1.3)";
    if ((g.gdtr_limit >> 16) != 0 || (g.idtr_limit >> 16) != 0)
        return "guest GDTR/IDTR limit: bits 31:16 must be 0 (SDM §27.3.1.3)";

    // §27.3.1.5: non-register state.
    if (g.activity > static_cast<uint32_t>(ActivityState::WaitForSipi))
        return "guest activity state: must be 0-3 (SDM §27.3.1.5)";
    if (g.activity != static_cast<uint32_t>(ActivityState::Active) &&
        (g.vmx_misc & (misc::kActivityHlt << (g.activity - 1))) == 0)
        return "guest activity state: not supported by this CPU (IA32_VMX_MISC bits 8:6) (SDM §27.3.1.5)";
    if (g.activity == static_cast<uint32_t>(ActivityState::Hlt) && ar::dpl(ss.access_rights) != 0)
        return "guest activity state: HLT needs SS.DPL 0 (SDM §27.3.1.5)";
    if ((g.interruptibility & interruptibility::kReserved) != 0)
        return "guest interruptibility state: reserved bits 31:5 are set (SDM §27.3.1.5)";
    if ((g.interruptibility & interruptibility::kBlockingBySti) != 0 &&
        (g.interruptibility & interruptibility::kBlockingByMovSs) != 0)
        return "guest interruptibility state: blocking by STI and by MOV SS are both set (SDM §27.3.1.5)";
    if ((g.rflags & rflags::kInterruptEnable) == 0 && (g.interruptibility & interruptibility::kBlockingBySti) != 0)
        return "guest interruptibility state: blocking by STI is set while RFLAGS.IF is 0 (SDM §27.3.1.5)";
    if (g.vmcs_link != ~uint64_t{0})
        return "VMCS link pointer: must be FFFFFFFF_FFFFFFFFH without VMCS shadowing (SDM §27.3.1.5)";
    return nullptr;
}

} // namespace vlibos::vmm::vmx

#include "vmm/cpuid_policy.hpp"

#include "vmm/hypercall.hpp"

namespace vlibos::vmm {

using namespace cpuid;

CpuidResult filter_cpuid(uint32_t leaf, uint32_t subleaf, CpuidResult host, const GuestCpu& guest)
{
    const Vendor vendor = guest.vendor;
    const uint32_t apic_id = guest.apic_id;
    (void)subleaf;  // the leaves with subleaves (0xb, 0x1f) are filtered the same for every subleaf
    CpuidResult r = host;

    if (leaf >= kLeafHypervisorFirst && leaf <= kLeafHypervisorLast) {
        // The host's answer for these leaves (if it runs under a hypervisor itself) never leaks.
        switch (leaf) {
        case hypercall::kCpuidSignatureLeaf:
            return {hypercall::kCpuidMaxLeaf, hypercall::kSignatureEbx, hypercall::kSignatureEcx,
                    hypercall::kSignatureEdx};
        case hypercall::kCpuidInterfaceLeaf: {
            auto insn = vendor == Vendor::Intel ? hypercall::Instruction::Vmcall : hypercall::Instruction::Vmmcall;
            return {static_cast<uint32_t>(hypercall::kAbiVersion), static_cast<uint32_t>(insn), 0, 0};
        }
        default:
            return {0, 0, 0, 0};
        }
    }

    switch (leaf) {
    case kLeafFeatures:
        // No nested virtualisation; no MONITOR/MWAIT (the guest would sleep without an exit);
        // no PMU; no x2APIC (the virtual LAPIC is xAPIC only); TSC-deadline only with the virtual
        // LAPIC, which emulates it whatever the host has; no XSAVE (XSETBV would write the
        // physical XCR0, so it exits and is not emulated yet), hence no AVX.
        r.ecx &= ~(kEcxVmx | kEcxMonitor | kEcxPdcm | kEcxX2apic | kEcxTscDeadline | kEcxXsave | kEcxOsxsave |
                   kEcxAvx);
        if (guest.virtual_lapic)
            r.ecx |= kEcxTscDeadline;
        r.ecx |= kEcxHypervisor;
        r.ebx = (r.ebx & ~kEbxInitialApicIdMask) | (apic_id << 24);
        break;
    case kLeafPowerManagement:
        // Only ARAT, and only for the virtual LAPIC: no host power-management features (HWP,
        // turbo, energy bias) whose MSRs the guest cannot reach.
        r = {guest.virtual_lapic ? kEaxArat : 0, 0, 0, 0};
        break;
    case kLeafStructuredFeatures:
        // INVPCID raises #UD in a VMX guest unless "enable INVPCID" is set, which the VMX backend
        // does not set; both backends offer the same CPU.
        if (subleaf == 0)
            r.ebx &= ~kEbxInvpcid;
        break;
    case kLeafMonitorMwait:
    case kLeafPerfMonitoring:
    case kLeafSvmFeatures:
        r = {0, 0, 0, 0};
        break;
    case kLeafTopology:
    case kLeafTopologyV2:
        r.edx = apic_id;  // the vCPU's x2APIC ID
        break;
    case kLeafExtFeatures:
        r.ecx &= ~(kExtEcxSvm | kExtEcxPerfCtrCore | kExtEcxMonitorx);
        r.edx &= ~kExtEdxRdtscp;  // #UD under VMX without "enable RDTSCP" (not set)
        break;
    case kLeafAmdTopology:
        if (vendor == Vendor::Amd)
            r.eax = apic_id;  // the vCPU's extended APIC ID
        break;
    default:
        break;
    }
    return r;
}

} // namespace vlibos::vmm

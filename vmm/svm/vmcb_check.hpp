// A software copy of the checks VMRUN makes before it loads a guest (APM Vol. 2 §15.5.1,
// "Canonicalization and Consistency Checks"). Run before the first VMRUN, and again after a
// VMEXIT_INVALID, so that a refused entry is reported with the field that is wrong instead of a
// bare -1. Pure: unit-tested on the host.
#pragma once

#include <stdint.h>

#include "vmm/svm/svm_cpu.hpp"
#include "vmm/svm/vmcb.hpp"
#include "vmm/svm/permission_maps.hpp"

namespace vlibos::svm {

// What the checks depend on that the VMCB does not say.
struct CpuLimits {
    uint32_t asid_count;         // CPUID 8000_000A EBX
    unsigned physical_bits;      // CPUID 8000_0008 EAX[7:0]
    bool long_mode;              // CPUID 8000_0001 EDX.LM
};

namespace check_bits {
constexpr uint64_t kCr0Pe = 1ull << 0;
constexpr uint64_t kCr0Nw = 1ull << 29;
constexpr uint64_t kCr0Cd = 1ull << 30;
constexpr uint64_t kCr0Pg = 1ull << 31;
constexpr uint64_t kCr4Pae = 1ull << 5;
constexpr uint64_t kHigh32 = 0xffff'ffff'0000'0000ull;  // CR0, CR4, DR6, DR7: bits 63:32 are MBZ
constexpr uint64_t kPageOffset = 0xfff;
// G_PAT: eight one-byte entries, each a memory type in bits 2:0 with bits 7:3 reserved;
// types 2 and 3 are reserved (APM Vol. 2 §7.8.1, Table 7-10).
constexpr uint64_t kPatReservedBits = 0xf8f8'f8f8'f8f8'f8f8ull;
constexpr unsigned kPatEntries = 8;
constexpr unsigned kPatEntryBits = 8;
constexpr uint64_t kPatTypeMask = 0x7;
constexpr uint64_t kPatReservedType2 = 2;
constexpr uint64_t kPatReservedType3 = 3;
constexpr uint64_t kMaxExceptionVector = 31;
constexpr uint64_t kNmiVector = 2;
} // namespace check_bits

// nullptr when every check passes, else a sentence naming the field that would make VMRUN
// exit with VMEXIT_INVALID.
inline const char* find_vmcb_inconsistency(const Vmcb& vmcb, const CpuLimits& cpu)
{
    using namespace check_bits;
    const StateSaveArea& s = vmcb.save;
    const ControlArea& c = vmcb.control;
    const uint64_t physical_mask = cpu.physical_bits >= 64 ? ~0ull : ~((1ull << cpu.physical_bits) - 1);

    if ((s.efer & efer::kSvmEnable) == 0)
        return "guest EFER.SVME is clear: the VMCB's EFER must have SVME set (APM §15.5.1)";
    if ((s.efer & ~efer::kDefined) != 0)
        return "guest EFER has a must-be-zero bit set";
    if ((s.cr0 & kCr0Cd) == 0 && (s.cr0 & kCr0Nw) != 0)
        return "guest CR0.NW is set while CR0.CD is clear";
    if ((s.cr0 & kHigh32) != 0)
        return "guest CR0 bits 63:32 are not zero";
    if ((s.efer & efer::kLongModeActive) != 0 && (s.cr3 & physical_mask) != 0)
        return "guest CR3 has bits set above the physical address width (long mode)";
    if ((s.cr4 & kHigh32) != 0)
        return "guest CR4 bits 63:32 are not zero";
    if ((s.dr6 & kHigh32) != 0)
        return "guest DR6 bits 63:32 are not zero";
    if ((s.dr7 & kHigh32) != 0)
        return "guest DR7 bits 63:32 are not zero";
    if (!cpu.long_mode && (s.efer & (efer::kLongModeEnable | efer::kLongModeActive)) != 0)
        return "guest EFER.LME or EFER.LMA is set but the CPU has no long mode";
    bool paging_long = (s.efer & efer::kLongModeEnable) != 0 && (s.cr0 & kCr0Pg) != 0;
    if (paging_long && (s.cr4 & kCr4Pae) == 0)
        return "guest EFER.LME and CR0.PG are set but CR4.PAE is clear";
    if (paging_long && (s.cr0 & kCr0Pe) == 0)
        return "guest EFER.LME and CR0.PG are set but CR0.PE is clear";
    if (paging_long && (s.cs.attrib & seg_attr::kLong) != 0 && (s.cs.attrib & seg_attr::kDefaultBig) != 0)
        return "guest EFER.LME, CR0.PG, CR4.PAE, CS.L and CS.D are all set";
    if (!has_intercept(vmcb, Intercept::Vmrun))
        return "the VMRUN intercept is clear: it must be set (APM §15.5.1)";
    if (has_intercept(vmcb, Intercept::MsrProt) &&
        ((c.msrpm_base_pa & kPageOffset) != 0 || ((c.msrpm_base_pa + kMsrpmBytes - 1) & physical_mask) != 0))
        return "MSRPM_BASE_PA is unaligned or the MSR permission map reaches beyond the physical address width";
    if (has_intercept(vmcb, Intercept::IoioProt) &&
        ((c.iopm_base_pa & kPageOffset) != 0 || ((c.iopm_base_pa + kIopmBytes - 1) & physical_mask) != 0))
        return "IOPM_BASE_PA is unaligned or the I/O permission map reaches beyond the physical address width";
    if (c.guest_asid == 0)
        return "guest ASID is 0, which is the host's";
    if (c.guest_asid >= cpu.asid_count)
        return "guest ASID is not below the number of ASIDs (CPUID 8000_000A EBX)";
    if ((c.event_inj & event::kValid) != 0) {
        uint64_t type = c.event_inj & event::kTypeMask;
        uint64_t vector = c.event_inj & event::kVectorMask;
        if (type != event::kTypeInterrupt && type != event::kTypeNmi && type != event::kTypeException &&
            type != event::kTypeSoftware)
            return "EVENTINJ has a reserved event type";
        if (type == event::kTypeException && (vector == kNmiVector || vector > kMaxExceptionVector))
            return "EVENTINJ injects an exception with vector 2 (NMI) or above 31";
    }
    if ((c.nested_ctl & nested_ctl::kNpEnable) != 0) {
        if ((c.nested_cr3 & physical_mask) != 0)
            return "nCR3 has bits set above the physical address width";
        if ((s.g_pat & kPatReservedBits) != 0)
            return "G_PAT has a reserved bit set";
        for (unsigned i = 0; i < kPatEntries; ++i) {
            uint64_t type = (s.g_pat >> (kPatEntryBits * i)) & kPatTypeMask;
            if (type == kPatReservedType2 || type == kPatReservedType3)
                return "G_PAT names a reserved memory type (2 or 3)";
        }
    }
    return nullptr;
}

} // namespace vlibos::svm

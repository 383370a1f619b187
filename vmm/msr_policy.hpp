// MSR accesses that reach the monitor. The backends' MSR bitmaps intercept every MSR except
// IA32_EFER (passed through so a guest can enter long mode on its own), and the monitor emulates
// none of them: every RDMSR/WRMSR that exits is answered with #GP(0), as the CPU does for an MSR
// it does not implement (Intel SDM Vol. 2B, RDMSR/WRMSR). The counts say which kind of MSR
// guests try, for the VM's report.
#pragma once

#include <stdint.h>

namespace vlibos::vmm {

// Why an access was refused. Today the answer is always #GP(0); the reason only sorts the counts.
enum class MsrReason : uint8_t {
    X2apic,      // 0x800-0x8ff: no virtual x2APIC (and CPUID hides x2APIC)
    Efer,        // IA32_EFER should never reach the monitor: a backend bitmap bug if counted
    Other,       // any other MSR: not emulated
    Count,
};

const char* msr_reason_name(MsrReason reason);

struct MsrVerdict {
    // Inject this exception and do NOT advance RIP: a fault leaves RIP on the RDMSR/WRMSR.
    uint8_t vector;
    bool has_error_code;
    uint32_t error_code;
    MsrReason reason;
};

// MSRs that are part of the guest's own CPU state and go straight to the hardware (no exit):
// EFER (the guest enters long mode itself); FS/GS base and KERNEL_GS_BASE (a 64-bit kernel's
// per-CPU data); STAR/LSTAR/CSTAR/SFMASK and SYSENTER_CS/ESP/EIP (its system-call entry).
// Safe because they are switched with the guest on every entry and exit (VMX: the VMCS guest
// and host state for EFER, FS/GS base and SYSENTER; SVM: VMRUN plus VMLOAD/VMSAVE of the guest
// VMCB), or because the monitor never uses them on a CPU that runs a VM (VMX: KERNEL_GS_BASE,
// STAR, LSTAR, CSTAR, SFMASK serve only ring-3 RT applications, which run on RT cores only).
inline constexpr uint32_t kGuestStateMsrs[] = {
    0xc000'0080,                                      // IA32_EFER
    0xc000'0100, 0xc000'0101, 0xc000'0102,            // FS_BASE, GS_BASE, KERNEL_GS_BASE
    0xc000'0081, 0xc000'0082, 0xc000'0083, 0xc000'0084,  // STAR, LSTAR, CSTAR, SFMASK
    0x174, 0x175, 0x176,                              // SYSENTER_CS, _ESP, _EIP
};

class MsrPolicy {
public:
    static constexpr uint8_t kGeneralProtection = 13;  // #GP
    static constexpr uint32_t kX2apicFirst = 0x800;
    static constexpr uint32_t kX2apicLast = 0x8ff;
    static constexpr uint32_t kEfer = 0xc000'0080;

    MsrVerdict read(uint32_t index);
    MsrVerdict write(uint32_t index, uint64_t value);

    static MsrReason classify(uint32_t index);

    uint64_t reads(MsrReason reason) const { return reads_[slot(reason)]; }
    uint64_t writes(MsrReason reason) const { return writes_[slot(reason)]; }
    uint64_t total() const;
    uint32_t last_index() const { return last_index_; }  // of the latest refused access

private:
    static constexpr unsigned kReasons = static_cast<unsigned>(MsrReason::Count);
    static unsigned slot(MsrReason reason);
    MsrVerdict refuse(uint32_t index, uint64_t* counts);

    uint64_t reads_[kReasons] = {};
    uint64_t writes_[kReasons] = {};
    uint32_t last_index_ = 0;
};

} // namespace vlibos::vmm

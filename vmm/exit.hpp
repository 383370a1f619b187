// A VM exit, described without vendor terms. Each backend (vmx/, svm/) decodes its own exit
// record (VMCS exit reason and qualification; VMCB EXITCODE/EXITINFO1/2) into this, so the
// handlers in vmm/ never see Intel or AMD encodings.
#pragma once

#include <stdint.h>

namespace vlibos::vmm {

enum class ExitReason : uint8_t {
    Cpuid,
    MsrRead,
    MsrWrite,
    IoPort,
    ControlRegister,
    Hlt,
    Hypercall,          // VMCALL (VMX) or VMMCALL (SVM)
    NestedPageFault,    // EPT violation/misconfiguration (VMX) or #NPF (SVM)
    InterruptWindow,    // the guest can now take an injected interrupt
    Timer,              // the monitor's own timer took control back (VMX-preemption timer, or an interrupt on SVM)
    ExternalInterrupt,  // a host interrupt arrived while the guest ran
    TripleFault,        // triple fault (VMX) or SHUTDOWN (SVM)
    EntryFailed,        // the guest state was refused at VM entry (VMX) or VMEXIT_INVALID (SVM)
    Exception,          // an intercepted guest exception (#DB and #AC always: see below)
    Nmi,                // a host NMI arrived while the guest ran
    CacheControl,       // WBINVD or INVD: never executed for a guest (they would flush or drop
                        // caches the RT partition shares); the monitor skips the instruction
    Unhandled,          // any other exit; `raw_reason` says which
    Count,
};

const char* exit_reason_name(ExitReason reason);

struct IoExit {
    uint16_t port;
    uint8_t size;   // 1, 2 or 4 bytes
    bool in;        // IN (guest reads) or OUT
    bool string;    // INS/OUTS: not emulated, the VM is stopped
    bool rep;
};

struct MsrExit {
    uint32_t index;  // ECX at the time of RDMSR/WRMSR
};

struct NestedPageFaultExit {
    uint64_t guest_physical;
    bool read, write, execute;  // the access that faulted
    bool mapped;                // the page is mapped but the access was not allowed
};

struct ControlRegisterExit {
    uint8_t cr;    // 0, 3, 4, 8
    bool write;
    uint8_t gpr;   // general register index (0 = rax ... 15 = r15)
};

struct ExitInfo {
    ExitReason reason = ExitReason::Unhandled;
    uint64_t raw_reason = 0;          // vendor exit code, for reports
    uint64_t raw_qualification = 0;   // VMX exit qualification / SVM EXITINFO1, for reports
    uint64_t raw_info2 = 0;           // SVM EXITINFO2 / VMX guest-physical address, for reports
    uint64_t guest_rip = 0;
    uint32_t instruction_length = 0;  // to skip an emulated instruction; 0 if unknown
    uint8_t exception_vector = 0;     // for Exception
    bool exception_has_error_code = false;
    uint32_t exception_error_code = 0;
    IoExit io{};
    MsrExit msr{};
    NestedPageFaultExit npf{};
    ControlRegisterExit cr{};
    const char* entry_failure = nullptr;  // for EntryFailed: which check failed, in words
};

} // namespace vlibos::vmm

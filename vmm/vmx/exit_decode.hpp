// Turning a VMX exit record (exit reason, exit qualification, ...) into a vendor-neutral
// vmm::ExitInfo, and VMX failures into sentences. Pure: the backend reads the VMCS fields into a
// RawExit and calls decode_exit().
#pragma once

#include <stdint.h>

#include "vmm/exit.hpp"
#include "vmm/vmx/vmx_arch.hpp"

namespace vlibos::vmm::vmx {

// Basic exit reasons (SDM Vol. 3 Appendix C, Table C-1).
enum class BasicExitReason : uint16_t {
    ExceptionOrNmi = 0,
    ExternalInterrupt = 1,
    TripleFault = 2,
    InitSignal = 3,
    StartupIpi = 4,
    InterruptWindow = 7,
    NmiWindow = 8,
    TaskSwitch = 9,
    Cpuid = 10,
    Getsec = 11,
    Hlt = 12,
    Invd = 13,
    Invlpg = 14,
    Rdpmc = 15,
    Rdtsc = 16,
    Vmcall = 18,
    ControlRegisterAccess = 28,
    MovDr = 29,
    IoInstruction = 30,
    Rdmsr = 31,
    Wrmsr = 32,
    EntryFailInvalidGuestState = 33,
    EntryFailMsrLoading = 34,
    Mwait = 36,
    MonitorTrapFlag = 37,
    Monitor = 39,
    Pause = 40,
    EntryFailMachineCheck = 41,
    EptViolation = 48,
    EptMisconfiguration = 49,
    Rdtscp = 51,
    PreemptionTimer = 52,
    Wbinvd = 54,
    Xsetbv = 55,
};

// Exit qualification layouts (SDM Vol. 3 §28.2.1).
namespace qualification {
// Control-register accesses (Table 28-3).
namespace cr {
constexpr uint64_t kNumberMask = 0xf;          // bits 3:0
constexpr unsigned kAccessTypeShift = 4;       // bits 5:4
constexpr uint64_t kAccessTypeMask = 3;
constexpr unsigned kGprShift = 8;              // bits 11:8
constexpr uint64_t kGprMask = 0xf;
enum class AccessType : uint64_t { MovToCr = 0, MovFromCr = 1, Clts = 2, Lmsw = 3 };
} // namespace cr
// I/O instructions (Table 28-5).
namespace io {
constexpr uint64_t kSizeMask = 7;              // bits 2:0: size - 1 (0, 1 or 3)
constexpr uint64_t kIn = bit(3);               // direction: 1 = IN
constexpr uint64_t kString = bit(4);
constexpr uint64_t kRep = bit(5);
constexpr uint64_t kImmediate = bit(6);        // operand encoding: 1 = port in an immediate
constexpr unsigned kPortShift = 16;            // bits 31:16
constexpr uint64_t kPortMask = 0xffff;
} // namespace io
// EPT violations (Table 28-7).
namespace ept_violation {
constexpr uint64_t kRead = bit(0);
constexpr uint64_t kWrite = bit(1);
constexpr uint64_t kExecute = bit(2);
constexpr uint64_t kReadable = bit(3);         // bits 5:3: what the guest-physical page allowed
constexpr uint64_t kWritable = bit(4);
constexpr uint64_t kExecutable = bit(5);
constexpr uint64_t kLinearValid = bit(7);
} // namespace ept_violation
// #DB exception exits (Table 28-1): the DR6 bits the #DB would have set. DR6 itself is not
// updated by such an exit, so whoever re-injects the #DB must put these into the guest's DR6.
namespace debug {
constexpr uint64_t kBreakpointsMask = 0xf;     // B3:B0: which DR0-DR3 breakpoint matched
constexpr uint64_t kDebugRegisterAccess = bit(13);  // BD
constexpr uint64_t kSingleStep = bit(14);      // BS
} // namespace debug
// VM-entry failure because of guest state (§27.8).
namespace entry_failure {
constexpr uint64_t kPdpteLoad = 2;
constexpr uint64_t kNmiInjectionBlocked = 3;
constexpr uint64_t kInvalidVmcsLink = 4;
} // namespace entry_failure
} // namespace qualification

// The VMCS fields an exit is decoded from; read by the backend, filled by hand in tests.
struct RawExit {
    uint32_t reason = 0;               // VM-exit reason field, with bit 31 for entry failures
    uint64_t qualification = 0;        // exit qualification
    uint64_t guest_physical = 0;       // guest-physical address (EPT violation/misconfiguration)
    uint64_t guest_rip = 0;
    uint32_t instruction_length = 0;
    uint32_t interruption_info = 0;    // VM-exit interruption information (exceptions, NMI)
    uint32_t interruption_error_code = 0;  // VM-exit interruption error code (valid if info bit 11)
    uint64_t guest_rcx = 0;            // for RDMSR/WRMSR
};

constexpr IoExit decode_io(uint64_t q)
{
    using namespace qualification::io;
    return IoExit{static_cast<uint16_t>((q >> kPortShift) & kPortMask), static_cast<uint8_t>((q & kSizeMask) + 1),
                  (q & kIn) != 0, (q & kString) != 0, (q & kRep) != 0};
}

constexpr ControlRegisterExit decode_cr(uint64_t q)
{
    using namespace qualification::cr;
    auto type = static_cast<AccessType>((q >> kAccessTypeShift) & kAccessTypeMask);
    // CLTS and LMSW write CR0 without a general register; they are reported as writes of CR0.
    return ControlRegisterExit{static_cast<uint8_t>(q & kNumberMask), type != AccessType::MovFromCr,
                               static_cast<uint8_t>((q >> kGprShift) & kGprMask)};
}

constexpr NestedPageFaultExit decode_ept_violation(uint64_t q, uint64_t guest_physical)
{
    using namespace qualification::ept_violation;
    return NestedPageFaultExit{guest_physical, (q & kRead) != 0, (q & kWrite) != 0, (q & kExecute) != 0,
                               (q & (kReadable | kWritable | kExecutable)) != 0};
}

// A VM entry that failed after the VMLAUNCH/VMRESUME instruction itself succeeded (§27.8): the
// exit reason has bit 31 set and one of three basic reasons.
constexpr const char* describe_entry_failure(uint16_t basic, uint64_t q)
{
    switch (static_cast<BasicExitReason>(basic)) {
    case BasicExitReason::EntryFailInvalidGuestState:
        switch (q) {
        case qualification::entry_failure::kPdpteLoad:
            return "VM entry failed: invalid guest state (loading the PAE page-directory pointers failed; SDM §27.3.1.6)";
        case qualification::entry_failure::kNmiInjectionBlocked:
            return "VM entry failed: invalid guest state (NMI injection while NMIs are blocked by the guest state)";
        case qualification::entry_failure::kInvalidVmcsLink:
            return "VM entry failed: invalid guest state (the VMCS link pointer is invalid; SDM §27.3.1.5)";
        default:
            return "VM entry failed: invalid guest state (a check of SDM §27.3.1 failed; the hardware does not say which)";
        }
    case BasicExitReason::EntryFailMsrLoading:
        return "VM entry failed: loading an MSR from the VM-entry MSR-load area failed (SDM §27.4)";
    case BasicExitReason::EntryFailMachineCheck:
        return "VM entry failed: a machine-check event happened during VM entry (SDM §27.9)";
    default:
        return "VM entry failed with an unknown reason";
    }
}

// VM-instruction error numbers (SDM Vol. 3 §31.4, Table 31-1).
constexpr const char* describe_instruction_error(uint32_t error)
{
    switch (error) {
    case 1: return "VMCALL executed in VMX root operation";
    case 2: return "VMCLEAR with invalid physical address";
    case 3: return "VMCLEAR with VMXON pointer";
    case 4: return "VMLAUNCH with non-clear VMCS";
    case 5: return "VMRESUME with non-launched VMCS";
    case 6: return "VMRESUME after VMXOFF";
    case 7: return "VM entry with invalid control field(s)";
    case 8: return "VM entry with invalid host-state field(s)";
    case 9: return "VMPTRLD with invalid physical address";
    case 10: return "VMPTRLD with VMXON pointer";
    case 11: return "VMPTRLD with incorrect VMCS revision identifier";
    case 12: return "VMREAD/VMWRITE from/to unsupported VMCS component";
    case 13: return "VMWRITE to read-only VMCS component";
    case 15: return "VMXON executed in VMX root operation";
    case 16: return "VM entry with invalid executive-VMCS pointer";
    case 17: return "VM entry with non-launched executive VMCS";
    case 18: return "VM entry with executive-VMCS pointer not VMXON pointer";
    case 19: return "VMCALL with non-clear VMCS";
    case 20: return "VMCALL with invalid VM-exit control fields";
    case 22: return "VMCALL with incorrect MSEG revision identifier";
    case 23: return "VMXOFF under dual-monitor treatment of SMIs and SMM";
    case 24: return "VMCALL with invalid SMM-monitor features";
    case 25: return "VM entry with invalid VM-execution control fields in executive VMCS";
    case 26: return "VM entry with events blocked by MOV SS";
    case 28: return "invalid operand to INVEPT/INVVPID";
    default: return "unknown VM-instruction error";
    }
}

constexpr bool is_entry_failure(uint32_t reason) { return (reason & exit_reason_field::kEntryFailure) != 0; }
constexpr uint16_t basic_reason(uint32_t reason) { return static_cast<uint16_t>(reason & exit_reason_field::kBasicMask); }

// Fills `out` from `raw`. Exits the runtime does not handle become Unhandled with raw_reason set.
constexpr void decode_exit(const RawExit& raw, ExitInfo& out)
{
    out = ExitInfo{};
    out.raw_reason = raw.reason;
    out.raw_qualification = raw.qualification;
    out.guest_rip = raw.guest_rip;
    out.instruction_length = raw.instruction_length;

    uint16_t basic = basic_reason(raw.reason);
    if (is_entry_failure(raw.reason)) {
        out.reason = ExitReason::EntryFailed;
        out.entry_failure = describe_entry_failure(basic, raw.qualification);
        out.instruction_length = 0;
        return;
    }
    switch (static_cast<BasicExitReason>(basic)) {
    case BasicExitReason::ExceptionOrNmi:
        // With "NMI exiting" a host NMI exits with basic reason 0 and interruption type NMI
        // (§26.2, §25.9.2 Table 25-19): it is the host's, not a guest exception.
        out.instruction_length = 0;
        if (interruption::type_of(raw.interruption_info) == interruption::Type::Nmi) {
            out.reason = ExitReason::Nmi;
            break;
        }
        // An intercepted exception (exception bitmap, §25.6.3): #DB and #AC. The error code is
        // in the VM-exit interruption error code field when bit 11 of the information says so
        // (§25.9.2); a #DB's exit qualification holds its DR6 bits (Table 28-1), kept in
        // raw_qualification. Re-injected, not skipped: the length stays 0.
        out.reason = ExitReason::Exception;
        out.exception_vector = interruption::vector_of(raw.interruption_info);
        out.exception_has_error_code = (raw.interruption_info & interruption::kDeliverErrorCode) != 0;
        out.exception_error_code = out.exception_has_error_code ? raw.interruption_error_code : 0;
        break;
    case BasicExitReason::ExternalInterrupt: out.reason = ExitReason::ExternalInterrupt; break;
    case BasicExitReason::TripleFault: out.reason = ExitReason::TripleFault; break;
    case BasicExitReason::InterruptWindow: out.reason = ExitReason::InterruptWindow; break;
    case BasicExitReason::Cpuid: out.reason = ExitReason::Cpuid; break;
    case BasicExitReason::Hlt: out.reason = ExitReason::Hlt; break;
    case BasicExitReason::Vmcall: out.reason = ExitReason::Hypercall; break;
    case BasicExitReason::ControlRegisterAccess:
        out.reason = ExitReason::ControlRegister;
        out.cr = decode_cr(raw.qualification);
        break;
    case BasicExitReason::IoInstruction:
        out.reason = ExitReason::IoPort;
        out.io = decode_io(raw.qualification);
        break;
    case BasicExitReason::Rdmsr:
        out.reason = ExitReason::MsrRead;
        out.msr = MsrExit{static_cast<uint32_t>(raw.guest_rcx)};
        break;
    case BasicExitReason::Wrmsr:
        out.reason = ExitReason::MsrWrite;
        out.msr = MsrExit{static_cast<uint32_t>(raw.guest_rcx)};
        break;
    case BasicExitReason::EptViolation:
        // The guest-physical-address field is valid only for these two exits (SDM Vol. 3
        // §27.2.1); for any other exit it still holds an old address, so it is not reported.
        out.reason = ExitReason::NestedPageFault;
        out.raw_info2 = raw.guest_physical;
        out.npf = decode_ept_violation(raw.qualification, raw.guest_physical);
        break;
    case BasicExitReason::EptMisconfiguration:
        // The tables themselves are wrong (a monitor bug): reported as a fault on a mapped page.
        out.reason = ExitReason::NestedPageFault;
        out.raw_info2 = raw.guest_physical;
        out.npf = NestedPageFaultExit{raw.guest_physical, false, false, false, true};
        break;
    case BasicExitReason::PreemptionTimer: out.reason = ExitReason::Timer; break;
    // INVD exits unconditionally (§26.1.2), WBINVD with "WBINVD exiting" (§26.1.3, Table 25-7):
    // neither is ever executed for a guest. The VM-exit instruction length is valid for both
    // (§25.9.4): 2 bytes (0F 08 / 0F 09) unless prefixed.
    case BasicExitReason::Invd:
    case BasicExitReason::Wbinvd: out.reason = ExitReason::CacheControl; break;
    // XSETBV exits unconditionally (§26.1.2); the runtime does not emulate it, so the VM stops
    // and the physical XCR0 is never the guest's to change.
    case BasicExitReason::Xsetbv: out.reason = ExitReason::Unhandled; break;
    default: out.reason = ExitReason::Unhandled; break;
    }
}

} // namespace vlibos::vmm::vmx

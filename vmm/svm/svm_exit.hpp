// Turns a #VMEXIT's EXITCODE/EXITINFO1/EXITINFO2 (APM Vol. 2 §15.6 and Appendix C) into the
// vendor-neutral vmm::ExitInfo. Pure, so every decoding rule is unit-tested on the host.
#pragma once

#include <stdint.h>

#include "vmm/exit.hpp"
#include "vmm/svm/vmcb.hpp"

namespace vlibos::svm {

// What the decoder needs from the VMCB and from the run around it.
struct ExitRecord {
    uint64_t exit_code;
    uint64_t exit_info1;
    uint64_t exit_info2;
    uint64_t rip;           // guest RIP at the exit (the intercepted instruction)
    uint64_t next_rip;      // VMCB nRIP: valid only with NRIP save
    bool next_rip_valid;
    bool decode_assists;    // CPUID 8000_000A EDX.DecodeAssists: CR exits name their GPR
    uint64_t guest_rcx;     // RDMSR/WRMSR take the MSR index from ECX
    bool timer_expired;     // the monitor's own timer interrupt caused this INTR exit
};

// Lengths of the instructions we intercept, for CPUs without NRIP save: the forms a guest can
// use have no prefixes that matter here (APM Vol. 3: CPUID 0F A2, HLT F4, VMMCALL 0F 01 D9,
// RDMSR 0F 32, WRMSR 0F 30, INVD 0F 08, WBINVD 0F 09).
namespace instruction_length {
constexpr uint32_t kCpuid = 2;
constexpr uint32_t kHlt = 1;
constexpr uint32_t kVmmcall = 3;
constexpr uint32_t kMsr = 2;
constexpr uint32_t kInvd = 2;
constexpr uint32_t kWbinvd = 2;
} // namespace instruction_length

// Exceptions that push an error code (APM Vol. 2 §8.2, Table 8-1: #DF, #TS, #NP, #SS, #GP, #PF,
// #AC, #CP, #VC, #SX). An exception intercept's EXITINFO1 carries it (APM §15.12); the exit
// itself does not say whether there is one.
constexpr bool exception_has_error_code(uint8_t vector)
{
    constexpr uint8_t kDoubleFault = 8, kInvalidTss = 10, kPageFault = 14, kAlignmentCheck = 17,
                      kControlProtection = 21, kVmmCommunication = 29, kSecurity = 30;
    return vector == kDoubleFault || (vector >= kInvalidTss && vector <= kPageFault) || vector == kAlignmentCheck ||
           vector == kControlProtection || vector == kVmmCommunication || vector == kSecurity;
}

constexpr uint32_t kMaxInstructionLength = 15;  // APM Vol. 3 §1.1

inline vmm::IoExit decode_ioio(uint64_t info1)
{
    vmm::IoExit io{};
    io.port = static_cast<uint16_t>((info1 & ioio::kPortMask) >> ioio::kPortShift);
    io.size = (info1 & ioio::kSize32) != 0 ? 4 : (info1 & ioio::kSize16) != 0 ? 2 : 1;
    io.in = (info1 & ioio::kIn) != 0;
    io.string = (info1 & ioio::kString) != 0;
    io.rep = (info1 & ioio::kRep) != 0;
    return io;
}

inline vmm::NestedPageFaultExit decode_npf(uint64_t info1, uint64_t info2)
{
    vmm::NestedPageFaultExit f{};
    f.guest_physical = info2;
    f.write = (info1 & npf::kWrite) != 0;
    f.execute = (info1 & npf::kFetch) != 0;
    f.read = !f.write && !f.execute;
    f.mapped = (info1 & npf::kPresent) != 0;
    return f;
}

// The length of an intercepted instruction from nRIP or from the table above; 0 if unknown.
inline uint32_t decoded_length(const ExitRecord& r, uint32_t fixed)
{
    if (r.next_rip_valid) {
        uint64_t length = r.next_rip - r.rip;
        return length >= 1 && length <= kMaxInstructionLength ? static_cast<uint32_t>(length) : 0;
    }
    return fixed;
}

inline void decode_exit(const ExitRecord& r, vmm::ExitInfo& out)
{
    using vmm::ExitReason;
    out = vmm::ExitInfo{};
    out.raw_reason = r.exit_code;
    out.raw_qualification = r.exit_info1;
    out.raw_info2 = r.exit_info2;
    out.guest_rip = r.rip;

    uint64_t code = r.exit_code;
    if (exit_code::is_invalid(code)) {
        out.reason = ExitReason::EntryFailed;
        return;
    }
    if (code <= exit_code::kCrWriteLast) {
        // Without decode assists the CPU does not say which register moved: the generic layer
        // cannot emulate that, so it is reported as unhandled (CR exits are not enabled today).
        if (r.decode_assists && (r.exit_info1 & cr_access::kMovCr) != 0) {
            out.reason = ExitReason::ControlRegister;
            out.cr.write = code >= exit_code::kCrWriteFirst;
            out.cr.cr = static_cast<uint8_t>(code - (out.cr.write ? exit_code::kCrWriteFirst : exit_code::kCrReadFirst));
            out.cr.gpr = static_cast<uint8_t>(r.exit_info1 & cr_access::kGprMask);
        }
        return;
    }
    if (code >= exit_code::kExceptionFirst && code <= exit_code::kExceptionLast) {
        // An intercepted exception (#DB and #AC, APM §15.12): re-injected, not skipped, so the
        // length stays 0. EXITINFO1 is the error code of one that has one (#AC: 0).
        out.reason = ExitReason::Exception;
        out.exception_vector = static_cast<uint8_t>(code - exit_code::kExceptionFirst);
        out.exception_has_error_code = exception_has_error_code(out.exception_vector);
        out.exception_error_code = out.exception_has_error_code ? static_cast<uint32_t>(r.exit_info1) : 0;
        return;
    }
    switch (code) {
    case exit_code::kCpuid:
        out.reason = ExitReason::Cpuid;
        out.instruction_length = decoded_length(r, instruction_length::kCpuid);
        return;
    case exit_code::kHlt:
        out.reason = ExitReason::Hlt;
        out.instruction_length = decoded_length(r, instruction_length::kHlt);
        return;
    case exit_code::kVmmcall:
        out.reason = ExitReason::Hypercall;
        out.instruction_length = decoded_length(r, instruction_length::kVmmcall);
        return;
    case exit_code::kIoio: {
        out.reason = ExitReason::IoPort;
        out.io = decode_ioio(r.exit_info1);
        // EXITINFO2 holds the RIP of the next instruction even without NRIP save (APM §15.10.2).
        uint64_t length = r.exit_info2 - r.rip;
        out.instruction_length = length >= 1 && length <= kMaxInstructionLength ? static_cast<uint32_t>(length) : 0;
        return;
    }
    case exit_code::kMsr:
        out.reason = r.exit_info1 == msr_access::kWrite ? ExitReason::MsrWrite : ExitReason::MsrRead;
        out.msr.index = static_cast<uint32_t>(r.guest_rcx);
        out.instruction_length = decoded_length(r, instruction_length::kMsr);
        return;
    case exit_code::kNpf:
        out.reason = ExitReason::NestedPageFault;
        out.npf = decode_npf(r.exit_info1, r.exit_info2);
        return;
    case exit_code::kVintr:
        out.reason = ExitReason::InterruptWindow;
        return;
    case exit_code::kIntr:
        out.reason = r.timer_expired ? ExitReason::Timer : ExitReason::ExternalInterrupt;
        return;
    case exit_code::kNmi:
        // A host NMI (APM §15.13.2). It stays pending while GIF is 0 and is taken by the
        // monitor's own handler at STGI; the guest simply resumes.
        out.reason = ExitReason::Nmi;
        return;
    // INVD and WBINVD are intercepted (APM §15.9, Table B-1) and never executed for a guest:
    // they would drop or flush caches the RT partition shares. The monitor skips them.
    case exit_code::kInvd:
        out.reason = ExitReason::CacheControl;
        out.instruction_length = decoded_length(r, instruction_length::kInvd);
        return;
    case exit_code::kWbinvd:
        out.reason = ExitReason::CacheControl;
        out.instruction_length = decoded_length(r, instruction_length::kWbinvd);
        return;
    case exit_code::kXsetbv:
        // Intercepted so the guest never writes the physical XCR0 (APM §15.9; not emulated):
        // the runtime stops the VM. raw_reason says which.
        out.reason = ExitReason::Unhandled;
        return;
    case exit_code::kShutdown:
        out.reason = ExitReason::TripleFault;
        return;
    default:
        return;  // Unhandled: VMRUN, VMLOAD, VMSAVE, CLGI, STGI, SKINIT, INVLPGA, ... (raw_reason says which)
    }
}

} // namespace vlibos::svm

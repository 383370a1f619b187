#include "vmm/exit.hpp"

namespace vlibos::vmm {

const char* exit_reason_name(ExitReason reason)
{
    switch (reason) {
    case ExitReason::Cpuid: return "cpuid";
    case ExitReason::MsrRead: return "msr-read";
    case ExitReason::MsrWrite: return "msr-write";
    case ExitReason::IoPort: return "io-port";
    case ExitReason::ControlRegister: return "control-register";
    case ExitReason::Hlt: return "hlt";
    case ExitReason::Hypercall: return "hypercall";
    case ExitReason::NestedPageFault: return "nested-page-fault";
    case ExitReason::InterruptWindow: return "interrupt-window";
    case ExitReason::Timer: return "timer";
    case ExitReason::ExternalInterrupt: return "external-interrupt";
    case ExitReason::TripleFault: return "triple-fault";
    case ExitReason::EntryFailed: return "entry-failed";
    case ExitReason::Exception: return "exception";
    case ExitReason::Nmi: return "nmi";
    case ExitReason::CacheControl: return "cache-control";
    case ExitReason::Unhandled: return "unhandled";
    case ExitReason::Count: break;
    }
    return "unknown";
}

} // namespace vlibos::vmm

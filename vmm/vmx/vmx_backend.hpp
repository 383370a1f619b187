// The Intel VMX backend: VMX root operation with EPT, VPID, unrestricted guest and the
// VMX-preemption timer. Only vmm/runtime/detect_backend.cpp includes this.
#pragma once

#include "vmm/backend.hpp"

namespace vlibos::vmm {

// The VMX backend if this CPU can run it, else nullptr with `*why_not` saying what is missing:
// no VMX (CPUID.1:ECX[5]), VMX locked off by firmware (IA32_FEATURE_CONTROL), or a feature the
// backend needs (EPT with 4-level walks and write-back tables, unrestricted guest, VPID,
// INVEPT/INVVPID, the VMX-preemption timer, EFER save/load, true controls).
Backend* vmx_backend_if_supported(const char** why_not);

} // namespace vlibos::vmm

// The AMD SVM backend (APM Vol. 2 Chapter 15): SVM with nested paging and ASIDs.
// Generic code reaches it only through detect_backend() and vmm/backend.hpp.
#pragma once

#include "vmm/backend.hpp"

namespace vlibos::vmm {

// The SVM backend, or nullptr with `why_not` set when CPUID 8000_0001 ECX.SVM is 0, VM_CR.SVMDIS
// is set, or nested paging (CPUID 8000_000A EDX.NP) is missing. The first call prints what the
// CPU offers (revision, ASIDs, NRIP save, decode assists, ...).
Backend* svm_backend_if_supported(const char** why_not);

} // namespace vlibos::vmm

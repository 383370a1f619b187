// The one place that knows both vendors: picks the backend that this CPU supports.
#include "arch/x86_64/cpu.hpp"
#include "vmm/backend.hpp"
#if __has_include("vmm/svm/svm_backend.hpp")
#include "vmm/svm/svm_backend.hpp"
#endif
#if __has_include("vmm/vmx/vmx_backend.hpp")
#include "vmm/vmx/vmx_backend.hpp"
#endif

// Weak while the two backends are being written in parallel, so either builds without the other.
namespace vlibos::vmm {
[[gnu::weak]] Backend* vmx_backend_if_supported(const char** why_not);
[[gnu::weak]] Backend* svm_backend_if_supported(const char** why_not);
} // namespace vlibos::vmm

namespace vlibos::vmm {

Backend* detect_backend(const char** why_not)
{
    x86::CpuidResult vendor = x86::cpuid(0);
    constexpr uint32_t kGenu = 0x756e6547, kAuth = 0x68747541;  // "Genu"ineIntel, "Auth"enticAMD in EBX
    if (vendor.ebx == kGenu) {
        if (&vmx_backend_if_supported == nullptr) {
            *why_not = "this build has no VMX backend";
            return nullptr;
        }
        return vmx_backend_if_supported(why_not);
    }
    if (vendor.ebx == kAuth) {
        if (&svm_backend_if_supported == nullptr) {
            *why_not = "this build has no SVM backend";
            return nullptr;
        }
        return svm_backend_if_supported(why_not);
    }
    *why_not = "the CPU is neither Intel nor AMD";
    return nullptr;
}

} // namespace vlibos::vmm

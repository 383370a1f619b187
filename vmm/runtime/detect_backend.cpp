// The one place that knows both vendors: picks the backend that this CPU supports.
#include "arch/x86_64/cpu.hpp"
#include "vmm/backend.hpp"
#include "vmm/svm/svm_backend.hpp"
#include "vmm/vmx/vmx_backend.hpp"

namespace vlibos::vmm {

Backend* detect_backend(const char** why_not)
{
    x86::CpuidResult vendor = x86::cpuid(0);
    constexpr uint32_t kGenu = 0x756e6547, kAuth = 0x68747541;  // "Genu"ineIntel, "Auth"enticAMD in EBX
    if (vendor.ebx == kGenu)
        return vmx_backend_if_supported(why_not);
    if (vendor.ebx == kAuth)
        return svm_backend_if_supported(why_not);
    *why_not = "the CPU is neither Intel nor AMD";
    return nullptr;
}

} // namespace vlibos::vmm

// SVM's CPUID bits, MSRs and the one SVM instruction the monitor issues from C++ (INVLPGA).
// VMRUN, VMLOAD, VMSAVE, CLGI and STGI appear only in svm_entry.S: everything between CLGI and
// STGI runs there, so no C++ code ever sees the guest's FS/GS/TR loaded.
#pragma once

#include <stdint.h>

namespace vlibos::svm {

// CPUID (APM Vol. 3 Appendix E.4.1 and E.4.10).
namespace cpuid_bits {
constexpr uint32_t kExtendedMaxLeaf = 0x8000'0000;
constexpr uint32_t kExtendedFeatures = 0x8000'0001;  // ECX bit 2: SVM
constexpr uint32_t kSvmLeaf = 0x8000'000a;           // EAX: revision, EBX: number of ASIDs, EDX: features
constexpr uint32_t kExt1EcxSvm = 1u << 2;
constexpr uint32_t kExt1EdxPage1Gb = 1u << 26;
constexpr uint32_t kAddressSizesLeaf = 0x8000'0008;  // EAX[7:0]: physical address bits
constexpr uint32_t kPhysicalBitsMask = 0xff;
constexpr uint32_t kSvmRevisionMask = 0xff;
// 8000_000A EDX.
constexpr uint32_t kNestedPaging = 1u << 0;
constexpr uint32_t kLbrVirtualization = 1u << 1;
constexpr uint32_t kSvmLock = 1u << 2;
constexpr uint32_t kNripSave = 1u << 3;
constexpr uint32_t kVmcbClean = 1u << 5;
constexpr uint32_t kFlushByAsid = 1u << 6;
constexpr uint32_t kDecodeAssists = 1u << 7;
constexpr uint32_t kVgif = 1u << 16;
} // namespace cpuid_bits

// MSRs (APM Vol. 2 §15.30 and Appendix A).
namespace msr {
constexpr uint32_t kEfer = 0xc000'0080;
constexpr uint32_t kVmCr = 0xc001'0114;        // VM_CR
constexpr uint32_t kVmHsavePa = 0xc001'0117;   // VM_HSAVE_PA: where VMRUN keeps the host's state
} // namespace msr

namespace efer {
constexpr uint64_t kSyscall = 1ull << 0;             // SCE
constexpr uint64_t kLongModeEnable = 1ull << 8;      // LME
constexpr uint64_t kLongModeActive = 1ull << 10;     // LMA
constexpr uint64_t kNoExecuteEnable = 1ull << 11;    // NXE
constexpr uint64_t kSvmEnable = 1ull << 12;          // SVME (APM §15.4)
constexpr uint64_t kLongSegmentLimit = 1ull << 13;   // LMSLE
constexpr uint64_t kFastFxsave = 1ull << 14;         // FFXSR
constexpr uint64_t kTranslationCache = 1ull << 15;   // TCE
constexpr uint64_t kDefined =
    kSyscall | kLongModeEnable | kLongModeActive | kNoExecuteEnable | kSvmEnable | kLongSegmentLimit | kFastFxsave |
    kTranslationCache;
} // namespace efer

namespace vm_cr {
constexpr uint64_t kLock = 1ull << 3;        // LOCK: SVMDIS is read-only
constexpr uint64_t kSvmDisable = 1ull << 4;  // SVMDIS: EFER.SVME cannot be set (APM §15.30.1)
} // namespace vm_cr

// INVLPGA: invalidates the TLB entry of one guest linear address in one ASID (APM §15.16.3).
inline void invlpga(uint64_t linear, uint32_t asid)
{
    asm volatile("invlpga %%rax, %%ecx" ::"a"(linear), "c"(asid) : "memory");
}

} // namespace vlibos::svm

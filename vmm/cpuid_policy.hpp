// What a guest sees when it executes CPUID. Every CPUID exits to the monitor, which runs the
// instruction itself and passes the host's answer through filter_cpuid(): features the monitor
// does not virtualise are hidden, the hypervisor-present bit is set, and the hypervisor leaves
// 0x40000000-0x4fffffff describe vlibos (docs/hypercalls.md).
#pragma once

#include <stdint.h>

namespace vlibos::vmm {

struct CpuidResult {
    uint32_t eax, ebx, ecx, edx;
    constexpr bool operator==(const CpuidResult&) const = default;
};

enum class Vendor : uint8_t { Intel, Amd };

namespace cpuid {

// Leaves and bits the policy touches (Intel SDM Vol. 2A, CPUID; AMD APM Vol. 3, Appendix E).
constexpr uint32_t kLeafFeatures = 0x1;
constexpr uint32_t kLeafMonitorMwait = 0x5;
constexpr uint32_t kLeafPowerManagement = 0x6;   // thermal and power management
constexpr uint32_t kLeafStructuredFeatures = 0x7;
constexpr uint32_t kLeafPerfMonitoring = 0xa;
constexpr uint32_t kLeafTopology = 0xb;          // x2APIC topology: EDX = x2APIC ID
constexpr uint32_t kLeafTopologyV2 = 0x1f;       // V2 extended topology: EDX = x2APIC ID
constexpr uint32_t kLeafHypervisorFirst = 0x4000'0000;
constexpr uint32_t kLeafHypervisorLast = 0x4fff'ffff;
constexpr uint32_t kLeafExtFeatures = 0x8000'0001;
constexpr uint32_t kLeafSvmFeatures = 0x8000'000a;
constexpr uint32_t kLeafAmdTopology = 0x8000'001e;  // AMD: EAX = extended APIC ID

// Leaf 1 ECX.
constexpr uint32_t kEcxMonitor = 1u << 3;        // MONITOR/MWAIT
constexpr uint32_t kEcxVmx = 1u << 5;
constexpr uint32_t kEcxPdcm = 1u << 15;          // IA32_PERF_CAPABILITIES
constexpr uint32_t kEcxX2apic = 1u << 21;
constexpr uint32_t kEcxTscDeadline = 1u << 24;
constexpr uint32_t kEcxXsave = 1u << 26;
constexpr uint32_t kEcxOsxsave = 1u << 27;
constexpr uint32_t kEcxAvx = 1u << 28;
// Leaf 6 EAX.
constexpr uint32_t kEaxArat = 1u << 2;           // APIC timer always running
// Leaf 7 subleaf 0 EBX.
constexpr uint32_t kEbxInvpcid = 1u << 10;
// Leaf 0x80000001 EDX.
constexpr uint32_t kExtEdxRdtscp = 1u << 27;
constexpr uint32_t kEcxHypervisor = 1u << 31;
// Leaf 1 EBX[31:24]: initial APIC ID.
constexpr uint32_t kEbxInitialApicIdMask = 0xffu << 24;
// Leaf 0x80000001 ECX (AMD).
constexpr uint32_t kExtEcxSvm = 1u << 2;
constexpr uint32_t kExtEcxPerfCtrCore = 1u << 23;  // PerfCtrExtCore
constexpr uint32_t kExtEcxMonitorx = 1u << 29;     // MONITORX/MWAITX

} // namespace cpuid

// Who asks: the vendor (hypercall instruction), the vCPU's APIC ID (the IDs CPUID reports), and
// whether the VM has the monitor's virtual local APIC (vmm/devices/virtual_lapic.hpp), whose
// timer offers TSC-deadline mode and keeps running in deep C-states (ARAT: it is the monitor's
// software timer, so it never stops).
struct GuestCpu {
    Vendor vendor = Vendor::Intel;
    uint8_t apic_id = 0;
    bool virtual_lapic = false;
};

// The guest's view of CPUID(leaf, subleaf), given the host's answer `host` for the same leaf.
CpuidResult filter_cpuid(uint32_t leaf, uint32_t subleaf, CpuidResult host, const GuestCpu& guest);
// A guest without a virtual local APIC, as vCPU 0 (the VM test guests).
inline CpuidResult filter_cpuid(uint32_t leaf, uint32_t subleaf, CpuidResult host, Vendor vendor)
{
    return filter_cpuid(leaf, subleaf, host, GuestCpu{vendor, 0, false});
}

} // namespace vlibos::vmm

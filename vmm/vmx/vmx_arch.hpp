// Intel VMX architectural constants: capability MSRs, execution/exit/entry control bits, and the
// bit layouts of the guest-state and event fields. Pure: no hardware access, unit-tested on the
// host. Section numbers are from the Intel SDM Vol. 3C (2023 edition; older editions number
// these chapters one lower, e.g. §24 for §25).
#pragma once

#include <stdint.h>

namespace vlibos::vmm::vmx {

constexpr uint64_t bit(unsigned n) { return uint64_t{1} << n; }
constexpr uint32_t bit32(unsigned n) { return uint32_t{1} << n; }

// MSR indices (SDM Vol. 4, Table 2-2; Vol. 3 Appendix A).
namespace msr {
constexpr uint32_t kFeatureControl = 0x3a;        // IA32_FEATURE_CONTROL (§24.7)
constexpr uint32_t kSysenterCs = 0x174;
constexpr uint32_t kSysenterEsp = 0x175;
constexpr uint32_t kSysenterEip = 0x176;
constexpr uint32_t kVmxBasic = 0x480;             // Appendix A.1
constexpr uint32_t kVmxPinbasedCtls = 0x481;      // A.3.1
constexpr uint32_t kVmxProcbasedCtls = 0x482;     // A.3.2
constexpr uint32_t kVmxExitCtls = 0x483;          // A.4
constexpr uint32_t kVmxEntryCtls = 0x484;         // A.5
constexpr uint32_t kVmxMisc = 0x485;              // A.6
constexpr uint32_t kVmxCr0Fixed0 = 0x486;         // A.7
constexpr uint32_t kVmxCr0Fixed1 = 0x487;
constexpr uint32_t kVmxCr4Fixed0 = 0x488;         // A.8
constexpr uint32_t kVmxCr4Fixed1 = 0x489;
constexpr uint32_t kVmxProcbasedCtls2 = 0x48b;    // A.3.3
constexpr uint32_t kVmxEptVpidCap = 0x48c;        // A.10
constexpr uint32_t kVmxTruePinbasedCtls = 0x48d;  // A.3.1, valid when BASIC bit 55 is set
constexpr uint32_t kVmxTrueProcbasedCtls = 0x48e;
constexpr uint32_t kVmxTrueExitCtls = 0x48f;
constexpr uint32_t kVmxTrueEntryCtls = 0x490;
} // namespace msr

// IA32_FEATURE_CONTROL (SDM Vol. 3 §24.7): once locked, VMXON outside SMX needs bit 2.
namespace feature_control {
constexpr uint64_t kLock = bit(0);
constexpr uint64_t kVmxonInsideSmx = bit(1);
constexpr uint64_t kVmxonOutsideSmx = bit(2);
} // namespace feature_control

// IA32_VMX_BASIC (Appendix A.1).
namespace basic {
constexpr uint64_t kRevisionMask = 0x7fffffff;      // bits 30:0: written to VMXON/VMCS regions
constexpr unsigned kRegionSizeShift = 32;           // bits 44:32: bytes of VMXON/VMCS region
constexpr uint64_t kRegionSizeMask = 0x1fff;
constexpr uint64_t kPhysicalWidth32 = bit(48);      // regions limited to 4 GiB
constexpr unsigned kMemoryTypeShift = 50;           // bits 53:50: memory type for VMCS access
constexpr uint64_t kMemoryTypeMask = 0xf;
constexpr uint64_t kTrueControls = bit(55);         // IA32_VMX_TRUE_*_CTLS exist
constexpr uint32_t kMemoryTypeWriteBack = 6;

constexpr uint32_t revision(uint64_t value) { return static_cast<uint32_t>(value & kRevisionMask); }
constexpr uint64_t region_size(uint64_t value) { return (value >> kRegionSizeShift) & kRegionSizeMask; }
constexpr uint32_t memory_type(uint64_t value)
{
    return static_cast<uint32_t>((value >> kMemoryTypeShift) & kMemoryTypeMask);
}
} // namespace basic

// IA32_VMX_MISC (Appendix A.6).
namespace misc {
constexpr uint64_t kPreemptionTimerRateMask = 0x1f;  // bits 4:0: timer ticks every 2^rate TSC ticks
constexpr unsigned kActivityHltShift = 6;            // bits 8:6: activity states HLT, shutdown, wait-for-SIPI
constexpr uint64_t kActivityHlt = bit(6);
constexpr uint64_t kActivityShutdown = bit(7);
constexpr uint64_t kActivityWaitForSipi = bit(8);
constexpr unsigned timer_rate(uint64_t value) { return static_cast<unsigned>(value & kPreemptionTimerRateMask); }
} // namespace misc

// IA32_VMX_EPT_VPID_CAP (Appendix A.10).
namespace ept_vpid_cap {
constexpr uint64_t kExecuteOnly = bit(0);
constexpr uint64_t kPageWalk4 = bit(6);
constexpr uint64_t kMemoryTypeUc = bit(8);
constexpr uint64_t kMemoryTypeWb = bit(14);
constexpr uint64_t kPage2M = bit(16);
constexpr uint64_t kPage1G = bit(17);
constexpr uint64_t kInvept = bit(20);
constexpr uint64_t kInveptSingleContext = bit(25);
constexpr uint64_t kInveptAllContext = bit(26);
constexpr uint64_t kInvvpid = bit(32);
constexpr uint64_t kInvvpidSingleContext = bit(41);
constexpr uint64_t kInvvpidAllContext = bit(42);
} // namespace ept_vpid_cap

// Pin-based VM-execution controls (§25.6.1, Table 25-5).
namespace pin {
constexpr uint32_t kExternalInterruptExiting = bit32(0);
constexpr uint32_t kNmiExiting = bit32(3);
constexpr uint32_t kVirtualNmis = bit32(5);
constexpr uint32_t kPreemptionTimer = bit32(6);
} // namespace pin

// Primary processor-based VM-execution controls (§25.6.2, Table 25-6).
namespace primary {
constexpr uint32_t kInterruptWindowExiting = bit32(2);
constexpr uint32_t kTscOffsetting = bit32(3);
constexpr uint32_t kHltExiting = bit32(7);
constexpr uint32_t kInvlpgExiting = bit32(9);
constexpr uint32_t kCr3LoadExiting = bit32(15);
constexpr uint32_t kCr3StoreExiting = bit32(16);
constexpr uint32_t kUnconditionalIoExiting = bit32(24);
constexpr uint32_t kUseIoBitmaps = bit32(25);
constexpr uint32_t kUseMsrBitmaps = bit32(28);
constexpr uint32_t kActivateSecondary = bit32(31);
} // namespace primary

// Secondary processor-based VM-execution controls (§25.6.2, Table 25-7).
namespace secondary {
constexpr uint32_t kEnableEpt = bit32(1);
constexpr uint32_t kEnableVpid = bit32(5);
constexpr uint32_t kWbinvdExiting = bit32(6);  // WBINVD exits (basic reason 54); INVD always does
constexpr uint32_t kUnrestrictedGuest = bit32(7);
} // namespace secondary

// Primary VM-exit controls (§25.7.1, Table 25-13).
namespace exit_ctl {
constexpr uint32_t kSaveDebugControls = bit32(2);
constexpr uint32_t kHostAddressSpaceSize = bit32(9);  // the host runs in 64-bit mode
constexpr uint32_t kAcknowledgeInterrupt = bit32(15);
constexpr uint32_t kSaveEfer = bit32(20);
constexpr uint32_t kLoadEfer = bit32(21);
constexpr uint32_t kSavePreemptionTimer = bit32(22);
} // namespace exit_ctl

// VM-entry controls (§25.8.1, Table 25-15).
namespace entry_ctl {
constexpr uint32_t kLoadDebugControls = bit32(2);
constexpr uint32_t kIa32eModeGuest = bit32(9);
constexpr uint32_t kLoadEfer = bit32(15);
} // namespace entry_ctl

// Control register bits the VMX setup names (SDM Vol. 3 §2.5).
namespace cr0 {
constexpr uint64_t kProtectionEnable = bit(0);  // PE
constexpr uint64_t kExtensionType = bit(4);     // ET: hard-wired 1 since the i486
constexpr uint64_t kNumericError = bit(5);      // NE
constexpr uint64_t kPaging = bit(31);           // PG
} // namespace cr0

namespace cr4 {
constexpr uint64_t kVmxEnable = bit(13);  // VMXE
} // namespace cr4

namespace efer {
constexpr uint64_t kLongModeEnable = bit(8);  // LME
constexpr uint64_t kLongModeActive = bit(10); // LMA
} // namespace efer

namespace rflags {
constexpr uint64_t kFixedOne = bit(1);               // bit 1 reads as 1
constexpr uint64_t kInterruptEnable = bit(9);        // IF
constexpr uint64_t kVirtual8086 = bit(17);           // VM
// Bits 63:22, 15, 5 and 3 are reserved and must be 0 at VM entry (§27.3.1.4).
constexpr uint64_t kReservedZero = ~((bit(22) - 1)) | bit(15) | bit(5) | bit(3);
} // namespace rflags

constexpr uint64_t kDr7Init = 0x400;  // DR7 after reset: only the reads-as-1 bit 10 (SDM Vol. 3 §18.2.4)

// Guest segment access rights as the VMCS stores them (§25.4.1, Table 25-2).
namespace access_rights {
constexpr uint32_t kTypeMask = 0xf;
constexpr uint32_t kTypeAccessed = bit32(0);       // data/code: accessed
constexpr uint32_t kTypeReadableWritable = bit32(1); // data: writable; code: readable
constexpr uint32_t kTypeCode = bit32(3);
constexpr uint32_t kCodeOrData = bit32(4);         // S: 1 = code/data, 0 = system
constexpr unsigned kDplShift = 5;
constexpr uint32_t kDplMask = 3u << kDplShift;
constexpr uint32_t kPresent = bit32(7);
constexpr uint32_t kReserved11To8 = 0xf00;
constexpr uint32_t kLong = bit32(13);              // L
constexpr uint32_t kDefaultBig = bit32(14);        // D/B
constexpr uint32_t kGranularity = bit32(15);       // G
constexpr uint32_t kUnusable = bit32(16);
constexpr uint32_t kReserved31To17 = 0xfffe0000;

constexpr uint32_t kTypeDataReadWriteAccessed = 3;   // real-mode data/stack segment
constexpr uint32_t kTypeCodeExecReadAccessed = 11;
constexpr uint32_t kTypeLdt = 2;
constexpr uint32_t kTypeTss16Busy = 3;
constexpr uint32_t kTypeTss32Busy = 11;

// Real-mode segments after reset: present, code/data, DPL 0 (SDM Vol. 3 §10.1.1, Table 10-1).
constexpr uint32_t kRealModeData = kPresent | kCodeOrData | kTypeDataReadWriteAccessed;  // 0x93
constexpr uint32_t kRealModeCode = kPresent | kCodeOrData | kTypeCodeExecReadAccessed;   // 0x9b
constexpr uint32_t kBusyTss32 = kPresent | kTypeTss32Busy;                                // 0x8b
constexpr uint32_t kLdtPresent = kPresent | kTypeLdt;                                     // 0x82

constexpr uint32_t type(uint32_t ar) { return ar & kTypeMask; }
constexpr uint32_t dpl(uint32_t ar) { return (ar & kDplMask) >> kDplShift; }
} // namespace access_rights

// Guest interruptibility state (§25.4.2, Table 25-3).
namespace interruptibility {
constexpr uint32_t kBlockingBySti = bit32(0);
constexpr uint32_t kBlockingByMovSs = bit32(1);
constexpr uint32_t kBlockingBySmi = bit32(2);
constexpr uint32_t kBlockingByNmi = bit32(3);
constexpr uint32_t kReserved = ~(bit32(5) - 1);  // bits 31:5 (bit 4 is enclave interruption)
} // namespace interruptibility

// Guest activity state (§25.4.2).
enum class ActivityState : uint32_t { Active = 0, Hlt = 1, Shutdown = 2, WaitForSipi = 3 };

// VM-entry interruption information and VM-exit interruption information (§25.8.3 Table 25-17,
// §25.9.2 Table 25-19): the same layout.
namespace interruption {
constexpr uint32_t kVectorMask = 0xff;
constexpr unsigned kTypeShift = 8;
constexpr uint32_t kTypeMask = 7u << kTypeShift;
constexpr uint32_t kDeliverErrorCode = bit32(11);
constexpr uint32_t kValid = bit32(31);

enum class Type : uint32_t {
    ExternalInterrupt = 0,
    Nmi = 2,
    HardwareException = 3,
    SoftwareInterrupt = 4,
    PrivilegedSoftwareException = 5,
    SoftwareException = 6,
    OtherEvent = 7,
};

constexpr uint32_t make(uint8_t vector, Type type, bool deliver_error_code)
{
    return vector | (static_cast<uint32_t>(type) << kTypeShift) | (deliver_error_code ? kDeliverErrorCode : 0) |
           kValid;
}
constexpr Type type_of(uint32_t info) { return static_cast<Type>((info & kTypeMask) >> kTypeShift); }
constexpr uint8_t vector_of(uint32_t info) { return static_cast<uint8_t>(info & kVectorMask); }

// Exceptions that push an error code in protected mode (SDM Vol. 3 §6.15; §27.2.1.3 requires
// "deliver error code" exactly for these when the guest is in protected mode).
constexpr bool exception_has_error_code(uint8_t vector)
{
    return vector == 8 || (vector >= 10 && vector <= 14) || vector == 17 || vector == 21;
}
} // namespace interruption

// Exception vectors the monitor always intercepts (SDM Vol. 3 §6.3, Table 6-1).
namespace exception_vector {
constexpr uint8_t kDebug = 1;            // #DB
constexpr uint8_t kAlignmentCheck = 17;  // #AC (error code 0 in protected mode)
} // namespace exception_vector

// The exception bitmap (§25.6.3): bit n set makes exception vector n exit instead of being
// delivered through the guest's IDT (#PF is further filtered by the error-code mask/match).
namespace exception_bitmap {
constexpr uint32_t of(uint8_t vector) { return bit32(vector); }
} // namespace exception_bitmap

// The VM-exit reason field (§25.9.1, Table 25-18).
namespace exit_reason_field {
constexpr uint32_t kBasicMask = 0xffff;
constexpr uint32_t kEntryFailure = bit32(31);
} // namespace exit_reason_field

// INVEPT / INVVPID types (SDM Vol. 3 §31.3, INVEPT and INVVPID).
enum class InveptType : uint64_t { SingleContext = 1, AllContext = 2 };
enum class InvvpidType : uint64_t { IndividualAddress = 0, SingleContext = 1, AllContext = 2, SingleContextRetainGlobals = 3 };

// The 4 KiB I/O bitmaps A (ports 0-0x7fff) and B (0x8000-0xffff) and the MSR bitmap (§25.6.4,
// §25.6.9): a set bit makes the access exit.
constexpr uint64_t kBitmapBytes = 4096;

// The MSR bitmap is four 1 KiB bitmaps: reads of MSRs 0-1FFFH, reads of C0000000H-C0001FFFH,
// then writes of the same two ranges (§25.6.9).
namespace msr_bitmap {
constexpr uint32_t kLowFirst = 0;
constexpr uint32_t kHighFirst = 0xc0000000;
constexpr uint32_t kRangeSize = 0x2000;
constexpr uint32_t kReadLowOffset = 0;
constexpr uint32_t kReadHighOffset = 1024;
constexpr uint32_t kWriteLowOffset = 2048;
constexpr uint32_t kWriteHighOffset = 3072;

struct Position {
    bool covered;     // MSRs outside both ranges always exit
    uint32_t byte;    // byte offset of the read bit; the write bit is 2048 bytes later
    uint8_t bit;
};

constexpr Position read_position(uint32_t index)
{
    if (index < kLowFirst + kRangeSize)
        return {true, kReadLowOffset + index / 8, static_cast<uint8_t>(index % 8)};
    if (index >= kHighFirst && index - kHighFirst < kRangeSize)
        return {true, kReadHighOffset + (index - kHighFirst) / 8, static_cast<uint8_t>((index - kHighFirst) % 8)};
    return {false, 0, 0};
}
constexpr uint32_t kWriteDistance = kWriteLowOffset - kReadLowOffset;
} // namespace msr_bitmap

} // namespace vlibos::vmm::vmx

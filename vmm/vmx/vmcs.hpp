// The VMCS: field encodings (SDM Vol. 3 Appendix B) and the VMX instructions. Each VMX
// instruction's inline asm appears here once. Every one of them reports VMfailInvalid (CF = 1:
// no current VMCS, or a bad operand) or VMfailValid (ZF = 1: the VM-instruction error field says
// why, SDM Vol. 3 §31.4) through VmxStatus; callers never ignore it.
#pragma once

#include <stdint.h>

namespace vlibos::vmm::vmx {

// VMCS component encodings (Appendix B). Bits 14:13 of an encoding give its width
// (0 = 16-bit, 1 = 64-bit, 2 = 32-bit, 3 = natural width), bits 11:10 its type.
enum class Field : uint32_t {
    // B.1.1 16-bit control fields.
    Vpid = 0x0000,
    // B.1.2 16-bit guest-state fields.
    GuestEsSelector = 0x0800,
    GuestCsSelector = 0x0802,
    GuestSsSelector = 0x0804,
    GuestDsSelector = 0x0806,
    GuestFsSelector = 0x0808,
    GuestGsSelector = 0x080a,
    GuestLdtrSelector = 0x080c,
    GuestTrSelector = 0x080e,
    // B.1.3 16-bit host-state fields.
    HostEsSelector = 0x0c00,
    HostCsSelector = 0x0c02,
    HostSsSelector = 0x0c04,
    HostDsSelector = 0x0c06,
    HostFsSelector = 0x0c08,
    HostGsSelector = 0x0c0a,
    HostTrSelector = 0x0c0c,
    // B.2.1 64-bit control fields.
    IoBitmapA = 0x2000,
    IoBitmapB = 0x2002,
    MsrBitmap = 0x2004,
    ExitMsrStoreAddress = 0x2006,
    ExitMsrLoadAddress = 0x2008,
    EntryMsrLoadAddress = 0x200a,
    TscOffset = 0x2010,
    EptPointer = 0x201a,
    // B.2.2 64-bit read-only data fields.
    GuestPhysicalAddress = 0x2400,
    // B.2.3 64-bit guest-state fields.
    VmcsLinkPointer = 0x2800,
    GuestDebugctl = 0x2802,
    GuestPat = 0x2804,
    GuestEfer = 0x2806,
    // B.2.4 64-bit host-state fields.
    HostPat = 0x2c00,
    HostEfer = 0x2c02,
    // B.3.1 32-bit control fields.
    PinBasedControls = 0x4000,
    PrimaryProcessorControls = 0x4002,
    ExceptionBitmap = 0x4004,
    PageFaultErrorCodeMask = 0x4006,
    PageFaultErrorCodeMatch = 0x4008,
    Cr3TargetCount = 0x400a,
    ExitControls = 0x400c,
    ExitMsrStoreCount = 0x400e,
    ExitMsrLoadCount = 0x4010,
    EntryControls = 0x4012,
    EntryMsrLoadCount = 0x4014,
    EntryInterruptionInfo = 0x4016,
    EntryExceptionErrorCode = 0x4018,
    EntryInstructionLength = 0x401a,
    TprThreshold = 0x401c,
    SecondaryProcessorControls = 0x401e,
    // B.3.2 32-bit read-only data fields.
    VmInstructionError = 0x4400,
    ExitReason = 0x4402,
    ExitInterruptionInfo = 0x4404,
    ExitInterruptionErrorCode = 0x4406,
    IdtVectoringInfo = 0x4408,
    IdtVectoringErrorCode = 0x440a,
    ExitInstructionLength = 0x440c,
    ExitInstructionInfo = 0x440e,
    // B.3.3 32-bit guest-state fields.
    GuestEsLimit = 0x4800,
    GuestCsLimit = 0x4802,
    GuestSsLimit = 0x4804,
    GuestDsLimit = 0x4806,
    GuestFsLimit = 0x4808,
    GuestGsLimit = 0x480a,
    GuestLdtrLimit = 0x480c,
    GuestTrLimit = 0x480e,
    GuestGdtrLimit = 0x4810,
    GuestIdtrLimit = 0x4812,
    GuestEsAccessRights = 0x4814,
    GuestCsAccessRights = 0x4816,
    GuestSsAccessRights = 0x4818,
    GuestDsAccessRights = 0x481a,
    GuestFsAccessRights = 0x481c,
    GuestGsAccessRights = 0x481e,
    GuestLdtrAccessRights = 0x4820,
    GuestTrAccessRights = 0x4822,
    GuestInterruptibility = 0x4824,
    GuestActivityState = 0x4826,
    GuestSmbase = 0x4828,
    GuestSysenterCs = 0x482a,
    GuestPreemptionTimer = 0x482e,
    // B.3.4 32-bit host-state field.
    HostSysenterCs = 0x4c00,
    // B.4.1 natural-width control fields.
    Cr0GuestHostMask = 0x6000,
    Cr4GuestHostMask = 0x6002,
    Cr0ReadShadow = 0x6004,
    Cr4ReadShadow = 0x6006,
    // B.4.2 natural-width read-only data fields.
    ExitQualification = 0x6400,
    GuestLinearAddress = 0x640a,
    // B.4.3 natural-width guest-state fields.
    GuestCr0 = 0x6800,
    GuestCr3 = 0x6802,
    GuestCr4 = 0x6804,
    GuestEsBase = 0x6806,
    GuestCsBase = 0x6808,
    GuestSsBase = 0x680a,
    GuestDsBase = 0x680c,
    GuestFsBase = 0x680e,
    GuestGsBase = 0x6810,
    GuestLdtrBase = 0x6812,
    GuestTrBase = 0x6814,
    GuestGdtrBase = 0x6816,
    GuestIdtrBase = 0x6818,
    GuestDr7 = 0x681a,
    GuestRsp = 0x681c,
    GuestRip = 0x681e,
    GuestRflags = 0x6820,
    GuestPendingDebugExceptions = 0x6822,
    GuestSysenterEsp = 0x6824,
    GuestSysenterEip = 0x6826,
    // B.4.4 natural-width host-state fields.
    HostCr0 = 0x6c00,
    HostCr3 = 0x6c02,
    HostCr4 = 0x6c04,
    HostFsBase = 0x6c06,
    HostGsBase = 0x6c08,
    HostTrBase = 0x6c0a,
    HostGdtrBase = 0x6c0c,
    HostIdtrBase = 0x6c0e,
    HostSysenterEsp = 0x6c10,
    HostSysenterEip = 0x6c12,
    HostRsp = 0x6c14,
    HostRip = 0x6c16,
};

enum class FieldWidth : uint32_t { Bits16 = 0, Bits64 = 1, Bits32 = 2, Natural = 3 };
constexpr unsigned kFieldWidthShift = 13;
constexpr FieldWidth width_of(Field field) { return static_cast<FieldWidth>((static_cast<uint32_t>(field) >> kFieldWidthShift) & 3); }

// The outcome of one VMX instruction (SDM Vol. 3 §31.2, "Conventions").
struct VmxStatus {
    enum class Kind : uint8_t { Ok, FailInvalid, FailValid };
    Kind kind = Kind::Ok;
    uint32_t error = 0;  // the VM-instruction error number for FailValid (§31.4)
    constexpr bool ok() const { return kind == Kind::Ok; }
};

namespace detail {
inline VmxStatus status_from_flags(bool cf, bool zf);
} // namespace detail

// The VMX instructions (SDM Vol. 3 §31.3). The 64-bit operand of VMXON/VMCLEAR/VMPTRLD is the
// physical address of a 4 KiB region in memory.
namespace insn {

inline VmxStatus vmxon(uint64_t region_phys)
{
    bool cf, zf;
    asm volatile("vmxon %[pa]" : "=@ccc"(cf), "=@ccz"(zf) : [pa] "m"(region_phys) : "memory");
    return detail::status_from_flags(cf, zf);
}

inline VmxStatus vmclear(uint64_t vmcs_phys)
{
    bool cf, zf;
    asm volatile("vmclear %[pa]" : "=@ccc"(cf), "=@ccz"(zf) : [pa] "m"(vmcs_phys) : "memory");
    return detail::status_from_flags(cf, zf);
}

inline VmxStatus vmptrld(uint64_t vmcs_phys)
{
    bool cf, zf;
    asm volatile("vmptrld %[pa]" : "=@ccc"(cf), "=@ccz"(zf) : [pa] "m"(vmcs_phys) : "memory");
    return detail::status_from_flags(cf, zf);
}

inline VmxStatus vmread(Field field, uint64_t& value)
{
    bool cf, zf;
    asm volatile("vmread %[field], %[value]"
                 : [value] "=rm"(value), "=@ccc"(cf), "=@ccz"(zf)
                 : [field] "r"(static_cast<uint64_t>(field))
                 : "memory");
    // Reading the error field itself cannot fail validly; stop there rather than recurse.
    if (field == Field::VmInstructionError && !cf && zf)
        return {VmxStatus::Kind::FailValid, 0};
    return detail::status_from_flags(cf, zf);
}

inline VmxStatus vmwrite(Field field, uint64_t value)
{
    bool cf, zf;
    asm volatile("vmwrite %[value], %[field]"
                 : "=@ccc"(cf), "=@ccz"(zf)
                 : [field] "r"(static_cast<uint64_t>(field)), [value] "rm"(value)
                 : "memory");
    return detail::status_from_flags(cf, zf);
}

// INVEPT/INVVPID take a 128-bit descriptor in memory (§31.3).
struct alignas(16) InvalidationDescriptor {
    uint64_t low, high;
};

inline VmxStatus invept(uint64_t type, uint64_t eptp)
{
    InvalidationDescriptor descriptor{eptp, 0};
    bool cf, zf;
    asm volatile("invept %[desc], %[type]"
                 : "=@ccc"(cf), "=@ccz"(zf)
                 : [desc] "m"(descriptor), [type] "r"(type)
                 : "memory");
    return detail::status_from_flags(cf, zf);
}

inline VmxStatus invvpid(uint64_t type, uint16_t vpid, uint64_t linear_address)
{
    InvalidationDescriptor descriptor{vpid, linear_address};
    bool cf, zf;
    asm volatile("invvpid %[desc], %[type]"
                 : "=@ccc"(cf), "=@ccz"(zf)
                 : [desc] "m"(descriptor), [type] "r"(type)
                 : "memory");
    return detail::status_from_flags(cf, zf);
}

} // namespace insn

namespace detail {
inline VmxStatus status_from_flags(bool cf, bool zf)
{
    if (cf)
        return {VmxStatus::Kind::FailInvalid, 0};
    if (zf) {
        uint64_t error = 0;
        if (!insn::vmread(Field::VmInstructionError, error).ok())
            error = 0;
        return {VmxStatus::Kind::FailValid, static_cast<uint32_t>(error)};
    }
    return {};
}
} // namespace detail

// Called when a VMREAD/VMWRITE of the current VMCS fails: prints the field and the error. A failed
// access to a field this code names is a monitor bug, never a guest's doing.
void report_vmcs_access_failure(const char* what, Field field, VmxStatus status);

// Typed access to the current VMCS (the one VMPTRLD loaded on this CPU).
class Vmcs {
public:
    template <class T = uint64_t>
    static T read(Field field)
    {
        uint64_t value = 0;
        VmxStatus status = insn::vmread(field, value);
        if (!status.ok())
            report_vmcs_access_failure("VMREAD", field, status);
        return static_cast<T>(value);
    }

    // Returns false (after reporting it) if the write failed.
    static bool write(Field field, uint64_t value)
    {
        VmxStatus status = insn::vmwrite(field, value);
        if (!status.ok())
            report_vmcs_access_failure("VMWRITE", field, status);
        return status.ok();
    }
};

} // namespace vlibos::vmm::vmx

// The Intel VMX backend (SDM Vol. 3 chapters 24-31): VMX root operation per physical CPU, one
// VMCS per vCPU, EPT for guest memory, VPID for TLB tagging, unrestricted guest for real mode,
// and the VMX-preemption timer for the monitor's time budgets.
#include "vmm/vmx/vmx_backend.hpp"

#include <stddef.h>
#include <string.h>

#include "arch/x86_64/cpu.hpp"
#include "core/console.hpp"
#include "core/percpu.hpp"
#include "lib/format.hpp"
#include "vmm/msr_policy.hpp"
#include "vmm/vmx/controls.hpp"
#include "vmm/vmx/ept.hpp"
#include "vmm/vmx/exit_decode.hpp"
#include "vmm/vmx/guest_state_check.hpp"
#include "vmm/vmx/host_cpu.hpp"
#include "vmm/vmx/vmcs.hpp"
#include "vmm/vmx/vmx_arch.hpp"

extern "C" uint64_t vmx_enter(vlibos::vmm::GuestRegisters* regs, uint64_t resume, uint64_t* host_rsp_cache);
extern "C" char vmx_exit_point[];
extern "C" void vmx_write_host_rsp(uint64_t rsp);

// vmx_entry.S hard-codes these offsets.
static_assert(offsetof(vlibos::vmm::GuestRegisters, rax) == 0);
static_assert(offsetof(vlibos::vmm::GuestRegisters, rbx) == 8);
static_assert(offsetof(vlibos::vmm::GuestRegisters, rcx) == 16);
static_assert(offsetof(vlibos::vmm::GuestRegisters, rdx) == 24);
static_assert(offsetof(vlibos::vmm::GuestRegisters, rsi) == 32);
static_assert(offsetof(vlibos::vmm::GuestRegisters, rdi) == 40);
static_assert(offsetof(vlibos::vmm::GuestRegisters, rbp) == 48);
static_assert(offsetof(vlibos::vmm::GuestRegisters, r8) == 56);
static_assert(offsetof(vlibos::vmm::GuestRegisters, r15) == 112);
static_assert(offsetof(vlibos::vmm::GuestRegisters, cr2) == 120);

namespace vlibos::vmm::vmx {

namespace {

constexpr uint64_t kPageSize = 4096;
constexpr size_t kMaxVcpus = 8;
constexpr size_t kMaxEptTables = 128;           // reused when a vCPU is prepared again
constexpr uint64_t kRealModeLimit = 0x100000;    // Real16 entry points lie below 1 MiB
constexpr uint32_t kRealModeSegmentLimit = 0xffff;
constexpr unsigned kRealModeSelectorShift = 4;   // real mode: base = selector << 4
constexpr uint64_t kRealModeOffsetMask = 0xffff;

// What this CPU's VMX supports, read once from the capability MSRs (Appendix A).
struct Capabilities {
    uint64_t basic = 0, misc = 0, ept_vpid = 0;
    uint64_t cr0_fixed0 = 0, cr0_fixed1 = 0, cr4_fixed0 = 0, cr4_fixed1 = 0;
    uint64_t pin = 0, primary = 0, secondary = 0, exit = 0, entry = 0;  // TRUE_* where they exist
    AdjustedControls pin_ctl{}, primary_ctl{}, secondary_ctl{}, exit_ctl{}, entry_ctl{};
    EptCapabilities ept{};
    unsigned timer_rate = 0;
};

// The controls every vCPU runs with (§25.6-§25.8). The preemption timer, its save control and
// interrupt-window exiting are switched per vCPU at run time.
constexpr uint32_t kPinRequired = pin::kExternalInterruptExiting |
                                  pin::kNmiExiting;  // host NMIs must never reach a guest's IDT
constexpr uint32_t kPrimaryRequired =
    primary::kHltExiting | primary::kUseIoBitmaps | primary::kUseMsrBitmaps | primary::kActivateSecondary;
// WBINVD exiting (Table 25-7) keeps a guest from flushing the caches the RT partition shares;
// a CPU without it is not refused here, but prepare() fails (INVD exits regardless, §26.1.2).
constexpr uint32_t kSecondaryRequired =
    secondary::kEnableEpt | secondary::kEnableVpid | secondary::kUnrestrictedGuest | secondary::kWbinvdExiting;
// Always-intercepted exceptions (§25.6.3): a guest can make #AC or #DB recur during its own
// delivery (CVE-2015-5307, CVE-2015-8104), which without an exit hangs the physical CPU in
// microcode with host interrupts blocked. Every other exception goes to the guest's IDT; a
// triple fault exits regardless (§26.2).
constexpr uint32_t kExceptionBitmap =
    exception_bitmap::of(exception_vector::kDebug) | exception_bitmap::of(exception_vector::kAlignmentCheck);
constexpr uint32_t kExitRequired = exit_ctl::kHostAddressSpaceSize | exit_ctl::kSaveEfer | exit_ctl::kLoadEfer;
constexpr uint32_t kEntryRequired = entry_ctl::kLoadEfer;

// Probed once, by the first CPU that asks; the others wait for its answer (several CPUs detect
// the backend at once). g_caps and g_caps_problem are written only before g_probe_state becomes
// kProbed (release) and read only after it was seen as kProbed (acquire).
enum ProbeState : uint32_t { kNotProbed, kProbing, kProbed };
Capabilities g_caps;
const char* g_caps_problem = "VMX support was not probed";
uint32_t g_probe_state = kNotProbed;

struct PerCpuVmx {
    bool enabled = false;
    uint64_t vmxon_region = 0;
    const void* current = nullptr;  // the vCPU whose VMCS is current on this CPU
};
PerCpuVmx g_percpu[kMaxCpus];

PerCpuVmx& this_cpu_vmx() { return g_percpu[this_cpu()->index]; }

uint64_t rdmsr(uint32_t index) { return x86::read_msr_raw(index); }

const char* read_capabilities(Capabilities& c)
{
    if ((x86::cpuid(1).ecx & x86::feature::kLeaf1EcxVmx) == 0)
        return "the CPU has no VMX (CPUID.1:ECX[5] is 0)";
    uint64_t feature_control = rdmsr(msr::kFeatureControl);
    if ((feature_control & feature_control::kLock) != 0 && (feature_control & feature_control::kVmxonOutsideSmx) == 0)
        return "VMX is disabled by the firmware (IA32_FEATURE_CONTROL is locked without VMXON outside SMX)";

    c.basic = rdmsr(msr::kVmxBasic);
    if ((c.basic & basic::kTrueControls) == 0)
        return "VMX lacks the IA32_VMX_TRUE_*_CTLS capability MSRs (IA32_VMX_BASIC bit 55)";
    if (basic::region_size(c.basic) > kPageSize)
        return "the VMCS region is larger than 4 KiB";
    if (basic::memory_type(c.basic) != basic::kMemoryTypeWriteBack)
        return "the VMCS must be accessed with a memory type other than write-back";
    c.misc = rdmsr(msr::kVmxMisc);
    c.timer_rate = misc::timer_rate(c.misc);
    c.cr0_fixed0 = rdmsr(msr::kVmxCr0Fixed0);
    c.cr0_fixed1 = rdmsr(msr::kVmxCr0Fixed1);
    c.cr4_fixed0 = rdmsr(msr::kVmxCr4Fixed0);
    c.cr4_fixed1 = rdmsr(msr::kVmxCr4Fixed1);
    c.pin = rdmsr(msr::kVmxTruePinbasedCtls);
    c.primary = rdmsr(msr::kVmxTrueProcbasedCtls);
    c.exit = rdmsr(msr::kVmxTrueExitCtls);
    c.entry = rdmsr(msr::kVmxTrueEntryCtls);

    c.pin_ctl = adjust_controls(c.pin, kPinRequired);
    if (c.pin_ctl.missing != 0 || !controls_allowed(c.pin, c.pin_ctl.value | pin::kPreemptionTimer))
        return "VMX lacks external-interrupt/NMI exiting or the VMX-preemption timer";
    c.primary_ctl = adjust_controls(c.primary, kPrimaryRequired);
    if (c.primary_ctl.missing != 0 ||
        !controls_allowed(c.primary, c.primary_ctl.value | primary::kInterruptWindowExiting))
        return "VMX lacks HLT exiting, I/O or MSR bitmaps, interrupt-window exiting or secondary controls";
    c.secondary = rdmsr(msr::kVmxProcbasedCtls2);
    c.secondary_ctl = adjust_controls(c.secondary, kSecondaryRequired);
    if ((c.secondary_ctl.missing & secondary::kEnableEpt) != 0)
        return "VMX lacks EPT";
    if ((c.secondary_ctl.missing & secondary::kUnrestrictedGuest) != 0)
        return "VMX lacks unrestricted guest";
    if ((c.secondary_ctl.missing & secondary::kEnableVpid) != 0)
        return "VMX lacks VPID";
    c.exit_ctl = adjust_controls(c.exit, kExitRequired);
    if (c.exit_ctl.missing != 0 || !controls_allowed(c.exit, c.exit_ctl.value | exit_ctl::kSavePreemptionTimer))
        return "VMX lacks a 64-bit host, IA32_EFER save/load on exit or saving the preemption timer";
    c.entry_ctl = adjust_controls(c.entry, kEntryRequired);
    if (c.entry_ctl.missing != 0)
        return "VMX lacks loading IA32_EFER on entry";

    c.ept_vpid = rdmsr(msr::kVmxEptVpidCap);
    if ((c.ept_vpid & ept_vpid_cap::kPageWalk4) == 0 || (c.ept_vpid & ept_vpid_cap::kMemoryTypeWb) == 0)
        return "EPT lacks 4-level walks or write-back paging structures";
    if ((c.ept_vpid & ept_vpid_cap::kInvept) == 0 ||
        (c.ept_vpid & (ept_vpid_cap::kInveptSingleContext | ept_vpid_cap::kInveptAllContext)) == 0)
        return "VMX lacks INVEPT";
    if ((c.ept_vpid & ept_vpid_cap::kInvvpid) == 0 ||
        (c.ept_vpid & (ept_vpid_cap::kInvvpidSingleContext | ept_vpid_cap::kInvvpidAllContext)) == 0)
        return "VMX lacks INVVPID";
    c.ept = EptCapabilities{(c.ept_vpid & ept_vpid_cap::kPage2M) != 0, (c.ept_vpid & ept_vpid_cap::kPage1G) != 0,
                            (c.ept_vpid & ept_vpid_cap::kExecuteOnly) != 0};
    return nullptr;
}

const char* describe_status(const VmxStatus& status)
{
    if (status.kind == VmxStatus::Kind::FailInvalid)
        return "VMfailInvalid (no current VMCS, or the operand is invalid)";
    if (status.kind == VmxStatus::Kind::FailValid)
        return describe_instruction_error(status.error);
    return "success";
}

void report_failure(const char* what, const VmxStatus& status)
{
    console::print("vmx: %s failed on cpu %u: %s (VM-instruction error %u)\n", what, this_cpu()->index,
                   describe_status(status), status.error);
}

// EPT tables come from the PageSource; a vCPU prepared again reuses the tables it had.
struct EptEnv {
    PageSource& pages;
    uint64_t* tables;
    size_t& table_count;
    size_t reused = 0;

    uint64_t* table(uint64_t phys) { return reinterpret_cast<uint64_t*>(phys); }

    Result<uint64_t, EptError> allocate_table()
    {
        if (reused < table_count) {
            uint64_t phys = tables[reused++];
            memset(table(phys), 0, kPageSize);
            return phys;
        }
        auto page = pages.allocate_zeroed(1);
        if (!page)
            return fail(EptError::OutOfMemory);
        if (table_count < kMaxEptTables) {
            tables[table_count++] = page.value();
            reused = table_count;
        }
        return page.value();
    }
};

void fill_ones(uint64_t phys, uint64_t bytes) { memset(reinterpret_cast<void*>(phys), 0xff, bytes); }

class VmxVcpu final : public Vcpu {
public:
    bool claim() { return !__atomic_exchange_n(&in_use_, true, __ATOMIC_ACQUIRE); }
    void release() { __atomic_store_n(&in_use_, false, __ATOMIC_RELEASE); }

    Status<VmError> create(PageSource& pages)
    {
        pages_ = &pages;
        cpu_ = this_cpu()->index;
        vmcs_ = TRY(pages.allocate_zeroed(1));
        io_bitmap_a_ = TRY(pages.allocate_zeroed(1));
        io_bitmap_b_ = TRY(pages.allocate_zeroed(1));
        msr_bitmap_ = TRY(pages.allocate_zeroed(1));
        ept_root_ = TRY(pages.allocate_zeroed(1));
        // Every port and every MSR exits (§25.6.4, §25.6.9), except the guest's own CPU-state
        // MSRs (vmm::kGuestStateMsrs: EFER, segment bases, system-call entry), so a guest may
        // enter long mode and run a 64-bit kernel on its own, as docs/virtualisation.md says.
        fill_ones(io_bitmap_a_, kBitmapBytes);
        fill_ones(io_bitmap_b_, kBitmapBytes);
        fill_ones(msr_bitmap_, kBitmapBytes);
        for (uint32_t index : kGuestStateMsrs)
            pass_through_msr(index);
        *reinterpret_cast<uint32_t*>(vmcs_) = basic::revision(g_caps.basic);  // §25.2
        VmxStatus status = insn::vmclear(vmcs_);
        if (!status.ok()) {
            report_failure("VMCLEAR of a new VMCS", status);
            return fail(VmError::HardwareError);
        }
        return make_current();
    }

    Status<VmError> prepare(const GuestMemory& memory, const EntryState& entry, uint16_t tag) override
    {
        if (this_cpu()->index != cpu_)
            return fail(VmError::BadEntryState);
        if (tag == 0) {
            console::print("vmx: VPID 0 belongs to the host (SDM §27.2.1.1); a guest tag must be non-zero\n");
            return fail(VmError::BadEntryState);
        }
        if (!entry_state_valid(entry))
            return fail(VmError::BadEntryState);
        if ((g_caps.secondary_ctl.missing & secondary::kWbinvdExiting) != 0) {
            console::print("vmx: the CPU cannot set \"WBINVD exiting\" (SDM Table 25-7): a guest could flush "
                           "the caches the RT partition shares\n");
            return fail(VmError::NotSupported);
        }

        // A fresh launch: VMCLEAR makes the VMCS "clear" so the next entry is a VMLAUNCH (§25.11.3).
        VmxStatus status = insn::vmclear(vmcs_);
        if (!status.ok()) {
            report_failure("VMCLEAR", status);
            return fail(VmError::HardwareError);
        }
        this_cpu_vmx().current = nullptr;
        launched_ = false;
        prepared_ = false;
        TRY(make_current());

        TRY(build_ept(memory));
        invalidate(tag);

        pin_ = g_caps.pin_ctl.value;
        primary_ = g_caps.primary_ctl.value;
        secondary_ = g_caps.secondary_ctl.value;
        exit_ = g_caps.exit_ctl.value;
        entry_ = g_caps.entry_ctl.value;

        bool ok = write_controls(tag) && write_host_state() && write_guest_state(entry);
        if (!ok)
            return fail(VmError::HardwareError);
        prepared_ = true;
        return {};
    }

    void run(GuestRegisters& regs, ExitInfo& exit) override
    {
        exit = ExitInfo{};
        exit.reason = ExitReason::EntryFailed;
        failure_.clear();
        if (this_cpu()->index != cpu_) {
            failure_.append("the vCPU of cpu %u was run on cpu %u", cpu_, this_cpu()->index);
            exit.entry_failure = failure_.c_str();
            return;
        }
        if (!prepared_ || !make_current()) {
            exit.entry_failure = "the vCPU was run before a successful prepare()";
            return;
        }
        if (!launched_) {
            if (const char* problem = check_guest_state(read_guest_state())) {
                failure_.append("guest state check before VMLAUNCH: %s", problem);
                exit.entry_failure = failure_.c_str();
                return;
            }
        }

        uint64_t result = vmx_enter(&regs, launched_ ? 1 : 0, &host_rsp_);
        if (result != 0) {
            VmxStatus status{result == 1 ? VmxStatus::Kind::FailInvalid : VmxStatus::Kind::FailValid, 0};
            if (status.kind == VmxStatus::Kind::FailValid)
                status.error = Vmcs::read<uint32_t>(Field::VmInstructionError);
            failure_.append("%s failed: VM-instruction error %u: %s (SDM §31.4)", launched_ ? "VMRESUME" : "VMLAUNCH",
                            status.error, describe_status(status));
            exit.entry_failure = failure_.c_str();
            return;
        }

        RawExit raw;
        raw.reason = Vmcs::read<uint32_t>(Field::ExitReason);
        raw.qualification = Vmcs::read(Field::ExitQualification);
        raw.guest_physical = Vmcs::read(Field::GuestPhysicalAddress);
        raw.guest_rip = Vmcs::read(Field::GuestRip);
        raw.instruction_length = Vmcs::read<uint32_t>(Field::ExitInstructionLength);
        raw.interruption_info = Vmcs::read<uint32_t>(Field::ExitInterruptionInfo);
        raw.interruption_error_code = Vmcs::read<uint32_t>(Field::ExitInterruptionErrorCode);
        raw.guest_rcx = regs.rcx;
        decode_exit(raw, exit);

        if (is_entry_failure(raw.reason)) {
            failure_.append("%s (exit reason %u, qualification %#lx)", exit.entry_failure, basic_reason(raw.reason),
                            raw.qualification);
            exit.entry_failure = failure_.c_str();
            return;
        }
        launched_ = true;
        reinject_interrupted_event();
    }

    uint64_t rip() const override { return current() ? Vmcs::read(Field::GuestRip) : 0; }
    uint64_t rsp() const override { return current() ? Vmcs::read(Field::GuestRsp) : 0; }
    uint64_t rflags() const override { return current() ? Vmcs::read(Field::GuestRflags) : 0; }
    // CPL is SS.DPL, bits 6:5 of the SS access rights (SDM Vol. 3 §28.3.1.5 / §27.3.1.2).
    uint8_t cpl() const override
    {
        return current() ? static_cast<uint8_t>((Vmcs::read(Field::GuestSsAccessRights) >> 5) & 3) : 0;
    }

    void set_rip(uint64_t rip) override
    {
        if (!current())
            return;
        Vmcs::write(Field::GuestRip, rip);
        // Moving past an emulated instruction ends an STI or MOV SS shadow, as executing it would.
        uint32_t state = Vmcs::read<uint32_t>(Field::GuestInterruptibility);
        uint32_t shadow = interruptibility::kBlockingBySti | interruptibility::kBlockingByMovSs;
        if ((state & shadow) != 0)
            Vmcs::write(Field::GuestInterruptibility, state & ~shadow);
    }

    bool can_inject_interrupt() const override
    {
        if (!current())
            return false;
        uint32_t state = Vmcs::read<uint32_t>(Field::GuestInterruptibility);
        uint32_t pending = Vmcs::read<uint32_t>(Field::EntryInterruptionInfo);
        return (Vmcs::read(Field::GuestRflags) & rflags::kInterruptEnable) != 0 &&
               (state & (interruptibility::kBlockingBySti | interruptibility::kBlockingByMovSs)) == 0 &&
               (pending & interruption::kValid) == 0;
    }

    // §27.6: the event is delivered through the guest's IDT (IVT in real mode) at the next entry.
    void inject_interrupt(uint8_t vector) override
    {
        if (current())
            Vmcs::write(Field::EntryInterruptionInfo,
                        interruption::make(vector, interruption::Type::ExternalInterrupt, false));
    }

    void inject_exception(uint8_t vector, bool has_error_code, uint32_t error_code) override
    {
        if (!current())
            return;
        constexpr uint8_t kNmiVector = 2;
        auto type = vector == kNmiVector ? interruption::Type::Nmi : interruption::Type::HardwareException;
        // Real mode pushes no error codes; VM entry refuses one unless CR0.PE is 1 (§27.2.1.3).
        bool protected_mode = (Vmcs::read(Field::GuestCr0) & cr0::kProtectionEnable) != 0;
        bool deliver = has_error_code && protected_mode && interruption::exception_has_error_code(vector);
        if (deliver)
            Vmcs::write(Field::EntryExceptionErrorCode, error_code);
        Vmcs::write(Field::EntryInterruptionInfo, interruption::make(vector, type, deliver));
    }

    void set_interrupt_window_exit(bool enabled) override
    {
        if (!current())
            return;
        primary_ = enabled ? primary_ | primary::kInterruptWindowExiting : primary_ & ~primary::kInterruptWindowExiting;
        Vmcs::write(Field::PrimaryProcessorControls, primary_);
    }

    void arm_timer(uint64_t tsc_ticks) override
    {
        if (!current())
            return;
        if (tsc_ticks == 0) {
            pin_ &= ~pin::kPreemptionTimer;
            exit_ &= ~exit_ctl::kSavePreemptionTimer;
        } else {
            // Saving the value on exit makes the budget span exits: the timer only runs in the guest.
            pin_ |= pin::kPreemptionTimer;
            exit_ |= exit_ctl::kSavePreemptionTimer;
            Vmcs::write(Field::GuestPreemptionTimer, preemption_timer_value(tsc_ticks, g_caps.timer_rate));
        }
        Vmcs::write(Field::PinBasedControls, pin_);
        Vmcs::write(Field::ExitControls, exit_);
    }

    ControlState control_state() const override
    {
        if (!current())
            return {};
        // What the guest sees: host-owned bits (set in the guest/host mask) read from the shadow (§25.6.6).
        auto visible = [](uint64_t real, uint64_t mask, uint64_t shadow) { return (real & ~mask) | (shadow & mask); };
        return {visible(Vmcs::read(Field::GuestCr0), cr0_mask_, cr0_shadow_), Vmcs::read(Field::GuestCr3),
                visible(Vmcs::read(Field::GuestCr4), cr4_mask_, cr4_shadow_), Vmcs::read(Field::GuestEfer)};
    }

    // CS base and access rights from the guest-state area (SDM Vol. 3 §25.4.1, Table 25-2).
    CodeSegment code_segment() const override
    {
        if (!current())
            return {};
        auto rights = Vmcs::read<uint32_t>(Field::GuestCsAccessRights);
        return {Vmcs::read(Field::GuestCsBase), (rights & access_rights::kLong) != 0,
                (rights & access_rights::kDefaultBig) != 0};
    }

private:
    void pass_through_msr(uint32_t msr)
    {
        msr_bitmap::Position at = msr_bitmap::read_position(msr);
        auto* bitmap = reinterpret_cast<uint8_t*>(msr_bitmap_);
        uint8_t clear = static_cast<uint8_t>(~(1u << at.bit));
        if (!at.covered)
            return;
        bitmap[at.byte] &= clear;
        bitmap[at.byte + msr_bitmap::kWriteDistance] &= clear;
    }

    // Makes this vCPU's VMCS the current one on this CPU (VMPTRLD, §31.3) if it is not already.
    Status<VmError> make_current() const
    {
        PerCpuVmx& cpu = this_cpu_vmx();
        if (cpu.current == this)
            return {};
        VmxStatus status = insn::vmptrld(vmcs_);
        if (!status.ok()) {
            report_failure("VMPTRLD", status);
            return fail(VmError::HardwareError);
        }
        cpu.current = this;
        return {};
    }

    bool current() const { return this_cpu()->index == cpu_ && make_current().ok(); }

    Status<VmError> build_ept(const GuestMemory& memory)
    {
        memset(reinterpret_cast<void*>(ept_root_), 0, kPageSize);
        EptEnv env{*pages_, ept_tables_, ept_table_count_};
        Ept<EptEnv> ept(env, ept_root_, g_caps.ept);
        auto mapped = ept.map_all(memory);
        if (!mapped) {
            console::print("vmx: cannot build the EPT: %s\n", describe(mapped.error()));
            return fail(mapped.error() == EptError::OutOfMemory ? VmError::OutOfMemory : VmError::BadGuestMemory);
        }
        eptp_ = ept.eptp();
        return {};
    }

    // The root may be a reused page that an earlier VM's translations were cached under.
    void invalidate(uint16_t tag)
    {
        bool single = (g_caps.ept_vpid & ept_vpid_cap::kInveptSingleContext) != 0;
        VmxStatus status = insn::invept(static_cast<uint64_t>(single ? InveptType::SingleContext : InveptType::AllContext), eptp_);
        if (!status.ok())
            report_failure("INVEPT", status);
        single = (g_caps.ept_vpid & ept_vpid_cap::kInvvpidSingleContext) != 0;
        status = insn::invvpid(static_cast<uint64_t>(single ? InvvpidType::SingleContext : InvvpidType::AllContext), tag, 0);
        if (!status.ok())
            report_failure("INVVPID", status);
    }

    bool write_controls(uint16_t tag)
    {
        bool ok = true;
        ok &= Vmcs::write(Field::PinBasedControls, pin_);
        ok &= Vmcs::write(Field::PrimaryProcessorControls, primary_);
        ok &= Vmcs::write(Field::SecondaryProcessorControls, secondary_);
        ok &= Vmcs::write(Field::ExitControls, exit_);
        ok &= Vmcs::write(Field::EntryControls, entry_);
        ok &= Vmcs::write(Field::ExceptionBitmap, kExceptionBitmap);
        ok &= Vmcs::write(Field::PageFaultErrorCodeMask, 0);
        ok &= Vmcs::write(Field::PageFaultErrorCodeMatch, 0);
        ok &= Vmcs::write(Field::Cr3TargetCount, 0);
        ok &= Vmcs::write(Field::ExitMsrStoreCount, 0);
        ok &= Vmcs::write(Field::ExitMsrLoadCount, 0);
        ok &= Vmcs::write(Field::EntryMsrLoadCount, 0);
        ok &= Vmcs::write(Field::EntryInterruptionInfo, 0);
        ok &= Vmcs::write(Field::TscOffset, 0);
        ok &= Vmcs::write(Field::IoBitmapA, io_bitmap_a_);
        ok &= Vmcs::write(Field::IoBitmapB, io_bitmap_b_);
        ok &= Vmcs::write(Field::MsrBitmap, msr_bitmap_);
        ok &= Vmcs::write(Field::EptPointer, eptp_);
        ok &= Vmcs::write(Field::Vpid, tag);

        // Bits VMX operation forbids (not in FIXED1, A.7/A.8) and CR4.VMXE, which VMX needs but
        // the guest must not see, are owned by the monitor: the guest reads them from the shadow
        // (0) and a write that sets them exits (§25.6.6). CR0.NE stays guest-visible as 1:
        // owning it would make the common "set NE" write exit, and an exit the runtime cannot
        // handle would stop the VM; a guest clearing it gets #GP, as on CPUs where it is fixed.
        cr0_mask_ = ~g_caps.cr0_fixed1;
        cr0_shadow_ = 0;
        cr4_mask_ = cr4::kVmxEnable | g_caps.cr4_fixed0 | ~g_caps.cr4_fixed1;
        cr4_shadow_ = 0;
        ok &= Vmcs::write(Field::Cr0GuestHostMask, cr0_mask_);
        ok &= Vmcs::write(Field::Cr0ReadShadow, cr0_shadow_);
        ok &= Vmcs::write(Field::Cr4GuestHostMask, cr4_mask_);
        ok &= Vmcs::write(Field::Cr4ReadShadow, cr4_shadow_);
        return ok;
    }

    // The host-state area (§25.5, checked by §27.2.2-§27.2.4): the state of this CPU now. VM exits
    // come back to vmx_exit_point on the stack vmx_enter set up.
    bool write_host_state()
    {
        host::Selectors s = host::read_selectors();
        uint64_t gdt = host::gdtr_base();
        // §27.2.3: host selectors need RPL = TI = 0, which the monitor's GDT selectors have.
        bool ok = true;
        ok &= Vmcs::write(Field::HostCr0, x86::read_cr0());
        ok &= Vmcs::write(Field::HostCr3, x86::read_cr3());
        ok &= Vmcs::write(Field::HostCr4, x86::read_cr4());
        ok &= Vmcs::write(Field::HostCsSelector, s.cs);
        ok &= Vmcs::write(Field::HostSsSelector, s.ss);
        ok &= Vmcs::write(Field::HostDsSelector, s.ds);
        ok &= Vmcs::write(Field::HostEsSelector, s.es);
        ok &= Vmcs::write(Field::HostFsSelector, s.fs);
        ok &= Vmcs::write(Field::HostGsSelector, s.gs);
        ok &= Vmcs::write(Field::HostTrSelector, s.tr);
        // GS base is the monitor's per-CPU pointer: an exit must bring it back exactly.
        ok &= Vmcs::write(Field::HostFsBase, x86::read_msr(x86::Msr::FsBase));
        ok &= Vmcs::write(Field::HostGsBase, x86::read_msr(x86::Msr::GsBase));
        ok &= Vmcs::write(Field::HostTrBase, host::tss_base(gdt, s.tr));
        ok &= Vmcs::write(Field::HostGdtrBase, gdt);
        ok &= Vmcs::write(Field::HostIdtrBase, host::idtr_base());
        ok &= Vmcs::write(Field::HostSysenterCs, rdmsr(msr::kSysenterCs));
        ok &= Vmcs::write(Field::HostSysenterEsp, rdmsr(msr::kSysenterEsp));
        ok &= Vmcs::write(Field::HostSysenterEip, rdmsr(msr::kSysenterEip));
        ok &= Vmcs::write(Field::HostEfer, x86::read_msr(x86::Msr::Efer));
        ok &= Vmcs::write(Field::HostRip, reinterpret_cast<uint64_t>(vmx_exit_point));
        host_rsp_ = 0;  // vmx_enter writes HOST_RSP before the first entry
        return ok;
    }

    // Real mode under unrestricted guest (§27.3.1 with "unrestricted guest" = 1): the state a
    // processor has after reset (SDM Vol. 3 §10.1.1, Table 10-1), with CS:IP from the entry point.
    bool write_guest_state(const EntryState& entry)
    {
        namespace ar = access_rights;
        uint64_t cs_base = entry.rip & ~kRealModeOffsetMask;
        uint64_t cr0 = apply_fixed_bits(cr0::kExtensionType, guest_cr0_fixed0(g_caps.cr0_fixed0, true), g_caps.cr0_fixed1);
        uint64_t cr4 = apply_fixed_bits(0, g_caps.cr4_fixed0, g_caps.cr4_fixed1);
        bool ok = true;
        ok &= Vmcs::write(Field::GuestCr0, cr0);
        ok &= Vmcs::write(Field::GuestCr3, 0);
        ok &= Vmcs::write(Field::GuestCr4, cr4);
        ok &= Vmcs::write(Field::GuestDr7, kDr7Init);
        ok &= Vmcs::write(Field::GuestDebugctl, 0);
        ok &= Vmcs::write(Field::GuestEfer, 0);
        ok &= Vmcs::write(Field::GuestRip, entry.rip & kRealModeOffsetMask);
        ok &= Vmcs::write(Field::GuestRsp, entry.rsp);
        ok &= Vmcs::write(Field::GuestRflags, rflags::kFixedOne);

        ok &= write_data_segments(0, kRealModeSegmentLimit, ar::kRealModeData);
        ok &= Vmcs::write(Field::GuestCsSelector, cs_base >> kRealModeSelectorShift);
        ok &= Vmcs::write(Field::GuestCsBase, cs_base);
        ok &= Vmcs::write(Field::GuestCsLimit, kRealModeSegmentLimit);
        ok &= Vmcs::write(Field::GuestCsAccessRights, ar::kRealModeCode);
        // TR must be a usable busy TSS and LDTR present or unusable, even in real mode (§27.3.1.2).
        ok &= Vmcs::write(Field::GuestTrSelector, 0);
        ok &= Vmcs::write(Field::GuestTrBase, 0);
        ok &= Vmcs::write(Field::GuestTrLimit, kRealModeSegmentLimit);
        ok &= Vmcs::write(Field::GuestTrAccessRights, ar::kBusyTss32);
        ok &= Vmcs::write(Field::GuestLdtrSelector, 0);
        ok &= Vmcs::write(Field::GuestLdtrBase, 0);
        ok &= Vmcs::write(Field::GuestLdtrLimit, kRealModeSegmentLimit);
        ok &= Vmcs::write(Field::GuestLdtrAccessRights, ar::kLdtPresent);
        ok &= Vmcs::write(Field::GuestGdtrBase, 0);
        ok &= Vmcs::write(Field::GuestGdtrLimit, kRealModeSegmentLimit);
        ok &= Vmcs::write(Field::GuestIdtrBase, 0);
        ok &= Vmcs::write(Field::GuestIdtrLimit, kRealModeSegmentLimit);

        ok &= Vmcs::write(Field::GuestSysenterCs, 0);
        ok &= Vmcs::write(Field::GuestSysenterEsp, 0);
        ok &= Vmcs::write(Field::GuestSysenterEip, 0);
        ok &= Vmcs::write(Field::GuestActivityState, static_cast<uint32_t>(ActivityState::Active));
        ok &= Vmcs::write(Field::GuestInterruptibility, 0);
        ok &= Vmcs::write(Field::GuestPendingDebugExceptions, 0);
        ok &= Vmcs::write(Field::VmcsLinkPointer, ~uint64_t{0});  // no shadow VMCS (§25.4.2)
        if (entry.mode == EntryState::Mode::Protected32)
            ok &= write_protected_mode_state(entry);
        return ok;
    }

    // ES, SS, DS, FS and GS alike, base 0 (§25.4.1).
    static bool write_data_segments(uint16_t selector, uint32_t limit, uint32_t access_rights)
    {
        struct Segment {
            Field selector, base, limit, access_rights;
        };
        const Segment data_segments[] = {
            {Field::GuestEsSelector, Field::GuestEsBase, Field::GuestEsLimit, Field::GuestEsAccessRights},
            {Field::GuestSsSelector, Field::GuestSsBase, Field::GuestSsLimit, Field::GuestSsAccessRights},
            {Field::GuestDsSelector, Field::GuestDsBase, Field::GuestDsLimit, Field::GuestDsAccessRights},
            {Field::GuestFsSelector, Field::GuestFsBase, Field::GuestFsLimit, Field::GuestFsAccessRights},
            {Field::GuestGsSelector, Field::GuestGsBase, Field::GuestGsLimit, Field::GuestGsAccessRights},
        };
        bool ok = true;
        for (const Segment& seg : data_segments) {
            ok &= Vmcs::write(seg.selector, selector);
            ok &= Vmcs::write(seg.base, 0);
            ok &= Vmcs::write(seg.limit, limit);
            ok &= Vmcs::write(seg.access_rights, access_rights);
        }
        return ok;
    }

    // Protected mode with paging off (unrestricted guest allows PG = 0, §27.3.1.1): flat 4 GiB
    // segments from the entry's selectors, over the real-mode state written above.
    bool write_protected_mode_state(const EntryState& entry)
    {
        namespace ar = access_rights;
        constexpr uint32_t kFlatLimit = 0xffff'ffff;
        constexpr uint32_t kFlatCode = ar::kRealModeCode | ar::kDefaultBig | ar::kGranularity;  // 0xc09b
        constexpr uint32_t kFlatData = ar::kRealModeData | ar::kDefaultBig | ar::kGranularity;  // 0xc093
        uint64_t cr0 = apply_fixed_bits(cr0::kExtensionType | cr0::kProtectionEnable,
                                        guest_cr0_fixed0(g_caps.cr0_fixed0, true), g_caps.cr0_fixed1);
        bool ok = true;
        ok &= Vmcs::write(Field::GuestCr0, cr0);
        ok &= Vmcs::write(Field::GuestRip, entry.rip);
        ok &= Vmcs::write(Field::GuestCsSelector, entry.code_selector);
        ok &= Vmcs::write(Field::GuestCsBase, 0);
        ok &= Vmcs::write(Field::GuestCsLimit, kFlatLimit);
        ok &= Vmcs::write(Field::GuestCsAccessRights, kFlatCode);
        ok &= write_data_segments(entry.data_selector, kFlatLimit, kFlatData);
        ok &= Vmcs::write(Field::GuestGdtrBase, entry.gdtr_base);
        ok &= Vmcs::write(Field::GuestGdtrLimit, entry.gdtr_limit);
        return ok;
    }

    GuestState read_guest_state() const
    {
        GuestState g;
        const Field fields[GuestState::SegmentCount][4] = {
            {Field::GuestEsSelector, Field::GuestEsBase, Field::GuestEsLimit, Field::GuestEsAccessRights},
            {Field::GuestCsSelector, Field::GuestCsBase, Field::GuestCsLimit, Field::GuestCsAccessRights},
            {Field::GuestSsSelector, Field::GuestSsBase, Field::GuestSsLimit, Field::GuestSsAccessRights},
            {Field::GuestDsSelector, Field::GuestDsBase, Field::GuestDsLimit, Field::GuestDsAccessRights},
            {Field::GuestFsSelector, Field::GuestFsBase, Field::GuestFsLimit, Field::GuestFsAccessRights},
            {Field::GuestGsSelector, Field::GuestGsBase, Field::GuestGsLimit, Field::GuestGsAccessRights},
            {Field::GuestLdtrSelector, Field::GuestLdtrBase, Field::GuestLdtrLimit, Field::GuestLdtrAccessRights},
            {Field::GuestTrSelector, Field::GuestTrBase, Field::GuestTrLimit, Field::GuestTrAccessRights},
        };
        for (unsigned i = 0; i < GuestState::SegmentCount; ++i) {
            g.segment[i].selector = Vmcs::read<uint16_t>(fields[i][0]);
            g.segment[i].base = Vmcs::read(fields[i][1]);
            g.segment[i].limit = Vmcs::read<uint32_t>(fields[i][2]);
            g.segment[i].access_rights = Vmcs::read<uint32_t>(fields[i][3]);
        }
        g.cr0 = Vmcs::read(Field::GuestCr0);
        g.cr3 = Vmcs::read(Field::GuestCr3);
        g.cr4 = Vmcs::read(Field::GuestCr4);
        g.dr7 = Vmcs::read(Field::GuestDr7);
        g.efer = Vmcs::read(Field::GuestEfer);
        g.rip = Vmcs::read(Field::GuestRip);
        g.rflags = Vmcs::read(Field::GuestRflags);
        g.gdtr_base = Vmcs::read(Field::GuestGdtrBase);
        g.gdtr_limit = Vmcs::read<uint32_t>(Field::GuestGdtrLimit);
        g.idtr_base = Vmcs::read(Field::GuestIdtrBase);
        g.idtr_limit = Vmcs::read<uint32_t>(Field::GuestIdtrLimit);
        g.activity = Vmcs::read<uint32_t>(Field::GuestActivityState);
        g.interruptibility = Vmcs::read<uint32_t>(Field::GuestInterruptibility);
        g.vmcs_link = Vmcs::read(Field::VmcsLinkPointer);
        g.entry_interruption = Vmcs::read<uint32_t>(Field::EntryInterruptionInfo);
        g.entry_controls = Vmcs::read<uint32_t>(Field::EntryControls);
        g.unrestricted_guest = (Vmcs::read<uint32_t>(Field::SecondaryProcessorControls) & secondary::kUnrestrictedGuest) != 0;
        g.cr0_fixed0 = g_caps.cr0_fixed0;
        g.cr0_fixed1 = g_caps.cr0_fixed1;
        g.cr4_fixed0 = g_caps.cr4_fixed0;
        g.cr4_fixed1 = g_caps.cr4_fixed1;
        g.vmx_misc = g_caps.misc;
        return g;
    }

    // An exit during the delivery of an event (e.g. an EPT violation on the guest's stack while
    // an interrupt is pushed) loses the event unless it is injected again (§28.2.4, §27.6.1.1).
    void reinject_interrupted_event()
    {
        uint32_t vectoring = Vmcs::read<uint32_t>(Field::IdtVectoringInfo);
        if ((vectoring & interruption::kValid) == 0)
            return;
        uint32_t info = vectoring & (interruption::kVectorMask | interruption::kTypeMask |
                                     interruption::kDeliverErrorCode | interruption::kValid);
        if ((info & interruption::kDeliverErrorCode) != 0)
            Vmcs::write(Field::EntryExceptionErrorCode, Vmcs::read<uint32_t>(Field::IdtVectoringErrorCode));
        Vmcs::write(Field::EntryInstructionLength, Vmcs::read<uint32_t>(Field::ExitInstructionLength));
        Vmcs::write(Field::EntryInterruptionInfo, info);
    }

    bool in_use_ = false;
    bool launched_ = false;
    bool prepared_ = false;
    uint32_t cpu_ = 0;
    PageSource* pages_ = nullptr;
    uint64_t vmcs_ = 0, io_bitmap_a_ = 0, io_bitmap_b_ = 0, msr_bitmap_ = 0, ept_root_ = 0, eptp_ = 0;
    uint64_t ept_tables_[kMaxEptTables] = {};
    size_t ept_table_count_ = 0;
    uint32_t pin_ = 0, primary_ = 0, secondary_ = 0, exit_ = 0, entry_ = 0;
    uint64_t cr0_mask_ = 0, cr0_shadow_ = 0, cr4_mask_ = 0, cr4_shadow_ = 0;
    uint64_t host_rsp_ = 0;
    FormatBuffer<320> failure_;
};

VmxVcpu g_vcpus[kMaxVcpus];

class VmxBackend final : public Backend {
public:
    const char* name() const override { return "vmx"; }

    // SDM Vol. 3 §24.7-§24.8: IA32_FEATURE_CONTROL, the CR0/CR4 fixed bits, CR4.VMXE, VMXON.
    Status<VmError> enable_on_this_cpu(PageSource& pages) override
    {
        if (__atomic_load_n(&g_probe_state, __ATOMIC_ACQUIRE) != kProbed || g_caps_problem != nullptr)
            return fail(VmError::NotSupported);  // vmx_backend_if_supported() said no, or was not asked
        PerCpuVmx& cpu = this_cpu_vmx();
        if (cpu.enabled)
            return {};
        uint64_t feature_control = rdmsr(msr::kFeatureControl);
        if ((feature_control & feature_control::kLock) == 0) {
            // Unlocked (firmware left it to us): allow VMXON outside SMX, then lock until reset.
            feature_control |= feature_control::kVmxonOutsideSmx | feature_control::kLock;
            x86::write_msr_raw(msr::kFeatureControl, feature_control);
        } else if ((feature_control & feature_control::kVmxonOutsideSmx) == 0) {
            return fail(VmError::DisabledByFirmware);
        }

        x86::write_cr0(apply_fixed_bits(x86::read_cr0(), g_caps.cr0_fixed0, g_caps.cr0_fixed1));
        host::write_cr4(apply_fixed_bits(x86::read_cr4() | cr4::kVmxEnable, g_caps.cr4_fixed0, g_caps.cr4_fixed1));

        uint64_t region = TRY(pages.allocate_zeroed(1));
        *reinterpret_cast<uint32_t*>(region) = basic::revision(g_caps.basic);  // §25.11.5
        VmxStatus status = insn::vmxon(region);
        if (!status.ok()) {
            report_failure("VMXON", status);
            return fail(VmError::EnableFailed);
        }
        cpu.vmxon_region = region;
        cpu.enabled = true;
        cpu.current = nullptr;
        return {};
    }

    Vcpu* create_vcpu(PageSource& pages, VmError& error) override
    {
        if (!this_cpu_vmx().enabled) {
            console::print("vmx: create_vcpu on cpu %u before enable_on_this_cpu\n", this_cpu()->index);
            error = VmError::EnableFailed;
            return nullptr;
        }
        for (VmxVcpu& vcpu : g_vcpus) {
            if (!vcpu.claim())
                continue;
            auto created = vcpu.create(pages);
            if (!created) {
                vcpu.release();
                error = created.error();
                return nullptr;
            }
            return &vcpu;
        }
        console::print("vmx: all %zu vCPUs are in use\n", kMaxVcpus);
        error = VmError::OutOfMemory;
        return nullptr;
    }
};

VmxBackend g_backend;

} // namespace

void report_vmcs_access_failure(const char* what, Field field, VmxStatus status)
{
    console::print("vmx: %s of VMCS field %#x failed on cpu %u: %s (VM-instruction error %u)\n", what,
                   static_cast<unsigned>(field), this_cpu()->index, describe_status(status), status.error);
}

} // namespace vlibos::vmm::vmx

extern "C" void vmx_write_host_rsp(uint64_t rsp)
{
    vlibos::vmm::vmx::Vmcs::write(vlibos::vmm::vmx::Field::HostRsp, rsp);
}

namespace vlibos::vmm {

Backend* vmx_backend_if_supported(const char** why_not)
{
    using namespace vmx;
    uint32_t expected = kNotProbed;
    if (__atomic_compare_exchange_n(&g_probe_state, &expected, kProbing, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        g_caps_problem = read_capabilities(g_caps);
        __atomic_store_n(&g_probe_state, kProbed, __ATOMIC_RELEASE);
    } else {
        while (__atomic_load_n(&g_probe_state, __ATOMIC_ACQUIRE) != kProbed)
            x86::cpu_relax();
    }
    if (g_caps_problem != nullptr) {
        *why_not = g_caps_problem;
        return nullptr;
    }
    return &g_backend;
}

} // namespace vlibos::vmm

// The AMD SVM backend: a VMCB per vCPU, nested paging, ASIDs, and the LAPIC timer as the
// monitor's way back in (APM Vol. 2 Chapter 15).
#include "vmm/svm/svm_backend.hpp"

#include <stddef.h>
#include <string.h>

#include "arch/x86_64/cpu.hpp"
#include "core/console.hpp"
#include "core/percpu.hpp"
#include "vmm/svm/npt.hpp"
#include "vmm/svm/permission_maps.hpp"
#include "vmm/svm/svm_cpu.hpp"
#include "vmm/svm/svm_exit.hpp"
#include "arch/x86_64/lapic_timer.hpp"
#include "vmm/msr_policy.hpp"
#include "vmm/svm/vmcb.hpp"
#include "vmm/svm/vmcb_check.hpp"

extern "C" void svm_run_guest(vlibos::vmm::GuestRegisters* regs, uint64_t guest_vmcb_pa, uint64_t host_state_pa);

// svm_entry.S hard-codes these offsets.
static_assert(offsetof(vlibos::vmm::GuestRegisters, rbx) == 8);
static_assert(offsetof(vlibos::vmm::GuestRegisters, rdi) == 40);
static_assert(offsetof(vlibos::vmm::GuestRegisters, r8) == 56);
static_assert(offsetof(vlibos::vmm::GuestRegisters, r15) == 112);

namespace vlibos::svm {

namespace {

using vmm::ExitInfo;
using vmm::ExitReason;
using vmm::GuestRegisters;
using vmm::VmError;

constexpr size_t kMaxVcpus = 8;
constexpr size_t kPageSize = 4096;
constexpr size_t kIopmPages = kIopmBytes / kPageSize;
constexpr size_t kMsrpmPages = kMsrpmBytes / kPageSize;
constexpr size_t kNptTableCache = 64;  // nested tables a vCPU keeps for its next prepare()

// Reset-like guest state for a real-mode start (APM Vol. 2 §14.1.3, Table 14-1).
constexpr uint64_t kCr0ExtensionType = 1ull << 4;       // ET
constexpr uint64_t kCr0ProtectionEnable = 1ull << 0;    // PE
constexpr uint64_t kRflagsReserved1 = 1ull << 1;        // bit 1 always reads 1
constexpr uint64_t kRflagsInterruptEnable = 1ull << 9;  // IF
constexpr uint64_t kDr6Reset = 0xffff'0ff0;
constexpr uint64_t kDr7Reset = 0x400;
// PAT power-on value: WB, WT, UC-, UC, repeated (APM Vol. 2 §7.8.2).
constexpr uint64_t kPatPowerOn = 0x0007'0406'0007'0406;
constexpr uint32_t kRealModeLimit = 0xffff;
constexpr uint64_t kRealModeSegmentSpan = 0x10000;      // a real-mode segment covers 64 KiB
constexpr unsigned kRealModeSelectorShift = 4;          // base = selector << 4
constexpr uint64_t kRealModeAddressLimit = 1ull << 20;
constexpr uint16_t kRealModeCode =
    seg_attr::kPresent | seg_attr::kCodeOrData | seg_attr::kTypeCode | seg_attr::kTypeReadable | seg_attr::kTypeAccessed;
constexpr uint16_t kRealModeData = seg_attr::kPresent | seg_attr::kCodeOrData | seg_attr::kTypeWritable |
                                   seg_attr::kTypeAccessed;
constexpr uint16_t kRealModeLdt = seg_attr::kPresent | seg_attr::kTypeLdt;
constexpr uint16_t kRealModeTr = seg_attr::kPresent | seg_attr::kTypeBusyTss16;
// Flat 32-bit segments for a Protected32 start (APM Vol. 2 §4.7): 4 GiB, G = 1, D/B = 1.
constexpr uint32_t kFlatLimit = 0xffff'ffff;
constexpr uint16_t kFlatCode32 = kRealModeCode | seg_attr::kDefaultBig | seg_attr::kGranularity;
constexpr uint16_t kFlatData32 = kRealModeData | seg_attr::kDefaultBig | seg_attr::kGranularity;


// What the CPU offers, read once (CPUID leaves 8000_0001, 8000_0008, 8000_000A; VM_CR).
struct Features {
    bool supported = false;
    const char* why_not = "SVM support was not probed";
    uint32_t revision = 0;
    uint32_t asid_count = 0;
    unsigned physical_bits = 0;
    bool long_mode = false;
    bool page_1gb = false;
    bool nrip_save = false;
    bool decode_assists = false;
    bool flush_by_asid = false;
    bool vmcb_clean = false;
};

Features probe()
{
    Features f;
    if (x86::cpuid(cpuid_bits::kExtendedMaxLeaf).eax < cpuid_bits::kSvmLeaf) {
        f.why_not = "CPUID has no SVM leaf (8000_000A)";
        return f;
    }
    x86::CpuidResult ext = x86::cpuid(cpuid_bits::kExtendedFeatures);
    if ((ext.ecx & cpuid_bits::kExt1EcxSvm) == 0) {
        f.why_not = "the CPU has no SVM (CPUID 8000_0001 ECX bit 2)";
        return f;
    }
    // Only read once SVM is known to exist: VM_CR is an SVM MSR.
    if ((x86::read_msr_raw(msr::kVmCr) & vm_cr::kSvmDisable) != 0) {
        f.why_not = "SVM is disabled by the firmware (VM_CR.SVMDIS)";
        return f;
    }
    x86::CpuidResult svm = x86::cpuid(cpuid_bits::kSvmLeaf);
    f.revision = svm.eax & cpuid_bits::kSvmRevisionMask;
    f.asid_count = svm.ebx;
    f.nrip_save = (svm.edx & cpuid_bits::kNripSave) != 0;
    f.decode_assists = (svm.edx & cpuid_bits::kDecodeAssists) != 0;
    f.flush_by_asid = (svm.edx & cpuid_bits::kFlushByAsid) != 0;
    f.vmcb_clean = (svm.edx & cpuid_bits::kVmcbClean) != 0;
    f.long_mode = (ext.edx & x86::feature::kExt1EdxLongMode) != 0;
    f.page_1gb = (ext.edx & cpuid_bits::kExt1EdxPage1Gb) != 0;
    f.physical_bits = x86::cpuid(cpuid_bits::kAddressSizesLeaf).eax & cpuid_bits::kPhysicalBitsMask;
    if ((svm.edx & cpuid_bits::kNestedPaging) == 0) {
        f.why_not = "the CPU has SVM but no nested paging (CPUID 8000_000A EDX bit 0)";
        return f;
    }
    if (f.asid_count < 2) {
        f.why_not = "the CPU offers no guest ASID (CPUID 8000_000A EBX < 2)";
        return f;
    }
    f.supported = true;
    f.why_not = nullptr;
    return f;
}

// Probed once, by the first CPU that asks; the others wait for its answer.
enum ProbeState : uint32_t { kNotProbed, kProbing, kProbed };
Features g_features;
uint32_t g_probe_state = kNotProbed;

const Features& features()
{
    uint32_t expected = kNotProbed;
    if (__atomic_compare_exchange_n(&g_probe_state, &expected, kProbing, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        g_features = probe();
        const Features& f = g_features;
        if (f.supported)
            console::print("vlibos: svm: revision %u, %u ASIDs, nested paging yes, 1 GiB nested pages %s, "
                           "nrip save %s, decode assists %s, flush by ASID %s, VMCB clean bits %s\n",
                           f.revision, f.asid_count, f.page_1gb ? "yes" : "no", f.nrip_save ? "yes" : "no",
                           f.decode_assists ? "yes" : "no", f.flush_by_asid ? "yes" : "no",
                           f.vmcb_clean ? "yes" : "no");
        else
            console::print("vlibos: svm: not usable: %s\n", f.why_not);
        __atomic_store_n(&g_probe_state, kProbed, __ATOMIC_RELEASE);
    } else {
        while (__atomic_load_n(&g_probe_state, __ATOMIC_ACQUIRE) != kProbed)
            x86::cpu_relax();
    }
    return g_features;
}

CpuLimits cpu_limits()
{
    return CpuLimits{g_features.asid_count, g_features.physical_bits, g_features.long_mode};
}

// SVM state of one physical CPU.
struct CpuState {
    bool enabled = false;
    uint64_t host_save_area = 0;  // VM_HSAVE_PA: VMRUN's own save area, format private to the CPU
    uint64_t host_state = 0;      // our VMSAVE/VMLOAD page for the host's FS/GS/TR/LDTR/syscall MSRs
};

CpuState g_cpu_state[kMaxCpus];

// Nested tables of one vCPU. They are kept for the next prepare(), because the PageSource
// cannot take pages back.
class NptPool {
public:
    void init(vmm::PageSource* pages) { pages_ = pages; }
    void restart() { used_ = 0; }

    uint64_t* table(uint64_t phys) const { return reinterpret_cast<uint64_t*>(phys); }

    Result<uint64_t, mm::PageTableError> allocate_table()
    {
        if (used_ < count_) {
            uint64_t phys = tables_[used_++];
            memset(table(phys), 0, kPageSize);
            return phys;
        }
        auto page = pages_->allocate_zeroed(1);
        if (!page)
            return fail(mm::PageTableError::OutOfMemory);
        if (count_ < kNptTableCache) {
            tables_[count_++] = page.value();
            used_ = count_;
        }
        return page.value();
    }

private:
    vmm::PageSource* pages_ = nullptr;
    uint64_t tables_[kNptTableCache] = {};
    size_t count_ = 0;
    size_t used_ = 0;
};

class SvmVcpu final : public vmm::Vcpu {
public:
    constexpr SvmVcpu() = default;

    void init(vmm::PageSource* pages, uint32_t cpu, uint64_t vmcb, uint64_t iopm, uint64_t msrpm)
    {
        npt_.init(pages);
        cpu_ = cpu;
        vmcb_pa_ = vmcb;
        iopm_pa_ = iopm;
        msrpm_pa_ = msrpm;
        fill_iopm(reinterpret_cast<uint8_t*>(iopm));
        // The guest's own CPU-state MSRs pass through; every other MSR exits (vmm/msr_policy.hpp).
        fill_msrpm(reinterpret_cast<uint8_t*>(msrpm), vmm::kGuestStateMsrs,
                   sizeof(vmm::kGuestStateMsrs) / sizeof(vmm::kGuestStateMsrs[0]));
    }

    Status<VmError> prepare(const vmm::GuestMemory& memory, const vmm::EntryState& entry, uint16_t tag) override;
    void run(GuestRegisters& regs, ExitInfo& exit) override;

    uint64_t rip() const override { return vmcb().save.rip; }
    void set_rip(uint64_t rip) override
    {
        Vmcb& v = vmcb();
        v.save.rip = rip;
        // Moving past an emulated instruction ends an STI or MOV SS shadow, as executing it would
        // (INTERRUPT_SHADOW, VMCB offset 068h bit 0, APM §15.21.5).
        v.control.int_state &= ~int_state::kInterruptShadow;
    }
    uint64_t rsp() const override { return vmcb().save.rsp; }
    uint64_t rflags() const override { return vmcb().save.rflags; }
    uint8_t cpl() const override { return vmcb().save.cpl; }  // VMCB CPL field (APM Vol. 2 §15.5.1)

    bool can_inject_interrupt() const override
    {
        const Vmcb& v = vmcb();
        return (v.save.rflags & kRflagsInterruptEnable) != 0 && (v.control.int_state & int_state::kInterruptShadow) == 0 &&
               (v.control.event_inj & event::kValid) == 0;
    }

    void inject_interrupt(uint8_t vector) override
    {
        vmcb().control.event_inj = event::kValid | event::kTypeInterrupt | vector;
    }

    void inject_exception(uint8_t vector, bool has_error_code, uint32_t error_code) override
    {
        Vmcb& v = vmcb();
        // Real mode pushes no error codes; EVENTINJ.EV must then be clear (APM §15.20).
        bool push = has_error_code && (v.save.cr0 & kCr0ProtectionEnable) != 0;
        uint64_t inj = event::kValid | event::kTypeException | vector;
        if (push)
            inj |= event::kErrorCodeValid | (uint64_t{error_code} << event::kErrorCodeShift);
        v.control.event_inj = inj;
    }

    // V_IRQ with the highest priority and TPR ignored: the guest exits with VINTR exactly when
    // it could take an interrupt (APM §15.21.4).
    void set_interrupt_window_exit(bool enabled) override
    {
        Vmcb& v = vmcb();
        constexpr uint64_t kWindow = int_ctl::kVIrq | int_ctl::kVIntrPrioMask | int_ctl::kVIgnTpr;
        v.control.int_ctl = enabled ? (v.control.int_ctl | kWindow) : (v.control.int_ctl & ~kWindow);
        set_intercept(v, Intercept::Vintr, enabled);
    }

    void arm_timer(uint64_t tsc_ticks) override
    {
        timer_armed_ = tsc_ticks != 0;
        timer_left_ = tsc_ticks;
        timer_exit_due_ = false;
    }

    ControlState control_state() const override
    {
        const Vmcb& v = vmcb();
        // SVME is the host's requirement on the VMCB (APM §15.5.1), not something the guest set.
        return ControlState{v.save.cr0, v.save.cr3, v.save.cr4, v.save.efer & ~efer::kSvmEnable};
    }

    // CS as the VMCB save area keeps it (APM Vol. 2 §15.5.1, attributes packed as seg_attr says).
    CodeSegment code_segment() const override
    {
        const Vmcb& v = vmcb();
        return {v.save.cs.base, (v.save.cs.attrib & seg_attr::kLong) != 0,
                (v.save.cs.attrib & seg_attr::kDefaultBig) != 0};
    }

private:
    Vmcb& vmcb() const { return *reinterpret_cast<Vmcb*>(vmcb_pa_); }
    void load_real_mode_state(Vmcb& v, const vmm::EntryState& entry);
    void set_intercepts(Vmcb& v);
    void after_exit(Vmcb& v);

    NptPool npt_;
    uint32_t cpu_ = 0;
    uint64_t vmcb_pa_ = 0;
    uint64_t iopm_pa_ = 0;
    uint64_t msrpm_pa_ = 0;
    bool prepared_ = false;
    bool checked_ = false;        // the software consistency check passed for this VMCB
    bool timer_armed_ = false;
    uint64_t timer_left_ = 0;     // guest time left, in TSC ticks
    bool timer_exit_due_ = false; // the time ran out during an exit that was reported as something else
};

void SvmVcpu::set_intercepts(Vmcb& v)
{
    // Everything that could let the guest reach the host or the machine exits: instructions we
    // emulate or refuse, all port I/O and all MSRs but EFER (through the permission maps), the
    // SVM instructions themselves, physical interrupts and NMIs (the monitor's timer and IPIs),
    // and a triple fault (which would otherwise reset the physical CPU). Also (APM §15.9,
    // Table B-1): INVD and WBINVD, which would drop or flush the caches the RT partition shares,
    // and XSETBV, which would write the physical XCR0 (VMRUN does not switch it).
    constexpr Intercept kAlways[] = {
        Intercept::Intr,     Intercept::Nmi,     Intercept::Shutdown, Intercept::Cpuid,   Intercept::Hlt,
        Intercept::IoioProt, Intercept::MsrProt, Intercept::Vmrun,    Intercept::Vmmcall, Intercept::Vmload,
        Intercept::Vmsave,   Intercept::Stgi,    Intercept::Clgi,     Intercept::Skinit,  Intercept::Invlpga,
        Intercept::Invd,     Intercept::Wbinvd,  Intercept::Xsetbv,
    };
    for (Intercept i : kAlways)
        set_intercept(v, i, true);
    // #DB and #AC always exit (APM §15.12): a guest can make either recur during its own delivery
    // (CVE-2015-8104, CVE-2015-5307), which without an intercept hangs the physical CPU in
    // microcode with host interrupts blocked. The runtime re-injects them.
    set_exception_intercept(v, exception_vector::kDebug, true);
    set_exception_intercept(v, exception_vector::kAlignmentCheck, true);
    v.control.iopm_base_pa = iopm_pa_;
    v.control.msrpm_base_pa = msrpm_pa_;
}

void SvmVcpu::load_real_mode_state(Vmcb& v, const vmm::EntryState& entry)
{
    StateSaveArea& s = v.save;
    uint64_t cs_base = entry.rip & ~(kRealModeSegmentSpan - 1);
    s.cs = Segment{static_cast<uint16_t>(cs_base >> kRealModeSelectorShift), kRealModeCode, kRealModeLimit, cs_base};
    Segment data{0, kRealModeData, kRealModeLimit, 0};
    s.ds = data;
    s.es = data;
    s.ss = data;
    s.fs = data;
    s.gs = data;
    s.gdtr = Segment{0, 0, kRealModeLimit, 0};
    s.idtr = Segment{0, 0, kRealModeLimit, 0};
    s.ldtr = Segment{0, kRealModeLdt, kRealModeLimit, 0};
    s.tr = Segment{0, kRealModeTr, kRealModeLimit, 0};
    s.cpl = 0;
    s.efer = efer::kSvmEnable;  // the guest's EFER must have SVME set (APM §15.5.1)
    s.cr0 = kCr0ExtensionType;
    s.cr3 = 0;
    s.cr4 = 0;
    s.dr6 = kDr6Reset;
    s.dr7 = kDr7Reset;
    s.rflags = kRflagsReserved1;
    s.rip = entry.rip & (kRealModeSegmentSpan - 1);
    s.rsp = entry.rsp;
    s.g_pat = kPatPowerOn;
    if (entry.mode == vmm::EntryState::Mode::Protected32) {
        Segment flat_data{entry.data_selector, kFlatData32, kFlatLimit, 0};
        s.cs = Segment{entry.code_selector, kFlatCode32, kFlatLimit, 0};
        s.ds = flat_data;
        s.es = flat_data;
        s.ss = flat_data;
        s.fs = flat_data;
        s.gs = flat_data;
        s.gdtr = Segment{0, 0, entry.gdtr_limit, entry.gdtr_base};
        s.cr0 = kCr0ExtensionType | kCr0ProtectionEnable;
        s.rip = entry.rip;
    }
}

Status<VmError> SvmVcpu::prepare(const vmm::GuestMemory& memory, const vmm::EntryState& entry, uint16_t tag)
{
    if (tag == 0 || tag >= g_features.asid_count)
        return fail(VmError::BadEntryState);  // ASID 0 is the host's
    if (!vmm::entry_state_valid(entry))
        return fail(VmError::BadEntryState);

    npt_.restart();
    auto root = npt_.allocate_table();
    if (!root)
        return fail(VmError::OutOfMemory);
    TRY(build_npt(npt_, root.value(), memory, g_features.page_1gb));

    Vmcb& v = vmcb();
    memset(&v, 0, sizeof(Vmcb));
    set_intercepts(v);
    v.control.guest_asid = tag;
    // The ASID may have run another guest (or this vCPU's previous NPT) on this CPU: flush.
    v.control.tlb_control = tlb_control::kFlushAll;
    // Physical interrupts are masked by the host's IF, never by the guest's (APM §15.21.1).
    v.control.int_ctl = int_ctl::kVIntrMasking;
    v.control.nested_ctl = nested_ctl::kNpEnable;
    v.control.nested_cr3 = root.value();
    load_real_mode_state(v, entry);

    prepared_ = true;
    checked_ = false;
    timer_armed_ = false;
    timer_left_ = 0;
    timer_exit_due_ = false;
    return {};
}

// Bookkeeping the CPU leaves to software after every #VMEXIT.
void SvmVcpu::after_exit(Vmcb& v)
{
    v.control.tlb_control = tlb_control::kNothing;
    // An event whose delivery the exit interrupted (e.g. a nested page fault on the guest's
    // stack) is delivered again at the next entry (APM §15.7.2). A software interrupt is not:
    // RIP still points at its INTn, which runs again.
    uint64_t interrupted = v.control.exit_int_info;
    v.control.event_inj = 0;
    if ((interrupted & event::kValid) != 0 && (interrupted & event::kTypeMask) != event::kTypeSoftware)
        v.control.event_inj = interrupted;
}

void SvmVcpu::run(GuestRegisters& regs, ExitInfo& exit)
{
    exit = ExitInfo{};
    Vmcb& v = vmcb();
    exit.guest_rip = v.save.rip;
    if (!prepared_) {
        exit.reason = ExitReason::EntryFailed;
        exit.entry_failure = "the vCPU was run before prepare()";
        return;
    }
    if (timer_exit_due_) {
        timer_exit_due_ = false;
        timer_armed_ = false;
        exit.reason = ExitReason::Timer;
        exit.raw_reason = exit_code::kIntr;
        return;
    }
    if (!checked_) {
        if (const char* problem = find_vmcb_inconsistency(v, cpu_limits())) {
            exit.reason = ExitReason::EntryFailed;
            exit.raw_reason = exit_code::kInvalid;
            exit.entry_failure = problem;
            return;
        }
        checked_ = true;
    }

    CpuState& cpu = g_cpu_state[cpu_];
    PerCpu* self = this_cpu();
    v.save.rax = regs.rax;
    v.save.cr2 = regs.cr2;

    bool expired = false;
    for (;;) {
        bool timing = timer_armed_;
        bool whole_time = true;
        if (timing) {
            self->timer_fired = 0;
            whole_time = self->lapic_timer.arm(timer_left_);
        }
        // EFER is passed through, so the guest may have cleared SVME, which would make VMRUN fail
        // (APM §15.5.1). The guest owns LME/LMA/NXE/SCE; the monitor owns SVME.
        v.save.efer |= efer::kSvmEnable;
        uint64_t entered = x86::rdtsc();
        svm_run_guest(&regs, vmcb_pa_, cpu.host_state);
        uint64_t left = x86::rdtsc();
        if (!timing)
            break;
        self->lapic_timer.stop();
        bool fired = self->timer_fired != 0;
        uint64_t spent = left - entered;
        timer_left_ = spent >= timer_left_ ? 0 : timer_left_ - spent;
        if (fired && whole_time)
            timer_left_ = 0;  // the LAPIC says the time is up; TSC rounding must not extend it
        expired = timer_left_ == 0;
        // A clamped one-shot fired with guest time still left: go straight back in.
        if (v.control.exit_code == exit_code::kIntr && fired && !expired) {
            after_exit(v);
            continue;
        }
        break;
    }

    regs.rax = v.save.rax;
    regs.cr2 = v.save.cr2;
    after_exit(v);

    ExitRecord record{v.control.exit_code, v.control.exit_info1, v.control.exit_info2, v.save.rip,
                      v.control.next_rip,  g_features.nrip_save,  g_features.decode_assists, regs.rcx,
                      expired};
    decode_exit(record, exit);
    if (expired) {
        timer_armed_ = false;
        // The time ran out, but the exit was something else: the next run() reports Timer first.
        timer_exit_due_ = exit.reason != ExitReason::Timer;
    }
    if (exit.reason == ExitReason::EntryFailed) {
        const char* problem = find_vmcb_inconsistency(v, cpu_limits());
        exit.entry_failure = problem != nullptr
                                 ? problem
                                 : "VMRUN refused the VMCB (VMEXIT_INVALID), though every consistency check the "
                                   "monitor knows of passes (APM §15.5.1)";
        checked_ = false;
    }
}

SvmVcpu g_vcpus[kMaxVcpus];
uint32_t g_vcpu_count = 0;

class SvmBackend final : public vmm::Backend {
public:
    constexpr SvmBackend() = default;

    const char* name() const override { return "svm"; }

    Status<VmError> enable_on_this_cpu(vmm::PageSource& pages) override
    {
        if (!g_features.supported)
            return fail(VmError::NotSupported);
        uint32_t index = this_cpu()->index;
        if (index >= kMaxCpus)
            return fail(VmError::EnableFailed);
        CpuState& cpu = g_cpu_state[index];
        if (cpu.enabled)
            return {};
        if ((x86::read_msr_raw(msr::kVmCr) & vm_cr::kSvmDisable) != 0)
            return fail(VmError::DisabledByFirmware);
        if (cpu.host_save_area == 0)
            cpu.host_save_area = TRY(pages.allocate_zeroed(1));
        if (cpu.host_state == 0)
            cpu.host_state = TRY(pages.allocate_zeroed(1));

        x86::write_msr(x86::Msr::Efer, x86::read_msr(x86::Msr::Efer) | efer::kSvmEnable);
        if ((x86::read_msr(x86::Msr::Efer) & efer::kSvmEnable) == 0)
            return fail(VmError::EnableFailed);
        x86::write_msr_raw(msr::kVmHsavePa, cpu.host_save_area);
        cpu.enabled = true;
        return {};
    }

    vmm::Vcpu* create_vcpu(vmm::PageSource& pages, VmError& error) override
    {
        uint32_t index = this_cpu()->index;
        if (index >= kMaxCpus || !g_cpu_state[index].enabled) {
            error = VmError::EnableFailed;  // enable_on_this_cpu() has not run here
            return nullptr;
        }
        uint32_t slot = __atomic_fetch_add(&g_vcpu_count, 1u, __ATOMIC_RELAXED);
        if (slot >= kMaxVcpus) {
            __atomic_fetch_sub(&g_vcpu_count, 1u, __ATOMIC_RELAXED);
            error = VmError::OutOfMemory;
            return nullptr;
        }
        auto vmcb = pages.allocate_zeroed(1);
        auto iopm = pages.allocate_zeroed(kIopmPages);
        auto msrpm = pages.allocate_zeroed(kMsrpmPages);
        if (!vmcb || !iopm || !msrpm) {
            error = VmError::OutOfMemory;  // the slot stays used: the pages cannot be given back anyway
            return nullptr;
        }
        SvmVcpu& vcpu = g_vcpus[slot];
        vcpu.init(&pages, index, vmcb.value(), iopm.value(), msrpm.value());
        return &vcpu;
    }
};

SvmBackend g_backend;

} // namespace

} // namespace vlibos::svm

namespace vlibos::vmm {

Backend* svm_backend_if_supported(const char** why_not)
{
    const svm::Features& f = svm::features();
    if (!f.supported) {
        *why_not = f.why_not;
        return nullptr;
    }
    return &svm::g_backend;
}

} // namespace vlibos::vmm

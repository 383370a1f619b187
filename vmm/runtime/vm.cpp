#include "vmm/runtime/vm.hpp"

#include <string.h>

#include "arch/x86_64/cpu.hpp"
#include "arch/x86_64/tsc.hpp"
#include "core/console.hpp"
#include "vmm/cpuid_policy.hpp"
#include "vmm/hypercall.hpp"
#include "vmm/io_policy.hpp"
#include "vmm/msr_policy.hpp"
#include "vmm/runtime/exit_helpers.hpp"

namespace vlibos::vmm {

namespace {

constexpr uint64_t kRflagsInterruptEnable = 1ull << 9;
constexpr uint64_t kTimeSliceUs = 1000;  // the monitor takes control back at least this often

// What a hypercall may do to the VM and the monitor; everything it reads is bounds-checked
// against the VM's GuestMemory.
class HypercallEnvironment final : public hypercall::Environment {
public:
    HypercallEnvironment(const VmSpec& spec) : spec_(spec) {}

    bool read_guest(uint64_t gpa, void* out, size_t length) override
    {
        // The monitor's direct map makes host-physical memory addressable as is.
        return hypercall::read_guest_checked(*spec_.memory, gpa, out, length,
                                             [](uint64_t host_physical, void* to, size_t bytes) {
                                                 memcpy(to, reinterpret_cast<const void*>(host_physical), bytes);
                                             });
    }

    void console_write(const char* text, size_t length) override
    {
        // One console line per guest line, so guest text can never forge a monitor line.
        size_t start = 0;
        for (size_t i = 0; i <= length; ++i) {
            if (i == length || text[i] == '\n') {
                if (i > start || (i < length && text[i] == '\n'))
                    console::print("vlibos: vm %s says: %.*s\n", spec_.name, static_cast<int>(i - start), text + start);
                start = i + 1;
            }
        }
    }

    void request_exit(uint64_t code) override
    {
        exit_requested = true;
        exit_code = code;
    }

    void arm_guest_timer(uint64_t microseconds, uint8_t vector) override
    {
        timer_deadline = x86::tsc::now() + x86::tsc::from_microseconds(microseconds);
        timer_vector = vector;
    }

    bool exit_requested = false;
    uint64_t exit_code = 0;
    uint64_t timer_deadline = 0;  // 0: no guest timer pending
    uint8_t timer_vector = 0;

private:
    const VmSpec& spec_;
};

class PortLines final : public IoSink {
public:
    explicit PortLines(const char* name) : name_(name) {}
    void debug_line(const char* text, size_t length) override
    {
        console::print("vlibos: vm %s port 0xe9: %.*s\n", name_, static_cast<int>(length), text);
    }

private:
    const char* name_;
};

} // namespace

const char* stop_kind_name(StopKind kind)
{
    switch (kind) {
    case StopKind::GuestExit: return "guest exit";
    case StopKind::OutsideMemory: return "access outside the VM's memory";
    case StopKind::ReadOnlyViolation: return "access the guest memory map does not allow";
    case StopKind::TripleFault: return "triple fault";
    case StopKind::EntryFailed: return "VM entry failed";
    case StopKind::HaltedForever: return "HLT with interrupts disabled";
    case StopKind::UnsupportedIo: return "unsupported port I/O";
    case StopKind::Unhandled: return "unhandled exit";
    case StopKind::TimedOut: return "time budget exhausted";
    case StopKind::SetupFailed: return "set-up failed";
    }
    return "unknown";
}

StopReport Vm::run(Vcpu& vcpu_ref, Vendor vendor, const VmSpec& spec)
{
    StopReport report;
    Vcpu* vcpu = &vcpu_ref;
    auto prepared = vcpu->prepare(*spec.memory, spec.entry, spec.tag);
    if (!prepared) {
        console::print("vlibos: vm %s: cannot prepare the vCPU: %s\n", spec.name, describe(prepared.error()));
        report.kind = StopKind::SetupFailed;
        return report;
    }

    HypercallEnvironment env(spec);
    IoPolicy io;
    PortLines port_lines(spec.name);
    MsrPolicy msrs;
    GuestRegisters regs{};
    regs.rsi = spec.initial_rsi;
    uint64_t give_up = x86::tsc::now() + x86::tsc::from_microseconds(spec.time_budget_us);

    for (;;) {
        uint64_t now = x86::tsc::now();
        if (now >= give_up) {
            report.kind = StopKind::TimedOut;
            break;
        }
        // Deliver a due guest timer as soon as the guest can take it.
        if (env.timer_deadline != 0 && now >= env.timer_deadline) {
            if (vcpu->can_inject_interrupt()) {
                vcpu->inject_interrupt(env.timer_vector);
                env.timer_deadline = 0;
                vcpu->set_interrupt_window_exit(false);
            } else {
                vcpu->set_interrupt_window_exit(true);
            }
        }
        uint64_t slice = x86::tsc::from_microseconds(kTimeSliceUs);
        if (env.timer_deadline != 0 && env.timer_deadline > now && env.timer_deadline - now < slice)
            slice = env.timer_deadline - now;
        vcpu->arm_timer(slice == 0 ? 1 : slice);

        ExitInfo exit;
        uint64_t entered = x86::tsc::now();
        vcpu->run(regs, exit);
        uint64_t exited = x86::tsc::now();
        bool stop = false;
        bool advance = false;

        switch (exit.reason) {
        case ExitReason::Cpuid:
            emulate_cpuid(regs, GuestCpu{vendor, 0, false});
            advance = true;
            break;
        case ExitReason::Hypercall: {
            // Only the guest kernel may call the monitor; its user space gets EPERM.
            hypercall::Call call = hypercall::call_from(regs);
            hypercall::set_result(regs, vcpu->cpl() == 0 ? hypercall::dispatch(call, env) : hypercall::kEperm);
            if (env.exit_requested) {
                report.kind = StopKind::GuestExit;
                report.code = env.exit_code;
                stop = true;
            }
            advance = true;
            break;
        }
        case ExitReason::IoPort:
            if (!io.handle(exit.io, regs, port_lines)) {
                report.kind = StopKind::UnsupportedIo;
                stop = true;
                break;
            }
            advance = true;
            break;
        case ExitReason::MsrRead:
        case ExitReason::MsrWrite: {
            MsrVerdict verdict = exit.reason == ExitReason::MsrRead
                                     ? msrs.read(exit.msr.index)
                                     : msrs.write(exit.msr.index, (regs.rdx << 32) | (regs.rax & 0xffffffffu));
            vcpu->inject_exception(verdict.vector, verdict.has_error_code, verdict.error_code);
            break;
        }
        case ExitReason::Hlt:
            advance = true;
            if ((vcpu->rflags() & kRflagsInterruptEnable) == 0 && env.timer_deadline == 0) {
                report.kind = StopKind::HaltedForever;
                stop = true;
                break;
            }
            // The vCPU sleeps until its timer is due; the monitor simply waits on this CPU.
            while (env.timer_deadline != 0 && x86::tsc::now() < env.timer_deadline && x86::tsc::now() < give_up)
                x86::cpu_relax();
            break;
        case ExitReason::NestedPageFault:
            report.kind = exit.npf.mapped ? StopKind::ReadOnlyViolation : StopKind::OutsideMemory;
            report.guest_physical = exit.npf.guest_physical;
            stop = true;
            break;
        case ExitReason::InterruptWindow:
            vcpu->set_interrupt_window_exit(false);
            break;
        case ExitReason::Timer:
            break;
        case ExitReason::ExternalInterrupt:
            // The interrupt is still pending in this CPU's LAPIC: let the monitor's handler take it.
            take_pending_host_interrupt();
            break;
        case ExitReason::Exception:
            if (reinject_guarded_exception(*vcpu, exit))
                break;
            report.kind = StopKind::Unhandled;
            stop = true;
            break;
        case ExitReason::Nmi:
            break;  // the host took it (or will, as the exit completes); the guest simply resumes
        case ExitReason::CacheControl:
            advance = true;  // WBINVD/INVD would touch caches the RT partition shares: skipped
            break;
        case ExitReason::TripleFault:
            report.kind = StopKind::TripleFault;
            stop = true;
            break;
        case ExitReason::EntryFailed:
            report.kind = StopKind::EntryFailed;
            stop = true;
            break;
        default:
            report.kind = StopKind::Unhandled;
            stop = true;
            break;
        }

        if (advance && !stop)
            vcpu->set_rip(vcpu->rip() + exit.instruction_length);
        stats_.record(exit.reason, exited - entered, x86::tsc::now() - exited);
        if (stop) {
            report.exit = exit;
            break;
        }
    }
    io.flush(port_lines);
    report.guest_rip = vcpu->rip();
    report.control = vcpu->control_state();
    vcpu->arm_timer(0);
    return report;
}

} // namespace vlibos::vmm

#include "vmm/runtime/linux_vm.hpp"

#include <string.h>

#include "arch/x86_64/cpu.hpp"
#include "arch/x86_64/interrupts.hpp"
#include "arch/x86_64/lapic.hpp"
#include "arch/x86_64/tsc.hpp"
#include "core/boot.hpp"
#include "core/console.hpp"
#include "core/percpu.hpp"
#include "lib/format.hpp"
#include "lib/spinlock.hpp"
#include "vmm/backend.hpp"
#include "vmm/cpuid_policy.hpp"
#include "vmm/exit_stats.hpp"
#include "vmm/guest_msrs.hpp"
#include "vmm/io_policy.hpp"
#include "vmm/msr_policy.hpp"
#include "vmm/runtime/cmos_clock.hpp"
#include "vmm/runtime/exit_helpers.hpp"
#include "vmm/runtime/linux_board.hpp"
#include "vmm/runtime/linux_console.hpp"
#include "vmm/runtime/linux_loader.hpp"
#include "vmm/runtime/linux_pci.hpp"
#include "vmm/runtime/mmio_emulation.hpp"
#include "vmm/runtime/page_source.hpp"

namespace vlibos::vmm {

namespace {

constexpr uint16_t kTag = 1;  // VPID/ASID: one VM per CPU
constexpr uint64_t kRflagsInterruptEnable = 1ull << 9;
// The longest the monitor leaves a vCPU without looking at its devices and timers.
constexpr uint64_t kTimeSliceUs = 1000;
// The I/O APIC pins the monitor drives: COM2's IRQ 3 (ISA IRQ n is pin n in the MP table).
constexpr uint32_t kOwnedPins = 1u << LinuxConsole::kPin;
constexpr uint8_t kVectorNmi = 2;

// Port I/O of the Linux VM: COM2 is the console model, 0x70/0x71 the real clock read through
// (cmos_clock.hpp); everything else is an empty bus (reads
// all ones, writes ignored and counted) — including the reset and power ports (0xcf9, the
// keyboard controller, ACPI), so Linux cannot reset or power off the machine.
class LinuxPorts final : public IoSink {
public:
    bool handle(const IoExit& io, GuestRegisters& regs)
    {
        if (io.string)
            return false;
        if (pci != nullptr && pci->owns_port(io.port)) {
            pci->handle(io, regs);
            return true;
        }
        if (LinuxConsole::owns(io.port)) {
            console->handle(io, regs);
            ++com2;
            return true;
        }
        SpinlockGuard guard(lock);
        if (CmosClock::owns(io.port)) {
            clock.handle(io, regs);
            return true;
        }
        if (io.port < kCountedPorts)
            ++empty_bus[io.port];
        return policy.handle(io, regs, *this).ok();
    }

    // The legacy ports (below 0x400) Linux touched most on the empty bus, for the report.
    void format_busiest(char* buffer, size_t size)
    {
        FormatBuffer<160> line;
        bool taken[kCountedPorts] = {};
        for (int n = 0; n < 4; ++n) {
            size_t best = kCountedPorts;
            for (size_t p = 0; p < kCountedPorts; ++p)
                if (!taken[p] && empty_bus[p] != 0 && (best == kCountedPorts || empty_bus[p] > empty_bus[best]))
                    best = p;
            if (best == kCountedPorts)
                break;
            taken[best] = true;
            line.append(" %#zx:%u", best, empty_bus[best]);
        }
        format(buffer, size, "%s", line.c_str());
    }
    void debug_line(const char* text, size_t length) override
    {
        console::print("vlibos: linux port 0xe9: %.*s\n", static_cast<int>(length), text);
    }

    static constexpr size_t kCountedPorts = 0x400;
    LinuxConsole* console = nullptr;
    LinuxPci* pci = nullptr;
    CmosClock clock;
    uint32_t empty_bus[kCountedPorts] = {};
    Spinlock lock;  // the policy's state (debug-port line, counters) is shared by the vCPUs
    IoPolicy policy;
    uint64_t com2 = 0;
};

// The VM, shared by its vCPUs (one per CPU of the Linux partition).
struct LinuxVm {
    LinuxImage image;
    LinuxBoard board;
    Vendor vendor = Vendor::Intel;
    uint32_t apic_ids[LinuxBoard::kMaxVcpus] = {};  // the physical CPU of each vCPU, for kicks
    bool ready = false;      // image and board set up by vCPU 0
    bool failed = false;     // vCPU 0 could not set them up: the others give up too
    bool stopping = false;   // a vCPU stopped: all stop
    uint32_t stopper = 0;    // the vCPU that stopped it first
    // vCPUs halted with interrupts off (or never started): when all are, Linux has halted or
    // powered off, and the VM ends.
    uint32_t parked = 0;
    uint32_t running = 0;    // vCPUs not yet ended; the last one ends the activity
    LinuxConsole console;
    LinuxPci pci;
    LinuxPorts ports;

    bool handle_port(const IoExit& io, GuestRegisters& regs) { return ports.handle(io, regs); }
};

LinuxVm g_vm;
// Written by the VM's vCPUs, read by RT cores (LINUX_STATE system call).
LinuxVmState g_state = LinuxVmState::Absent;

void set_state(LinuxVmState state) { __atomic_store_n(&g_state, state, __ATOMIC_RELEASE); }

// The board tells a vCPU on another CPU that it has an interrupt or a start request.
void kick_vcpu(size_t vcpu, void* context)
{
    auto* vm = static_cast<LinuxVm*>(context);
    x86::Lapic::send_fixed(vm->apic_ids[vcpu], x86::kVectorKick);
}

void stop_all(LinuxVm& vm, size_t self)
{
    bool expected = false;
    if (!__atomic_compare_exchange_n(&vm.stopping, &expected, true, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        return;  // another vCPU stopped it first
    vm.stopper = static_cast<uint32_t>(self);
    // From here on no guest code runs again: RT apps see "stopped" now, not after the reports.
    set_state(LinuxVmState::Stopped);
    for (size_t i = 0; i < vm.image.vcpus; ++i)
        if (i != self)
            kick_vcpu(i, &vm);
}

// MMIO of one vCPU, carried out on the board at the time of the exit.
class BoardMmio final : public MmioDevice {
public:
    BoardMmio(LinuxBoard& board, size_t vcpu) : board_(board), vcpu_(vcpu) {}
    bool mmio_read(uint64_t gpa, uint8_t size, uint64_t& value) override
    {
        return board_.mmio_read(vcpu_, gpa, size, value, now);
    }
    bool mmio_write(uint64_t gpa, uint8_t size, uint64_t value) override
    {
        return board_.mmio_write(vcpu_, gpa, size, value, now);
    }
    uint64_t now = 0;

private:
    LinuxBoard& board_;
    size_t vcpu_;
};

void report_devices(LinuxVm& vm)
{
    LinuxBoard& board = vm.board;
    devices::VirtualIoapic::Stats io = board.ioapic_stats();
    LinuxBoard::Stats b = board.stats();
    devices::IpiFilter::Stats f = board.ipi_stats();
    for (size_t i = 0; i < board.vcpus(); ++i) {
        devices::VirtualLapic::Stats l = board.lapic_stats(i);
        console::print("vlibos: linux: vcpu %zu lapic: reads %llu writes %llu errors %llu timer interrupts %llu "
                       "eois %llu ipis %llu\n",
                       i, static_cast<unsigned long long>(l.reads), static_cast<unsigned long long>(l.writes),
                       static_cast<unsigned long long>(l.errors), static_cast<unsigned long long>(l.timer_interrupts),
                       static_cast<unsigned long long>(l.eois), static_cast<unsigned long long>(l.ipis));
    }
    char dropped[160];
    board.format_last_dropped(dropped, sizeof dropped);
    console::print("vlibos: linux: ioapic: writes %llu (to pins not the VM's %llu), deliveries %llu; messages "
                   "delivered %llu, blocked %llu, refused %llu; INIT %llu, SIPI %llu, NMI %llu%s%s\n",
                   static_cast<unsigned long long>(io.writes), static_cast<unsigned long long>(io.unowned_writes),
                   static_cast<unsigned long long>(io.deliveries), static_cast<unsigned long long>(f.delivered),
                   static_cast<unsigned long long>(f.blocked), static_cast<unsigned long long>(f.refused),
                   static_cast<unsigned long long>(b.inits), static_cast<unsigned long long>(b.startups),
                   static_cast<unsigned long long>(b.nmis), dropped[0] != '\0' ? "; last dropped: " : "", dropped);
}

void report_stop(size_t index, const char* why, Vcpu& vcpu, const ExitInfo& exit, const ExitStats& stats,
                 uint64_t started)
{
    Vcpu::ControlState c = vcpu.control_state();
    console::print("vlibos: linux: vcpu %zu stopped after %llu ms: %s at guest rip %#llx; exit %s (raw %#llx, qualification "
                   "%#llx, info %#llx); cr0 %#llx cr3 %#llx cr4 %#llx efer %#llx\n",
                   index, static_cast<unsigned long long>(x86::tsc::to_microseconds(x86::tsc::now() - started) / 1000),
                   why,
                   static_cast<unsigned long long>(vcpu.rip()), exit_reason_name(exit.reason),
                   static_cast<unsigned long long>(exit.raw_reason),
                   static_cast<unsigned long long>(exit.raw_qualification),
                   static_cast<unsigned long long>(exit.raw_info2), static_cast<unsigned long long>(c.cr0),
                   static_cast<unsigned long long>(c.cr3), static_cast<unsigned long long>(c.cr4),
                   static_cast<unsigned long long>(c.efer));
    FormatBuffer<512> line;
    for (size_t r = 0; r < static_cast<size_t>(ExitReason::Count); ++r)
        if (stats.count[r] != 0)
            line.append(" %s=%llu", exit_reason_name(static_cast<ExitReason>(r)),
                        static_cast<unsigned long long>(stats.count[r]));
    console::print("vlibos: linux: vcpu %zu exits:%s\n", index, line.c_str());
}

constexpr const char* kAllHalted = "every vCPU halted with interrupts disabled (Linux halted or powered off)";

// HLT with interrupts disabled: the vCPU sleeps until an NMI (returns nullptr: it runs on), or
// until the VM stops. The last vCPU to park stops the VM: Linux has halted (halt, power-off,
// panic without reboot). An INIT to a parked vCPU would restart it through SIPI; the monitor
// does not re-enter a vCPU, so it stays halted (CPU hot-plug is not offered).
const char* park(LinuxVm& vm, size_t self, Vcpu& vcpu)
{
    uint32_t parked = __atomic_add_fetch(&vm.parked, 1u, __ATOMIC_ACQ_REL);
    if (parked >= vm.image.vcpus) {
        stop_all(vm, self);
        return kAllHalted;
    }
    bool told = false;
    for (;;) {
        if (__atomic_load_n(&vm.stopping, __ATOMIC_ACQUIRE))
            return "halted with interrupts disabled when the VM stopped";
        if (vm.board.take_nmi(self)) {
            __atomic_sub_fetch(&vm.parked, 1u, __ATOMIC_ACQ_REL);
            vcpu.inject_exception(kVectorNmi, false, 0);
            return nullptr;
        }
        if (vm.board.take_start_request(self).init && !told) {
            console::print("vlibos: linux: vcpu %zu: INIT while halted; restarting a vCPU is not supported, it stays "
                           "halted\n", self);
            told = true;
        }
        idle_until(x86::tsc::now() + x86::tsc::from_microseconds(kTimeSliceUs));
    }
}

// One vCPU's exit loop, until it or another vCPU stops the VM.
void run_vcpu(LinuxVm& vm, size_t self, Vcpu* vcpu, GuestRegisters& regs)
{
    MsrPolicy msrs;
    GuestMsrs guest_msrs(self == 0);
    ExitStats stats;
    BoardMmio mmio(vm.board, self);
    const GuestCpu guest_cpu{vm.vendor, static_cast<uint8_t>(self), true};
    uint64_t started = x86::tsc::now();
    uint64_t injected = 0, halts = 0;
    bool halted = false;
    bool parked = false;
    const char* why = nullptr;
    char detail[160] = "";
    ExitInfo exit;
    while (why == nullptr) {
        if (__atomic_load_n(&vm.stopping, __ATOMIC_ACQUIRE)) {
            format(detail, sizeof detail, "the VM stopped (vcpu %u stopped it)", vm.stopper);
            why = detail;
            break;
        }
        if (self == 0) {
            vm.console.poll();
            vm.pci.poll();
        }
        uint64_t now = x86::tsc::now();
        vm.board.expire_timers(self, now);
        // Interrupts: inject the LAPIC's highest pending vector when the guest can take it,
        // otherwise ask for an exit as soon as it can.
        if (vm.board.take_nmi(self)) {
            vcpu->inject_exception(kVectorNmi, false, 0);
            halted = false;
        }
        uint8_t vector = vm.board.pending_vector(self);
        if (vector != 0) {
            if (vcpu->can_inject_interrupt()) {
                vcpu->inject_interrupt(vector);
                vm.board.acknowledge(self, vector);
                ++injected;
                halted = false;
            } else {
                vcpu->set_interrupt_window_exit(true);
            }
        }
        uint64_t deadline = vm.board.next_deadline(self);
        if (halted) {
            // HLT with interrupts on: sleep until the guest's timer or a kick, at most one slice
            // (devices are polled on the way).
            uint64_t slice_end = now + x86::tsc::from_microseconds(kTimeSliceUs);
            idle_until(deadline < slice_end ? deadline : slice_end);
            continue;
        }
        uint64_t slice = x86::tsc::from_microseconds(kTimeSliceUs);
        if (deadline != devices::kNever)
            slice = deadline <= now ? 1 : (deadline - now < slice ? deadline - now : slice);
        vcpu->arm_timer(slice);
        uint64_t entered = x86::tsc::now();
        vcpu->run(regs, exit);
        uint64_t exited = x86::tsc::now();
        bool advance = false;
        switch (exit.reason) {
        case ExitReason::Cpuid:
            emulate_cpuid(regs, guest_cpu);
            advance = true;
            break;
        case ExitReason::IoPort:
            if (!vm.handle_port(exit.io, regs))
                why = "string port I/O (not emulated)";
            advance = true;
            break;
        case ExitReason::MsrRead:
        case ExitReason::MsrWrite: {
            uint64_t value = 0;
            uint64_t written = (regs.rdx << 32) | (regs.rax & 0xffffffffu);
            bool fault = false;
            if (exit.reason == ExitReason::MsrRead &&
                (vm.board.msr_read(self, exit.msr.index, value) || guest_msrs.read(exit.msr.index, value))) {
                regs.rax = value & 0xffffffffu;
                regs.rdx = value >> 32;
                advance = true;
                break;
            }
            if (exit.reason == ExitReason::MsrWrite &&
                ((vm.board.msr_write(self, exit.msr.index, written, fault) && !fault) ||
                 (!fault && guest_msrs.write(exit.msr.index, written)))) {
                advance = true;
                break;
            }
            MsrVerdict verdict = exit.reason == ExitReason::MsrRead ? msrs.read(exit.msr.index)
                                                                     : msrs.write(exit.msr.index, written);
            vcpu->inject_exception(verdict.vector, verdict.has_error_code, verdict.error_code);
            break;
        }
        case ExitReason::Hlt:
            advance = true;
            ++halts;
            if ((vcpu->rflags() & kRflagsInterruptEnable) == 0)
                parked = true;
            else
                halted = true;
            break;
        case ExitReason::NestedPageFault:
            if (LinuxBoard::is_device_page(exit.npf.guest_physical)) {
                mmio.now = exited;
                if (!emulate_mmio(*vcpu, regs, exit, vm.image.memory, mmio, detail, sizeof detail))
                    why = detail;
                break;
            }
            why = exit.npf.mapped ? "an access its memory map does not allow" : "an access outside its memory";
            break;
        case ExitReason::Hypercall:
            regs.rax = static_cast<uint64_t>(-38);  // ENOSYS: Linux's hypercalls come with the RPC driver
            advance = true;
            break;
        case ExitReason::InterruptWindow:
            vcpu->set_interrupt_window_exit(false);
            break;
        case ExitReason::Timer:
        case ExitReason::Nmi:
            break;
        case ExitReason::ExternalInterrupt:
            take_pending_host_interrupt();
            break;
        case ExitReason::Exception:
            if (!reinject_guarded_exception(*vcpu, exit))
                why = "an intercepted exception";
            break;
        case ExitReason::CacheControl:
            advance = true;  // WBINVD/INVD would touch caches the RT partition shares: skipped
            break;
        case ExitReason::TripleFault:
            why = "triple fault (Linux reset itself or crashed; only its VM stops)";
            break;
        case ExitReason::EntryFailed:
            why = exit.entry_failure != nullptr ? exit.entry_failure : "VM entry failed";
            break;
        default:
            why = "an exit the Linux VM does not handle yet";
            break;
        }
        if (advance && why == nullptr)
            vcpu->set_rip(vcpu->rip() + exit.instruction_length);
        stats.record(exit.reason, exited - entered, x86::tsc::now() - exited);
        if (parked) {
            parked = false;
            why = park(vm, self, *vcpu);
        }
    }
    vcpu->arm_timer(0);
    stop_all(vm, self);  // one vCPU stopping stops the VM (a no-op if it is stopping already)
    report_stop(self, why, *vcpu, exit, stats, started);
    console::print("vlibos: linux: vcpu %zu: interrupts injected %llu, halts %llu, MSR accesses refused %llu\n", self,
                   static_cast<unsigned long long>(injected), static_cast<unsigned long long>(halts),
                   static_cast<unsigned long long>(msrs.total()));
}

// Ends this CPU's part of the VM; the last vCPU to end reports the devices and ends the activity.
void vcpu_ended(LinuxVm& vm)
{
    if (__atomic_sub_fetch(&vm.running, 1u, __ATOMIC_ACQ_REL) != 0)
        return;
    {
        SpinlockGuard guard(vm.ports.lock);
        devices::VirtualUart::Stats u = vm.console.stats();
        char busiest[160];
        vm.ports.format_busiest(busiest, sizeof busiest);
        console::print("vlibos: linux: COM2 accesses %llu (bytes out %llu, in %llu, overruns %llu, interrupts %llu), "
                       "other port writes ignored %llu; empty-bus ports most used:%s\n",
                       static_cast<unsigned long long>(vm.ports.com2), static_cast<unsigned long long>(u.tx_drained),
                       static_cast<unsigned long long>(u.rx_bytes), static_cast<unsigned long long>(u.rx_overruns),
                       static_cast<unsigned long long>(u.irq_raised),
                       static_cast<unsigned long long>(vm.ports.policy.stats().ignored_outs), busiest);
    }
    if (vm.ready) {
        vm.pci.quiesce();
        report_devices(vm);
        vm.pci.report();
    }
    set_state(LinuxVmState::Stopped);
    activity_ended("the Linux VM");
}

// The vCPU index of `cpu` in the Linux partition (its position among the partition's CPUs), or -1.
int vcpu_index(const Machine& machine, uint32_t cpu)
{
    int p = linux_partition_index(machine);
    if (p < 0)
        return -1;
    int index = 0;
    for (uint32_t c = 0; c < machine.plan.cpu_count; ++c) {
        if (machine.plan.cpu_owner[c] != p)
            continue;
        if (c == cpu)
            return index < static_cast<int>(LinuxBoard::kMaxVcpus) ? index : -1;
        ++index;
    }
    return -1;
}

} // namespace

bool linux_vm_configured(const Machine& machine)
{
    return linux_partition_index(machine) >= 0 && find_boot_module(machine, "vlibos.linux", "kernel") != nullptr;
}

bool runs_linux_vcpu(const Machine& machine, uint32_t cpu)
{
    return linux_vm_configured(machine) && vcpu_index(machine, cpu) >= 0;
}

LinuxVmState linux_vm_state() { return __atomic_load_n(&g_state, __ATOMIC_ACQUIRE); }

void linux_vm_announce() { set_state(LinuxVmState::Starting); }

void linux_vm_main(Machine& machine, uint32_t cpu)
{
    LinuxVm& vm = g_vm;
    int index = vcpu_index(machine, cpu);
    if (index < 0)
        return;
    const auto self = static_cast<size_t>(index);
    vm.apic_ids[self] = this_cpu()->apic_id;
    if (self == 0) {
        vm.running = 0;
        for (uint32_t c = 0; c < machine.plan.cpu_count; ++c)
            if (vcpu_index(machine, c) >= 0)
                ++vm.running;
    }

    const char* why_not = "";
    Backend* backend = detect_backend(&why_not);
    Vcpu* vcpu = nullptr;
    VmError error = VmError::NotSupported;
    if (backend == nullptr) {
        console::print("vlibos: linux: no virtualisation backend on cpu %u: %s\n", cpu, why_not);
    } else if (auto enabled = backend->enable_on_this_cpu(monitor_pages()); !enabled) {
        console::print("vlibos: linux: cannot enable %s on cpu %u: %s\n", backend->name(), cpu,
                       describe(enabled.error()));
    } else if ((vcpu = backend->create_vcpu(monitor_pages(), error)) == nullptr) {
        console::print("vlibos: linux: cannot create a vCPU on cpu %u: %s\n", cpu, describe(error));
    }

    if (self == 0) {
        // vCPU 0 loads Linux and sets the board up; the others wait for it.
        vm.ports.pci = &vm.pci;
        bool ok = vcpu != nullptr &&
                  vm.pci.assign(machine, static_cast<size_t>(linux_partition_index(machine)), this_cpu()->apic_id) &&
                  load_linux(machine, vm.image, vm.pci);
        if (ok) {
            vm.vendor = strcmp(backend->name(), "svm") == 0 ? Vendor::Amd : Vendor::Intel;
            vm.board.init(vm.image.vcpus, x86::tsc::frequency(), kOwnedPins | vm.pci.pins(), vm.image.ioapic_id);
            vm.board.set_kick(kick_vcpu, &vm);
            vm.parked = static_cast<uint32_t>(vm.image.vcpus - 1);  // the APs, until they start
            vm.console.init(vm.board);
            vm.ports.console = &vm.console;
            vm.pci.start(vm.board);
        }
        __atomic_store_n(ok ? &vm.ready : &vm.failed, true, __ATOMIC_RELEASE);
    } else {
        while (!__atomic_load_n(&vm.ready, __ATOMIC_ACQUIRE) && !__atomic_load_n(&vm.failed, __ATOMIC_ACQUIRE))
            x86::cpu_relax();
    }
    if (vcpu == nullptr || !vm.ready) {
        if (vcpu != nullptr && self != 0)
            console::print("vlibos: linux: vcpu %zu not started (the VM could not be loaded)\n", self);
        vcpu_ended(vm);
        return;
    }

    EntryState entry = vm.image.entry;
    if (self != 0) {
        // An application processor waits, as on a PC, for INIT and then STARTUP from the boot vCPU
        // (SDM Vol. 3A 8.4.4), and starts in real mode at the SIPI's page.
        bool init = false;
        for (;;) {
            if (__atomic_load_n(&vm.stopping, __ATOMIC_ACQUIRE)) {
                console::print("vlibos: linux: vcpu %zu never started (no INIT/SIPI before the VM stopped)\n", self);
                vcpu_ended(vm);
                return;
            }
            LinuxBoard::StartRequest r = vm.board.take_start_request(self);
            init = init || r.init;
            if (init && r.startup) {
                __atomic_sub_fetch(&vm.parked, 1u, __ATOMIC_ACQ_REL);
                entry = EntryState{};
                entry.mode = EntryState::Mode::Real16;
                entry.rip = uint64_t{r.vector} << 12;
                break;
            }
            idle_until(x86::tsc::now() + x86::tsc::from_microseconds(kTimeSliceUs));
        }
    }
    auto prepared = vcpu->prepare(vm.image.memory, entry, kTag);
    if (!prepared) {
        console::print("vlibos: linux: cannot prepare vcpu %zu: %s\n", self, describe(prepared.error()));
        stop_all(vm, self);
        vcpu_ended(vm);
        return;
    }
    console::print("vlibos: linux: vcpu %zu starting on cpu %u (%s), %s entry at %#llx\n", self, cpu, backend->name(),
                   entry.mode == EntryState::Mode::Real16 ? "real-mode" : "32-bit",
                   static_cast<unsigned long long>(entry.rip));
    GuestRegisters regs{};
    if (self == 0) {
        regs.rsi = vm.image.rsi;
        set_state(LinuxVmState::Running);
    }
    run_vcpu(vm, self, vcpu, regs);
    vcpu_ended(vm);
}

} // namespace vlibos::vmm

// Bringing every CPU under the monitor: descriptor tables, LAPIC, a timer that provably fires,
// and the report line that names the CPU's partition. Application processors are started one
// at a time, so their reports come in CPU order and a CPU that does not start is named.
#include "arch/x86_64/cpu.hpp"
#include "arch/x86_64/descriptors.hpp"
#include "arch/x86_64/interrupts.hpp"
#include "arch/x86_64/lapic.hpp"
#include "arch/x86_64/pic_8259.hpp"
#include "arch/x86_64/smp.hpp"
#include "arch/x86_64/tsc.hpp"
#include "boot/cmdline.hpp"
#include "core/boot.hpp"
#include "core/console.hpp"
#include "core/panic.hpp"
#include "core/percpu.hpp"
#include "core/rt_core.hpp"
#include "vmm/runtime/linux_vm.hpp"
#include "vmm/runtime/vm_tests.hpp"

namespace vlibos {

namespace {

constexpr size_t kStackFrames = 4;                 // 16 KiB kernel stack per CPU
constexpr uint64_t kTimerCheckDelayUs = 1000;      // the one-shot each CPU arms at boot
constexpr uint64_t kTimerCheckTimeoutUs = 200000;  // ... and how long it may take to fire
constexpr uint64_t kStartTimeoutUs = 500000;       // INIT-SIPI-SIPI until the AP runs C++
constexpr uint64_t kSetupTimeoutUs = 2000000;      // AP running C++ until it has reported


// One stack with an unmapped guard page below it; returns the top.
uint64_t allocate_guarded_stack(Machine& machine, size_t frames, uint32_t cpu, const char* what)
{
    auto base = machine.frames.allocate(frames + 1);
    if (!base)
        panic("no memory for cpu %u's %s: %s", cpu, what, mm::describe(base.error()));
    machine.guard_pages[machine.guard_page_count++] = base.value();
    return base.value() + (frames + 1) * mm::PAGE_SIZE;
}

void install_stacks(const Machine& machine, PerCpu& cpu)
{
    cpu.stack_top = machine.stack_tops[cpu.index][0];
    for (unsigned i = 0; i < x86::ist::kCount; ++i)
        cpu.ist_stack_top[i] = machine.stack_tops[cpu.index][1 + i];
}

void load_cpu_tables(PerCpu& cpu)
{
    for (unsigned i = 0; i < x86::ist::kCount; ++i)
        cpu.tss.ist[i] = cpu.ist_stack_top[i];
    x86::load_gdt_and_tss(cpu.gdt, cpu.tss);
    x86::load_idt();
    x86::Lapic::enable_on_this_cpu(x86::kVectorSpurious);
    uint32_t hardware_id = x86::Lapic::id();
    if (hardware_id != cpu.apic_id)
        panic("cpu %u: the local APIC reports ID %u, but ACPI lists it as %u", cpu.index, hardware_id, cpu.apic_id);
}

// Arms a one-shot timer interrupt and waits for it: proof that this CPU's LAPIC timer and
// interrupt path work. Returns the measured delay in microseconds, or 0 if it never fired.
uint64_t check_timer(PerCpu& cpu)
{
    cpu.timer_fired = 0;
    cpu.lapic_timer.calibrate_on_this_cpu();
    if (!cpu.lapic_timer.deadline_mode() && cpu.lapic_timer.rate_q32() == 0)
        panic("cpu %u: the LAPIC timer does not count", cpu.index);
    uint64_t start = x86::tsc::now();
    cpu.lapic_timer.arm(x86::tsc::from_microseconds(kTimerCheckDelayUs));
    uint64_t give_up = start + x86::tsc::from_microseconds(kTimerCheckTimeoutUs);
    x86::enable_interrupts();
    while (cpu.timer_fired == 0 && x86::tsc::now() < give_up)
        x86::cpu_relax();
    x86::disable_interrupts();
    uint64_t elapsed = x86::tsc::to_microseconds(x86::tsc::now() - start);
    x86::Lapic::stop_timer();
    return cpu.timer_fired != 0 ? elapsed : 0;
}

void report_online(Machine& machine, PerCpu& cpu)
{
    uint64_t fired_after = check_timer(cpu);
    if (fired_after == 0)
        panic("cpu %u: the LAPIC timer interrupt never arrived", cpu.index);
    console::print("vlibos: cpu %u lapic %s, timer %s fired after %llu us\n", cpu.index,
                   x86::Lapic::mode() == x86::Lapic::Mode::X2Apic ? "x2apic" : "xapic",
                   x86::Lapic::has_tsc_deadline() ? "tsc-deadline" : "one-shot",
                   static_cast<unsigned long long>(fired_after));
    const char* kind = nullptr;
    const char* name = partition_name_of_cpu(machine, cpu.index, &kind);
    console::print("vlibos: cpu %u apic %u online: partition %s (%s)\n", cpu.index, cpu.apic_id,
                   name != nullptr ? name : "none", kind);
}


void wait_until(const volatile CpuState& state, uint64_t timeout_us)
{
    uint64_t give_up = x86::tsc::now() + x86::tsc::from_microseconds(timeout_us);
    while (state == CpuState::Absent && x86::tsc::now() < give_up)
        x86::cpu_relax();
}


void application_processor_entry(void* argument)
{
    auto* cpu = static_cast<PerCpu*>(argument);
    install_percpu(*cpu);
    cpu->started = 1;
    load_cpu_tables(*cpu);
    report_online(g_machine, *cpu);
    cpu->state = CpuState::Parked;
    if ((g_selftest == Selftest::Fault || g_selftest == Selftest::StackOverflow) &&
        cpu->index == selftest_fault_cpu(g_machine))
        run_selftest_on_this_cpu(g_selftest);
    if (vmm::vm_tests_requested())
        vmm::vm_test_cpu_main(g_machine, cpu->index);
    rt_core::wait_for_load();
    if (vmm::runs_linux_vcpu(g_machine, cpu->index))
        vmm::linux_vm_main(g_machine, cpu->index);
    rt_core::run_this_cpu(g_machine);
}

// Starts one application processor and waits for its report; any failure halts the system
// with the CPU named, never a silent hang.
void start_one_cpu(Machine& machine, uint32_t index, uint32_t apic_id)
{
    PerCpu& cpu = g_cpus[index];
    cpu.index = index;
    cpu.apic_id = apic_id;
    install_stacks(machine, cpu);
    bool started = x86::smp::start_cpu(cpu.apic_id, machine.kernel_cr3, cpu.stack_top, application_processor_entry,
                                       &cpu, &cpu.started, kStartTimeoutUs);
    if (!started)
        panic_with_status(ExitStatus::CpuDidNotStart, "cpu %u (apic %u) did not start after INIT-SIPI-SIPI", index,
                          apic_id);
    wait_until(cpu.state, kSetupTimeoutUs);
    if (cpu.state == CpuState::Absent)
        panic_with_status(ExitStatus::CpuDidNotStart, "cpu %u (apic %u) started but did not finish its set-up", index,
                          apic_id);
}

// Selftest: start a CPU that ACPI does not list (an unused APIC ID), to prove that a CPU which
// never answers is reported and halts the system in order.
void start_phantom_cpu(Machine& machine)
{
    uint32_t unused = 0;
    for (uint32_t i = 0; i < machine.cpu_count; ++i)
        if (machine.apic_ids[i] >= unused)
            unused = machine.apic_ids[i] + 1;
    if (machine.cpu_count >= kMaxCpus || unused >= 0xff)
        panic("selftest: no free CPU slot or APIC ID for a phantom CPU");
    console::print("vlibos: selftest: starting a phantom cpu %u at unused apic %u\n", machine.cpu_count, unused);
    start_one_cpu(machine, machine.cpu_count, unused);
    panic("selftest: a phantom CPU reported itself online");
}

} // namespace

void allocate_cpu_stacks(Machine& machine)
{
    static_assert(Machine::kStacksPerCpu == 1 + x86::ist::kCount);
    for (uint32_t i = 0; i < machine.cpu_count; ++i) {
        machine.stack_tops[i][0] = allocate_guarded_stack(machine, kStackFrames, i, "stack");
        for (unsigned j = 0; j < x86::ist::kCount; ++j)
            machine.stack_tops[i][1 + j] = allocate_guarded_stack(machine, 1, i, "exception stack");
    }
}

void bring_up_boot_cpu(Machine& machine)
{
    CommandLine cmdline(machine.boot.cmdline);
    PerCpu& cpu = g_cpus[0];
    install_stacks(machine, cpu);
    x86::build_idt();
    x86::pic8259::mask_all();
    x86::Lapic::select_mode(cmdline.has("vlibos.xapic"));
    load_cpu_tables(cpu);

    x86::tsc::Calibration tsc = x86::tsc::calibrate();
    if (tsc.hz == 0)
        panic("cannot tell the TSC frequency: the PIT did not count and CPUID leaf 0x15 gives none");
    x86::tsc::set_frequency(tsc.hz);
    console::print("vlibos: tsc: %llu kHz from %s (cpuid 0x15 says %llu kHz), invariant %s\n",
                   static_cast<unsigned long long>(tsc.hz / 1000),
                   tsc.source == x86::tsc::Source::Cpuid ? "cpuid" : "pit calibration",
                   static_cast<unsigned long long>(tsc.cpuid_hz / 1000), tsc.invariant ? "yes" : "no");

    g_cpu_count = machine.cpu_count;
    report_online(machine, cpu);
    cpu.state = CpuState::Online;
}

void start_application_processors(Machine& machine)
{
    uint32_t online = 1, not_assigned = 0;
    for (uint32_t i = 1; i < machine.cpu_count; ++i) {
        const char* kind = nullptr;
        if (partition_name_of_cpu(machine, i, &kind) == nullptr) {
            console::print("vlibos: cpu %u apic %u not started: no partition assigns it\n", i, machine.apic_ids[i]);
            ++not_assigned;
            continue;
        }
        start_one_cpu(machine, i, machine.apic_ids[i]);
        ++online;
    }
    if (not_assigned == 0)
        console::print("vlibos: all %u cpus online\n", online);
    else
        console::print("vlibos: all %u assigned cpus online; %u cpus not started\n", online, not_assigned);

    if (g_selftest == Selftest::PhantomCpu)
        start_phantom_cpu(machine);
}

} // namespace vlibos

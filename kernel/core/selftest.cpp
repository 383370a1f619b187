// Deliberate failures, chosen on the kernel command line (vlibos.selftest=NAME), so the
// integration tests can prove that the failure paths report what they should.
//   fault: the last CPU to start writes to the monitor's own (read-only) text. The page fault
//          must produce a register dump naming that CPU, stop only that CPU, and leave the
//          rest of the monitor running to report it.
//   stack-overflow: the last CPU to start recurses until it runs off its stack. The guard page
//          below the stack must turn that into a fault; delivering it needs the same stack, so
//          the CPU takes a double fault on its IST stack, which reports and stops only that CPU.
//   phantom-cpu: after the real CPUs, the boot CPU tries to start a CPU at an APIC ID that no
//          CPU has. It must report that the CPU did not start and halt with status 2.
#include <string.h>

#include "arch/x86_64/cpu.hpp"
#include "arch/x86_64/tsc.hpp"
#include "boot/cmdline.hpp"
#include "core/boot.hpp"
#include "core/console.hpp"
#include "core/panic.hpp"
#include "core/percpu.hpp"

extern "C" char __text_start[];

namespace vlibos {

Selftest g_selftest = Selftest::None;

namespace {
constexpr uint64_t kStopTimeoutUs = 2000000;
} // namespace

Selftest parse_selftest(const char* cmdline_text)
{
    CommandLine cmdline(cmdline_text);
    char name[16] = {};
    if (!cmdline.has("vlibos.selftest"))
        return Selftest::None;
    bool readable = cmdline.get("vlibos.selftest", name, sizeof(name));
    if (readable && strcmp(name, "fault") == 0)
        return Selftest::Fault;
    if (readable && strcmp(name, "stack-overflow") == 0)
        return Selftest::StackOverflow;
    if (readable && strcmp(name, "phantom-cpu") == 0)
        return Selftest::PhantomCpu;
    panic("unknown vlibos.selftest value (known: fault, stack-overflow, phantom-cpu)");
}

uint32_t selftest_fault_cpu(const Machine& machine)
{
    // The highest-numbered CPU that a partition assigns: the last one started.
    for (uint32_t i = machine.cpu_count; i-- > 1;) {
        const char* kind = nullptr;
        if (partition_name_of_cpu(machine, i, &kind) != nullptr)
            return i;
    }
    return 0;
}

namespace {
// Never set: it only gives the recursion a way out that the compiler cannot rule out.
volatile bool g_stop_recursion = false;

// Each frame keeps a page of stack alive, so the recursion reaches the guard page quickly.
[[gnu::noinline]] uint64_t recurse(uint64_t depth)
{
    volatile uint8_t page[4096];
    page[0] = static_cast<uint8_t>(depth);
    if (g_stop_recursion)
        return depth;
    return recurse(depth + 1) + page[0];
}
} // namespace

void run_selftest_on_this_cpu(Selftest test)
{
    if (test == Selftest::StackOverflow) {
        console::print("vlibos: selftest: cpu %u overflows its stack\n", this_cpu()->index);
        recurse(0);
        return;
    }
    if (test != Selftest::Fault)
        return;
    console::print("vlibos: selftest: cpu %u writes to the monitor's read-only text at %p\n", this_cpu()->index,
                   static_cast<void*>(__text_start));
    *reinterpret_cast<volatile uint8_t*>(__text_start) = 0x90;
    console::print("vlibos: error: selftest: the write to read-only text did not fault\n");
}

void finish_selftest(Machine& machine, Selftest test)
{
    if (test != Selftest::Fault && test != Selftest::StackOverflow)
        return;
    uint32_t target = selftest_fault_cpu(machine);
    if (target == 0) {
        run_selftest_on_this_cpu(test);  // only the boot CPU: it reports and halts from the handler
        panic("selftest: the boot CPU survived its deliberate fault");
    }
    uint64_t give_up = x86::tsc::now() + x86::tsc::from_microseconds(kStopTimeoutUs);
    while (g_cpus[target].state != CpuState::Stopped && x86::tsc::now() < give_up)
        x86::cpu_relax();
    if (g_cpus[target].state != CpuState::Stopped)
        panic("selftest: cpu %u did not stop after its deliberate fault", target);
    console::print("vlibos: selftest %s: cpu %u stopped after its fault; cpu 0 carries on\n",
                   test == Selftest::Fault ? "fault" : "stack-overflow", target);
}

} // namespace vlibos

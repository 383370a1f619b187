#include "arch/x86_64/smp.hpp"

#include <string.h>

#include "arch/x86_64/cpu.hpp"
#include "arch/x86_64/lapic.hpp"
#include "arch/x86_64/tsc.hpp"

extern "C" const char trampoline_start[];
extern "C" const char trampoline_end[];

namespace vlibos::x86::smp {

namespace {

struct Parameters {
    uint64_t cr3;
    uint64_t stack;
    uint64_t entry;
    uint64_t argument;
};

Parameters* parameters() { return reinterpret_cast<Parameters*>(kParametersBase); }

constexpr uint64_t kInitDeassertDelayUs = 10000;  // 10 ms after INIT (SDM §8.4.4.1)
constexpr uint64_t kStartupDelayUs = 200;         // 200 us between STARTUP IPIs

bool wait_started(const volatile uint32_t* started, uint64_t timeout_us)
{
    uint64_t end = tsc::now() + tsc::from_microseconds(timeout_us);
    while (tsc::now() < end) {
        if (*started != 0)
            return true;
        cpu_relax();
    }
    return *started != 0;
}

} // namespace

void install_trampoline()
{
    auto size = static_cast<size_t>(trampoline_end - trampoline_start);
    memcpy(reinterpret_cast<void*>(kTrampolineBase), trampoline_start, size);
}

bool start_cpu(uint32_t apic_id, uint64_t cr3, uint64_t stack_top, void (*entry)(void*), void* argument,
               const volatile uint32_t* started, uint64_t timeout_us)
{
    Parameters* p = parameters();
    p->cr3 = cr3;
    p->stack = stack_top;
    p->entry = reinterpret_cast<uint64_t>(entry);
    p->argument = reinterpret_cast<uint64_t>(argument);
    memory_fence();

    auto vector = static_cast<uint8_t>(kTrampolineBase >> 12);
    Lapic::send_init(apic_id);
    Lapic::wait_for_ipi_delivery();
    tsc::delay_microseconds(kInitDeassertDelayUs);
    Lapic::send_startup(apic_id, vector);
    Lapic::wait_for_ipi_delivery();
    if (wait_started(started, kStartupDelayUs))
        return true;
    // The second STARTUP IPI is the documented retry for a missed first one.
    Lapic::send_startup(apic_id, vector);
    Lapic::wait_for_ipi_delivery();
    return wait_started(started, timeout_us);
}

} // namespace vlibos::x86::smp

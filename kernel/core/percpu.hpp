// Per-CPU data. Each CPU's GS base points at its own PerCpu, so this_cpu() is one load.
#pragma once

#include <stdint.h>

#include "arch/x86_64/descriptors.hpp"
#include "arch/x86_64/lapic_timer.hpp"

namespace vlibos {

constexpr uint32_t kMaxCpus = 64;
constexpr int kNoPartition = -1;

enum class CpuState : uint32_t {
    Absent = 0,  // not started (yet)
    Online,      // running monitor code
    Parked,      // online, idle, waiting for work
    Stopped,     // stopped after a fatal exception
};

namespace rt_core {
class Core;
}

struct PerCpu {
    PerCpu* self;  // must stay first: this_cpu() reads gs:0
    // Read by the SYSCALL entry (syscall_entry.S) at fixed offsets: the stack it switches to,
    // and where it parks the user RSP meanwhile.
    uint64_t syscall_stack_top;
    uint64_t user_rsp_scratch;
    uint32_t index;
    uint32_t apic_id;
    volatile CpuState state;
    volatile uint32_t started;       // set by the AP once it runs C++ (polled by the boot CPU)
    volatile uint32_t timer_fired;   // set by the LAPIC timer handler
    int partition;
    uint64_t stack_top;
    uint64_t ist_stack_top[x86::ist::kCount];
    x86::Tss tss;
    x86::Gdt gdt;
    x86::LapicTimer lapic_timer;  // calibrated at bring-up; the one one-shot timer of this CPU
    rt_core::Core* rt;  // this CPU's RT scheduler, when it runs RT applications
};

static_assert(__builtin_offsetof(PerCpu, syscall_stack_top) == 8, "syscall_entry.S reads gs:8");
static_assert(__builtin_offsetof(PerCpu, user_rsp_scratch) == 16, "syscall_entry.S uses gs:16");

extern PerCpu g_cpus[kMaxCpus];
extern uint32_t g_cpu_count;

// Points GS at `cpu` on the calling CPU.
void install_percpu(PerCpu& cpu);

// The calling CPU's data. kernel_main installs the boot CPU's first thing and every AP installs
// its own before anything else, so no code runs without it.
inline PerCpu* this_cpu()
{
    PerCpu* self;
    asm volatile("mov %%gs:0, %0" : "=r"(self));
    return self;
}

} // namespace vlibos

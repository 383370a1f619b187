// The RT sandbox at run time: applications in ring 3, one thread per VCPU, scheduled on each RT
// CPU by a PeriodicCore (kernel/rt/periodic_core.hpp) with a one-shot LAPIC timer and no tick.
//
// Every entry from ring 3 (system call, timer, exception) lands in handle_user_trap() with the
// thread's registers in an InterruptFrame at the top of the CPU's kernel stack. The handler saves
// them in the thread, does the work, picks the next thread, and rewrites the frame with that
// thread's registers; the common exit path then IRETQs into it. So there is one kernel stack per
// CPU and no kernel-side thread state: a thread that waits is just a saved user frame.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "arch/x86_64/fpu.hpp"
#include "arch/x86_64/interrupts.hpp"
#include "config/config.hpp"
#include "core/rt_output.hpp"
#include "rt/periodic_core.hpp"
#include "rt/user_space.hpp"

namespace vlibos {
struct Machine;
}

namespace vlibos::rt_core {

struct App {
    const config::App* config = nullptr;  // its CPU, VCPUs, name and arguments
    uint64_t cr3 = 0;
    rt::UserSpace space;
    uint64_t args_pointer = 0;  // user address of the argument string
    uint64_t args_length = 0;
    // Scheduler id of each configured VCPU (IDLE when admission refused it) and whether a
    // thread is bound to it.
    rt::VcpuId vcpu_of[config::kMaxAppVcpus] = {};
    bool vcpu_bound[config::kMaxAppVcpus] = {};
    uint32_t threads = 0;        // live threads
    bool at_line_start = true;   // console output: prefix the next byte with the app's name
    bool ended = false;
};

struct Thread {
    App* app = nullptr;           // null: free slot
    int config_vcpu = -1;         // index in app->config->vcpus, or -1 for a VCPU made by the thread
    bool waiting = false;         // until its VCPU's next release
    x86::InterruptFrame context;  // user registers while not running
    x86::FxState fx;
};

struct Core {
    explicit Core(rt::PriorityPolicy policy) : sched(policy) {}

    uint32_t cpu = 0;
    rt::PeriodicCore sched;
    Thread threads[rt::CoreScheduler::MAX_VCPUS];  // thread i runs on VCPU i
    rt::VcpuId running = rt::IDLE;                 // whose registers the CPU holds
    uint64_t loaded_cr3 = 0;
    uint32_t live_apps = 0;
    OutputQueue out;  // everything this core prints, fed to the UART without waiting
};

// Boot CPU, after the CPUs are up: loads every configured application into its own address
// space and admits its first VCPU. Returns how many applications will run.
size_t load_applications(Machine& machine);

// Every CPU ends up here once the boot CPU has loaded the applications: RT CPUs with
// applications run them until all have ended; the last one to finish ends the run.
[[noreturn]] void run_this_cpu(Machine& machine);
// APs: waits until the boot CPU has loaded the applications (and counted the run's activities).
void wait_for_load();

// From interrupt_dispatch for every entry from ring 3 (CS.RPL = 3, or the SYSCALL pseudo-vector).
void handle_user_trap(x86::InterruptFrame& frame);

} // namespace vlibos::rt_core

// Shared by the files of the RT sandbox (rt_loader.cpp, rt_core.cpp, rt_syscalls.cpp).
namespace vlibos::rt_core::internal {

constexpr size_t kMaxApps = config::kMaxApps;
extern App g_apps[kMaxApps];
extern size_t g_app_count;

uint64_t ns_to_ticks(uint64_t ns);
uint64_t ticks_to_ns(uint64_t ticks);
Core& this_core();
// The core's own messages, through its output queue.
void rt_print(Core& core, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

// A new thread on VCPU `id` of this core, starting at `rip` with `rsp` and RDI = `arg`. Its
// first job is released now, or (`release_now` false) when its CPU enters its loop.
void start_thread(Core& core, App& app, rt::VcpuId id, int config_vcpu, uint64_t rip, uint64_t rsp, uint64_t arg,
                  bool release_now);
// Prints the VCPU's statistics line and takes it off the core.
void end_thread(Core& core, rt::VcpuId id, const char* why);
// Ends every thread of `app` (exit, or a fault of any of its threads).
void end_app(Core& core, App& app, const char* why);

// The system call in `frame` (RAX = number) from the running thread; the result goes in the
// thread's saved RAX unless the thread ended or waits.
void do_syscall(Core& core, rt::VcpuId id);

// Reads and writes user memory through the application's own mappings (CR3 is loaded), inside
// SMAP's window. Callers check the range first with App::space.check().
void copy_from_user(void* to, uint64_t from, size_t length);
void copy_to_user(uint64_t to, const void* from, size_t length);

} // namespace vlibos::rt_core::internal

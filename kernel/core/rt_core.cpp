// The RT core loop: dispatching threads, the one-shot timer, idling, faults of applications and
// the end of the run. See rt_core.hpp for the trap model.
#include "core/rt_core.hpp"

#include "arch/x86_64/cpu.hpp"
#include "arch/x86_64/lapic.hpp"
#include "arch/x86_64/tsc.hpp"
#include "arch/x86_64/user_mode.hpp"
#include "core/boot.hpp"
#include "core/console.hpp"
#include "core/panic.hpp"
#include "core/percpu.hpp"
#include "lib/format.hpp"

#include <stdarg.h>

namespace vlibos::rt_core {

using namespace internal;

namespace {

bool g_smap = false;

// SMEP and SMAP where the CPU has them (CPUID.(EAX=7,ECX=0):EBX bits 7 and 20; SDM Vol. 3 §4.6):
// the monitor then can neither run user code nor touch user data by accident.
void enable_user_protections()
{
    x86::CpuidResult leaf0 = x86::cpuid(0);
    if (leaf0.eax < 7)
        return;
    x86::CpuidResult leaf7 = x86::cpuid(7, 0);
    uint64_t cr4 = x86::read_cr4();
    if ((leaf7.ebx & (1u << 7)) != 0)
        cr4 |= x86::cr4::kSmep;
    if ((leaf7.ebx & (1u << 20)) != 0) {
        cr4 |= x86::cr4::kSmap;
        g_smap = true;
    }
    x86::write_cr4(cr4);
}

void load_address_space(Core& core, const App& app)
{
    if (core.loaded_cr3 != app.cr3) {
        x86::write_cr3(app.cr3);
        core.loaded_cr3 = app.cr3;
    }
}

// Hands the CPU to thread `id`: its FPU state, its address space, and (if it was waiting for a
// release) the release time as the result of its wait.
void switch_to(Core& core, rt::VcpuId id)
{
    Thread& next = core.threads[id];
    if (core.running != id) {
        if (core.running != rt::IDLE && core.threads[core.running].app != nullptr)
            x86::fx_save(core.threads[core.running].fx);
        x86::fx_restore(next.fx);
        core.running = id;
    }
    load_address_space(core, *next.app);
    if (next.waiting) {
        next.waiting = false;
        next.context.rax = ticks_to_ns(core.sched.current_release(id));
    }
}

// While idle with output queued, the core wakes this often to feed the UART (its 16-byte FIFO
// empties in 1.4 ms at 115200 baud).
constexpr uint64_t kOutputPollNs = 200'000;

void arm_timer(Core& core, uint64_t now, bool idle)
{
    uint64_t event = core.sched.next_event(now);
    if (idle && !core.out.empty()) {
        uint64_t poll = now + ns_to_ticks(kOutputPollNs);
        event = poll < event ? poll : event;
    }
    if (event == rt::NEVER)
        x86::Lapic::stop_timer();
    else
        this_cpu()->lapic_timer.arm_at(event);
}

// Picks the next thread, idling with interrupts on until there is one. Returns IDLE only when
// this core has no live application left.
rt::VcpuId pick_or_idle(Core& core)
{
    for (;;) {
        uint64_t now = x86::rdtsc();
        rt::VcpuId id = core.sched.pick(now);
        core.out.drain_ready();
        arm_timer(core, now, id == rt::IDLE);
        if (id != rt::IDLE)
            return id;
        if (core.live_apps == 0)
            return rt::IDLE;
        // Nothing may run before the timer: wait for it (or any interrupt) and pick again.
        x86::enable_interrupts_and_halt();
        x86::disable_interrupts();
    }
}

[[noreturn]] void core_finished(Core& core)
{
    x86::Lapic::stop_timer();
    rt_print(core, "vlibos: rt: cpu %u: all applications ended\n", core.cpu);
    core.out.flush();
    char what[32];
    format(what, sizeof what, "the RT applications of cpu %u", core.cpu);
    activity_ended(what);
    this_cpu()->state = CpuState::Parked;
    x86::halt_forever();
}

const char* fault_detail(uint64_t vector)
{
    switch (vector) {
    case x86::kVectorPageFault:
        return "bad memory access";
    case x86::kVectorInvalidOpcode:
        return "invalid instruction";
    case x86::kVectorDivideError:
        return "divide error";
    case x86::kVectorGeneralProtection:
        return "privileged instruction or bad segment";
    default:
        return "exception";
    }
}

void report_fault(Core& core, const App& app, rt::VcpuId id, const x86::InterruptFrame& f)
{
    FormatBuffer<256> line;
    line.append("vlibos: rt: app '%s' thread %u (cpu %u) fault: %s (%s) at rip %#llx", app.config->name,
                static_cast<unsigned>(id), core.cpu, x86::exception_mnemonic(f.vector), fault_detail(f.vector),
                static_cast<unsigned long long>(f.rip));
    if (f.vector == x86::kVectorPageFault)
        line.append(", address %#llx, error %#llx (%s, %s)", static_cast<unsigned long long>(x86::read_cr2()),
                    static_cast<unsigned long long>(f.error_code), (f.error_code & 2) != 0 ? "write" : "read",
                    (f.error_code & 1) != 0 ? "protection" : "not mapped");
    rt_print(core, "%s\n", line.c_str());
}

} // namespace

namespace internal {

uint64_t ns_to_ticks(uint64_t ns)
{
    unsigned __int128 t = static_cast<unsigned __int128>(ns) * x86::tsc::frequency() / 1'000'000'000u;
    return t > rt::MAX_TICKS ? rt::MAX_TICKS + 1 : static_cast<uint64_t>(t);
}

uint64_t ticks_to_ns(uint64_t ticks)
{
    uint64_t hz = x86::tsc::frequency();
    return hz == 0 ? 0 : static_cast<uint64_t>(static_cast<unsigned __int128>(ticks) * 1'000'000'000u / hz);
}

Core& this_core() { return *this_cpu()->rt; }

void rt_print(Core& core, const char* fmt, ...)
{
    char line[512];
    va_list args;
    va_start(args, fmt);
    size_t length = format_v(line, sizeof line, fmt, args);
    va_end(args);
    if (length >= sizeof line)
        length = sizeof line - 1;
    size_t queued = core.out.push(line, length);
    if (queued < length)
        core.out.count_dropped(length - queued);
}

void start_thread(Core& core, App& app, rt::VcpuId id, int config_vcpu, uint64_t rip, uint64_t rsp, uint64_t arg,
                  bool release_now)
{
    Thread& t = core.threads[id];
    t = Thread{};
    t.app = &app;
    t.config_vcpu = config_vcpu;
    t.context = x86::user_entry_frame(rip, rsp);
    t.context.rdi = arg;
    x86::fx_initial(t.fx);
    if (config_vcpu >= 0)
        app.vcpu_bound[config_vcpu] = true;
    ++app.threads;
    if (release_now)
        (void)core.sched.start(id, x86::rdtsc());
}

void end_thread(Core& core, rt::VcpuId id, const char* why)
{
    Thread& t = core.threads[id];
    if (t.app == nullptr)
        return;
    App& app = *t.app;
    const rt::VcpuStats& s = core.sched.scheduler().stats(id);
    const rt::MainVcpu& v = core.sched.scheduler().main_vcpu(id);
    char name[24];
    if (t.config_vcpu >= 0)
        format(name, sizeof name, "%s", app.config->vcpus[t.config_vcpu].name);
    else
        format(name, sizeof name, "thread-%u", static_cast<unsigned>(id));
    rt_print(core, "vlibos: rt: app '%s' vcpu '%s' cpu %u (%s): C=%lluus T=%lluus jobs=%llu misses=%llu "
                   "worst_response=%lluus budget_used=%lluus replenishments=%llu merged_releases=%llu\n",
                   app.config->name, name, core.cpu, why, static_cast<unsigned long long>(ticks_to_ns(v.budget()) / 1000),
                   static_cast<unsigned long long>(ticks_to_ns(v.period()) / 1000),
                   static_cast<unsigned long long>(s.jobs_completed), static_cast<unsigned long long>(s.deadline_misses),
                   static_cast<unsigned long long>(ticks_to_ns(s.worst_response) / 1000),
                   static_cast<unsigned long long>(ticks_to_ns(s.budget_used) / 1000),
                   static_cast<unsigned long long>(s.replenishments),
                   static_cast<unsigned long long>(s.releases_merged));
    (void)core.sched.retire(id, x86::rdtsc());
    if (t.config_vcpu >= 0)
        app.vcpu_bound[t.config_vcpu] = false;
    t.app = nullptr;
    if (core.running == id)
        core.running = rt::IDLE;  // its FPU state is not saved: nobody will run it again
    if (--app.threads == 0 && !app.ended) {
        app.ended = true;
        --core.live_apps;
        rt_print(core, "vlibos: rt: app '%s' ended (%s)\n", app.config->name, why);
    }
}

void end_app(Core& core, App& app, const char* why)
{
    for (size_t i = 0; i < rt::CoreScheduler::MAX_VCPUS; ++i)
        if (core.threads[i].app == &app)
            end_thread(core, static_cast<rt::VcpuId>(i), why);
    // Configured VCPUs no thread ever bound to leave the core too.
    for (size_t v = 0; v < app.config->vcpu_count; ++v)
        if (app.vcpu_of[v] != rt::IDLE && !core.sched.scheduler().retired(app.vcpu_of[v]))
            (void)core.sched.retire(app.vcpu_of[v], x86::rdtsc());
}

void copy_from_user(void* to, uint64_t from, size_t length)
{
    if (g_smap)
        x86::allow_user_access();
    __builtin_memcpy(to, reinterpret_cast<const void*>(from), length);
    if (g_smap)
        x86::forbid_user_access();
}

void copy_to_user(uint64_t to, const void* from, size_t length)
{
    if (g_smap)
        x86::allow_user_access();
    __builtin_memcpy(reinterpret_cast<void*>(to), from, length);
    if (g_smap)
        x86::forbid_user_access();
}

} // namespace internal

void handle_user_trap(x86::InterruptFrame& frame)
{
    Core& core = this_core();
    rt::VcpuId id = core.running;
    if (id == rt::IDLE || core.threads[id].app == nullptr)
        panic("cpu %u: an entry from ring 3 with no RT thread running", core.cpu);
    Thread& t = core.threads[id];
    t.context = frame;

    if (frame.vector == x86::kVectorSyscall) {
        do_syscall(core, id);
    } else if (frame.vector < x86::kFirstExternalVector) {
        App& app = *t.app;
        report_fault(core, app, id, frame);
        end_app(core, app, "killed by a fault");
    } else if (frame.vector == x86::kVectorLapicTimer) {
        x86::Lapic::end_of_interrupt();
    } else if (frame.vector != x86::kVectorSpurious) {
        rt_print(core, "vlibos: warning: unexpected interrupt vector %llu on cpu %u\n",
                       static_cast<unsigned long long>(frame.vector), core.cpu);
        x86::Lapic::end_of_interrupt();
    }

    rt::VcpuId next = pick_or_idle(core);
    if (next == rt::IDLE)
        core_finished(core);
    switch_to(core, next);
    frame = core.threads[next].context;
}

void run_this_cpu(Machine& machine)
{
    (void)machine;
    PerCpu* cpu = this_cpu();
    if (cpu->rt == nullptr || cpu->rt->live_apps == 0) {
        cpu->state = CpuState::Parked;
        x86::halt_forever();
    }
    Core& core = *cpu->rt;
    x86::enable_sse_on_this_cpu();
    enable_user_protections();
    x86::enable_user_mode_on_this_cpu(cpu->stack_top);
    cpu->state = CpuState::Online;

    uint64_t now = x86::rdtsc();
    for (size_t i = 0; i < rt::CoreScheduler::MAX_VCPUS; ++i)
        if (core.threads[i].app != nullptr && !core.sched.started(static_cast<rt::VcpuId>(i)))
            (void)core.sched.start(static_cast<rt::VcpuId>(i), now);
    rt_print(core, "vlibos: rt: cpu %u runs %u application(s), utilisation %u ppm (%s)\n", core.cpu, core.live_apps,
                   core.sched.scheduler().utilisation(),
                   core.sched.scheduler().policy() == rt::PriorityPolicy::RateMonotonic ? "rate-monotonic"
                                                                                         : "explicit priorities");

    rt::VcpuId first = pick_or_idle(core);
    if (first == rt::IDLE)
        core_finished(core);
    switch_to(core, first);
    x86::enter_frame(core.threads[first].context);
}

} // namespace vlibos::rt_core

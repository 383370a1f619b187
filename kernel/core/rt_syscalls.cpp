// The RT system calls (kernel/rt/syscall_abi.h; docs/syscalls.md). Arguments come from ring 3
// and are untrusted: every pointer is checked against the calling application's own regions
// before it is touched, every number against its range, and a bad one gets an error code.
#include "arch/x86_64/tsc.hpp"
#include "core/console.hpp"
#include "core/rt_core.hpp"
#include "lib/format.hpp"
#include "rt/syscall_abi.h"
#include "vmm/runtime/linux_vm.hpp"

namespace vlibos::rt_core::internal {

namespace {

constexpr size_t kMaxNameLength = config::kMaxNameLength;
constexpr int64_t error(vlibos_error e) { return -static_cast<int64_t>(e); }

// VLIBOS_SYS_LINUX_STATE returns the monitor's own state number: the ABI must name the same ones.
static_assert(static_cast<int>(vmm::LinuxVmState::Absent) == VLIBOS_LINUX_ABSENT);
static_assert(static_cast<int>(vmm::LinuxVmState::Starting) == VLIBOS_LINUX_STARTING);
static_assert(static_cast<int>(vmm::LinuxVmState::Running) == VLIBOS_LINUX_RUNNING);
static_assert(static_cast<int>(vmm::LinuxVmState::Stopped) == VLIBOS_LINUX_STOPPED);

int64_t check(const App& app, uint64_t pointer, uint64_t length, rt::Access access)
{
    return app.space.check(pointer, length, access) ? 0 : error(VLIBOS_EFAULT);
}

// Console output of an application, through its core's output queue. Each line is prefixed
// with the application's name, so nothing it prints can pass for a monitor line (the test tools
// read "vlibos: ..." lines), and only printable text, tabs and newlines pass. Returns how many
// bytes were taken: fewer than asked when the queue is full (never blocks).
int64_t console_write(Core& core, App& app, uint64_t text, uint64_t length)
{
    if (length > VLIBOS_CONSOLE_MAX)
        return error(VLIBOS_EINVAL);
    if (int64_t bad = check(app, text, length, rt::Access::Read))
        return bad;
    char prefix[kMaxNameLength + 4];
    size_t prefix_length = format(prefix, sizeof prefix, "[%s] ", app.config->name);
    char bytes[256];
    uint64_t done = 0;
    while (done < length) {
        size_t chunk = length - done < sizeof bytes ? static_cast<size_t>(length - done) : sizeof bytes;
        copy_from_user(bytes, text + done, chunk);
        for (size_t i = 0; i < chunk; ++i) {
            char c = bytes[i];
            c = (c == '\n' || c == '\t' || (c >= 0x20 && c < 0x7f)) ? c : '?';
            size_t need = 1 + (app.at_line_start ? prefix_length : 0);
            if (core.out.free_space() < need)
                return static_cast<int64_t>(done + i);
            if (app.at_line_start)
                core.out.push(prefix, prefix_length);
            core.out.push(&c, 1);
            app.at_line_start = c == '\n';
        }
        done += chunk;
    }
    return static_cast<int64_t>(length);
}

int find_config_vcpu(const App& app, const char* name)
{
    for (size_t v = 0; v < app.config->vcpu_count; ++v)
        if (__builtin_strcmp(app.config->vcpus[v].name, name) == 0)
            return static_cast<int>(v);
    return -1;
}

int64_t thread_create(Core& core, App& app, uint64_t params_pointer)
{
    vlibos_thread_params p;
    if (int64_t bad = check(app, params_pointer, sizeof p, rt::Access::Read))
        return bad;
    copy_from_user(&p, params_pointer, sizeof p);
    if (p.flags != 0)
        return error(VLIBOS_EINVAL);
    if (p.stack_top % 16 != 0)
        return error(VLIBOS_EINVAL);
    // At least 1 KiB of writable stack below the top, and code at the entry point.
    constexpr uint64_t kMinThreadStack = 1024;
    if (p.stack_top < kMinThreadStack)
        return error(VLIBOS_EFAULT);
    if (int64_t bad = check(app, p.stack_top - kMinThreadStack, kMinThreadStack, rt::Access::Write))
        return bad;
    if (int64_t bad = check(app, p.entry, 1, rt::Access::Execute))
        return bad;
    bool terminated = false;
    for (char c : p.vcpu)
        terminated = terminated || c == '\0';
    if (!terminated)
        return error(VLIBOS_EINVAL);  // no NUL inside the name buffer

    uint64_t now = x86::tsc::now();
    rt::VcpuId id;
    int config_vcpu = -1;
    if (p.vcpu[0] != '\0') {
        if (p.budget_ns != 0 || p.period_ns != 0 || p.priority != 0)
            return error(VLIBOS_EINVAL);
        config_vcpu = find_config_vcpu(app, p.vcpu);
        if (config_vcpu < 0)
            return error(VLIBOS_ENOENT);
        if (app.vcpu_of[config_vcpu] == rt::IDLE)
            return error(VLIBOS_EADMISSION);  // refused at boot; the console said why
        if (app.vcpu_bound[config_vcpu])
            return error(VLIBOS_EBUSY);
        id = app.vcpu_of[config_vcpu];
    } else {
        uint64_t budget = ns_to_ticks(p.budget_ns), period = ns_to_ticks(p.period_ns);
        auto admitted = core.sched.admit(rt::VcpuParams::main(budget, period, p.priority), now);
        if (!admitted) {
            if (admitted.error().kind == rt::AdmissionErrorKind::InvalidParameters)
                return error(VLIBOS_EINVAL);
            if (admitted.error().kind == rt::AdmissionErrorKind::TooManyVcpus)
                return error(VLIBOS_EAGAIN);
            char why[256];
            rt::format_admission_error(why, sizeof why, admitted.error());
            rt_print(core, "vlibos: rt: app '%s' new thread (C=%lluns T=%lluns) on cpu %u: %s\n", app.config->name,
                           static_cast<unsigned long long>(p.budget_ns), static_cast<unsigned long long>(p.period_ns),
                           core.cpu, why);
            return error(VLIBOS_EADMISSION);
        }
        id = admitted.value();
    }
    if (core.threads[id].app != nullptr)
        return error(VLIBOS_EBUSY);  // cannot happen: a VCPU's slot is freed with its thread
    // As if called: RSP + 8 is 16-byte aligned at the first instruction (System V ABI §3.2.2).
    start_thread(core, app, id, config_vcpu, p.entry, p.stack_top - 8, p.arg, true);
    return id;
}

int64_t vcpu_stats(Core& core, App& app, rt::VcpuId id, uint64_t out)
{
    vlibos_vcpu_stats s{};
    if (int64_t bad = check(app, out, sizeof s, rt::Access::Write))
        return bad;
    const rt::VcpuStats& st = core.sched.scheduler().stats(id);
    const rt::MainVcpu& v = core.sched.scheduler().main_vcpu(id);
    s.budget_ns = ticks_to_ns(v.budget());
    s.period_ns = ticks_to_ns(v.period());
    s.budget_used_ns = ticks_to_ns(st.budget_used);
    s.replenishments = st.replenishments;
    s.jobs_completed = st.jobs_completed;
    s.deadline_misses = st.deadline_misses;
    s.worst_response_ns = ticks_to_ns(st.worst_response);
    copy_to_user(out, &s, sizeof s);
    return 0;
}

} // namespace

void do_syscall(Core& core, rt::VcpuId id)
{
    Thread& t = core.threads[id];
    App& app = *t.app;
    x86::InterruptFrame& r = t.context;
    int64_t result = 0;
    switch (r.rax) {
    case VLIBOS_SYS_EXIT: {
        char why[40];
        format(why, sizeof why, "exit status %lld", static_cast<long long>(r.rdi));
        end_app(core, app, why);
        return;
    }
    case VLIBOS_SYS_CONSOLE_WRITE:
        result = console_write(core, app, r.rdi, r.rsi);
        break;
    case VLIBOS_SYS_CLOCK:
        result = static_cast<int64_t>(ticks_to_ns(x86::tsc::now()));
        break;
    case VLIBOS_SYS_THREAD_CREATE:
        result = thread_create(core, app, r.rdi);
        break;
    case VLIBOS_SYS_WAIT_PERIOD: {
        auto more = core.sched.complete_job(id, x86::tsc::now());
        if (more && !more.value()) {
            t.waiting = true;  // switch_to() delivers the release time
            return;
        }
        result = static_cast<int64_t>(ticks_to_ns(core.sched.current_release(id)));
        break;
    }
    case VLIBOS_SYS_THREAD_EXIT:
        end_thread(core, id, "thread exit");
        return;
    case VLIBOS_SYS_VCPU_STATS:
        result = vcpu_stats(core, app, id, r.rdi);
        break;
    case VLIBOS_SYS_LINUX_STATE:
        // One atomic load: the RT core never waits for the Linux VM (unused argument registers
        // are ignored, as for CLOCK).
        result = static_cast<int64_t>(vmm::linux_vm_state());
        break;
    default:
        result = error(VLIBOS_ENOSYS);
        break;
    }
    r.rax = static_cast<uint64_t>(result);
}

} // namespace vlibos::rt_core::internal

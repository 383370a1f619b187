// periodic: a periodic task set that measures its own release jitter and response times.
//
// Four tasks, each a thread on a configured VCPU: "main" (the application's first VCPU, which
// runs main() itself), "fast", "mid" and "slow" (started by name). Each task runs `periods` jobs:
//
//     release = wait_period();  start = clock;  spin until start + work;  end = clock
//     jitter = start - release;  response = end - release
//
// where `work` is work_pct percent of its VCPU's budget (from the kernel's statistics), so the
// set fits whatever budgets the configuration gives, and a correct scheduler misses nothing.
// Spinning on the clock bounds the CPU time of a job by `work` even when it is preempted.
//
// When every task has finished, main prints one line per task (in the order main, fast, mid,
// slow; from data the tasks recorded, so printing cannot disturb the measurement), then
// "periodic: done", and exits 0:
//
//   periodic: task fast periods=200 jitter_max_ns=12345 jitter_avg_ns=678 response_max_ns=345678 misses=0 budget_used_ns=61234567 replenishments=201
//
// Arguments (all optional):  periods=N  work_pct=P  <task>_us=W  timeout_ms=T
//   periods      jobs per task, 1..1000000 (default 100)
//   work_pct     work per job as a percentage of the VCPU's budget, 1..90 (default 30)
//   <task>_us    that task's work per job in microseconds instead (main_us, fast_us, ...)
//   timeout_ms   give up (exit 1) if the tasks have not finished this long after the start
//                (default periods x 100 ms + 5 s: the slow task needs periods x 40 ms)
#include <vlibos/rt.hpp>

namespace rt = vlibos::rt;

namespace {

struct Config {
    uint64_t periods = 100;
    uint64_t work_pct = 30;
    uint64_t timeout_ms = 0;
};

// One task: its VCPU's name, its work, and what it measured. The thread running it writes the
// results, then sets `done` (release); main reads them after seeing `done` (acquire).
struct Task {
    const char* name;
    uint64_t work_ns_override = 0;
    uint64_t jobs = 0;
    uint64_t jitter_max_ns = 0;
    uint64_t jitter_sum_ns = 0;
    uint64_t response_max_ns = 0;
    rt::VcpuStats stats{};
    const char* error = nullptr;   // what failed, if anything
    rt::Error error_code{};
    bool done = false;
};

Task g_tasks[] = {{"main"}, {"fast"}, {"mid"}, {"slow"}};
constexpr size_t kTaskCount = sizeof(g_tasks) / sizeof(g_tasks[0]);

void fail(Task& task, const char* what, rt::Error code)
{
    task.error = what;
    task.error_code = code;
}

void run_task(Task& task, const Config& config)
{
    auto first = rt::vcpu_stats();
    if (!first) {
        fail(task, "vcpu_stats", first.error());
        return;
    }
    uint64_t work_ns = task.work_ns_override != 0 ? task.work_ns_override
                                                  : first.value().budget_ns * config.work_pct / 100;
    for (uint64_t job = 0; job < config.periods; ++job) {
        auto released = rt::wait_period();
        if (!released) {
            fail(task, "wait_period", released.error());
            return;
        }
        uint64_t release = released.value();
        uint64_t start = rt::Clock::now_ns();
        uint64_t end = start;
        while (end - start < work_ns)
            end = rt::Clock::now_ns();
        uint64_t jitter = start > release ? start - release : 0;
        uint64_t response = end > release ? end - release : 0;
        task.jitter_max_ns = jitter > task.jitter_max_ns ? jitter : task.jitter_max_ns;
        task.jitter_sum_ns += jitter;
        task.response_max_ns = response > task.response_max_ns ? response : task.response_max_ns;
        ++task.jobs;
    }
    auto last = rt::vcpu_stats();
    if (!last) {
        fail(task, "vcpu_stats", last.error());
        return;
    }
    task.stats = last.value();
}

void finish(Task& task) { __atomic_store_n(&task.done, true, __ATOMIC_RELEASE); }
bool finished(const Task& task) { return __atomic_load_n(&task.done, __ATOMIC_ACQUIRE); }

// Reads one option into `value` within [min, max]; prints why and returns false if it is bad.
bool option(const rt::Args& args, const char* key, uint64_t min, uint64_t max, uint64_t& value)
{
    auto read = args.u64(key, value);
    if (!read || read.value() < min || read.value() > max) {
        rt::print("periodic: error: %s must be a number in [%llu, %llu]\n", key, static_cast<unsigned long long>(min),
                  static_cast<unsigned long long>(max));
        return false;
    }
    value = read.value();
    return true;
}

bool parse(const char* text, Config& config)
{
    rt::Args args(text);
    bool ok = option(args, "periods", 1, 1000000, config.periods);
    ok = option(args, "work_pct", 1, 90, config.work_pct) && ok;
    config.timeout_ms = config.periods * 100 + 5000;
    ok = option(args, "timeout_ms", 1, UINT64_MAX / 1000000, config.timeout_ms) && ok;
    for (Task& task : g_tasks) {
        char key[24];
        size_t n = 0;
        for (const char* p = task.name; *p != '\0'; ++p)
            key[n++] = *p;
        for (const char* p = "_us"; *p != '\0'; ++p)
            key[n++] = *p;
        key[n] = '\0';
        uint64_t work_us = 0;
        ok = option(args, key, 0, 1000000, work_us) && ok;
        task.work_ns_override = work_us * 1000;
    }
    return ok;
}

} // namespace

int main(const char* args)
{
    Config config;
    if (!parse(args, config))
        return 2;
    // Nothing is printed before the tasks are done: a console write in a job would count
    // against the budget (a slow serial port could even make main's first job miss).
    uint64_t deadline = rt::Clock::now_ns() + config.timeout_ms * 1000000;

    for (size_t i = 1; i < kTaskCount; ++i) {
        Task* task = &g_tasks[i];
        auto thread = rt::Thread::spawn(task->name, [task, &config] {
            run_task(*task, config);
            finish(*task);
            rt::thread_exit();
        });
        if (!thread) {
            rt::print("periodic: error: cannot start task %s on VCPU '%s': %s\n", task->name, task->name,
                      thread.error_name());
            return 1;
        }
    }
    run_task(g_tasks[0], config);
    finish(g_tasks[0]);

    // The main VCPU keeps its period while the others finish; the slow task takes longest.
    for (;;) {
        bool all = true;
        for (const Task& task : g_tasks)
            all = all && finished(task);
        if (all)
            break;
        if (rt::Clock::now_ns() > deadline) {
            for (const Task& task : g_tasks) {
                if (!finished(task))
                    rt::print("periodic: error: task %s did not finish within timeout_ms=%llu\n", task.name,
                              static_cast<unsigned long long>(config.timeout_ms));
            }
            return 1;
        }
        (void)rt::wait_period();
    }

    int status = 0;
    for (const Task& task : g_tasks) {
        if (task.error != nullptr) {
            rt::print("periodic: error: task %s: %s failed: %s\n", task.name, task.error, rt::name(task.error_code));
            status = 1;
            continue;
        }
        uint64_t jitter_avg = task.jobs != 0 ? task.jitter_sum_ns / task.jobs : 0;
        rt::print("periodic: task %s periods=%llu jitter_max_ns=%llu jitter_avg_ns=%llu response_max_ns=%llu "
                  "misses=%llu budget_used_ns=%llu replenishments=%llu\n",
                  task.name, static_cast<unsigned long long>(task.jobs),
                  static_cast<unsigned long long>(task.jitter_max_ns), static_cast<unsigned long long>(jitter_avg),
                  static_cast<unsigned long long>(task.response_max_ns),
                  static_cast<unsigned long long>(task.stats.deadline_misses),
                  static_cast<unsigned long long>(task.stats.budget_used_ns),
                  static_cast<unsigned long long>(task.stats.replenishments));
    }
    if (status == 0)
        rt::print("periodic: done\n");
    return status;
}

// Loading RT applications at boot: for each [app] of the configuration, find its GRUB module,
// check the ELF, lay it out in the user window, copy it into RAM taken from its rt partition,
// build its page tables (the monitor's entries, supervisor-only, plus its own user pages) and
// admit its first VCPU on its CPU. A problem with one application is reported and that
// application does not run; the others do.
#include "arch/x86_64/cpu.hpp"
#include "core/boot.hpp"
#include "core/console.hpp"
#include "core/kernel_tables.hpp"
#include "core/panic.hpp"
#include "core/percpu.hpp"
#include "core/rt_core.hpp"
#include "elf/elf64.hpp"
#include "lib/format.hpp"

#include <new>

namespace vlibos::rt_core {

namespace internal {
App g_apps[kMaxApps];
size_t g_app_count = 0;
} // namespace internal

using namespace internal;

namespace {

// Each CPU's scheduler, built in place once its policy is known.
alignas(Core) uint8_t g_core_storage[kMaxCpus][sizeof(Core)];
// Next free byte of each partition's memory for application RAM.
uint64_t g_partition_cursor[config::kMaxPartitions];


Core& core_of(Machine& machine, uint32_t cpu)
{
    PerCpu& per = g_cpus[cpu];
    if (per.rt == nullptr) {
        int partition = config::partition_of_cpu(machine.config, cpu);
        rt::PriorityPolicy policy = partition >= 0 && machine.config.partitions[partition].scheduling ==
                                                          config::Scheduling::Explicit
                                        ? rt::PriorityPolicy::Explicit
                                        : rt::PriorityPolicy::RateMonotonic;
        per.rt = new (g_core_storage[cpu]) Core(policy);
        per.rt->cpu = cpu;
    }
    return *per.rt;
}

// RAM for one application from its partition, or 0.
uint64_t take_partition_memory(Machine& machine, uint32_t cpu, uint64_t bytes)
{
    int p = config::partition_of_cpu(machine.config, cpu);
    if (p < 0)
        return 0;
    const config::Range& range = machine.plan.partitions[p].memory;
    uint64_t& cursor = g_partition_cursor[p];
    if (cursor == 0)
        cursor = range.base;
    if (bytes > range.end - cursor)
        return 0;
    uint64_t base = cursor;
    cursor += bytes;
    return base;
}

bool build_address_space(Machine& machine, App& app, const uint8_t* image, uint64_t ram)
{
    KernelTableEnv env(machine.frames);
    auto root = mm::PageTable<KernelTableEnv>::create_root(env);
    if (!root) {
        console::print("vlibos: rt: app '%s' not started: no memory for its page tables\n", app.config->name);
        return false;
    }
    // The monitor's mappings, as they are: supervisor-only, so ring 3 cannot touch them.
    const uint64_t* kernel_root = reinterpret_cast<const uint64_t*>(machine.kernel_cr3);
    uint64_t* app_root = reinterpret_cast<uint64_t*>(root.value());
    for (size_t i = 0; i < mm::ENTRIES_PER_TABLE; ++i)
        app_root[i] = kernel_root[i];
    mm::PageTable<KernelTableEnv> table(env, root.value());

    uint64_t next = ram;
    for (size_t i = 0; i < app.space.region_count(); ++i) {
        const rt::UserRegion& r = app.space.region(i);
        uint64_t bytes = r.end - r.base;
        __builtin_memset(reinterpret_cast<void*>(next), 0, bytes);
        if (r.file_size != 0)
            __builtin_memcpy(reinterpret_cast<void*>(next + (r.copy_to - r.base)), image + r.file_offset,
                             r.file_size);
        mm::Permissions perms{r.write, r.execute, true};
        auto mapped = table.map(r.base, next, bytes, perms, mm::CacheType::WriteBack, false, false);
        if (!mapped) {
            console::print("vlibos: rt: app '%s' not started: cannot map %#llx: %s\n", app.config->name,
                           static_cast<unsigned long long>(r.base), mm::describe(mapped.error()));
            return false;
        }
        if (r.stack && app.config->args[0] != '\0') {
            // The argument string sits at the top of the main stack; RSP starts below it.
            size_t length = __builtin_strlen(app.config->args);
            uint64_t at = (r.end - (length + 1)) & ~uint64_t{15};
            __builtin_memcpy(reinterpret_cast<void*>(next + (at - r.base)), app.config->args, length + 1);
            app.args_pointer = at;
            app.args_length = length;
        }
        next += bytes;
    }
    app.cr3 = root.value();
    return true;
}

bool load_one(Machine& machine, App& app)
{
    const config::App& cfg = *app.config;
    const mb2::Module* module = find_boot_module(machine, "vlibos.app", cfg.module);
    if (module == nullptr) {
        console::print("vlibos: rt: app '%s' not started: no GRUB module 'vlibos.app:%s' (add it with "
                       "tools/mkiso --app %s=FILE)\n",
                       cfg.name, cfg.module, cfg.module);
        return false;
    }
    const uint8_t* image = reinterpret_cast<const uint8_t*>(module->start);
    size_t size = static_cast<size_t>(module->end - module->start);
    elf::Program program;
    auto parsed = elf::parse(image, size, rt::kUserWindowEnd, program);
    if (!parsed) {
        console::print("vlibos: rt: app '%s' not started: module '%s' is not a usable ELF: %s\n", cfg.name, cfg.module,
                       elf::describe(parsed.error()));
        return false;
    }
    auto planned = app.space.plan(program, cfg.memory, cfg.stack);
    if (!planned) {
        console::print("vlibos: rt: app '%s' not started: %s\n", cfg.name, rt::describe(planned.error()));
        return false;
    }
    uint64_t ram = take_partition_memory(machine, cfg.cpu, app.space.pages() * rt::kUserPage);
    if (ram == 0) {
        console::print("vlibos: rt: app '%s' not started: its partition has no %llu KiB left\n", cfg.name,
                       static_cast<unsigned long long>(app.space.pages() * 4));
        return false;
    }
    if (!build_address_space(machine, app, image, ram))
        return false;

    // Admission, in configuration order: every configured VCPU is admitted now, so a thread that
    // binds to one later cannot be refused; a refused one is reported and stays unusable.
    Core& core = core_of(machine, cfg.cpu);
    uint64_t now = x86::rdtsc();
    for (size_t v = 0; v < cfg.vcpu_count; ++v) {
        const config::VcpuSpec& spec = cfg.vcpus[v];
        auto admitted = core.sched.admit(
            rt::VcpuParams::main(ns_to_ticks(spec.budget_ns), ns_to_ticks(spec.period_ns), spec.priority), now);
        if (!admitted) {
            char why[256];
            rt::format_admission_error(why, sizeof why, admitted.error());
            console::print("vlibos: rt: app '%s' vcpu '%s' on cpu %u: %s\n", cfg.name, spec.name, cfg.cpu, why);
            app.vcpu_of[v] = rt::IDLE;
            if (v == 0) {
                console::print("vlibos: rt: app '%s' not started: its first VCPU was refused\n", cfg.name);
                for (size_t u = 0; u < v; ++u)
                    (void)core.sched.retire(app.vcpu_of[u], now);
                return false;
            }
            continue;
        }
        app.vcpu_of[v] = admitted.value();
    }
    console::print("vlibos: rt: app '%s' loaded: module '%s', cpu %u, %llu KiB at %#llx, entry %#llx, %zu vcpus\n",
                   cfg.name, cfg.module, cfg.cpu, static_cast<unsigned long long>(app.space.pages() * 4),
                   static_cast<unsigned long long>(ram), static_cast<unsigned long long>(app.space.entry()),
                   cfg.vcpu_count);
    return true;
}

volatile uint32_t g_load_done = 0;

} // namespace

size_t load_applications(Machine& machine)
{
    // The user window needs a PML4 slot of its own (see rt/user_space.hpp).
    const uint64_t* kernel_root = reinterpret_cast<const uint64_t*>(machine.kernel_cr3);
    if (kernel_root[(rt::kUserWindowBase >> 39) & 511] != 0)
        panic("the monitor's direct map reaches the RT user window at %#llx",
              static_cast<unsigned long long>(rt::kUserWindowBase));

    size_t started = 0;
    for (size_t i = 0; i < machine.config.app_count; ++i) {
        App& app = g_apps[g_app_count];
        app = App{};
        app.config = &machine.config.apps[i];
        if (app.config->cpu >= machine.cpu_count || g_cpus[app.config->cpu].state == CpuState::Absent) {
            console::print("vlibos: rt: app '%s' not started: cpu %u is not online\n", app.config->name, app.config->cpu);
            continue;
        }
        if (!load_one(machine, app))
            continue;
        ++g_app_count;
        ++started;
    }
    // The first thread of each application, on its first VCPU; its release grid starts when its
    // CPU enters its loop, so loading time never counts against the first period.
    for (size_t i = 0; i < g_app_count; ++i) {
        App& app = g_apps[i];
        Core& core = *g_cpus[app.config->cpu].rt;
        ++core.live_apps;
        uint64_t rsp = app.args_pointer != 0 ? app.args_pointer : app.space.stack_top();
        rsp &= ~uint64_t{15};
        start_thread(core, app, app.vcpu_of[0], 0, app.space.entry(), rsp, app.args_pointer, false);
        Thread& t = core.threads[app.vcpu_of[0]];
        t.context.rsi = app.args_length;
    }
    uint32_t cores = 0;
    for (uint32_t cpu = 0; cpu < machine.cpu_count; ++cpu)
        cores += g_cpus[cpu].rt != nullptr && g_cpus[cpu].rt->live_apps > 0 ? 1 : 0;
    activities_expected(cores);
    __atomic_store_n(&g_load_done, 1, __ATOMIC_RELEASE);
    return started;
}

void wait_for_load()
{
    while (__atomic_load_n(&g_load_done, __ATOMIC_ACQUIRE) == 0)
        x86::cpu_relax();
}

} // namespace vlibos::rt_core

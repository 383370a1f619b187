// From configuration text to owned hardware: choose the configuration module, parse and
// validate it against this machine, then record every range's owner in the ledger so that no
// frame can ever belong to two partitions.
#include <string.h>

#include "core/boot.hpp"
#include "core/console.hpp"
#include "core/panic.hpp"
#include "lib/format.hpp"

namespace vlibos {

namespace {

constexpr char kModulePrefix[] = "vlibos.config:";
constexpr mm::OwnerId kMonitorOwner = 0;
constexpr uint64_t kFrameBitmapLimit = 1ull << 32;  // the monitor pool must lie below 4 GiB

char g_config_text[config::kMaxTextLength + 1];
// One bit per 4 KiB frame below kFrameBitmapLimit.
uint64_t g_frame_bitmap[kFrameBitmapLimit / mm::PAGE_SIZE / 64];


void list_config_modules(const Machine& machine, FormatBuffer<256>& out)
{
    size_t prefix = sizeof(kModulePrefix) - 1;
    for (size_t i = 0; i < machine.boot.module_count; ++i) {
        const char* cmdline = machine.boot.modules[i].cmdline;
        if (strncmp(cmdline, kModulePrefix, prefix) == 0)
            out.append("%s%s", out.length() == 0 ? "" : " ", cmdline + prefix);
    }
    if (out.length() == 0)
        out.append("none");
}

void print_diagnostics(const char* level, const config::Diagnostics& diagnostics)
{
    for (size_t i = 0; i < diagnostics.count; ++i)
        console::print("vlibos: %s: %s\n", level, diagnostics.messages[i].c_str());
    if (diagnostics.dropped != 0)
        console::print("vlibos: %s: ... and %zu more\n", level, diagnostics.dropped);
}

void claim(Machine& machine, config::Range range, mm::OwnerId owner, const char* what)
{
    auto claimed = machine.ownership.claim({range.base, range.end}, owner);
    if (claimed)
        return;
    const mm::OwnedRange& other = machine.ownership.last_conflict();
    panic("cannot give %#llx-%#llx to %s: %s (held by owner %u at %#llx-%#llx)",
          static_cast<unsigned long long>(range.base), static_cast<unsigned long long>(range.end), what,
          mm::describe(claimed.error()), other.owner, static_cast<unsigned long long>(other.range.base),
          static_cast<unsigned long long>(other.range.end));
}

void print_range_row(const char* owner, const char* kind, const char* cpus, config::Range range)
{
    char size[24];
    config::format_size(size, sizeof(size), range.size());
    console::print("vlibos:   %-10s %-8s %-10s %#012llx-%#012llx %s\n", owner, kind, cpus,
                   static_cast<unsigned long long>(range.base), static_cast<unsigned long long>(range.end), size);
}

} // namespace

void load_configuration(Machine& machine, const char* requested_name)
{
    char* name = machine.config_name;
    if (requested_name != nullptr)
        format(name, sizeof(machine.config_name), "%s", requested_name);
    else
        format(name, sizeof(machine.config_name), "%ucpu", machine.cpu_count);

    const mb2::Module* module = find_boot_module(machine, "vlibos.config", name);
    if (module == nullptr) {
        FormatBuffer<256> available;
        list_config_modules(machine, available);
        if (requested_name != nullptr)
            panic("no configuration module named '%s' (available: %s)", name, available.c_str());
        panic("no default configuration for %u CPUs ('%s'); choose one with vlibos.config=NAME (available: %s)",
              machine.cpu_count, name, available.c_str());
    }
    uint64_t length = module->end - module->start;
    if (length > config::kMaxTextLength)
        panic("configuration '%s' is %llu bytes; the limit is %zu", name, static_cast<unsigned long long>(length),
              config::kMaxTextLength);
    memcpy(g_config_text, reinterpret_cast<const void*>(module->start), static_cast<size_t>(length));
    g_config_text[length] = '\0';

    static config::Diagnostics errors;
    static config::Diagnostics warnings;
    errors.clear();
    warnings.clear();
    if (!config::parse(g_config_text, static_cast<size_t>(length), machine.config, errors)) {
        print_diagnostics("error", errors);
        panic("configuration '%s' rejected: %zu error(s)", name, errors.total());
    }

    static config::Machine facts;
    facts.cpu_count = machine.cpu_count;
    facts.free_count = 0;
    for (const mm::PhysRange& r : machine.free_ram) {
        if (facts.free_count == config::kMaxFreeRanges) {
            console::print("vlibos: warning: free RAM is split into more than %zu pieces; the rest is not used\n",
                           config::kMaxFreeRanges);
            break;
        }
        facts.free[facts.free_count++] = {r.base, r.end};
    }
    bool planned = config::plan(machine.config, facts, machine.plan, errors, warnings);
    print_diagnostics("warning", warnings);
    if (!planned) {
        print_diagnostics("error", errors);
        panic("configuration '%s' does not fit this machine: %zu error(s)", name, errors.total());
    }
    console::print("vlibos: configuration '%s' accepted\n", name);
}

void assign_partitions(Machine& machine)
{
    const config::Config& cfg = machine.config;
    const config::Plan& plan = machine.plan;

    for (const mm::PhysRange& r : machine.monitor_reserved)
        claim(machine, {r.base, r.end}, kMonitorOwner, "the monitor (image and boot data)");
    claim(machine, plan.monitor_pool, kMonitorOwner, "the monitor pool");
    for (size_t i = 0; i < plan.partition_count; ++i)
        claim(machine, plan.partitions[i].memory, static_cast<mm::OwnerId>(1 + i), cfg.partitions[i].name);
    for (size_t i = 0; i < plan.shared_count; ++i)
        claim(machine, plan.shared[i], static_cast<mm::OwnerId>(1 + config::kMaxPartitions + i), cfg.shared[i].name);

    console::print("vlibos: partition table (configuration '%s'):\n", machine.config_name);
    console::print("vlibos:   %-10s %-8s %-10s %-27s %s\n", "owner", "kind", "cpus", "host-physical memory", "size");
    print_range_row("monitor", "-", "all", plan.monitor_pool);
    for (size_t i = 0; i < plan.partition_count; ++i) {
        char cpus[40];
        config::format_cpus(cpus, sizeof(cpus), plan.partitions[i].cpus);
        print_range_row(cfg.partitions[i].name, config::kind_name(cfg.partitions[i].kind), cpus,
                        plan.partitions[i].memory);
    }
    for (size_t i = 0; i < plan.shared_count; ++i) {
        FormatBuffer<40> between;
        for (size_t j = 0; j < cfg.shared[i].partition_count; ++j)
            between.append("%s%s", j == 0 ? "" : ",", cfg.partitions[cfg.shared[i].partitions[j]].name);
        print_range_row(cfg.shared[i].name, "shared", between.c_str(), plan.shared[i]);
    }

    if (plan.monitor_pool.end > kFrameBitmapLimit)
        panic("the monitor pool %#llx-%#llx must lie below 4 GiB", static_cast<unsigned long long>(plan.monitor_pool.base),
              static_cast<unsigned long long>(plan.monitor_pool.end));
    machine.frames.init(g_frame_bitmap, sizeof(g_frame_bitmap) / sizeof(g_frame_bitmap[0]));
    auto added = machine.frames.add_range({plan.monitor_pool.base, plan.monitor_pool.end});
    if (!added)
        panic("cannot use the monitor pool: %s", mm::describe(added.error()));
}

const char* partition_name_of_cpu(const Machine& machine, uint32_t cpu, const char** kind)
{
    uint8_t owner = cpu < machine.plan.cpu_count ? machine.plan.cpu_owner[cpu] : config::kNoPartition;
    if (owner == config::kNoPartition) {
        *kind = "parked";
        return nullptr;
    }
    *kind = config::kind_name(machine.config.partitions[owner].kind);
    return machine.config.partitions[owner].name;
}

} // namespace vlibos

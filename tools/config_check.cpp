// vlibos-config-check: checks a partition configuration on the host with the same parser and
// planner the monitor runs at boot, and prints the resulting partition table and memory plan.
//
//   vlibos-config-check FILE [--cpus N] [--memory SIZE]
//
// The machine is modelled as N CPUs and one free RAM range [16 MiB, SIZE): the first 16 MiB
// stand for the real-mode area, the monitor image and the boot modules.
//
// It then admits every app's VCPUs on their CPU with the RT scheduler's own admission test
// (rt::CoreScheduler, rate-monotonic or explicit priorities as the partition says), in file order,
// with times in nanoseconds as ticks (a nominal 1 GHz TSC), and prints each refusal as the
// monitor does: "app 'APP' vcpu 'VCPU' on cpu N: <rt::format_admission_error text>".
// Exit status: 0 the configuration fits, 1 it has errors, 2 usage or I/O problem.
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "config/partition_plan.hpp"
#include "rt/admission.hpp"
#include "rt/core_scheduler.hpp"

namespace {

using namespace vlibos::config;

constexpr int kExitOk = 0;
constexpr int kExitConfigErrors = 1;
constexpr int kExitUsage = 2;
constexpr uint64_t kReservedLow = 16 * MiB;

std::string size_string(uint64_t bytes)
{
    char buffer[32];
    format_size(buffer, sizeof buffer, bytes);
    return buffer;
}

std::string cpus_string(uint64_t mask)
{
    char buffer[200];
    format_cpus(buffer, sizeof buffer, mask);
    return buffer;
}

// "00:03.0, 00:04.0": the PCI functions passed to a Linux partition, as the file writes them.
std::string pci_string(const Partition& p)
{
    std::string text;
    for (size_t i = 0; i < p.pci_count; ++i) {
        if (i != 0)
            text += ", ";
        text += pci_text(p.pci[i]).text;
    }
    return text;
}

std::string range_string(Range r)
{
    char buffer[64];
    std::snprintf(buffer, sizeof buffer, "0x%010llx-0x%010llx", static_cast<unsigned long long>(r.base),
                  static_cast<unsigned long long>(r.end - 1));
    return buffer;
}

void usage(FILE* to)
{
    std::fprintf(to,
                 "usage: vlibos-config-check FILE [--cpus N] [--memory SIZE]\n"
                 "  Parses and plans a vlibos partition configuration for a machine with N CPUs\n"
                 "  (default 4) and SIZE bytes of RAM (default 512M; K, M, G suffixes allowed),\n"
                 "  of which [16 MiB, SIZE) is treated as free.\n"
                 "  Exit status: 0 ok, 1 configuration errors, 2 usage error.\n");
}

void print_diagnostics(const char* file, const char* kind, const Diagnostics& diag)
{
    for (size_t i = 0; i < diag.count; ++i)
        std::printf("%s: %s: %s\n", file, kind, diag.messages[i].c_str());
    if (diag.dropped != 0)
        std::printf("%s: %s: ... and %zu more not shown\n", file, kind, diag.dropped);
}

void print_plan(const Config& config, const Plan* plan)
{
    std::printf("%-16s %-6s %-12s %-10s %s\n", "partition", "kind", "cpus", "memory", plan ? "placed at" : "base");
    for (size_t i = 0; i < config.partition_count; ++i) {
        const Partition& p = config.partitions[i];
        std::string where = plan ? range_string(plan->partitions[i].memory)
                                 : (p.memory.fixed ? range_string({p.memory.base, p.memory.base + p.memory.size})
                                                   : std::string("anywhere"));
        std::printf("%-16s %-6s %-12s %-10s %s\n", p.name, kind_name(p.kind), cpus_string(p.cpus).c_str(),
                    size_string(p.memory.size).c_str(), where.c_str());
        if (p.pci_count != 0)
            std::printf("  pci %s\n", pci_string(p).c_str());
    }
    if (config.shared_count != 0) {
        std::printf("\n%-16s %-19s %-10s %s\n", "shared", "between", "memory", plan ? "placed at" : "base");
        for (size_t i = 0; i < config.shared_count; ++i) {
            const SharedRegion& s = config.shared[i];
            std::string between;
            for (size_t k = 0; k < s.partition_count; ++k) {
                if (k != 0)
                    between += ",";
                between += config.partitions[s.partitions[k]].name;
            }
            std::string where = plan ? range_string(plan->shared[i])
                                     : (s.memory.fixed ? range_string({s.memory.base, s.memory.base + s.memory.size})
                                                       : std::string("anywhere"));
            std::printf("%-16s %-19s %-10s %s\n", s.name, between.c_str(), size_string(s.memory.size).c_str(),
                        where.c_str());
        }
    }
    std::printf("\n%-16s %-6s %-12s %-10s %s\n", "monitor pool", "", "", size_string(config.monitor_memory).c_str(),
                plan ? range_string(plan->monitor_pool).c_str() : "anywhere");
    if (plan == nullptr)
        return;
    std::printf("\ncpu owners:");
    for (unsigned cpu = 0; cpu < plan->cpu_count; ++cpu) {
        uint8_t owner = plan->cpu_owner[cpu];
        std::printf(" %u=%s", cpu, owner == kNoPartition ? "(parked)" : config.partitions[owner].name);
    }
    std::printf("\n");
}

std::string time_string(uint64_t ns)
{
    char buffer[32];
    format_time(buffer, sizeof buffer, ns);
    return buffer;
}

std::string ppm_string(vlibos::rt::Ppm ppm)
{
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%u.%06u", ppm / vlibos::rt::PPM_ONE, ppm % vlibos::rt::PPM_ONE);
    return buffer;
}

// What admission said about one VCPU.
enum class VcpuOutcome : uint8_t { NotTried, Admitted, Refused };

struct Admission {
    std::vector<std::vector<VcpuOutcome>> apps; // [app][vcpu]
    std::map<unsigned, std::unique_ptr<vlibos::rt::CoreScheduler>> cores;
    std::vector<std::string> refusals;  // the monitor's messages
    std::vector<std::string> not_started;
};

const char* outcome_name(VcpuOutcome outcome)
{
    switch (outcome) {
    case VcpuOutcome::Admitted: return "admitted";
    case VcpuOutcome::Refused: return "REFUSED";
    case VcpuOutcome::NotTried: break;
    }
    return "not tried";
}

// Admits every app's VCPUs on its CPU in file order, as the monitor does at boot
// (kernel/core/rt_loader.cpp): a refused VCPU is reported and not added, and the app's later
// VCPUs are still tried; but an app whose first VCPU (the entry thread's) is refused does not
// start, and its other VCPUs are not tried.
void admit_all(const Config& config, Admission& out)
{
    namespace rt = vlibos::rt;
    out.apps.resize(config.app_count);
    for (size_t i = 0; i < config.app_count; ++i) {
        const App& app = config.apps[i];
        int owner = partition_of_cpu(config, app.cpu);
        Scheduling scheduling = owner >= 0 ? config.partitions[owner].scheduling : Scheduling::RateMonotonic;
        auto& core = out.cores[app.cpu];
        if (!core)
            core = std::make_unique<rt::CoreScheduler>(scheduling == Scheduling::Explicit
                                                           ? rt::PriorityPolicy::Explicit
                                                           : rt::PriorityPolicy::RateMonotonic);
        out.apps[i].assign(app.vcpu_count, VcpuOutcome::NotTried);
        for (size_t v = 0; v < app.vcpu_count; ++v) {
            const VcpuSpec& spec = app.vcpus[v];
            // Ticks are nanoseconds: a nominal 1 GHz TSC.
            auto admitted = core->admit(rt::VcpuParams::main(spec.budget_ns, spec.period_ns, spec.priority), 0);
            if (admitted) {
                out.apps[i][v] = VcpuOutcome::Admitted;
                continue;
            }
            out.apps[i][v] = VcpuOutcome::Refused;
            char message[512];
            rt::format_admission_error(message, sizeof message, admitted.error());
            char line[700];
            std::snprintf(line, sizeof line, "app '%s' vcpu '%s' on cpu %u: %s", app.name, spec.name, app.cpu,
                          message);
            out.refusals.push_back(line);
            if (v == 0) {
                out.not_started.push_back(std::string("app '") + app.name +
                                          "' not started: its first VCPU was refused");
                break;
            }
        }
    }
}

void print_apps(const Config& config, const Admission& admission)
{
    namespace rt = vlibos::rt;
    if (config.app_count == 0) {
        std::printf("\nno apps\n");
        return;
    }
    std::printf("\n%-16s %-16s %-4s %-10s %-10s %s\n", "app", "module", "cpu", "memory", "stack", "args");
    for (size_t i = 0; i < config.app_count; ++i) {
        const App& app = config.apps[i];
        std::printf("%-16s %-16s %-4u %-10s %-10s %s\n", app.name, app.module, app.cpu,
                    size_string(app.memory).c_str(), size_string(app.stack).c_str(), app.args[0] ? app.args : "-");
        std::printf("  %-14s %-10s %-10s %-12s %-9s %s\n", "vcpu", "budget C", "period T", "utilisation", "priority",
                    "admission");
        for (size_t v = 0; v < app.vcpu_count; ++v) {
            const VcpuSpec& spec = app.vcpus[v];
            std::string priority = spec.has_priority ? std::to_string(spec.priority) : "-";
            std::printf("  %-14s %-10s %-10s %-12s %-9s %s\n", spec.name, time_string(spec.budget_ns).c_str(),
                        time_string(spec.period_ns).c_str(),
                        ppm_string(rt::utilisation_ppm(spec.budget_ns, spec.period_ns)).c_str(), priority.c_str(),
                        outcome_name(admission.apps[i][v]));
        }
    }
    std::printf("\n");
    for (const auto& [cpu, core] : admission.cores) {
        int owner = partition_of_cpu(config, cpu);
        const char* partition = owner >= 0 ? config.partitions[owner].name : "?";
        size_t n = core->count();
        if (core->policy() == rt::PriorityPolicy::RateMonotonic)
            std::printf("cpu %u (partition %s, rate-monotonic): %zu vcpu%s admitted, utilisation %s, bound %s\n", cpu,
                        partition, n, n == 1 ? "" : "s", ppm_string(core->utilisation()).c_str(),
                        ppm_string(rt::liu_layland_bound_ppm(static_cast<uint32_t>(n))).c_str());
        else
            std::printf("cpu %u (partition %s, explicit priorities): %zu vcpu%s admitted, utilisation %s, every "
                        "response time within its period\n",
                        cpu, partition, n, n == 1 ? "" : "s", ppm_string(core->utilisation()).c_str());
    }
}

} // namespace

int main(int argc, char** argv)
{
    const char* file = nullptr;
    uint64_t cpus = 4;
    uint64_t memory = 512 * MiB;
    for (int i = 1; i < argc; ++i) {
        const char* arg = argv[i];
        bool is_cpus = std::strcmp(arg, "--cpus") == 0;
        bool is_memory = std::strcmp(arg, "--memory") == 0;
        if (std::strcmp(arg, "-h") == 0 || std::strcmp(arg, "--help") == 0) {
            usage(stdout);
            return kExitOk;
        }
        if (is_cpus || is_memory) {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "vlibos-config-check: %s needs a value\n", arg);
                usage(stderr);
                return kExitUsage;
            }
            const char* value = argv[++i];
            auto parsed = is_cpus ? parse_number(value, std::strlen(value)) : parse_size(value, std::strlen(value));
            if (!parsed || (is_cpus && (parsed.value() == 0 || parsed.value() > 4096)) ||
                (is_memory && parsed.value() <= kReservedLow)) {
                std::fprintf(stderr, "vlibos-config-check: bad %s '%s' (%s)\n", arg, value,
                             is_cpus ? "1 to 4096" : "more than 16M, e.g. 512M or 2G");
                return kExitUsage;
            }
            (is_cpus ? cpus : memory) = parsed.value();
            continue;
        }
        if (arg[0] == '-' && arg[1] != '\0') {
            std::fprintf(stderr, "vlibos-config-check: unknown option '%s'\n", arg);
            usage(stderr);
            return kExitUsage;
        }
        if (file != nullptr) {
            std::fprintf(stderr, "vlibos-config-check: only one FILE may be given\n");
            usage(stderr);
            return kExitUsage;
        }
        file = arg;
    }
    if (file == nullptr) {
        usage(stderr);
        return kExitUsage;
    }

    std::ifstream in(file, std::ios::binary);
    if (!in) {
        std::fprintf(stderr, "vlibos-config-check: cannot read '%s'\n", file);
        return kExitUsage;
    }
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());

    static Config config;
    static Diagnostics errors;
    static Diagnostics warnings;
    static Plan result;
    if (!parse(text.data(), text.size(), config, errors)) {
        print_diagnostics(file, "error", errors);
        std::printf("%s: %zu error%s\n", file, errors.total(), errors.total() == 1 ? "" : "s");
        return kExitConfigErrors;
    }

    Machine machine{};
    machine.cpu_count = static_cast<unsigned>(cpus);
    machine.free[0] = Range{kReservedLow, memory};
    machine.free_count = 1;
    std::printf("%s: version %u; machine: %u CPU%s, free RAM %s (%s)\n\n", file, config.version, machine.cpu_count,
                machine.cpu_count == 1 ? "" : "s", range_string(machine.free[0]).c_str(),
                size_string(memory - kReservedLow).c_str());

    bool ok = plan(config, machine, result, errors, warnings);
    print_plan(config, ok ? &result : nullptr);
    Admission admission;
    admit_all(config, admission);
    print_apps(config, admission);
    std::printf("\n");
    print_diagnostics(file, "warning", warnings);
    if (!ok || !admission.refusals.empty()) {
        if (!ok)
            print_diagnostics(file, "error", errors);
        for (const auto& refusal : admission.refusals)
            std::printf("%s: error: %s\n", file, refusal.c_str());
        for (const auto& note : admission.not_started)
            std::printf("%s: note: %s\n", file, note.c_str());
        size_t total = (ok ? 0 : errors.total()) + admission.refusals.size();
        std::printf("%s: %zu error%s\n", file, total, total == 1 ? "" : "s");
        return kExitConfigErrors;
    }
    std::printf("%s: OK\n", file);
    return kExitOk;
}

#include "vmm/runtime/vm_tests.hpp"

#include <string.h>

#include "arch/x86_64/cpu.hpp"
#include "arch/x86_64/tsc.hpp"
#include "boot/cmdline.hpp"
#include "core/boot.hpp"
#include "core/console.hpp"
#include "core/panic.hpp"
#include "core/percpu.hpp"
#include "vmm/runtime/page_source.hpp"
#include "vmm/runtime/vm.hpp"

extern "C" const uint8_t vm_test_guest_start[];
extern "C" const uint8_t vm_test_guest_end[];

namespace vlibos::vmm {

namespace {

// The test guest's world (tests/guests/vm_test_guest.S documents the same numbers).
constexpr uint64_t kGuestRamSize = 2ull << 20;        // GPA [0, 2 MiB): read/write/execute
constexpr uint64_t kReadOnlyGpa = 0x200000;           // one read-only page right after it
constexpr uint64_t kOutsideGpa = 0x40000000;          // never mapped
constexpr uint64_t kLoadGpa = 0x8000;                 // image load address and real-mode entry
constexpr uint8_t kReadOnlyFill = 0xa5;
constexpr uint64_t kSlotSize = 4ull << 20;            // host memory per VM slot
constexpr uint64_t kScenarioBudgetUs = 3000000;
constexpr uint64_t kHeartbeatUs = 20000;
constexpr uint64_t kSuperviseTimeoutUs = 120000000;
constexpr uint64_t kEferLongModeActive = 1ull << 10;
constexpr uint64_t kCr0Paging = 1ull << 31;
constexpr uint32_t kMaxVmCpus = 2;

struct Scenario {
    const char* name;
    uint64_t number;       // handed to the guest in RSI
    StopKind expect;
    uint64_t expect_code;  // GuestExit code, or the faulting GPA for memory stops
    bool expect_long_mode;
};

constexpr Scenario kScenarios[] = {
    {"cpuid", 1, StopKind::GuestExit, 0, true},
    {"hypercall", 2, StopKind::GuestExit, 0, true},
    {"ports", 3, StopKind::GuestExit, 0, true},
    {"readonly", 4, StopKind::ReadOnlyViolation, kReadOnlyGpa, true},
    {"outside", 5, StopKind::OutsideMemory, kOutsideGpa, true},
    {"timer", 6, StopKind::GuestExit, 0, true},
    {"longmode", 7, StopKind::GuestExit, 0, true},
    {"spin", 8, StopKind::GuestExit, 0, true},
    {"triplefault", 9, StopKind::TripleFault, 0, true},
    {"usermode", 10, StopKind::GuestExit, 0, true},
};
constexpr size_t kScenarioCount = sizeof(kScenarios) / sizeof(kScenarios[0]);

uint32_t g_selected = 0;  // bit i: kScenarios[i]
volatile uint32_t g_go = 0;
volatile uint32_t g_done[kMaxCpus] = {};
volatile uint32_t g_passed[kMaxCpus] = {};
volatile uint32_t g_failed[kMaxCpus] = {};
const char* g_backend_name = "none";

// Which VM slot (0, 1) a CPU of the Linux partition runs, or -1.
int vm_slot_of(const Machine& machine, uint32_t cpu)
{
    int slot = 0;
    for (uint32_t i = 0; i < machine.cpu_count && slot < static_cast<int>(kMaxVmCpus); ++i) {
        uint8_t owner = i < machine.plan.cpu_count ? machine.plan.cpu_owner[i] : config::kNoPartition;
        if (owner == config::kNoPartition || machine.config.partitions[owner].kind != config::Kind::Linux)
            continue;
        if (i == cpu)
            return slot;
        ++slot;
    }
    return -1;
}

const config::PlannedPartition* linux_partition(const Machine& machine, mm::OwnerId& owner)
{
    for (size_t i = 0; i < machine.config.partition_count; ++i) {
        if (machine.config.partitions[i].kind == config::Kind::Linux) {
            owner = static_cast<mm::OwnerId>(1 + i);
            return &machine.plan.partitions[i];
        }
    }
    return nullptr;
}

// Fresh memory for each scenario: zeroed RAM, the guest image, the read-only page's pattern.
void load_guest(uint64_t host_base)
{
    auto* ram = reinterpret_cast<uint8_t*>(host_base);
    memset(ram, 0, kGuestRamSize);
    memcpy(ram + kLoadGpa, vm_test_guest_start, static_cast<size_t>(vm_test_guest_end - vm_test_guest_start));
    memset(ram + kGuestRamSize, kReadOnlyFill, mm::PAGE_SIZE);
}

bool check(const Scenario& s, const StopReport& r, const char* vm, uint32_t cpu)
{
    bool kind_ok = r.kind == s.expect;
    bool code_ok = s.expect == StopKind::GuestExit ? r.code == s.expect_code
                   : (s.expect == StopKind::OutsideMemory || s.expect == StopKind::ReadOnlyViolation)
                       ? r.guest_physical == s.expect_code
                       : true;
    bool long_ok = !s.expect_long_mode ||
                   ((r.control.efer & kEferLongModeActive) != 0 && (r.control.cr0 & kCr0Paging) != 0);
    bool ok = kind_ok && code_ok && long_ok;

    if (r.kind != StopKind::GuestExit) {
        console::print("vlibos: vm %s stopped: %s at guest rip %#llx, gpa %#llx; exit %s (raw %#llx, "
                       "qualification %#llx, info %#llx)%s%s\n",
                       vm, stop_kind_name(r.kind), static_cast<unsigned long long>(r.guest_rip),
                       static_cast<unsigned long long>(r.guest_physical), exit_reason_name(r.exit.reason),
                       static_cast<unsigned long long>(r.exit.raw_reason),
                       static_cast<unsigned long long>(r.exit.raw_qualification),
                       static_cast<unsigned long long>(r.exit.raw_info2), r.exit.entry_failure ? ": " : "",
                       r.exit.entry_failure ? r.exit.entry_failure : "");
    }
    if (ok) {
        console::print("vlibos: vmtest cpu %u %s %s: passed (%s, code %#llx, long mode %s)\n", cpu, vm, s.name,
                       stop_kind_name(r.kind), static_cast<unsigned long long>(
                           r.kind == StopKind::GuestExit ? r.code : r.guest_physical),
                       (r.control.efer & kEferLongModeActive) != 0 ? "yes" : "no");
    } else {
        console::print("vlibos: vmtest cpu %u %s %s: FAILED: expected %s (%#llx), got %s (code %#llx, gpa %#llx), "
                       "efer %#llx cr0 %#llx\n",
                       cpu, vm, s.name, stop_kind_name(s.expect), static_cast<unsigned long long>(s.expect_code),
                       stop_kind_name(r.kind), static_cast<unsigned long long>(r.code),
                       static_cast<unsigned long long>(r.guest_physical),
                       static_cast<unsigned long long>(r.control.efer), static_cast<unsigned long long>(r.control.cr0));
    }
    return ok;
}

void print_stats(const char* vm, uint32_t cpu, const ExitStats& stats)
{
    FormatBuffer<400> line;
    for (size_t i = 0; i < ExitStats::kReasons; ++i) {
        if (stats.count[i] != 0)
            line.append(" %s=%llu", exit_reason_name(static_cast<ExitReason>(i)),
                        static_cast<unsigned long long>(stats.count[i]));
    }
    console::print("vlibos: vm %s exits on cpu %u:%s\n", vm, cpu, line.c_str());
    auto h = static_cast<size_t>(ExitReason::Hypercall);
    if (stats.count[h] != 0) {
        console::print("vlibos: vm %s hypercall: %llu calls, round trip min %llu cycles, handling avg %llu cycles "
                       "(tsc %llu kHz)\n",
                       vm, static_cast<unsigned long long>(stats.count[h]),
                       static_cast<unsigned long long>(stats.min_round_trip[h]),
                       static_cast<unsigned long long>(stats.handling_cycles[h] / stats.count[h]),
                       static_cast<unsigned long long>(x86::tsc::frequency() / 1000));
    }
}

} // namespace

bool parse_vm_tests(const char* cmdline_text)
{
    CommandLine cmdline(cmdline_text);
    if (!cmdline.has("vlibos.vmtest"))
        return false;
    char list[128] = {};
    if (!cmdline.get("vlibos.vmtest", list, sizeof(list)))
        panic("vlibos.vmtest= is too long");
    if (strcmp(list, "all") == 0 || list[0] == '\0') {
        g_selected = (1u << kScenarioCount) - 1;
        return true;
    }
    for (char* name = list; *name != '\0';) {
        char* comma = name;
        while (*comma != '\0' && *comma != ',')
            ++comma;
        bool last = *comma == '\0';
        *comma = '\0';
        bool found = false;
        for (size_t i = 0; i < kScenarioCount; ++i) {
            if (strcmp(name, kScenarios[i].name) == 0) {
                g_selected |= 1u << i;
                found = true;
            }
        }
        if (!found)
            panic("unknown VM test scenario '%s' (known: cpuid, hypercall, ports, readonly, outside, timer, "
                  "longmode, spin, triplefault, usermode, all)", name);
        name = last ? comma : comma + 1;
    }
    return true;
}

bool vm_tests_requested() { return g_selected != 0; }

void vm_test_cpu_main(Machine& machine, uint32_t cpu)
{
    int slot = vm_slot_of(machine, cpu);
    if (slot < 0)
        return;
    while (g_go == 0)
        x86::cpu_relax();

    const char* vm = slot == 0 ? "vm-a" : "vm-b";
    uint32_t passed = 0, failed = 0;
    mm::OwnerId owner = 0;
    const config::PlannedPartition* part = linux_partition(machine, owner);
    if (part == nullptr)
        return;  // vm_slot_of() found a linux CPU, so there is a linux partition; never taken
    uint64_t host_base = part->memory.base + static_cast<uint64_t>(slot) * kSlotSize;

    const char* why_not = "";
    Backend* backend = detect_backend(&why_not);
    Vcpu* vcpu = nullptr;
    if (backend == nullptr) {
        console::print("vlibos: vmtest cpu %u: no virtualisation backend: %s\n", cpu, why_not);
        failed = 1;
    } else if (auto enabled = backend->enable_on_this_cpu(monitor_pages()); !enabled) {
        console::print("vlibos: vmtest cpu %u: cannot enable %s: %s\n", cpu, backend->name(), describe(enabled.error()));
        failed = 1;
    } else {
        VmError error = VmError::NotSupported;
        vcpu = backend->create_vcpu(monitor_pages(), error);
        if (vcpu == nullptr) {
            console::print("vlibos: vmtest cpu %u: cannot create a vCPU: %s\n", cpu, describe(error));
            failed = 1;
        }
    }

    if (vcpu != nullptr) {
        g_backend_name = backend->name();
        console::print("vlibos: vmtest cpu %u: %s backend, %s in host memory %#llx-%#llx\n", cpu, backend->name(), vm,
                       static_cast<unsigned long long>(host_base),
                       static_cast<unsigned long long>(host_base + kGuestRamSize + mm::PAGE_SIZE));
        auto owned = [&](uint64_t hpa, uint64_t size) {
            return machine.ownership.owned_entirely_by(mm::PhysRange::from_size(hpa, size), owner);
        };
        GuestMemory memory;
        bool ok = memory.add(GuestRegion{0, host_base, kGuestRamSize, GuestAccess{true, true, true}}, owned) &&
                  memory.add(GuestRegion{kReadOnlyGpa, host_base + kGuestRamSize, mm::PAGE_SIZE,
                                         GuestAccess{true, false, false}},
                             owned);
        if (!ok)
            panic("vmtest: cannot build the guest memory map for %s", vm);

        Vendor vendor = strcmp(backend->name(), "svm") == 0 ? Vendor::Amd : Vendor::Intel;
        Vm machine_vm;
        for (size_t i = 0; i < kScenarioCount; ++i) {
            if ((g_selected & (1u << i)) == 0)
                continue;
            load_guest(host_base);
            VmSpec spec{vm, static_cast<uint16_t>(1 + slot), &memory, EntryState{EntryState::Mode::Real16, kLoadGpa, 0},
                        kScenarios[i].number, kScenarioBudgetUs};
            StopReport report = machine_vm.run(*vcpu, vendor, spec);
            if (check(kScenarios[i], report, vm, cpu))
                ++passed;
            else
                ++failed;
        }
        print_stats(vm, cpu, machine_vm.stats());
    }
    g_passed[cpu] = passed;
    g_failed[cpu] = failed;
    g_done[cpu] = 1;
}

bool supervise_vm_tests(Machine& machine)
{
    uint32_t vm_cpus[kMaxVmCpus] = {};
    uint32_t count = 0;
    for (uint32_t i = 1; i < machine.cpu_count; ++i) {
        if (vm_slot_of(machine, i) >= 0)
            vm_cpus[count++] = i;
    }
    if (count == 0) {
        console::print("vlibos: vmtest: no CPU of a linux partition to run VMs on\n");
        return false;
    }
    console::print("vlibos: vmtest: %u VM cpu(s); cpu 0 keeps a heartbeat meanwhile\n", count);
    g_go = 1;

    uint64_t start = x86::tsc::now();
    uint64_t give_up = start + x86::tsc::from_microseconds(kSuperviseTimeoutUs);
    uint64_t period = x86::tsc::from_microseconds(kHeartbeatUs);
    uint64_t next = start + period, last = start, longest_gap = 0, beats = 0;
    for (;;) {
        bool all_done = true;
        for (uint32_t i = 0; i < count; ++i)
            all_done = all_done && g_done[vm_cpus[i]] != 0;
        if (all_done)
            break;
        uint64_t now = x86::tsc::now();
        if (now >= give_up) {
            console::print("vlibos: vmtest: the VM cpus did not finish in %llu s\n",
                           static_cast<unsigned long long>(kSuperviseTimeoutUs / 1000000));
            return false;
        }
        if (now >= next) {
            ++beats;
            if (now - last > longest_gap)
                longest_gap = now - last;
            last = now;
            next += period;
            if (beats % 25 == 0)
                console::print("vlibos: cpu 0 heartbeat %llu\n", static_cast<unsigned long long>(beats));
        }
        x86::cpu_relax();
    }
    uint32_t passed = 0, failed = 0;
    for (uint32_t i = 0; i < count; ++i) {
        passed += g_passed[vm_cpus[i]];
        failed += g_failed[vm_cpus[i]];
    }
    console::print("vlibos: cpu 0 heartbeat: %llu beats every %llu us while VMs ran, longest gap %llu us\n",
                   static_cast<unsigned long long>(beats), static_cast<unsigned long long>(kHeartbeatUs),
                   static_cast<unsigned long long>(x86::tsc::to_microseconds(longest_gap)));
    console::print("vlibos: vm tests (%s): %u scenarios passed, %u failed\n", g_backend_name, passed, failed);
    return failed == 0 && passed != 0;
}

} // namespace vlibos::vmm

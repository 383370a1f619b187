// kernel_main: the boot CPU's path from Multiboot2 to a partitioned machine.
#include "arch/x86_64/cpu.hpp"
#include "boot/cmdline.hpp"
#include "core/boot.hpp"
#include "core/console.hpp"
#include "core/panic.hpp"
#include "core/percpu.hpp"
#include "core/rt_core.hpp"
#include "vmm/runtime/linux_vm.hpp"
#include "vmm/runtime/vm_tests.hpp"

using InitFunction = void (*)();
extern "C" InitFunction __init_array_start[];
extern "C" InitFunction __init_array_end[];

namespace vlibos {

Machine g_machine;

namespace {

void run_global_constructors()
{
    for (InitFunction* f = __init_array_start; f != __init_array_end; ++f)
        (*f)();
}

// GRUB may put the boot information anywhere below 4 GiB; the early page tables map exactly that.
constexpr uint64_t kEarlyMappedLimit = 1ull << 32;
constexpr size_t kMaxBootInfoBytes = 1u << 20;

} // namespace

extern "C" [[noreturn]] void kernel_main(uint32_t magic, uint64_t info_phys)
{
    // Per-CPU data first: the console and the exception path read it.
    g_cpus[0].index = 0;
    install_percpu(g_cpus[0]);
    console::init();
    console::print("vlibos: monitor starting\n");
    run_global_constructors();

    Machine& machine = g_machine;
    machine.boot_info_phys = info_phys;
    size_t available = info_phys < kEarlyMappedLimit ? static_cast<size_t>(kEarlyMappedLimit - info_phys) : 0;
    if (available > kMaxBootInfoBytes)
        available = kMaxBootInfoBytes;
    auto parsed = mb2::parse(magic, reinterpret_cast<const uint8_t*>(info_phys), available, machine.boot);
    if (!parsed)
        panic("bad Multiboot2 boot information: %s", mb2::describe(parsed.error()));
    console::print("vlibos: boot loader '%s', command line '%s', %zu modules\n", machine.boot.bootloader_name,
                   machine.boot.cmdline, machine.boot.module_count);

    CommandLine cmdline(machine.boot.cmdline);
    g_selftest = parse_selftest(machine.boot.cmdline);
    vmm::parse_vm_tests(machine.boot.cmdline);

    check_cpu_features();
    discover_platform(machine);
    discover_memory(machine);

    char config_name[32] = {};
    if (cmdline.has("vlibos.config") && !cmdline.get("vlibos.config", config_name, sizeof(config_name)))
        panic("vlibos.config= is too long (at most %zu characters)", sizeof(config_name) - 1);
    load_configuration(machine, config_name[0] != '\0' ? config_name : nullptr);
    assign_partitions(machine);

    allocate_cpu_stacks(machine);
    build_kernel_page_tables(machine);
    bring_up_boot_cpu(machine);
    start_application_processors(machine);

    finish_selftest(machine, g_selftest);
    if (vmm::vm_tests_requested()) {
        bool passed = vmm::supervise_vm_tests(machine);
        halt_system(static_cast<int>(passed ? ExitStatus::Ok : ExitStatus::VmTestFailed));
    }
    // The Linux VM counts as an activity before any CPU may end one (the load releases the APs).
    bool linux_vm = vmm::linux_vm_configured(machine);
    if (linux_vm) {
        activities_expected(1);
        vmm::linux_vm_announce();
    }
    if (rt_core::load_applications(machine) == 0 && !linux_vm) {
        console::print("vlibos: no RT application and no Linux kernel to run; powering off\n");
        halt_system(static_cast<int>(ExitStatus::Ok));
    }
    rt_core::run_this_cpu(machine);
}

} // namespace vlibos

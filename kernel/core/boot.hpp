// The boot path, one stage per file. kernel_main (main.cpp) calls them in this order; each
// stage either succeeds or ends in panic() with a message that names the problem.
#pragma once

#include <stdint.h>

#include "acpi/acpi.hpp"
#include "boot/multiboot2.hpp"
#include "config/partition_plan.hpp"
#include "mm/frame_allocator.hpp"
#include "mm/phys_ownership.hpp"
#include "mm/phys_range.hpp"

namespace vlibos {

// What the monitor learned at boot, kept for the lifetime of the system.
struct Machine {
    mb2::BootInfo boot;
    uint64_t boot_info_phys = 0;
    acpi::Platform platform;
    uint32_t cpu_count = 0;         // CPUs the monitor may start: enabled MADT entries
    uint32_t apic_ids[acpi::kMaxCpus] = {};  // logical CPU index -> APIC ID; index 0 = boot CPU
    mm::RangeSet<128> usable_ram;   // RAM the firmware says is usable, page aligned
    mm::RangeSet<128> free_ram;     // usable RAM minus the monitor image, boot data and low memory
    mm::PhysRange image;            // the monitor's own image
    mm::RangeSet<32> monitor_reserved;  // image, boot information, modules (low memory excluded)
    config::Config config;
    char config_name[32] = {};
    config::Plan plan;
    mm::PhysOwnership ownership;
    mm::FrameAllocator frames;
    uint64_t kernel_cr3 = 0;
    // Per-CPU stacks, allocated before the page tables so that the page below each stack can be
    // left unmapped: an overflow then faults (and the #DF's IST stack reports it) instead of
    // silently overwriting whatever lies below.
    static constexpr size_t kStacksPerCpu = 4;  // the kernel stack and the three IST stacks
    uint64_t stack_tops[acpi::kMaxCpus][kStacksPerCpu] = {};
    uint64_t guard_pages[acpi::kMaxCpus * kStacksPerCpu] = {};
    size_t guard_page_count = 0;
    bool has_1gb_pages = false;
};

extern Machine g_machine;

// machine.cpp: CPU features, ACPI, and the CPU list (boot CPU first, then MADT order).
void check_cpu_features();
void discover_platform(Machine& machine);

// boot_memory.cpp: usable RAM from the Multiboot2 map minus what the monitor already uses.
void discover_memory(Machine& machine);

// boot_memory.cpp: the GRUB module whose string is exactly "<kind>:<name>" (e.g.
// "vlibos.app:periodic"), or nullptr.
const mb2::Module* find_boot_module(const Machine& machine, const char* kind, const char* name);

// run_state.cpp: the run ends (status 0) when the last of its activities (RT cores with
// applications, the Linux VM) has ended. Each calls activity_ended() once.
void activities_expected(uint32_t count);
void activity_ended(const char* what);

// partitions.cpp: choose, parse and validate the configuration, then give every range an owner.
void load_configuration(Machine& machine, const char* requested_name);
void assign_partitions(Machine& machine);
const char* partition_name_of_cpu(const Machine& machine, uint32_t cpu, const char** kind);

// kernel_paging.cpp: the monitor's page tables (no writable+executable page anywhere).
void build_kernel_page_tables(Machine& machine);

// cpu_bringup.cpp: per-CPU set-up, timer check, and starting the application processors.
void allocate_cpu_stacks(Machine& machine);  // before build_kernel_page_tables()
void bring_up_boot_cpu(Machine& machine);
void start_application_processors(Machine& machine);

// selftest.cpp: deliberate failures for the integration tests (vlibos.selftest=NAME).
enum class Selftest { None, Fault, StackOverflow, PhantomCpu };
Selftest parse_selftest(const char* cmdline);
uint32_t selftest_fault_cpu(const Machine& machine);
void finish_selftest(Machine& machine, Selftest test);
void run_selftest_on_this_cpu(Selftest test);

extern Selftest g_selftest;

} // namespace vlibos

// Usable RAM: the Multiboot2 memory map, sanitised, minus what is already spoken for before
// any partition exists (low memory, the monitor image, the boot information and modules).
#include "arch/x86_64/smp.hpp"
#include "core/boot.hpp"
#include "core/console.hpp"
#include "core/panic.hpp"

extern "C" char __kernel_start[];
extern "C" char __kernel_end[];

namespace vlibos {

namespace {

// The first MiB holds the real-mode IVT, BIOS data, the EBDA, option ROMs and our AP
// trampoline; none of it is ever given to a partition.
constexpr uint64_t kLowMemoryEnd = 1ull << 20;

// Takes `range` out of the free RAM and records it as the monitor's.
void reserve(Machine& machine, mm::PhysRange range, const char* what)
{
    mm::PhysRange pages = range.grown_to(mm::PAGE_SIZE);
    if (!machine.free_ram.remove(pages) || !machine.monitor_reserved.add(pages))
        panic("too many memory holes while reserving %s", what);
}

} // namespace

void discover_memory(Machine& machine)
{
    mm::FirmwareRegion regions[mb2::kMaxMemoryRegions];
    for (size_t i = 0; i < machine.boot.memory_count; ++i) {
        const mb2::MemoryRegion& r = machine.boot.memory[i];
        regions[i] = {r.base, r.length, r.type == mb2::MemoryType::Usable};
    }
    if (!mm::sanitize_memory_map(regions, machine.boot.memory_count, machine.usable_ram))
        panic("the firmware memory map has more than %zu usable pieces", machine.usable_ram.capacity());
    if (machine.usable_ram.empty())
        panic("the firmware memory map lists no usable RAM");

    machine.free_ram = machine.usable_ram;
    machine.image = {reinterpret_cast<uint64_t>(__kernel_start), reinterpret_cast<uint64_t>(__kernel_end)};
    machine.image = machine.image.grown_to(mm::PAGE_SIZE);
    if (!machine.usable_ram.contains(machine.image))
        panic("the monitor image %#llx-%#llx is not in usable RAM",
              static_cast<unsigned long long>(machine.image.base), static_cast<unsigned long long>(machine.image.end));

    reserve(machine, {0, kLowMemoryEnd}, "low memory");
    reserve(machine, machine.image, "the monitor image");
    reserve(machine, mm::PhysRange::from_size(machine.boot_info_phys, machine.boot.total_size),
            "the boot information");
    for (size_t i = 0; i < machine.boot.module_count; ++i)
        reserve(machine, {machine.boot.modules[i].start, machine.boot.modules[i].end}, "a boot module");

    uint64_t total = machine.usable_ram.total();
    console::print("vlibos: memory: %llu MiB usable in %zu ranges, %llu MiB free for partitions\n",
                   static_cast<unsigned long long>(total >> 20), machine.usable_ram.count(),
                   static_cast<unsigned long long>(machine.free_ram.total() >> 20));
}

const mb2::Module* find_boot_module(const Machine& machine, const char* kind, const char* name)
{
    size_t kind_length = __builtin_strlen(kind);
    for (size_t i = 0; i < machine.boot.module_count; ++i) {
        const char* cmdline = machine.boot.modules[i].cmdline;
        if (cmdline != nullptr && __builtin_strncmp(cmdline, kind, kind_length) == 0 && cmdline[kind_length] == ':' &&
            __builtin_strcmp(cmdline + kind_length + 1, name) == 0)
            return &machine.boot.modules[i];
    }
    return nullptr;
}

} // namespace vlibos

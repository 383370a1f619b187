// The monitor's own page tables. Everything is identity-mapped (virtual == physical), but
// with real permissions: text R-X, read-only data R--, data and stacks RW-, all other RAM RW-,
// device registers RW- uncached. Nothing is writable and executable at once; an audit walks
// every leaf before the switch to prove it. Page 0 stays unmapped so null pointers fault.
#include "arch/x86_64/cpu.hpp"
#include "arch/x86_64/lapic.hpp"
#include "arch/x86_64/smp.hpp"
#include "core/boot.hpp"
#include "core/console.hpp"
#include "core/kernel_tables.hpp"
#include "core/panic.hpp"
#include "mm/page_table.hpp"

extern "C" char __text_start[];
extern "C" char __rodata_start[];
extern "C" char __data_start[];
extern "C" char __kernel_end[];

namespace vlibos {

namespace {

constexpr mm::Permissions kReadExecute{false, true, false};
constexpr mm::Permissions kReadOnly{false, false, false};
constexpr mm::Permissions kReadWrite{true, false, false};

uint64_t addr(const char* symbol) { return reinterpret_cast<uint64_t>(symbol); }

void map_or_panic(mm::PageTable<KernelTableEnv>& table, mm::PhysRange range, mm::Permissions perms,
                  mm::CacheType cache, bool allow_large, const char* what, bool allow_1gb = true)
{
    if (range.empty())
        return;
    auto mapped = table.map(range.base, range.base, range.size(), perms, cache, allow_large, allow_1gb);
    if (!mapped)
        panic("cannot map %s %#llx-%#llx: %s", what, static_cast<unsigned long long>(range.base),
              static_cast<unsigned long long>(range.end), mm::describe(mapped.error()));
}

} // namespace

void build_kernel_page_tables(Machine& machine)
{
    // Copy the AP trampoline while the boot page tables still allow writing anywhere.
    x86::smp::install_trampoline();

    KernelTableEnv env(machine.frames);
    auto root = mm::PageTable<KernelTableEnv>::create_root(env);
    if (!root)
        panic("no memory for the monitor's page tables");
    mm::PageTable<KernelTableEnv> table(env, root.value());

    mm::PhysRange text{addr(__text_start), addr(__rodata_start)};
    mm::PhysRange rodata{addr(__rodata_start), addr(__data_start)};
    mm::PhysRange data{addr(__data_start), mm::align_up(addr(__kernel_end), mm::PAGE_SIZE)};
    map_or_panic(table, text, kReadExecute, mm::CacheType::WriteBack, false, "monitor text");
    map_or_panic(table, rodata, kReadOnly, mm::CacheType::WriteBack, false, "monitor read-only data");
    map_or_panic(table, data, kReadWrite, mm::CacheType::WriteBack, false, "monitor data");

    mm::PhysRange trampoline{x86::smp::kTrampolineBase, x86::smp::kParametersBase};
    mm::PhysRange parameters{x86::smp::kParametersBase, x86::smp::kLowPagesEnd};
    map_or_panic(table, trampoline, kReadExecute, mm::CacheType::WriteBack, false, "AP trampoline");
    map_or_panic(table, parameters, kReadWrite, mm::CacheType::WriteBack, false, "AP parameters");

    // All other usable RAM, read-write and never executable.
    // Stack guard pages stay unmapped too, so each splits a range: room for all of them.
    static mm::RangeSet<128 + sizeof(machine.guard_pages) / sizeof(machine.guard_pages[0])> ram;
    ram.clear();
    bool ok = true;
    for (const mm::PhysRange& r : machine.usable_ram)
        ok = ok && ram.add(r);
    ok = ok && ram.remove({0, mm::PAGE_SIZE}) && ram.remove({text.base, data.end}) &&
         ram.remove({trampoline.base, parameters.end});
    for (size_t i = 0; i < machine.guard_page_count; ++i)
        ok = ok && ram.remove(mm::PhysRange::from_size(machine.guard_pages[i], mm::PAGE_SIZE));
    if (!ok)
        panic("too many memory holes to build the monitor's direct map");
    for (const mm::PhysRange& r : ram)
        map_or_panic(table, r, kReadWrite, mm::CacheType::WriteBack, true, "RAM", machine.has_1gb_pages);

    // Device registers: the local APIC page (xAPIC mode uses it) and the IOAPICs.
    x86::Lapic::select_mode(false);
    mm::PhysRange lapic = mm::PhysRange::from_size(x86::Lapic::mmio_base(), mm::PAGE_SIZE);
    if (!table.is_mapped(lapic.base, lapic.size()))
        map_or_panic(table, lapic, kReadWrite, mm::CacheType::Uncacheable, false, "local APIC");
    for (size_t i = 0; i < machine.platform.ioapic_count; ++i) {
        mm::PhysRange ioapic = mm::PhysRange::from_size(machine.platform.ioapics[i].address, mm::PAGE_SIZE)
                                   .grown_to(mm::PAGE_SIZE);
        if (!table.is_mapped(ioapic.base, ioapic.size()))
            map_or_panic(table, ioapic, kReadWrite, mm::CacheType::Uncacheable, false, "IOAPIC");
    }

    // The audit: no leaf may be writable and executable.
    uint64_t leaves = 0, violations = 0, executable_bytes = 0;
    table.for_each_leaf([&](uint64_t va, uint64_t, uint64_t size, mm::Permissions perms) {
        ++leaves;
        if (perms.execute)
            executable_bytes += size;
        if (mm::writable_and_executable(perms)) {
            ++violations;
            console::print("vlibos: error: page %#llx (%llu bytes) is writable and executable\n",
                           static_cast<unsigned long long>(va), static_cast<unsigned long long>(size));
        }
    });
    if (violations != 0)
        panic("W^X audit failed: %llu writable+executable mappings", static_cast<unsigned long long>(violations));

    // NXE before the switch (the tables use bit 63), WP so the monitor honours read-only pages.
    x86::write_msr(x86::Msr::Efer, x86::read_msr(x86::Msr::Efer) | x86::efer::kNoExecuteEnable);
    x86::write_cr0(x86::read_cr0() | x86::cr0::kWriteProtect);
    x86::write_cr3(table.root());
    machine.kernel_cr3 = table.root();
    console::print("vlibos: paging: %llu leaves, %llu KiB executable, 0 writable+executable (W^X audit passed), "
                   "%zu stack guard pages unmapped\n",
                   static_cast<unsigned long long>(leaves), static_cast<unsigned long long>(executable_bytes >> 10),
                   machine.guard_page_count);
}

} // namespace vlibos

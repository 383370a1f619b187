#include "vmm/runtime/linux_loader.hpp"

#include <string.h>

#include "arch/x86_64/tsc.hpp"
#include "core/boot.hpp"
#include "core/console.hpp"
#include "lib/format.hpp"
#include "vmm/linux/boot_layout.hpp"
#include "vmm/linux/bzimage.hpp"
#include "vmm/linux/entry.hpp"
#include "vmm/linux/low_memory.hpp"
#include "vmm/runtime/linux_pci.hpp"

namespace vlibos::vmm {

using namespace linux_boot;

namespace {

constexpr uint64_t kMiB = 1ull << 20;
// The first 2 MiB of the partition back the guest's first MiB: low memory (RAM below 640 KiB:
// BIOS data, boot data, the MP table) and the read-only "BIOS hole" up to 1 MiB. The rest of the
// partition is the guest's RAM at GPA == HPA.
constexpr uint64_t kLowBacking = 2 * kMiB;
constexpr uint64_t kLowMemory = 640 * 1024;
constexpr uint64_t kFirstMegabyte = kMiB;
constexpr char kDefaultCmdline[] = "earlyprintk=serial,0x2f8,115200 console=ttyS1,115200";

} // namespace

int linux_partition_index(const Machine& machine)
{
    for (size_t i = 0; i < machine.config.partition_count; ++i)
        if (machine.config.partitions[i].kind == config::Kind::Linux)
            return static_cast<int>(i);
    return -1;
}

namespace {

// The shared regions whose `between` lists partition `p`, as the plan placed them.
struct SharedRanges {
    mm::PhysRange range[kMaxReservedRanges];
    size_t index[kMaxReservedRanges]; // into config.shared / plan.shared
    size_t count = 0;
};
static_assert(config::kMaxShared <= kMaxReservedRanges, "every shared region fits the layout's reserved ranges");

SharedRanges shared_with(const Machine& machine, int p)
{
    SharedRanges out;
    for (size_t i = 0; i < machine.config.shared_count && i < machine.plan.shared_count; ++i) {
        const config::SharedRegion& s = machine.config.shared[i];
        for (size_t j = 0; j < s.partition_count; ++j) {
            if (s.partitions[j] != p)
                continue;
            out.range[out.count] = mm::PhysRange{machine.plan.shared[i].base, machine.plan.shared[i].end};
            out.index[out.count] = i;
            ++out.count;
            break;
        }
    }
    return out;
}

const char* module_text(const Machine& machine, const char* name, uint64_t& length)
{
    const mb2::Module* m = find_boot_module(machine, "vlibos.linux", name);
    if (m == nullptr)
        return nullptr;
    length = m->end - m->start;
    return reinterpret_cast<const char*>(m->start);
}

} // namespace

bool load_linux(Machine& machine, LinuxImage& out, const LinuxPci& pci)
{
    int p = linux_partition_index(machine);
    const mm::PhysRange part{machine.plan.partitions[p].memory.base, machine.plan.partitions[p].memory.end};
    mm::OwnerId owner = static_cast<mm::OwnerId>(1 + p);
    if (part.size() < kLowBacking + 64 * kMiB) {
        console::print("vlibos: linux: the partition's %llu MiB are too few (2 MiB for low memory + 64 MiB RAM)\n",
                       static_cast<unsigned long long>(part.size() / kMiB));
        return false;
    }

    uint64_t kernel_size = 0, initrd_size = 0, cmdline_size = 0;
    const uint8_t* kernel = reinterpret_cast<const uint8_t*>(module_text(machine, "kernel", kernel_size));
    const uint8_t* initrd = reinterpret_cast<const uint8_t*>(module_text(machine, "initrd", initrd_size));
    const char* cmdline_module = module_text(machine, "cmdline", cmdline_size);
    char cmdline[1024];
    if (cmdline_module != nullptr) {
        size_t n = cmdline_size < sizeof cmdline - 1 ? static_cast<size_t>(cmdline_size) : sizeof cmdline - 1;
        memcpy(cmdline, cmdline_module, n);
        while (n > 0 && (cmdline[n - 1] == '\n' || cmdline[n - 1] == '\r' || cmdline[n - 1] == '\0'))
            --n;
        cmdline[n] = '\0';
    } else {
        format(cmdline, sizeof cmdline, "%s", kDefaultCmdline);
    }
    // What firmware and the PIT tell Linux on a PC, the monitor says on the command line: the
    // TSC's rate (there is no PIT to measure it against) and that it is stable (the guest's TSC
    // is the host's invariant TSC, never offset or scaled); and that port 0x80 delays are
    // pointless (each would be a VM exit for nothing). Later words win, so these do.
    size_t used = strlen(cmdline);
    // Passed-through PCI functions interrupt through INTx only (linux_pci.hpp).
    size_t wanted = format(cmdline + used, sizeof cmdline - used, " tsc_early_khz=%llu tsc=reliable io_delay=none%s",
                           static_cast<unsigned long long>(x86::tsc::frequency() / 1000),
                           pci.count() != 0 ? " pci=nomsi" : "");
    if (used + wanted >= sizeof cmdline) {
        console::print("vlibos: linux: the command line is too long (at most %zu characters with the monitor's "
                       "additions)\n", sizeof cmdline - 1);
        return false;
    }

    auto bz = parse_bzimage(kernel, static_cast<size_t>(kernel_size));
    if (!bz) {
        char why[200];
        format_bzimage_error(why, sizeof why, bz.error());
        console::print("vlibos: linux: the kernel module is not a usable bzImage: %s\n", why);
        return false;
    }

    mm::PhysRange ram{part.base + kLowBacking, part.end};
    LayoutRequest request;
    request.ram = &ram;
    request.ram_count = 1;
    // Shared regions (RPC): reserved in e820, mapped at GPA == HPA below.
    const SharedRanges shared = shared_with(machine, p);
    request.reserved = shared.range;
    request.reserved_count = shared.count;
    request.low_memory_size = kLowMemory;
    request.initrd_size = initrd != nullptr ? initrd_size : 0;
    request.cmdline_length = strlen(cmdline);
    size_t vcpus = 0;
    for (uint32_t cpu = 0; cpu < machine.plan.cpu_count; ++cpu) {
        if (machine.plan.cpu_owner[cpu] != p)
            continue;
        // The guest sees APIC ids 0..n-1; vCPU 0 starts Linux.
        request.mp.processors[vcpus] = MpProcessor{static_cast<uint8_t>(vcpus), vcpus == 0};
        ++vcpus;
    }
    request.mp.processor_count = vcpus;
    request.mp.ioapic_id = static_cast<uint8_t>(vcpus);
    pci.describe(request.mp);
    auto layout = plan_layout(bz.value(), request);
    if (!layout) {
        char why[200];
        format_layout_error(why, sizeof why, layout.error());
        console::print("vlibos: linux: cannot lay out the kernel: %s\n", why);
        return false;
    }
    const BootLayout& l = layout.value();

    // Low memory and the hole are rebuilt from zero; the kernel and initrd go to their GPAs,
    // which are their host addresses.
    auto* low = reinterpret_cast<uint8_t*>(part.base);
    memset(low, 0, kFirstMegabyte);
    auto written = write_low_memory(low, kLowMemory, kernel, static_cast<size_t>(kernel_size), bz.value(), l, cmdline);
    if (!written) {
        char why[200];
        format_layout_error(why, sizeof why, written.error());
        console::print("vlibos: linux: cannot write the boot data: %s\n", why);
        return false;
    }
    memcpy(reinterpret_cast<void*>(l.kernel_load), kernel + bz.value().kernel_offset,
           static_cast<size_t>(bz.value().kernel_size));
    if (initrd != nullptr)
        memcpy(reinterpret_cast<void*>(l.initrd), initrd, static_cast<size_t>(initrd_size));

    auto owned = [&](uint64_t hpa, uint64_t size) {
        return machine.ownership.owned_entirely_by(mm::PhysRange::from_size(hpa, size), owner);
    };
    bool ok = out.memory.add(GuestRegion{0, part.base, kLowMemory, GuestAccess{true, true, true}}, owned) &&
              out.memory.add(GuestRegion{kLowMemory, part.base + kLowMemory, kFirstMegabyte - kLowMemory,
                                         GuestAccess{true, false, false}},
                             owned) &&
              out.memory.add(GuestRegion{ram.base, ram.base, ram.size(), GuestAccess{true, true, true}}, owned);
    if (!ok) {
        console::print("vlibos: linux: cannot build the guest memory map\n");
        return false;
    }
    // Each shared region at GPA == HPA, read/write, never executable; its frames belong to the
    // region's own owner in the ledger (kernel/core/partitions.cpp), not to the partition.
    for (size_t k = 0; k < shared.count; ++k) {
        const size_t i = shared.index[k];
        const mm::PhysRange r = shared.range[k];
        const auto region_owner = static_cast<mm::OwnerId>(1 + config::kMaxPartitions + i);
        auto shared_owned = [&](uint64_t hpa, uint64_t size) {
            return machine.ownership.owned_entirely_by(mm::PhysRange::from_size(hpa, size), region_owner);
        };
        auto added = out.memory.add(GuestRegion{r.base, r.base, r.size(), GuestAccess{true, true, false}}, shared_owned);
        if (!added) {
            console::print("vlibos: linux: cannot map shared '%s' %#llx-%#llx: %s\n", machine.config.shared[i].name,
                           static_cast<unsigned long long>(r.base), static_cast<unsigned long long>(r.end),
                           describe(added.error()));
            return false;
        }
        console::print("vlibos: linux: shared '%s' %#llx-%#llx (%s) mapped at GPA == HPA, e820 reserved\n",
                       machine.config.shared[i].name, static_cast<unsigned long long>(r.base),
                       static_cast<unsigned long long>(r.end), config::size_text(r.size()).text);
    }
    if (!pci.map_bars(machine, out.memory))
        return false;

    auto plan = plan_entry(l, EntryMode::Protected32);
    if (!plan) {
        console::print("vlibos: linux: the kernel cannot be entered through the 32-bit boot protocol\n");
        return false;
    }
    const EntryPlan& e = plan.value();
    out.entry = EntryState{EntryState::Mode::Protected32, e.rip, e.rsp, e.cs.selector, e.ds.selector, e.gdtr_base,
                           e.gdtr_limit};
    out.rsi = e.rsi;
    out.vcpus = vcpus;
    out.ioapic_id = request.mp.ioapic_id;
    console::print("vlibos: linux: bzImage protocol %u.%02u, %llu KiB kernel at %#llx (init_size %llu KiB), "
                   "initrd %llu KiB at %#llx, %zu vcpu(s), RAM %#llx-%#llx (GPA == HPA), cmdline '%s'\n",
                   bz.value().protocol >> 8, bz.value().protocol & 0xff,
                   static_cast<unsigned long long>(bz.value().kernel_size / 1024),
                   static_cast<unsigned long long>(l.kernel_load),
                   static_cast<unsigned long long>(bz.value().init_size / 1024),
                   static_cast<unsigned long long>(l.initrd_size / 1024), static_cast<unsigned long long>(l.initrd),
                   vcpus, static_cast<unsigned long long>(ram.base), static_cast<unsigned long long>(ram.end), cmdline);
    return true;
}

} // namespace vlibos::vmm

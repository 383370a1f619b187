#include "vmm/runtime/linux_vm.hpp"

#include <string.h>

#include "arch/x86_64/cpu.hpp"
#include "arch/x86_64/tsc.hpp"
#include "core/boot.hpp"
#include "core/console.hpp"
#include "core/percpu.hpp"
#include "lib/format.hpp"
#include "vmm/backend.hpp"
#include "vmm/cpuid_policy.hpp"
#include "vmm/exit_stats.hpp"
#include "vmm/guest_msrs.hpp"
#include "vmm/io_policy.hpp"
#include "vmm/linux/boot_layout.hpp"
#include "vmm/linux/bzimage.hpp"
#include "vmm/linux/entry.hpp"
#include "vmm/linux/low_memory.hpp"
#include "vmm/msr_policy.hpp"
#include "vmm/runtime/exit_helpers.hpp"
#include "vmm/runtime/page_source.hpp"

namespace vlibos::vmm {

namespace {

using namespace linux_boot;

constexpr uint64_t kMiB = 1ull << 20;
// The first 2 MiB of the partition back the guest's first MiB: low memory (RAM below 640 KiB:
// BIOS data, boot data, the MP table) and the read-only "BIOS hole" up to 1 MiB. The rest of the
// partition is the guest's RAM at GPA == HPA.
constexpr uint64_t kLowBacking = 2 * kMiB;
constexpr uint64_t kLowMemory = 640 * 1024;
constexpr uint64_t kFirstMegabyte = kMiB;
constexpr uint16_t kTag = 1;  // VPID/ASID: one VM per CPU
// COM2 belongs to the Linux partition: its console.
constexpr uint16_t kCom2 = 0x2f8;
constexpr uint16_t kCom2Ports = 8;
constexpr uint64_t kRflagsInterruptEnable = 1ull << 9;
constexpr uint64_t kTimeSliceUs = 1000;
constexpr char kDefaultCmdline[] = "earlyprintk=serial,0x2f8,115200 console=ttyS1,115200";

int linux_partition_index(const Machine& machine)
{
    for (size_t i = 0; i < machine.config.partition_count; ++i)
        if (machine.config.partitions[i].kind == config::Kind::Linux)
            return static_cast<int>(i);
    return -1;
}

// Port I/O of the Linux VM: COM2 goes to the hardware; everything else is an empty bus (reads
// all ones, writes ignored and counted) — including the reset and power ports (0xcf9, the
// keyboard controller, ACPI), so Linux cannot reset or power off the machine.
class LinuxPorts final : public IoSink {
public:
    bool handle(const IoExit& io, GuestRegisters& regs)
    {
        if (io.string)
            return false;
        if (io.port >= kCom2 && io.port < kCom2 + kCom2Ports) {
            if (io.in) {
                uint8_t value = x86::inb(io.port);
                regs.rax = (regs.rax & ~uint64_t{0xff}) | value;
            } else {
                x86::outb(io.port, static_cast<uint8_t>(regs.rax));
            }
            ++com2;
            return true;
        }
        return policy.handle(io, regs, *this).ok();
    }
    void debug_line(const char* text, size_t length) override
    {
        console::print("vlibos: linux port 0xe9: %.*s\n", static_cast<int>(length), text);
    }

    IoPolicy policy;
    uint64_t com2 = 0;
};

struct Loaded {
    GuestMemory memory;
    EntryState entry;
    uint64_t rsi = 0;
};

const char* module_text(const Machine& machine, const char* name, uint64_t& length)
{
    const mb2::Module* m = find_boot_module(machine, "vlibos.linux", name);
    if (m == nullptr)
        return nullptr;
    length = m->end - m->start;
    return reinterpret_cast<const char*>(m->start);
}

bool load(Machine& machine, Loaded& out)
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

    auto plan = plan_entry(l, EntryMode::Protected32);
    if (!plan) {
        console::print("vlibos: linux: the kernel cannot be entered through the 32-bit boot protocol\n");
        return false;
    }
    const EntryPlan& e = plan.value();
    out.entry = EntryState{EntryState::Mode::Protected32, e.rip, e.rsp, e.cs.selector, e.ds.selector, e.gdtr_base,
                           e.gdtr_limit};
    out.rsi = e.rsi;
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

void report_stop(const char* why, Vcpu& vcpu, const ExitInfo& exit, const ExitStats& stats, uint64_t started)
{
    Vcpu::ControlState c = vcpu.control_state();
    console::print("vlibos: linux: stopped after %llu ms: %s at guest rip %#llx; exit %s (raw %#llx, qualification "
                   "%#llx, info %#llx); cr0 %#llx cr3 %#llx cr4 %#llx efer %#llx\n",
                   static_cast<unsigned long long>(x86::tsc::to_microseconds(x86::tsc::now() - started) / 1000), why,
                   static_cast<unsigned long long>(vcpu.rip()), exit_reason_name(exit.reason),
                   static_cast<unsigned long long>(exit.raw_reason),
                   static_cast<unsigned long long>(exit.raw_qualification),
                   static_cast<unsigned long long>(exit.raw_info2), static_cast<unsigned long long>(c.cr0),
                   static_cast<unsigned long long>(c.cr3), static_cast<unsigned long long>(c.cr4),
                   static_cast<unsigned long long>(c.efer));
    FormatBuffer<512> line;
    for (size_t r = 0; r < static_cast<size_t>(ExitReason::Count); ++r)
        if (stats.count[r] != 0)
            line.append(" %s=%llu", exit_reason_name(static_cast<ExitReason>(r)),
                        static_cast<unsigned long long>(stats.count[r]));
    console::print("vlibos: linux: exits:%s\n", line.c_str());
}

} // namespace

bool linux_vm_configured(const Machine& machine)
{
    return linux_partition_index(machine) >= 0 && find_boot_module(machine, "vlibos.linux", "kernel") != nullptr;
}

bool runs_linux_boot_vcpu(const Machine& machine, uint32_t cpu)
{
    int p = linux_partition_index(machine);
    if (p < 0 || !linux_vm_configured(machine))
        return false;
    for (uint32_t c = 0; c < machine.plan.cpu_count; ++c)
        if (machine.plan.cpu_owner[c] == p)
            return c == cpu;
    return false;
}

void linux_vm_main(Machine& machine, uint32_t cpu)
{
    static Loaded loaded;
    const char* why_not = "";
    Backend* backend = detect_backend(&why_not);
    Vcpu* vcpu = nullptr;
    VmError error = VmError::NotSupported;
    if (backend == nullptr) {
        console::print("vlibos: linux: no virtualisation backend on cpu %u: %s\n", cpu, why_not);
    } else if (auto enabled = backend->enable_on_this_cpu(monitor_pages()); !enabled) {
        console::print("vlibos: linux: cannot enable %s on cpu %u: %s\n", backend->name(), cpu,
                       describe(enabled.error()));
    } else if ((vcpu = backend->create_vcpu(monitor_pages(), error)) == nullptr) {
        console::print("vlibos: linux: cannot create a vCPU on cpu %u: %s\n", cpu, describe(error));
    }
    if (vcpu == nullptr || !load(machine, loaded)) {
        activity_ended("the Linux VM (not started)");
        return;
    }
    auto prepared = vcpu->prepare(loaded.memory, loaded.entry, kTag);
    if (!prepared) {
        console::print("vlibos: linux: cannot prepare the vCPU: %s\n", describe(prepared.error()));
        activity_ended("the Linux VM (not started)");
        return;
    }
    Vendor vendor = strcmp(backend->name(), "svm") == 0 ? Vendor::Amd : Vendor::Intel;
    console::print("vlibos: linux: starting on cpu %u (%s), 32-bit entry at %#llx\n", cpu, backend->name(),
                   static_cast<unsigned long long>(loaded.entry.rip));

    GuestRegisters regs{};
    regs.rsi = loaded.rsi;
    LinuxPorts ports;
    MsrPolicy msrs;
    GuestMsrs guest_msrs(true);
    ExitStats stats;
    uint64_t started = x86::tsc::now();
    const char* why = nullptr;
    ExitInfo exit;
    while (why == nullptr) {
        vcpu->arm_timer(x86::tsc::from_microseconds(kTimeSliceUs));
        uint64_t entered = x86::tsc::now();
        vcpu->run(regs, exit);
        uint64_t exited = x86::tsc::now();
        bool advance = false;
        switch (exit.reason) {
        case ExitReason::Cpuid:
            emulate_cpuid(regs, vendor);
            advance = true;
            break;
        case ExitReason::IoPort:
            if (!ports.handle(exit.io, regs))
                why = "string port I/O (not emulated)";
            advance = true;
            break;
        case ExitReason::MsrRead:
        case ExitReason::MsrWrite: {
            uint64_t value = 0;
            if (exit.reason == ExitReason::MsrRead && guest_msrs.read(exit.msr.index, value)) {
                regs.rax = value & 0xffffffffu;
                regs.rdx = value >> 32;
                advance = true;
                break;
            }
            if (exit.reason == ExitReason::MsrWrite &&
                guest_msrs.write(exit.msr.index, (regs.rdx << 32) | (regs.rax & 0xffffffffu))) {
                advance = true;
                break;
            }
            MsrVerdict verdict = exit.reason == ExitReason::MsrRead
                                     ? msrs.read(exit.msr.index)
                                     : msrs.write(exit.msr.index, (regs.rdx << 32) | (regs.rax & 0xffffffffu));
            vcpu->inject_exception(verdict.vector, verdict.has_error_code, verdict.error_code);
            break;
        }
        case ExitReason::Hlt:
            advance = true;
            if ((vcpu->rflags() & kRflagsInterruptEnable) == 0)
                why = "HLT with interrupts disabled";
            break;
        case ExitReason::NestedPageFault:
            why = exit.npf.mapped ? "an access its memory map does not allow" : "an access outside its memory";
            break;
        case ExitReason::Hypercall:
            regs.rax = static_cast<uint64_t>(-38);  // ENOSYS: Linux's hypercalls come with the RPC driver
            advance = true;
            break;
        case ExitReason::InterruptWindow:
            vcpu->set_interrupt_window_exit(false);
            break;
        case ExitReason::Timer:
        case ExitReason::Nmi:
            break;
        case ExitReason::ExternalInterrupt:
            take_pending_host_interrupt();
            break;
        case ExitReason::Exception:
            if (!reinject_guarded_exception(*vcpu, exit))
                why = "an intercepted exception";
            break;
        case ExitReason::CacheControl:
            advance = true;  // WBINVD/INVD would touch caches the RT partition shares: skipped
            break;
        case ExitReason::TripleFault:
            why = "triple fault (Linux reset itself or crashed; only its VM stops)";
            break;
        case ExitReason::EntryFailed:
            why = exit.entry_failure != nullptr ? exit.entry_failure : "VM entry failed";
            break;
        default:
            why = "an exit the Linux VM does not handle yet";
            break;
        }
        if (advance && why == nullptr)
            vcpu->set_rip(vcpu->rip() + exit.instruction_length);
        stats.record(exit.reason, exited - entered, x86::tsc::now() - exited);
    }
    vcpu->arm_timer(0);
    report_stop(why, *vcpu, exit, stats, started);
    console::print("vlibos: linux: COM2 accesses %llu, other port writes ignored %llu, MSR accesses refused %llu\n",
                   static_cast<unsigned long long>(ports.com2),
                   static_cast<unsigned long long>(ports.policy.stats().ignored_outs),
                   static_cast<unsigned long long>(msrs.total()));
    activity_ended("the Linux VM");
}

} // namespace vlibos::vmm

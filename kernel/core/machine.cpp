// What machine are we on: the CPU's features and the ACPI description of its CPUs and
// interrupt controllers.
#include <string.h>

#include "arch/x86_64/cpu.hpp"
#include "core/boot.hpp"
#include "core/console.hpp"
#include "core/panic.hpp"
#include "core/percpu.hpp"

namespace vlibos {

namespace {

// ACPI tables are read while the boot page tables still identity-map the first 4 GiB.
class EarlyPhysicalMemory final : public acpi::PhysicalMemory {
public:
    bool read(uint64_t phys, void* out, size_t length) const override
    {
        constexpr uint64_t kLimit = 1ull << 32;
        if (phys == 0 || length > kLimit || phys > kLimit - length)
            return false;
        memcpy(out, reinterpret_cast<const void*>(phys), length);
        return true;
    }
};

void cpu_vendor(char out[13])
{
    x86::CpuidResult r = x86::cpuid(0);
    memcpy(out, &r.ebx, 4);
    memcpy(out + 4, &r.edx, 4);
    memcpy(out + 8, &r.ecx, 4);
    out[12] = '\0';
}

// The boot CPU's APIC ID from CPUID, so no LAPIC access is needed before paging is final:
// leaf 0xB EDX (x2APIC ID) where present, else leaf 1 EBX[31:24] (SDM Vol. 3 §11.4.6, §8.9).
uint32_t boot_cpu_apic_id()
{
    if (x86::cpuid(0).eax >= 0xb) {
        x86::CpuidResult r = x86::cpuid(0xb, 0);
        if (r.ebx != 0)
            return r.edx;
    }
    return x86::cpuid(1).ebx >> 24;
}

} // namespace

void check_cpu_features()
{
    using namespace x86::feature;
    x86::CpuidResult leaf1 = x86::cpuid(1);
    uint32_t max_extended = x86::cpuid(0x80000000).eax;
    x86::CpuidResult ext1 = max_extended >= 0x80000001 ? x86::cpuid(0x80000001) : x86::CpuidResult{};

    char vendor[13];
    cpu_vendor(vendor);
    bool vmx = (leaf1.ecx & kLeaf1EcxVmx) != 0;
    bool svm = (ext1.ecx & kExt1EcxSvm) != 0;
    g_machine.has_1gb_pages = (ext1.edx & kExt1EdxPage1Gb) != 0;
    console::print("vlibos: cpu %s, family %u model %u; vmx %s, svm %s, x2apic %s, tsc-deadline %s, 1g-pages %s\n",
                   vendor, (leaf1.eax >> 8) & 0xf, (leaf1.eax >> 4) & 0xf, vmx ? "yes" : "no", svm ? "yes" : "no",
                   (leaf1.ecx & kLeaf1EcxX2Apic) != 0 ? "yes" : "no",
                   (leaf1.ecx & kLeaf1EcxTscDeadline) != 0 ? "yes" : "no", g_machine.has_1gb_pages ? "yes" : "no");

    // Without these the monitor cannot keep its promises (W^X, timers, SMP).
    if ((ext1.edx & kExt1EdxNx) == 0)
        panic("the CPU has no execute-disable (NX) bit; the monitor needs it to keep pages W^X");
    if ((leaf1.edx & kLeaf1EdxApic) == 0)
        panic("the CPU has no local APIC");
    if ((leaf1.edx & kLeaf1EdxTsc) == 0 || (leaf1.edx & kLeaf1EdxMsr) == 0)
        panic("the CPU has no time-stamp counter or no MSRs");
    if (!vmx && !svm)
        console::print("vlibos: warning: the CPU has neither VMX nor SVM; the Linux VM will not be able to run\n");
}

void discover_platform(Machine& machine)
{
    EarlyPhysicalMemory memory;
    acpi::Platform& platform = machine.platform;
    Status<acpi::Error> parsed = machine.boot.rsdp != nullptr
                                     ? acpi::parse(machine.boot.rsdp, machine.boot.rsdp_length, memory, platform)
                                     : fail(acpi::Error::RsdpNotFound);
    if (!parsed && machine.boot.rsdp == nullptr) {
        // No RSDP from the boot loader: look where BIOS firmware leaves it.
        auto found = acpi::find_rsdp(memory);
        if (!found)
            panic("no ACPI tables: the boot loader gave no RSDP and none was found in the BIOS areas (%s)",
                  acpi::describe(found.error()));
        parsed = acpi::parse_at(found.value(), memory, platform);
    }
    if (!parsed)
        panic("bad ACPI tables: %s", acpi::describe(parsed.error()));

    uint32_t boot_apic = boot_cpu_apic_id();
    uint32_t count = 0;
    bool boot_cpu_listed = false;
    // xAPIC addresses CPUs with 8 bits and 0xff is the broadcast ID (SDM Vol. 3 §11.6.1), so a
    // larger ID can only be reached in x2APIC mode.
    bool x2apic = (x86::cpuid(1).ecx & x86::feature::kLeaf1EcxX2Apic) != 0;
    uint32_t max_apic_id = x2apic ? 0xfffffffeu : 0xfeu;
    machine.apic_ids[count++] = boot_apic;
    for (size_t i = 0; i < platform.cpu_count; ++i) {
        const acpi::Cpu& cpu = platform.cpus[i];
        if (cpu.apic_id == boot_apic) {
            boot_cpu_listed = true;
            continue;
        }
        if (!cpu.enabled)
            continue;
        if (cpu.apic_id > max_apic_id)
            panic("CPU with APIC ID %u cannot be addressed without x2APIC", cpu.apic_id);
        if (count == acpi::kMaxCpus)
            panic("the MADT lists more than %zu CPUs besides the boot CPU's", acpi::kMaxCpus - 1);
        machine.apic_ids[count++] = cpu.apic_id;
    }
    if (!boot_cpu_listed)
        panic("the boot CPU (APIC ID %u) is not listed in the ACPI MADT", boot_apic);
    machine.cpu_count = count;
    g_cpus[0].apic_id = boot_apic;

    console::print("vlibos: acpi oem '%s' rev %u: %u cpus, %zu ioapics, lapic at %#llx, 8259 %s, power-off %s\n",
                   platform.oem_id, platform.rsdp_revision, count, platform.ioapic_count,
                   static_cast<unsigned long long>(platform.lapic_address), platform.pcat_compat ? "present" : "absent",
                   platform.has_s5 && platform.pm1a_control_port != 0 ? "acpi s5" : "unavailable");
    for (uint32_t i = 0; i < count; ++i)
        console::print("vlibos:   cpu %u: apic %u%s\n", i, machine.apic_ids[i], i == 0 ? " (boot cpu)" : "");

    if (platform.has_s5 && platform.pm1a_control_port != 0 && platform.pm1a_control_port <= 0xffff) {
        set_power_off_method(x86::AcpiSleepControl{static_cast<uint16_t>(platform.pm1a_control_port),
                                                   static_cast<uint16_t>(platform.pm1b_control_port <= 0xffff
                                                                             ? platform.pm1b_control_port
                                                                             : 0),
                                                   platform.s5_sleep_type_a, platform.s5_sleep_type_b});
    }
}

} // namespace vlibos

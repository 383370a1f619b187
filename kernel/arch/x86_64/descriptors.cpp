#include "arch/x86_64/descriptors.hpp"

#include "arch/x86_64/interrupts.hpp"

namespace vlibos::x86 {

namespace {

// Code/data descriptor bits (SDM Vol. 3 §3.4.5): present, DPL 0, S=1, plus type and L/G.
// The accessed bit is preset so segment loads never need to write to the GDT.
constexpr uint64_t kCode64 = 0x00af9b000000ffffull;
constexpr uint64_t kData = 0x00cf93000000ffffull;
constexpr uint64_t kUserData = 0x00cff3000000ffffull;    // as kData with DPL 3
constexpr uint64_t kUserCode64 = 0x00affb000000ffffull;  // as kCode64 with DPL 3
constexpr uint64_t kTssAvailable = 0x9;        // type: 64-bit TSS (available)
constexpr uint64_t kPresent = 1ull << 47;

struct [[gnu::packed]] DescriptorPointer {
    uint16_t limit;
    uint64_t base;
};

// Interrupt gate (SDM Vol. 3 §6.14.1, Figure 6-8).
struct IdtGate {
    uint16_t offset_low;
    uint16_t selector;
    uint8_t ist;
    uint8_t type_attributes;
    uint16_t offset_mid;
    uint32_t offset_high;
    uint32_t reserved;
};
static_assert(sizeof(IdtGate) == 16);

constexpr uint8_t kInterruptGatePresent = 0x8e;  // P=1, DPL=0, type 0xE (interrupt gate: IF cleared)

alignas(16) IdtGate g_idt[256];

} // namespace

void load_gdt_and_tss(Gdt& gdt, Tss& tss)
{
    uint64_t base = reinterpret_cast<uint64_t>(&tss);
    uint64_t limit = sizeof(Tss) - 1;
    gdt.entries[0] = 0;
    gdt.entries[1] = kCode64;
    gdt.entries[2] = kData;
    gdt.entries[3] = kUserData;
    gdt.entries[4] = kUserCode64;
    gdt.entries[5] = (limit & 0xffff) | ((base & 0xffffff) << 16) | (kTssAvailable << 40) | kPresent |
                     (((limit >> 16) & 0xf) << 48) | (((base >> 24) & 0xff) << 56);
    gdt.entries[6] = base >> 32;
    tss.io_map_base = sizeof(Tss);  // no I/O permission bitmap

    DescriptorPointer pointer{sizeof(gdt.entries) - 1, reinterpret_cast<uint64_t>(&gdt.entries)};
    asm volatile("lgdt %0\n\t"
                 "mov %1, %%ds\n\t"
                 "mov %1, %%es\n\t"
                 "mov %1, %%ss\n\t"
                 "pushq %2\n\t"
                 "leaq 1f(%%rip), %%rax\n\t"
                 "pushq %%rax\n\t"
                 "lretq\n"
                 "1:\n\t"
                 "ltr %w3"
                 :
                 : "m"(pointer), "r"(static_cast<uint64_t>(selector::kKernelData)),
                   "i"(selector::kKernelCode), "r"(selector::kTss)
                 : "rax", "memory");
}

void build_idt()
{
    for (unsigned vector = 0; vector < 256; ++vector) {
        uint64_t handler = interrupt_stub_table[vector];
        uint8_t stack = 0;
        if (vector == kVectorDoubleFault)
            stack = ist::kDoubleFault;
        else if (vector == kVectorNmi)
            stack = ist::kNmi;
        else if (vector == kVectorMachineCheck)
            stack = ist::kMachineCheck;
        g_idt[vector] = IdtGate{static_cast<uint16_t>(handler & 0xffff), selector::kKernelCode, stack,
                                kInterruptGatePresent, static_cast<uint16_t>((handler >> 16) & 0xffff),
                                static_cast<uint32_t>(handler >> 32), 0};
    }
}

void load_idt()
{
    DescriptorPointer pointer{sizeof(g_idt) - 1, reinterpret_cast<uint64_t>(&g_idt[0])};
    asm volatile("lidt %0" ::"m"(pointer) : "memory");
}

} // namespace vlibos::x86

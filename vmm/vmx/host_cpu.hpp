// Host CPU state the VMCS host-state area needs (SDM Vol. 3 §25.5) that arch/x86_64/cpu.hpp has
// no accessor for yet: CR4 writes, segment selectors, GDTR/IDTR and the TR base. Each
// instruction's inline asm appears once; these can move to cpu.hpp when another user appears.
#pragma once

#include <stdint.h>

namespace vlibos::vmm::vmx::host {

inline void write_cr4(uint64_t value) { asm volatile("mov %0, %%cr4" ::"r"(value) : "memory"); }

struct Selectors {
    uint16_t cs, ss, ds, es, fs, gs, tr;
};

inline Selectors read_selectors()
{
    Selectors s;
    asm volatile("mov %%cs, %0" : "=r"(s.cs));
    asm volatile("mov %%ss, %0" : "=r"(s.ss));
    asm volatile("mov %%ds, %0" : "=r"(s.ds));
    asm volatile("mov %%es, %0" : "=r"(s.es));
    asm volatile("mov %%fs, %0" : "=r"(s.fs));
    asm volatile("mov %%gs, %0" : "=r"(s.gs));
    asm volatile("str %0" : "=r"(s.tr));
    return s;
}

struct [[gnu::packed]] DescriptorTableRegister {
    uint16_t limit;
    uint64_t base;
};

inline uint64_t gdtr_base()
{
    DescriptorTableRegister r{};
    asm volatile("sgdt %0" : "=m"(r));
    return r.base;
}

inline uint64_t idtr_base()
{
    DescriptorTableRegister r{};
    asm volatile("sidt %0" : "=m"(r));
    return r.base;
}

// The base of the TSS that `selector` names in the GDT at `gdt_base`: a 16-byte system
// descriptor in long mode (SDM Vol. 3 §8.2.3, Figure 8-4).
inline uint64_t tss_base(uint64_t gdt_base, uint16_t selector)
{
    constexpr uint16_t kIndexMask = 0xfff8;  // drop RPL and TI
    const volatile uint64_t* descriptor = reinterpret_cast<const volatile uint64_t*>(gdt_base + (selector & kIndexMask));
    uint64_t low = descriptor[0];
    uint64_t high = descriptor[1];
    uint64_t base_15_0 = (low >> 16) & 0xffff;
    uint64_t base_23_16 = (low >> 32) & 0xff;
    uint64_t base_31_24 = (low >> 56) & 0xff;
    uint64_t base_63_32 = high & 0xffffffff;
    return base_15_0 | (base_23_16 << 16) | (base_31_24 << 24) | (base_63_32 << 32);
}

} // namespace vlibos::vmm::vmx::host

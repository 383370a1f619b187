// Segment descriptors, the task-state segment and the interrupt descriptor table
// (SDM Vol. 3 §3.4.5, §7.7, §6.14). Long mode ignores most of segmentation, but a GDT with
// a TSS is still needed for interrupt stack tables (IST), which let #DF, NMI and #MC run on
// known-good stacks even when the current stack is the reason for the fault.
#pragma once

#include <stdint.h>

namespace vlibos::x86 {

// The order is fixed by SYSCALL/SYSRET (SDM Vol. 3 §5.8.8): SYSCALL loads CS from STAR[47:32]
// and SS = CS + 8; SYSRET to 64-bit mode loads SS = STAR[63:48] + 8 and CS = STAR[63:48] + 16.
namespace selector {
constexpr uint16_t kKernelCode = 0x08;
constexpr uint16_t kKernelData = 0x10;
constexpr uint16_t kUserData = 0x18 | 3;
constexpr uint16_t kUserCode = 0x20 | 3;
constexpr uint16_t kTss = 0x28;
constexpr uint16_t kSysretBase = 0x10;  // STAR[63:48]
} // namespace selector

// Which IST slot (1-based, SDM §6.14.5) each critical exception uses.
namespace ist {
constexpr uint8_t kDoubleFault = 1;
constexpr uint8_t kNmi = 2;
constexpr uint8_t kMachineCheck = 3;
constexpr unsigned kCount = 3;
} // namespace ist

struct [[gnu::packed]] Tss {
    uint32_t reserved0;
    uint64_t rsp[3];
    uint64_t reserved1;
    uint64_t ist[7];
    uint64_t reserved2;
    uint16_t reserved3;
    uint16_t io_map_base;
};
static_assert(sizeof(Tss) == 104, "64-bit TSS is 104 bytes (SDM Figure 7-11)");

// Per-CPU GDT: null, kernel code, kernel data, user data, user code, and a 16-byte TSS descriptor.
struct alignas(16) Gdt {
    uint64_t entries[7];
};

// Builds the GDT around `tss` and loads GDTR, the segment registers and TR on this CPU.
void load_gdt_and_tss(Gdt& gdt, Tss& tss);

// Fills the shared IDT once (boot CPU), then each CPU loads it.
void build_idt();
void load_idt();

} // namespace vlibos::x86

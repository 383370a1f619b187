// Typed accessors for x86-64 instructions the monitor uses. Each instruction's inline asm
// appears here once; every other file calls these names.
#pragma once

#include <stdint.h>

namespace vlibos::x86 {

// Model-specific registers used by the monitor (Intel SDM Vol. 4, Table 2-2; AMD APM Vol. 2 App. A).
enum class Msr : uint32_t {
    ApicBase = 0x1b,            // IA32_APIC_BASE (SDM Vol. 3 §11.4.4)
    TscDeadline = 0x6e0,        // IA32_TSC_DEADLINE (SDM Vol. 3 §11.5.4.1)
    X2ApicBase = 0x800,         // first x2APIC register MSR (SDM Vol. 3 §11.12.1)
    Efer = 0xc0000080,          // IA32_EFER (SDM Vol. 3 §2.2.1)
    Star = 0xc0000081,          // IA32_STAR: SYSCALL/SYSRET selectors (SDM Vol. 3 §5.8.8)
    Lstar = 0xc0000082,         // IA32_LSTAR: 64-bit SYSCALL entry point
    Fmask = 0xc0000084,         // IA32_FMASK: RFLAGS bits SYSCALL clears
    FsBase = 0xc0000100,
    GsBase = 0xc0000101,
    KernelGsBase = 0xc0000102,
};

namespace efer {
constexpr uint64_t kSyscallEnable = 1ull << 0;    // SCE: SYSCALL/SYSRET available in 64-bit mode
constexpr uint64_t kLongModeEnable = 1ull << 8;   // LME
constexpr uint64_t kNoExecuteEnable = 1ull << 11; // NXE: makes PTE bit 63 mean execute-disable
} // namespace efer

namespace cr0 {
constexpr uint64_t kMonitorCoprocessor = 1ull << 1;  // MP: WAIT/FWAIT honour TS
constexpr uint64_t kEmulation = 1ull << 2;           // EM: x87/SSE instructions fault (#NM/#UD)
constexpr uint64_t kTaskSwitched = 1ull << 3;        // TS: the next x87/SSE instruction faults (#NM)
constexpr uint64_t kNumericError = 1ull << 5;        // NE: native x87 error reporting (#MF)
constexpr uint64_t kWriteProtect = 1ull << 16;    // WP: supervisor writes honour read-only pages
} // namespace cr0

// CR4 bits (SDM Vol. 3 §2.5).
namespace cr4 {
constexpr uint64_t kOsFxsr = 1ull << 9;             // OSFXSR: FXSAVE/FXRSTOR and SSE enabled
constexpr uint64_t kOsXmmExceptions = 1ull << 10;   // OSXMMEXCPT: unmasked SIMD errors raise #XM
constexpr uint64_t kSmep = 1ull << 20;              // SMEP: the kernel never executes user pages
constexpr uint64_t kSmap = 1ull << 21;              // SMAP: the kernel reads user pages only inside stac/clac
} // namespace cr4

// RFLAGS bits (SDM Vol. 1 §3.4.3).
namespace rflags {
constexpr uint64_t kTrap = 1ull << 8;
constexpr uint64_t kInterruptEnable = 1ull << 9;
constexpr uint64_t kDirection = 1ull << 10;
constexpr uint64_t kIoPrivilege = 3ull << 12;
constexpr uint64_t kNestedTask = 1ull << 14;
constexpr uint64_t kAlignmentCheck = 1ull << 18;
constexpr uint64_t kReserved1 = 1ull << 1;  // always 1
} // namespace rflags

struct CpuidResult {
    uint32_t eax, ebx, ecx, edx;
};

inline CpuidResult cpuid(uint32_t leaf, uint32_t subleaf = 0)
{
    CpuidResult r;
    asm volatile("cpuid" : "=a"(r.eax), "=b"(r.ebx), "=c"(r.ecx), "=d"(r.edx) : "a"(leaf), "c"(subleaf));
    return r;
}

inline uint64_t read_msr(Msr msr)
{
    uint32_t lo, hi;
    asm volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(static_cast<uint32_t>(msr)));
    return (static_cast<uint64_t>(hi) << 32) | lo;
}

inline void write_msr(Msr msr, uint64_t value)
{
    asm volatile("wrmsr" ::"c"(static_cast<uint32_t>(msr)), "a"(static_cast<uint32_t>(value)),
                 "d"(static_cast<uint32_t>(value >> 32))
                 : "memory");
}

// x2APIC registers are MSRs 0x800 + (xAPIC offset >> 4).
inline uint64_t read_msr_raw(uint32_t index)
{
    uint32_t lo, hi;
    asm volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(index));
    return (static_cast<uint64_t>(hi) << 32) | lo;
}

inline void write_msr_raw(uint32_t index, uint64_t value)
{
    asm volatile("wrmsr" ::"c"(index), "a"(static_cast<uint32_t>(value)), "d"(static_cast<uint32_t>(value >> 32))
                 : "memory");
}

inline uint64_t rdtsc()
{
    uint32_t lo, hi;
    asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return (static_cast<uint64_t>(hi) << 32) | lo;
}

inline uint64_t read_cr0() { uint64_t v; asm volatile("mov %%cr0, %0" : "=r"(v)); return v; }
inline uint64_t read_cr2() { uint64_t v; asm volatile("mov %%cr2, %0" : "=r"(v)); return v; }
inline uint64_t read_cr3() { uint64_t v; asm volatile("mov %%cr3, %0" : "=r"(v)); return v; }
inline uint64_t read_cr4() { uint64_t v; asm volatile("mov %%cr4, %0" : "=r"(v)); return v; }
inline void write_cr0(uint64_t v) { asm volatile("mov %0, %%cr0" ::"r"(v) : "memory"); }
inline void write_cr3(uint64_t v) { asm volatile("mov %0, %%cr3" ::"r"(v) : "memory"); }
inline void write_cr4(uint64_t v) { asm volatile("mov %0, %%cr4" ::"r"(v) : "memory"); }

// SMAP's window for deliberate user-memory access (SDM Vol. 3 §4.6.1); only with CR4.SMAP set.
inline void allow_user_access() { asm volatile("stac" ::: "memory"); }
inline void forbid_user_access() { asm volatile("clac" ::: "memory"); }

inline void outb(uint16_t port, uint8_t value) { asm volatile("outb %0, %1" ::"a"(value), "Nd"(port)); }
inline void outw(uint16_t port, uint16_t value) { asm volatile("outw %0, %1" ::"a"(value), "Nd"(port)); }
inline void outl(uint16_t port, uint32_t value) { asm volatile("outl %0, %1" ::"a"(value), "Nd"(port)); }
inline uint8_t inb(uint16_t port) { uint8_t v; asm volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
inline uint16_t inw(uint16_t port) { uint16_t v; asm volatile("inw %1, %0" : "=a"(v) : "Nd"(port)); return v; }
inline uint32_t inl(uint16_t port) { uint32_t v; asm volatile("inl %1, %0" : "=a"(v) : "Nd"(port)); return v; }

// RFLAGS.IF (SDM Vol. 1 §3.4.3.3): whether this CPU takes maskable interrupts now.
inline bool interrupts_enabled()
{
    uint64_t flags;
    asm volatile("pushfq; popq %0" : "=r"(flags)::"memory");
    return (flags >> 9) & 1u;
}

inline void cpu_relax() { asm volatile("pause" ::: "memory"); }
inline void disable_interrupts() { asm volatile("cli" ::: "memory"); }
inline void enable_interrupts() { asm volatile("sti" ::: "memory"); }
// STI's one-instruction shadow makes "sti; hlt" atomic: no interrupt is lost between them.
inline void enable_interrupts_and_halt() { asm volatile("sti; hlt" ::: "memory"); }
inline void halt() { asm volatile("hlt" ::: "memory"); }
inline void memory_fence() { asm volatile("mfence" ::: "memory"); }

[[noreturn]] inline void halt_forever()
{
    for (;;)
        asm volatile("cli; hlt" ::: "memory");
}

// CPUID feature bits the monitor checks (SDM Vol. 2A, CPUID; AMD APM Vol. 3 App. E).
namespace feature {
constexpr uint32_t kLeaf1EcxX2Apic = 1u << 21;
constexpr uint32_t kLeaf1EcxTscDeadline = 1u << 24;
constexpr uint32_t kLeaf1EcxHypervisor = 1u << 31;
constexpr uint32_t kLeaf1EdxTsc = 1u << 4;
constexpr uint32_t kLeaf1EdxMsr = 1u << 5;
constexpr uint32_t kLeaf1EdxApic = 1u << 9;
constexpr uint32_t kLeaf1EcxVmx = 1u << 5;
constexpr uint32_t kExt1EcxSvm = 1u << 2;
constexpr uint32_t kExt1EdxNx = 1u << 20;
constexpr uint32_t kExt1EdxPage1Gb = 1u << 26;
constexpr uint32_t kExt1EdxLongMode = 1u << 29;
constexpr uint32_t kExt7EdxInvariantTsc = 1u << 8;  // leaf 0x80000007
} // namespace feature

} // namespace vlibos::x86

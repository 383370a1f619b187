#include "arch/x86_64/user_mode.hpp"

#include "arch/x86_64/cpu.hpp"
#include "arch/x86_64/descriptors.hpp"
#include "core/percpu.hpp"

extern "C" void syscall_entry();
extern "C" [[noreturn]] void interrupt_return_to(const vlibos::x86::InterruptFrame* frame);

namespace vlibos::x86 {

void enable_user_mode_on_this_cpu(uint64_t kernel_stack_top)
{
    PerCpu* cpu = this_cpu();
    cpu->syscall_stack_top = kernel_stack_top;
    cpu->tss.rsp[0] = kernel_stack_top;
    write_msr(Msr::Star, (static_cast<uint64_t>(selector::kSysretBase) << 48) |
                             (static_cast<uint64_t>(selector::kKernelCode) << 32));
    write_msr(Msr::Lstar, reinterpret_cast<uint64_t>(&syscall_entry));
    // Entered with interrupts off, direction forward, no single-step, no alignment checks
    // (AC also opens SMAP's window, so ring 3 must not choose it for the kernel).
    write_msr(Msr::Fmask, rflags::kInterruptEnable | rflags::kDirection | rflags::kTrap | rflags::kAlignmentCheck |
                              rflags::kNestedTask | rflags::kIoPrivilege);
    write_msr(Msr::Efer, read_msr(Msr::Efer) | efer::kSyscallEnable);
    // The user GS base starts at 0; the kernel's stays in GS while the kernel runs and moves to
    // KERNEL_GS_BASE (SWAPGS) while ring 3 does.
    write_msr(Msr::KernelGsBase, 0);
}

InterruptFrame user_entry_frame(uint64_t rip, uint64_t rsp)
{
    InterruptFrame f{};
    f.rip = rip;
    f.cs = selector::kUserCode;
    f.rflags = rflags::kReserved1 | rflags::kInterruptEnable;
    f.rsp = rsp;
    f.ss = selector::kUserData;
    return f;
}

void enter_frame(const InterruptFrame& frame)
{
    interrupt_return_to(&frame);
}

} // namespace vlibos::x86

// Ring 3: the SYSCALL entry and the way into user mode. Entries from user mode (SYSCALL,
// interrupts, exceptions) all build an InterruptFrame at the top of the CPU's kernel stack and
// leave through the same IRETQ path, which swaps GS back (SDM Vol. 3 §5.8.8 for SYSCALL; AMD
// APM Vol. 2 §6.1.1). IRETQ rather than SYSRET on the way out: it restores every register from
// the frame and has no non-canonical-RCX trap in ring 0.
#pragma once

#include <stdint.h>

#include "arch/x86_64/interrupts.hpp"

namespace vlibos::x86 {

// The pseudo-vector syscall_entry.S puts in the frame, so dispatch tells a system call apart.
constexpr uint64_t kVectorSyscall = 0x100;

// STAR, LSTAR, FMASK and EFER.SCE on this CPU; `kernel_stack_top` is where entries from ring 3
// land (also TSS.RSP0).
void enable_user_mode_on_this_cpu(uint64_t kernel_stack_top);

// A frame that starts ring-3 code at `rip` with `rsp`, interrupts on, all other registers zero.
InterruptFrame user_entry_frame(uint64_t rip, uint64_t rsp);

// Loads `frame` (anywhere; it is copied onto the kernel stack) and returns to it with IRETQ.
// Interrupts must be off.
[[noreturn]] void enter_frame(const InterruptFrame& frame);

} // namespace vlibos::x86

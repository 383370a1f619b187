/* Raw system calls: the `syscall` instruction with the register convention of
 * <vlibos/syscall_abi.h> (RAX number; RDI, RSI, RDX, R10, R8 arguments; RAX result, negative =
 * -VLIBOS_E*; RCX and R11 clobbered). Nothing is checked here: these pass any value to the kernel,
 * which is what a test of the kernel's checks needs. Applications normally use <vlibos/rt.h>. */
#ifndef VLIBOS_SYSCALL_H
#define VLIBOS_SYSCALL_H

#include <stdint.h>

#include <vlibos/syscall_abi.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The "memory" clobber: the kernel reads and writes the caller's memory (text, stats). */
static inline int64_t vlibos_syscall5(uint64_t number, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3,
                                      uint64_t a4)
{
    register uint64_t r10 __asm__("r10") = a3;
    register uint64_t r8 __asm__("r8") = a4;
    int64_t result;
    __asm__ volatile("syscall"
                     : "=a"(result)
                     : "a"(number), "D"(a0), "S"(a1), "d"(a2), "r"(r10), "r"(r8)
                     : "rcx", "r11", "memory");
    return result;
}

static inline int64_t vlibos_syscall0(uint64_t number) { return vlibos_syscall5(number, 0, 0, 0, 0, 0); }
static inline int64_t vlibos_syscall1(uint64_t number, uint64_t a0) { return vlibos_syscall5(number, a0, 0, 0, 0, 0); }
static inline int64_t vlibos_syscall2(uint64_t number, uint64_t a0, uint64_t a1)
{
    return vlibos_syscall5(number, a0, a1, 0, 0, 0);
}

#ifdef __cplusplus
}
#endif

#endif

/* Ring-3 entry points of an RT application: the first thread's _start, the entry of threads the
 * runtime starts, and the last instructions of a thread whose stack goes back to the pool.
 *
 * The kernel starts a thread with RSP 16-byte aligned at the top of its stack and no return
 * address pushed. The System V ABI (x86-64 psABI §3.2.2) wants RSP + 8 aligned at a function's
 * first instruction, i.e. RSP aligned right before a `call`; the stubs re-align anyway, so a
 * kernel that did push something would not break them. RBP = 0 ends the frame chain for
 * debuggers and backtraces. */

/* VLIBOS_SYS_THREAD_EXIT of <vlibos/syscall_abi.h> (a C enum, so not includable here);
 * runtime.cpp has a static_assert that keeps the two equal. */
#define SYS_THREAD_EXIT 5

    .section .text.vlibos_start, "ax", @progbits

/* _start(RDI = args, RSI = length of args): the ELF entry point, the application's first thread. */
    .globl _start
    .type _start, @function
_start:
    xor %ebp, %ebp
    and $-16, %rsp
    call vlibos_rt_start        /* (args, length), never returns */
    ud2
    .size _start, . - _start

/* vlibos_rt_thread_entry(RDI = start record): entry of threads made by vlibos_thread_spawn*. */
    .globl vlibos_rt_thread_entry
    .type vlibos_rt_thread_entry, @function
vlibos_rt_thread_entry:
    xor %ebp, %ebp
    and $-16, %rsp
    call vlibos_rt_thread_main  /* (record), never returns */
    ud2
    .size vlibos_rt_thread_entry, . - vlibos_rt_thread_entry

/* vlibos_rt_release_and_exit(RDI = busy flag of the caller's stack slot): frees the slot and ends
 * the thread. Once the flag is 0 another thread may be started on this very stack, so nothing
 * after the store may touch memory: the thread leaves on registers alone. An x86 store is a
 * release store (SDM Vol. 3 §8.2.2), so the slot's earlier use is visible before it is free. */
    .globl vlibos_rt_release_and_exit
    .type vlibos_rt_release_and_exit, @function
vlibos_rt_release_and_exit:
    movb $0, (%rdi)
    mov $SYS_THREAD_EXIT, %eax
    syscall
    ud2                         /* THREAD_EXIT does not return */
    .size vlibos_rt_release_and_exit, . - vlibos_rt_release_and_exit

    .section .note.GNU-stack, "", @progbits

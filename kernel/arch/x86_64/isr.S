/*
 * Entries from ring 3 (CS.RPL = 3 in the CPU's frame) swap GS to the kernel's per-CPU base on
 * the way in and back on the way out (SWAPGS, SDM Vol. 3 §5.8.8); kernel entries leave GS alone.
 *
 * One entry stub per vector. Vectors where the CPU pushes an error code (SDM Vol. 3 §6.13,
 * Table 6-1: 8, 10-14, 17, 21, 29, 30) push only the vector; the others push a zero first so
 * every frame has the same shape (struct InterruptFrame in interrupts.hpp).
 */

    .text
    .balign 16
interrupt_common:
    testb $3, 24(%rsp)              /* CS, above vector and error code */
    jz 1f
    swapgs
1:
    .global interrupt_common_swapped
interrupt_common_swapped:           /* syscall_entry.S joins here, GS already swapped */
    push %rax
    push %rbx
    push %rcx
    push %rdx
    push %rsi
    push %rdi
    push %rbp
    push %r8
    push %r9
    push %r10
    push %r11
    push %r12
    push %r13
    push %r14
    push %r15
    cld
    mov %rsp, %rdi
    call interrupt_dispatch
interrupt_exit:                     /* RSP = an InterruptFrame, possibly rewritten by dispatch */
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %r11
    pop %r10
    pop %r9
    pop %r8
    pop %rbp
    pop %rdi
    pop %rsi
    pop %rdx
    pop %rcx
    pop %rbx
    pop %rax
    add $16, %rsp                   /* vector and error code */
    testb $3, 8(%rsp)               /* returning to ring 3? */
    jz 2f
    swapgs
2:
    iretq

/* void interrupt_return_to(const InterruptFrame* frame): leaves through the exit path above with
 * `frame` (interrupts off). */
    .global interrupt_return_to
interrupt_return_to:
    mov %rdi, %rsp
    jmp interrupt_exit

.macro stub vector
    .balign 16
interrupt_stub_\vector:
    .if (\vector == 8) || (\vector >= 10 && \vector <= 14) || (\vector == 17) || (\vector == 21) || (\vector == 29) || (\vector == 30)
    .else
    pushq $0
    .endif
    pushq $\vector
    jmp interrupt_common
.endm

.altmacro
.set vector, 0
.rept 256
    stub %vector
    .set vector, vector + 1
.endr

.macro stub_address vector
    .quad interrupt_stub_\vector
.endm

    .section .rodata
    .balign 8
    .global interrupt_stub_table
interrupt_stub_table:
.set vector, 0
.rept 256
    stub_address %vector
    .set vector, vector + 1
.endr

/*
 * One guest run under AMD SVM (APM Vol. 2 §15.5 and §15.17), from CLGI to STGI:
 *
 *   CLGI                 no interrupt, NMI or SMI reaches the host while its state is half-swapped
 *   STI                  with V_INTR_MASKING the host's IF (saved by VMRUN) decides whether a
 *                        physical interrupt exits the guest: it must be 1 so the timer works
 *   VMSAVE host          FS/GS (the monitor's per-CPU data is in GS base), TR, LDTR, KernelGsBase,
 *                        STAR/LSTAR/CSTAR/SFMASK, SYSENTER_*: VMRUN/#VMEXIT do not swap these
 *   VMLOAD guest         the same state of the guest
 *   guest GPRs           all but RAX and RSP, which VMRUN loads from the VMCB
 *   VMRUN                ... #VMEXIT: the host's RIP, RSP, RAX (= the guest VMCB), CR0/3/4, EFER,
 *                        GDTR, IDTR and ES/CS/SS/DS are back; GIF is still 0
 *   guest GPRs saved, VMSAVE guest, VMLOAD host
 *   STGI                 an interrupt or NMI that arrived meanwhile is taken here, by the monitor's
 *                        own IDT handlers (the timer handler sets this_cpu()->timer_fired)
 *   POPF                 the caller's IF
 *
 * VMRUN, VMLOAD, VMSAVE, CLGI and STGI are issued nowhere else.
 *
 * extern "C" void svm_run_guest(vmm::GuestRegisters* regs, uint64_t guest_vmcb_pa, uint64_t host_state_pa);
 */

/* Offsets in struct vmm::GuestRegisters (checked by static_assert in svm_backend.cpp). */
#define REGS_RBX 8
#define REGS_RCX 16
#define REGS_RDX 24
#define REGS_RSI 32
#define REGS_RDI 40
#define REGS_RBP 48
#define REGS_R8 56
#define REGS_R9 64
#define REGS_R10 72
#define REGS_R11 80
#define REGS_R12 88
#define REGS_R13 96
#define REGS_R14 104
#define REGS_R15 112

/* Our frame, from RSP up, while the guest runs. */
#define FRAME_GUEST_VMCB 0
#define FRAME_HOST_STATE 8
#define FRAME_REGS 16
#define FRAME_SIZE 24

    .text
    .code64
    .balign 16
    .globl svm_run_guest
    .type svm_run_guest, @function
svm_run_guest:
    push %rbp
    push %rbx
    push %r12
    push %r13
    push %r14
    push %r15
    pushfq
    push %rdi
    push %rdx
    push %rsi

    clgi
    sti
    mov %rdx, %rax
    vmsave %rax
    mov FRAME_GUEST_VMCB(%rsp), %rax
    vmload %rax

    mov REGS_RBX(%rdi), %rbx
    mov REGS_RCX(%rdi), %rcx
    mov REGS_RDX(%rdi), %rdx
    mov REGS_RSI(%rdi), %rsi
    mov REGS_RBP(%rdi), %rbp
    mov REGS_R8(%rdi), %r8
    mov REGS_R9(%rdi), %r9
    mov REGS_R10(%rdi), %r10
    mov REGS_R11(%rdi), %r11
    mov REGS_R12(%rdi), %r12
    mov REGS_R13(%rdi), %r13
    mov REGS_R14(%rdi), %r14
    mov REGS_R15(%rdi), %r15
    mov REGS_RDI(%rdi), %rdi

    vmrun %rax

    /* #VMEXIT. RAX is the guest VMCB again; the frame is intact. */
    push %rdi
    mov (8 + FRAME_REGS)(%rsp), %rdi
    mov %rbx, REGS_RBX(%rdi)
    mov %rcx, REGS_RCX(%rdi)
    mov %rdx, REGS_RDX(%rdi)
    mov %rsi, REGS_RSI(%rdi)
    mov %rbp, REGS_RBP(%rdi)
    mov %r8, REGS_R8(%rdi)
    mov %r9, REGS_R9(%rdi)
    mov %r10, REGS_R10(%rdi)
    mov %r11, REGS_R11(%rdi)
    mov %r12, REGS_R12(%rdi)
    mov %r13, REGS_R13(%rdi)
    mov %r14, REGS_R14(%rdi)
    mov %r15, REGS_R15(%rdi)
    pop %rax
    mov %rax, REGS_RDI(%rdi)

    mov FRAME_GUEST_VMCB(%rsp), %rax
    vmsave %rax
    mov FRAME_HOST_STATE(%rsp), %rax
    vmload %rax
    stgi
    nop                         /* pending host interrupts are delivered by now */

    add $FRAME_SIZE, %rsp
    popfq
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %rbx
    pop %rbp
    ret
    .size svm_run_guest, . - svm_run_guest

    .section .note.GNU-stack, "", @progbits

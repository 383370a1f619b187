// VM entry and exit for the VMX backend (SDM Vol. 3 §27 VM entries, §28 VM exits).
//
// uint64_t vmx_enter(GuestRegisters* regs, uint64_t resume, uint64_t* host_rsp_cache)
//   Saves the host's callee-saved registers and RFLAGS, loads the guest's general registers and
//   CR2 from `regs`, and executes VMLAUNCH (resume == 0) or VMRESUME. Returns
//     0  after a VM exit (also a VM-entry failure with exit reason bit 31: the VMCS says which),
//        with the guest's registers and CR2 stored back into `regs`;
//     1  VMfailInvalid (CF = 1): no current VMCS;
//     2  VMfailValid (ZF = 1): the VM-instruction error field says why.
//   The VMCS's host RSP must equal the stack pointer at the VMLAUNCH; it is written (through
//   vmx_write_host_rsp) only when it differs from *host_rsp_cache. Host RIP is vmx_exit_point.
//
// A VM exit loads RIP, RSP, CR0/3/4, segments, GDTR/IDTR base, EFER and the SYSENTER MSRs from
// the host-state area, and clears RFLAGS except bit 1 (§28.5.3): everything else is restored here.

// Offsets into vmm::GuestRegisters (checked by static_assert in vmx_backend.cpp).
.set GR_RAX, 0
.set GR_RBX, 8
.set GR_RCX, 16
.set GR_RDX, 24
.set GR_RSI, 32
.set GR_RDI, 40
.set GR_RBP, 48
.set GR_R8, 56
.set GR_R9, 64
.set GR_R10, 72
.set GR_R11, 80
.set GR_R12, 88
.set GR_R13, 96
.set GR_R14, 104
.set GR_R15, 112
.set GR_CR2, 120

.set RESULT_EXIT, 0
.set RESULT_FAIL_INVALID, 1
.set RESULT_FAIL_VALID, 2

    .text
    .globl vmx_enter
    .type vmx_enter, @function
vmx_enter:
    pushfq
    // Interrupts stay off from here to the exit: a host interrupt between loading CR2 and the
    // VMLAUNCH could change CR2, and one that arrives while the guest runs exits anyway
    // ("external-interrupt exiting") and is taken after the popfq below.
    cli
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    pushq %rsi              // 8(%rsp): resume flag (also keeps the stack 16-byte aligned for the call)
    pushq %rdi              // 0(%rsp): regs, found again at the exit through host RSP
    movq %rsi, %rbx         // the resume flag survives the call in a callee-saved register

    cmpq %rsp, (%rdx)
    je 1f
    movq %rsp, (%rdx)
    movq %rsp, %rdi
    call vmx_write_host_rsp
    movq (%rsp), %rdi
1:
    movq GR_CR2(%rdi), %rax
    movq %rax, %cr2
    testq %rbx, %rbx        // ZF = 1: first entry, VMLAUNCH. MOVs below keep the flags.
    movq GR_RAX(%rdi), %rax
    movq GR_RBX(%rdi), %rbx
    movq GR_RCX(%rdi), %rcx
    movq GR_RDX(%rdi), %rdx
    movq GR_RSI(%rdi), %rsi
    movq GR_RBP(%rdi), %rbp
    movq GR_R8(%rdi), %r8
    movq GR_R9(%rdi), %r9
    movq GR_R10(%rdi), %r10
    movq GR_R11(%rdi), %r11
    movq GR_R12(%rdi), %r12
    movq GR_R13(%rdi), %r13
    movq GR_R14(%rdi), %r14
    movq GR_R15(%rdi), %r15
    movq GR_RDI(%rdi), %rdi
    jz 2f
    vmresume
    jmp 3f
2:
    vmlaunch
3:
    // Only a VMfail gets here; CF or ZF tells which. MOV and CMOV keep the flags.
    movl $RESULT_FAIL_VALID, %eax
    movl $RESULT_FAIL_INVALID, %ecx
    cmovcl %ecx, %eax
    jmp .Lreturn

    .globl vmx_exit_point
    .type vmx_exit_point, @function
vmx_exit_point:
    pushq %rdi              // guest RDI; 8(%rsp) is now regs
    movq 8(%rsp), %rdi
    movq %rax, GR_RAX(%rdi)
    movq %rbx, GR_RBX(%rdi)
    movq %rcx, GR_RCX(%rdi)
    movq %rdx, GR_RDX(%rdi)
    movq %rsi, GR_RSI(%rdi)
    movq %rbp, GR_RBP(%rdi)
    movq %r8, GR_R8(%rdi)
    movq %r9, GR_R9(%rdi)
    movq %r10, GR_R10(%rdi)
    movq %r11, GR_R11(%rdi)
    movq %r12, GR_R12(%rdi)
    movq %r13, GR_R13(%rdi)
    movq %r14, GR_R14(%rdi)
    movq %r15, GR_R15(%rdi)
    popq %rax
    movq %rax, GR_RDI(%rdi)
    movq %cr2, %rax
    movq %rax, GR_CR2(%rdi)
    movl $RESULT_EXIT, %eax
.Lreturn:
    addq $16, %rsp          // regs and the resume flag
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    popfq
    ret
    .size vmx_enter, . - vmx_enter

    .section .note.GNU-stack, "", @progbits

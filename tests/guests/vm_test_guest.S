// vm_test_guest: the guest of the vlibos.vmtest harness. One flat binary for both backends.
//
// Entry: loaded at GPA 0x8000 and entered in 16-bit real mode at CS:IP = 0000:8000 with
// ESI = scenario number. The guest goes real mode -> 32-bit protected mode -> long mode on its
// own (own GDT, page tables, IDT; EFER.LME through WRMSR, which the backends pass through).
//
// Guest-physical memory (what the monitor maps):
//   [0, 0x200000)          RAM, read/write/execute
//   [0x200000, 0x201000)   read-only page, filled with 0xA5 by the monitor
//   anything else          unmapped (an access stops the VM)
//
// Layout inside the RAM (this guest's choice):
//   0x1000         PML4
//   0x2000         PDPT (4 entries)
//   0x3000-0x6fff  4 page directories: 0-4 GiB identity-mapped with 2 MiB pages, RW, user
//                  (U/S set at every level, so ring-3 code can run the image and use its data)
//   0x7000-0x7fff  IDT, 256 16-byte gates
//   0x8000-        this image (text, GDT, data); must end below 0x10000 (real-mode addressing)
//   0x1f0000       top of the stack (grows down)
//   0x1f0000-0x1f0067  usermode: the TSS
//   0x1f1000-0x1f7fff  usermode: ring-0 stack (TSS RSP0 = 0x1f8000, grows down)
//   0x1f8000-0x1fffff  usermode: ring-3 stack (top 0x200000, grows down)
//
// Hypercalls: the instruction comes from CPUID 0x40000001 EBX (1 = VMCALL, 2 = VMMCALL);
// RAX = number, RDI, RSI, RDX, R10 = arguments, RAX = result (docs/hypercalls.md).
//
// Scenarios (ESI) and the Exit codes they end with (0 = passed):
//   1 cpuid      CPUID 0x40000000/1, 1, 0x80000001 as vlibos promises; fails 0x11-0x1a
//   2 hypercall  Version, unknown call, ConsoleWrite and its errors, TimerOneShot errors;
//                prints "hello from the guest"; fails 0x21-0x29
//   3 ports      "port io ok\n" to port 0xE9; IN byte/word/dword read all ones; fails 0x31-0x34
//   4 readonly   reads 0xA5 from the RO page (fails 0x41, 0x42), then writes to GPA 0x200000:
//                the monitor stops the VM; Exit(1) if the write went through
//   5 outside    reads GPA 0x40000000: the monitor stops the VM; Exit(1) if it went through
//   6 timer      TimerOneShot(1000 us, vector 0x30), STI, HLT until the handler ran once
//                (fails 0x61 if the call is refused, Exit(2) after 1e8 loops without it)
//   7 longmode   Exit(0) from 64-bit code (the monitor checks EFER.LMA and CR0.PG)
//   8 spin       1000 Version hypercalls (fails 0x81 on a wrong answer), then Exit(0)
//   9 triplefault  INT3 with an empty IDT: the monitor stops the VM; Exit(1) if it went on
//  10 usermode   IRETQ to ring 3, which makes a Version hypercall (the monitor must answer
//                -EPERM) and then INT 0x80 (DPL-3 gate) back to ring 0; fails 0xA1 (result not
//                -EPERM), 0xA2 (the gate's handler did not see CS RPL 3)
//   other        Exit(0xff)
// Any exception or interrupt other than the timer's (and usermode's 0x80) ends in
// Exit(0x100 + vector).

// ---- Memory layout -------------------------------------------------------------------------
.set LOAD_ADDRESS,      0x8000
.set PML4,              0x1000
.set PDPT,              0x2000
.set PD0,               0x3000      // PD0..PD3: 0x3000-0x6fff
.set PD_COUNT,          4
.set IDT_BASE,          0x7000
.set IDT_ENTRIES,       256
.set IDT_END,           IDT_BASE + IDT_ENTRIES * 16
.set STACK_TOP,         0x1f0000
.set TSS_BASE,          0x1f0000    // usermode only, like the two stacks below
.set RING0_STACK_TOP,   0x1f8000    // TSS RSP0: [0x1f1000, 0x1f8000)
.set USER_STACK_TOP,    0x200000    // ring 3: [0x1f8000, 0x200000)
.set RO_PAGE,           0x200000    // read-only, 0xA5
.set RO_PAGE_LAST,      0x200fff
.set RO_FILL,           0xa5
.set OUTSIDE_GPA,       0x40000000  // never mapped

// ---- Scenarios -----------------------------------------------------------------------------
.set SCENARIO_CPUID,     1
.set SCENARIO_HYPERCALL, 2
.set SCENARIO_PORTS,     3
.set SCENARIO_READONLY,  4
.set SCENARIO_OUTSIDE,   5
.set SCENARIO_TIMER,     6
.set SCENARIO_LONGMODE,  7
.set SCENARIO_SPIN,      8
.set SCENARIO_TRIPLEFAULT, 9
.set SCENARIO_USERMODE,  10

// ---- Exit codes ----------------------------------------------------------------------------
.set EXIT_OK,                 0
.set EXIT_CONTINUED,          1       // readonly/outside: the access did not stop the VM
.set EXIT_TIMER_NEVER_FIRED,  2
.set EXIT_UNKNOWN_SCENARIO,   0xff
.set EXIT_VECTOR_BASE,        0x100   // + vector of an unexpected exception or interrupt
.set EXIT_USER_NOT_EPERM,     0xa1    // usermode: the ring-3 hypercall was not refused
.set EXIT_USER_NOT_RING3,     0xa2    // usermode: the INT 0x80 frame's CS RPL is not 3

// ---- Hypercall ABI -------------------------------------------------------------------------
.set HC_VERSION,        0
.set HC_CONSOLE_WRITE,  1
.set HC_EXIT,           2
.set HC_TIMER_ONE_SHOT, 3
.set HC_UNKNOWN,        99
.set HC_ABI_VERSION,    1
.set HC_INSN_VMCALL,    1
.set HC_INSN_VMMCALL,   2
.set ENOSYS,            38
.set EINVAL,            22
.set EFAULT,            14
.set EPERM,             1
.set CPUID_HV_SIGNATURE, 0x40000000
.set CPUID_HV_INTERFACE, 0x40000001
.set CPUID_HV_UNUSED,    0x40000002
.set HV_SIG_EBX,        0x62696c76  // "vlib"
.set HV_SIG_ECX,        0x6c76736f  // "osvl"
.set HV_SIG_EDX,        0x736f6269  // "ibos"
.set TIMER_VECTOR,      0x30
.set TIMER_MICROSECONDS, 1000
.set TIMER_GIVE_UP_LOOPS, 100000000
.set SPIN_CALLS,        1000
.set DEBUG_PORT,        0xe9
.set USER_VECTOR,       0x80        // usermode: ring 3 -> ring 0

// ---- Architecture (Intel SDM Vol. 3A 2.5, 4.5; AMD APM Vol. 2) -----------------------------
.set CR0_PE,            1 << 0
.set CR0_NE,            1 << 5
.set CR0_NW,            1 << 29
.set CR0_CD,            1 << 30
.set CR0_PG,            1 << 31
.set CR4_PAE,           1 << 5
.set MSR_EFER,          0xc0000080
.set EFER_LME,          1 << 8
.set PTE_PRESENT,       1 << 0
.set PTE_WRITABLE,      1 << 1
.set PTE_USER,          1 << 2
.set PTE_LARGE,         1 << 7
.set LARGE_PAGE_SHIFT,  21
.set GATE_INTERRUPT,    0x8e00      // present, DPL 0, 64-bit interrupt gate, IST 0
.set GATE_INTERRUPT_USER, 0xee00    // the same with DPL 3: INT n from ring 3 may use it
.set TSS_SIZE,          104         // 64-bit TSS, no I/O bitmap
.set TSS_RSP0,          4           // offset of RSP0
.set TSS_IOMAP,         102         // offset of the I/O map base
.set TSS_ACCESS,        0x89        // present, DPL 0, available 64-bit TSS
.set RFLAGS_FIXED,      1 << 1      // reserved, always 1 (IF = 0)
.set RPL_MASK,          3
.set RPL_USER,          3
.set SEL_CODE32,        0x08
.set SEL_DATA,          0x10
.set SEL_CODE64,        0x18
.set SEL_USER_CODE64,   0x28 | RPL_USER
.set SEL_USER_DATA,     0x20 | RPL_USER
.set SEL_TSS,           0x30
.set CPUID1_ECX_VMX,        1 << 5
.set CPUID1_ECX_HYPERVISOR, 1 << 31
.set CPUID_EXT_ECX_SVM,     1 << 2

// =============================================================================================
    .section .text.entry, "ax"
    .code16
    .globl _start
_start:
    cli
    cld
    xorw %ax, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movl %esi, scenario             // the only register input; keep it before anything clobbers it
    lgdtl gdt_descriptor
    movl %cr0, %eax
    andl $~(CR0_CD | CR0_NW), %eax  // caches on (a reset CPU starts with CD and NW set)
    orl $(CR0_PE | CR0_NE), %eax
    movl %eax, %cr0
    ljmpl $SEL_CODE32, $protected_mode

    .code32
protected_mode:
    movw $SEL_DATA, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %fs
    movw %ax, %gs
    movw %ax, %ss
    movl $STACK_TOP, %esp

    // Page tables and IDT start from zero (the monitor zeroes RAM, but do not depend on it).
    movl $PML4, %edi
    xorl %eax, %eax
    movl $((IDT_END - PML4) / 4), %ecx
    rep stosl

    movl $(PDPT | PTE_PRESENT | PTE_WRITABLE | PTE_USER), PML4
    xorl %ecx, %ecx
1:  movl %ecx, %eax                 // PDPT[i] -> PD i
    shll $12, %eax
    addl $(PD0 | PTE_PRESENT | PTE_WRITABLE | PTE_USER), %eax
    movl %eax, PDPT(, %ecx, 8)
    incl %ecx
    cmpl $PD_COUNT, %ecx
    jb 1b
    xorl %ecx, %ecx
2:  movl %ecx, %eax                 // PD entry j (of 2048) -> 2 MiB page j
    shll $LARGE_PAGE_SHIFT, %eax
    orl $(PTE_PRESENT | PTE_WRITABLE | PTE_USER | PTE_LARGE), %eax
    movl %eax, PD0(, %ecx, 8)
    incl %ecx
    cmpl $(PD_COUNT * 512), %ecx
    jb 2b

    movl %cr4, %eax
    orl $CR4_PAE, %eax
    movl %eax, %cr4
    movl $PML4, %eax
    movl %eax, %cr3
    // Read-modify-write: on AMD the guest's EFER also holds SVME, which must stay set.
    movl $MSR_EFER, %ecx
    rdmsr
    orl $EFER_LME, %eax
    wrmsr
    movl %cr0, %eax
    orl $CR0_PG, %eax               // with LME and PAE: long mode (IA-32e) is active
    movl %eax, %cr0
    ljmp $SEL_CODE64, $long_mode

    .code64
long_mode:
    movw $SEL_DATA, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %fs
    movw %ax, %gs
    movw %ax, %ss
    movq $STACK_TOP, %rsp

    movl $CPUID_HV_INTERFACE, %eax
    xorl %ecx, %ecx
    cpuid
    movl %ebx, hypercall_insn(%rip)

    call setup_idt

    movl scenario(%rip), %eax
    cmpl $SCENARIO_CPUID, %eax
    je scenario_cpuid
    cmpl $SCENARIO_HYPERCALL, %eax
    je scenario_hypercall
    cmpl $SCENARIO_PORTS, %eax
    je scenario_ports
    cmpl $SCENARIO_READONLY, %eax
    je scenario_readonly
    cmpl $SCENARIO_OUTSIDE, %eax
    je scenario_outside
    cmpl $SCENARIO_TIMER, %eax
    je scenario_timer
    cmpl $SCENARIO_LONGMODE, %eax
    je scenario_longmode
    cmpl $SCENARIO_SPIN, %eax
    je scenario_spin
    cmpl $SCENARIO_TRIPLEFAULT, %eax
    je scenario_triplefault
    cmpl $SCENARIO_USERMODE, %eax
    je scenario_usermode
    movl $EXIT_UNKNOWN_SCENARIO, %edi
    jmp exit_vm

// ---- Helpers --------------------------------------------------------------------------------

// hypercall: RAX = number, RDI, RSI, RDX, R10 = arguments; returns RAX. Both encodings are
// spelled out so any assembler takes them.
hypercall:
    cmpl $HC_INSN_VMMCALL, hypercall_insn(%rip)
    je 1f
    .byte 0x0f, 0x01, 0xc1          // VMCALL
    ret
1:  .byte 0x0f, 0x01, 0xd9          // VMMCALL
    ret

// exit_vm: Exit(RDI). Never returns; if the monitor did resume us, halt with interrupts off.
exit_vm:
    movl $HC_EXIT, %eax
    call hypercall
1:  cli
    hlt
    jmp 1b

// fail: Exit(EDI) -- jumped to with the failed check's code.
fail:
    jmp exit_vm

// console_write: ConsoleWrite(RDI = gpa, RSI = length) -> RAX.
console_write:
    movl $HC_CONSOLE_WRITE, %eax
    jmp hypercall

// set_gate: IDT gate ECX -> handler RAX (ring-0 64-bit code), type and DPL DX. Clobbers RAX, RDI.
set_gate:
    movl %ecx, %edi
    shll $4, %edi
    addl $IDT_BASE, %edi
    movw %ax, 0(%rdi)               // offset 15:0
    movw $SEL_CODE64, 2(%rdi)
    movw %dx, 4(%rdi)
    shrq $16, %rax
    movw %ax, 6(%rdi)               // offset 31:16
    shrq $16, %rax
    movl %eax, 8(%rdi)              // offset 63:32
    movl $0, 12(%rdi)
    ret

// setup_idt: every vector -> its stub in vector_stubs (Exit(0x100 + vector)), except the
// timer's vector -> timer_handler.
setup_idt:
    leaq vector_stubs(%rip), %rsi
    xorl %ecx, %ecx
1:  movq %rsi, %rax
    cmpl $TIMER_VECTOR, %ecx
    jne 2f
    leaq timer_handler(%rip), %rax
2:  movl $GATE_INTERRUPT, %edx
    call set_gate
    addq $16, %rsi
    incl %ecx
    cmpl $IDT_ENTRIES, %ecx
    jb 1b
    lidt idt_descriptor(%rip)
    ret

// The timer's interrupt: count it. The monitor injects a plain event, so there is no EOI.
timer_handler:
    incl timer_count(%rip)
    iretq

unexpected_vector:
    jmp exit_vm

// One 16-byte stub per vector: stub N sits at vector_stubs + 16 * N.
    .balign 16
vector_stubs:
    .set vector, 0
    .rept IDT_ENTRIES
    .balign 16
    movl $(EXIT_VECTOR_BASE + vector), %edi
    jmp unexpected_vector
    .set vector, vector + 1
    .endr

// ---- Scenario 1: cpuid ----------------------------------------------------------------------
scenario_cpuid:
    movl $CPUID_HV_SIGNATURE, %eax
    xorl %ecx, %ecx
    cpuid
    movl $0x11, %edi
    cmpl $CPUID_HV_INTERFACE, %eax  // max hypervisor leaf
    jne fail
    movl $0x12, %edi
    cmpl $HV_SIG_EBX, %ebx
    jne fail
    movl $0x13, %edi
    cmpl $HV_SIG_ECX, %ecx
    jne fail
    movl $0x14, %edi
    cmpl $HV_SIG_EDX, %edx
    jne fail

    movl $CPUID_HV_INTERFACE, %eax
    xorl %ecx, %ecx
    cpuid
    movl $0x15, %edi
    cmpl $HC_ABI_VERSION, %eax
    jne fail
    movl $0x16, %edi
    cmpl $HC_INSN_VMCALL, %ebx
    je 1f
    cmpl $HC_INSN_VMMCALL, %ebx
    jne fail
1:
    movl $1, %eax
    xorl %ecx, %ecx
    cpuid
    movl $0x17, %edi
    testl $CPUID1_ECX_HYPERVISOR, %ecx
    jz fail
    movl $0x18, %edi
    testl $CPUID1_ECX_VMX, %ecx
    jnz fail

    movl $0x80000001, %eax
    xorl %ecx, %ecx
    cpuid
    movl $0x19, %edi
    testl $CPUID_EXT_ECX_SVM, %ecx
    jnz fail

    movl $CPUID_HV_UNUSED, %eax
    xorl %ecx, %ecx
    cpuid
    movl $0x1a, %edi
    orl %ebx, %eax
    orl %ecx, %eax
    orl %edx, %eax
    jnz fail

    movl $EXIT_OK, %edi
    jmp exit_vm

// ---- Scenario 2: hypercall ------------------------------------------------------------------
scenario_hypercall:
    movl $HC_VERSION, %eax
    call hypercall
    movl $0x21, %edi
    cmpq $HC_ABI_VERSION, %rax
    jne fail

    movl $HC_UNKNOWN, %eax
    call hypercall
    movl $0x22, %edi
    cmpq $-ENOSYS, %rax
    jne fail

    leaq hello(%rip), %rdi
    movl $(hello_end - hello), %esi
    call console_write
    movl $0x23, %edi
    cmpq $(hello_end - hello), %rax
    jne fail

    leaq hello(%rip), %rdi
    xorl %esi, %esi                 // length 0
    call console_write
    movl $0x24, %edi
    cmpq $-EINVAL, %rax
    jne fail

    leaq hello(%rip), %rdi
    movl $257, %esi                 // one more than the limit
    call console_write
    movl $0x25, %edi
    cmpq $-EINVAL, %rax
    jne fail

    movl $OUTSIDE_GPA, %edi         // unmapped
    movl $16, %esi
    call console_write
    movl $0x26, %edi
    cmpq $-EFAULT, %rax
    jne fail

    movl $(RO_PAGE + 0xff0), %edi   // starts in the readable RO page, ends past it
    movl $32, %esi
    call console_write
    movl $0x27, %edi
    cmpq $-EFAULT, %rax
    jne fail

    movl $HC_TIMER_ONE_SHOT, %eax
    xorl %edi, %edi                 // 0 microseconds
    movl $TIMER_VECTOR, %esi
    call hypercall
    movl $0x28, %edi
    cmpq $-EINVAL, %rax
    jne fail

    movl $HC_TIMER_ONE_SHOT, %eax
    movl $TIMER_MICROSECONDS, %edi
    movl $31, %esi                  // an exception vector
    call hypercall
    movl $0x29, %edi
    cmpq $-EINVAL, %rax
    jne fail

    movl $EXIT_OK, %edi
    jmp exit_vm

// ---- Scenario 3: ports ----------------------------------------------------------------------
scenario_ports:
    leaq port_text(%rip), %rsi
1:  movb (%rsi), %al
    testb %al, %al
    jz 2f
    outb %al, $DEBUG_PORT
    incq %rsi
    jmp 1b
2:
    xorl %eax, %eax
    inb $0x60, %al
    movl $0x31, %edi
    cmpb $0xff, %al
    jne fail

    movq $0x1111111100000000, %rax  // a 32-bit IN must clear RAX[63:32]
    movw $0x1234, %dx
    inl %dx, %eax
    movl $0x32, %edi
    cmpl $0xffffffff, %eax
    jne fail
    movl $0x33, %edi
    movq %rax, %rcx
    shrq $32, %rcx
    jnz fail

    movq $0x123456789abc0000, %rax  // a 16-bit IN keeps RAX[63:16]
    inw %dx, %ax
    movl $0x34, %edi
    movq $0x123456789abcffff, %rcx
    cmpq %rcx, %rax
    jne fail

    movl $EXIT_OK, %edi
    jmp exit_vm

// ---- Scenario 4: readonly -------------------------------------------------------------------
scenario_readonly:
    movb RO_PAGE, %al
    movl $0x41, %edi
    cmpb $RO_FILL, %al
    jne fail
    movb RO_PAGE_LAST, %al
    movl $0x42, %edi
    cmpb $RO_FILL, %al
    jne fail
    movb $0, RO_PAGE                // the monitor stops the VM here
    movl $EXIT_CONTINUED, %edi
    jmp exit_vm

// ---- Scenario 5: outside --------------------------------------------------------------------
scenario_outside:
    movb OUTSIDE_GPA, %al           // the monitor stops the VM here
    movl $EXIT_CONTINUED, %edi
    jmp exit_vm

// ---- Scenario 6: timer ----------------------------------------------------------------------
scenario_timer:
    movl $0, timer_count(%rip)
    movl $HC_TIMER_ONE_SHOT, %eax
    movl $TIMER_MICROSECONDS, %edi
    movl $TIMER_VECTOR, %esi
    call hypercall
    movl $0x61, %edi
    testq %rax, %rax
    jnz fail

    movl $TIMER_GIVE_UP_LOOPS, %ecx
1:  cli                             // check, then STI; HLT: no wake-up can slip in between
    cmpl $1, timer_count(%rip)
    jae 2f
    sti
    hlt
    decl %ecx
    jnz 1b
    movl $EXIT_TIMER_NEVER_FIRED, %edi
    jmp exit_vm
2:  movl $EXIT_OK, %edi
    jmp exit_vm

// ---- Scenario 7: longmode -------------------------------------------------------------------
scenario_longmode:
    movl $EXIT_OK, %edi
    jmp exit_vm

// ---- Scenario 8: spin -----------------------------------------------------------------------
scenario_spin:
    movl $SPIN_CALLS, %ebx
1:  movl $HC_VERSION, %eax
    call hypercall
    movl $0x81, %edi
    cmpq $HC_ABI_VERSION, %rax
    jne fail
    decl %ebx
    jnz 1b
    movl $EXIT_OK, %edi
    jmp exit_vm

// ---- Scenario 9: triplefault ---------------------------------------------------------------
// An empty IDT makes the breakpoint undeliverable: #BP -> #GP -> #DF -> triple fault, which the
// monitor must turn into a stopped VM with a report.
scenario_triplefault:
    lidt empty_idt_descriptor(%rip)
    int3
    movl $EXIT_CONTINUED, %edi
    jmp exit_vm

// ---- Scenario 10: usermode ------------------------------------------------------------------
// Ring 3 makes a hypercall, which the monitor must refuse with -EPERM, then comes back to
// ring 0 through a DPL-3 interrupt gate, whose handler checks and exits.
scenario_usermode:
    movl $TSS_BASE, %edi            // TSS: zero but RSP0 and the I/O map base
    xorl %eax, %eax
    movl $(TSS_SIZE / 4), %ecx
    rep stosl
    movq $RING0_STACK_TOP, %rax
    movq %rax, TSS_BASE + TSS_RSP0
    movw $TSS_SIZE, TSS_BASE + TSS_IOMAP  // past the limit: no I/O bitmap
    movw $SEL_TSS, %ax
    ltr %ax

    movl $USER_VECTOR, %ecx
    leaq usermode_handler(%rip), %rax
    movl $GATE_INTERRUPT_USER, %edx
    call set_gate

    pushq $SEL_USER_DATA            // IRETQ frame: SS, RSP, RFLAGS, CS, RIP
    pushq $USER_STACK_TOP
    pushq $RFLAGS_FIXED
    pushq $SEL_USER_CODE64
    leaq usermode_code(%rip), %rax
    pushq %rax
    iretq

// Ring 3 from here.
usermode_code:
    movl $HC_VERSION, %eax
    call hypercall
    movq %rax, user_result(%rip)
    int $USER_VECTOR
    ud2                             // not reached: the handler exits (else Exit(0x106))

// INT 0x80 from ring 3, on the RSP0 stack: RIP, CS, RFLAGS, RSP, SS.
usermode_handler:
    movq 8(%rsp), %rax
    movq %rax, user_cs(%rip)
    andl $RPL_MASK, %eax
    movl $EXIT_USER_NOT_RING3, %edi
    cmpl $RPL_USER, %eax
    jne fail
    movl $EXIT_USER_NOT_EPERM, %edi
    cmpq $-EPERM, user_result(%rip)
    jne fail
    movl $EXIT_OK, %edi
    jmp exit_vm

// =============================================================================================
    .section .rodata, "a"
empty_idt_descriptor:
    .word 0
    .quad 0
hello:
    .ascii "hello from the guest\n"
hello_end:
port_text:
    .asciz "port io ok\n"

    .balign 8
gdt:
    .quad 0                         // null
    .quad 0x00cf9b000000ffff        // 0x08: 32-bit code, base 0, limit 4 GiB (accessed preset)
    .quad 0x00cf93000000ffff        // 0x10: data, base 0, limit 4 GiB (accessed preset)
    .quad 0x00af9b000000ffff        // 0x18: 64-bit code
    .quad 0x00cff3000000ffff        // 0x20: user data, DPL 3
    .quad 0x00affb000000ffff        // 0x28: user 64-bit code, DPL 3
    .word TSS_SIZE - 1              // 0x30: 64-bit TSS (16 bytes); limit 15:0
    .word TSS_BASE & 0xffff         // base 15:0
    .byte (TSS_BASE >> 16) & 0xff   // base 23:16
    .byte TSS_ACCESS
    .byte 0                         // limit 19:16, flags
    .byte (TSS_BASE >> 24) & 0xff   // base 31:24
    .long 0                         // base 63:32
    .long 0                         // reserved
gdt_end:
gdt_descriptor:
    .word gdt_end - gdt - 1
    .long gdt
    .balign 8
idt_descriptor:
    .word IDT_ENTRIES * 16 - 1
    .quad IDT_BASE

    .section .data, "aw"
    .balign 4
scenario:
    .long 0
hypercall_insn:                     // CPUID 0x40000001 EBX: 1 = VMCALL, 2 = VMMCALL
    .long 0
timer_count:
    .long 0
    .balign 8
user_result:                        // usermode: RAX of the ring-3 hypercall (written in ring 3)
    .quad 0
user_cs:                            // usermode: CS in the INT 0x80 frame
    .quad 0

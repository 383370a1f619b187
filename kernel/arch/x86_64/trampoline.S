/*
 * Application-processor start-up code (SDM Vol. 3 §8.4.4.2, §9.9). The boot CPU copies this
 * blob to TRAMPOLINE_BASE (below 1 MiB, page aligned) and sends STARTUP IPIs whose vector is
 * TRAMPOLINE_BASE >> 12. The AP starts in real mode at CS:IP = vector<<8:0, so every address
 * here is computed as TRAMPOLINE_BASE + (label - trampoline_start).
 * The boot CPU fills the parameter block at PARAMETERS_BASE (struct Parameters in smp.cpp)
 * before each start.
 */

#define TRAMPOLINE_BASE 0x8000
#define PARAMETERS_BASE 0x9000     /* separate page: data stays writable, code stays read-only */
#define ABS(label) (TRAMPOLINE_BASE + (label - trampoline_start))
#define CR4_PAE (1 << 5)
#define EFER_MSR 0xc0000080
#define EFER_LME_NXE ((1 << 8) | (1 << 11))
#define CR0_PE_PG_WP ((1 << 0) | (1 << 31) | (1 << 16))
#define CR0_CD_NW ((1 << 30) | (1 << 29))   /* set by INIT (SDM Vol. 3 Table 9-1): caches off */

    .section .rodata
    .balign 16
    .global trampoline_start, trampoline_end
trampoline_start:
    .code16
    cli
    cld
    xor %ax, %ax
    mov %ax, %ds
    lgdtl ABS(trampoline_gdt_pointer)
    mov %cr0, %eax
    or $1, %eax
    mov %eax, %cr0
    ljmpl $0x08, $ABS(trampoline_protected)

    .code32
trampoline_protected:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov %cr4, %eax
    or $CR4_PAE, %eax
    mov %eax, %cr4
    mov PARAMETERS_BASE + 0, %eax
    mov %eax, %cr3
    /* NXE before paging: the kernel page tables use the execute-disable bit. */
    mov $EFER_MSR, %ecx
    rdmsr
    or $EFER_LME_NXE, %eax
    wrmsr
    mov %cr0, %eax
    and $~CR0_CD_NW, %eax           /* an AP comes out of INIT with caching disabled */
    or $CR0_PE_PG_WP, %eax
    mov %eax, %cr0
    ljmp $0x18, $ABS(trampoline_long)

    .code64
trampoline_long:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov PARAMETERS_BASE + 8, %rsp
    mov PARAMETERS_BASE + 24, %rdi
    mov PARAMETERS_BASE + 16, %rax
    xor %ebp, %ebp
    call *%rax
1:  cli
    hlt
    jmp 1b

    .balign 8
/* Accessed bits preset: the CPU would otherwise write them into this GDT on the segment loads
   after paging is on, and the trampoline page is read-only then (SDM Vol. 3 §3.4.5.1). */
trampoline_gdt:
    .quad 0
    .quad 0x00cf9b000000ffff        /* 0x08: 32-bit code */
    .quad 0x00cf93000000ffff        /* 0x10: data */
    .quad 0x00af9b000000ffff        /* 0x18: 64-bit code */
trampoline_gdt_end:
trampoline_gdt_pointer:
    .short trampoline_gdt_end - trampoline_gdt - 1
    .long ABS(trampoline_gdt)

    trampoline_end:

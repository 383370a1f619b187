/*
 * First instructions of the monitor. GRUB enters here in 32-bit protected mode with paging
 * off (Multiboot2 spec §3.3): EAX = magic, EBX = physical address of the boot information.
 * We check for long mode, identity-map the first 4 GiB with 2 MiB pages, enable long mode
 * (SDM Vol. 3 §9.8.5) and call kernel_main(magic, info) in C++.
 */

#define MB2_HEADER_MAGIC 0xe85250d6
#define MB2_ARCH_I386 0
#define SERIAL_PORT 0x3f8
#define CR4_PAE (1 << 5)
#define EFER_MSR 0xc0000080
#define EFER_LME (1 << 8)
#define CR0_PE (1 << 0)
#define CR0_PG (1 << 31)
#define PTE_PRESENT_WRITE 0x3
#define PDE_LARGE_PRESENT_WRITE 0x83
#define CPUID_EXT_LONG_MODE (1 << 29)

    .section .multiboot2, "a"
    .balign 8
mb2_header:
    .long MB2_HEADER_MAGIC
    .long MB2_ARCH_I386
    .long mb2_header_end - mb2_header
    .long -(MB2_HEADER_MAGIC + MB2_ARCH_I386 + (mb2_header_end - mb2_header))
    /* end tag */
    .balign 8
    .short 0
    .short 0
    .long 8
mb2_header_end:

    .section .boot.bss, "aw", @nobits
    .balign 4096
boot_pml4:  .skip 4096
boot_pdpt:  .skip 4096
boot_pd:    .skip 4096 * 4
    .balign 16
    .global boot_stack_bottom
boot_stack_bottom:
    .skip 32768
    .global boot_stack_top
boot_stack_top:

    .section .rodata
    .balign 8
boot_gdt:
    .quad 0
    .quad 0x00af9b000000ffff        /* 0x08: 64-bit code, DPL 0 (accessed bit preset) */
    .quad 0x00cf93000000ffff        /* 0x10: data */
boot_gdt_end:
boot_gdt_pointer:
    .short boot_gdt_end - boot_gdt - 1
    .quad boot_gdt

no_long_mode_message:
    .asciz "vlibos: PANIC: this CPU has no 64-bit long mode; vlibos needs an x86-64 CPU\r\nvlibos: system halted, status=1\r\n"

    .section .boot.text, "ax"
    .code32
    .global _start
_start:
    cli
    cld
    mov $boot_stack_top, %esp
    mov %eax, %edi                  /* keep magic and info for kernel_main (SysV: rdi, rsi) */
    mov %ebx, %esi

    /* Without long mode nothing else can run: say so on COM1 and stop. */
    mov $0x80000000, %eax
    cpuid
    cmp $0x80000001, %eax
    jb .Lno_long_mode
    mov $0x80000001, %eax
    cpuid
    test $CPUID_EXT_LONG_MODE, %edx
    jz .Lno_long_mode

    /* PML4[0] -> PDPT, PDPT[0..3] -> four page directories of 2 MiB pages = 4 GiB identity. */
    mov $boot_pdpt, %eax
    or $PTE_PRESENT_WRITE, %eax
    mov %eax, boot_pml4
    xor %ecx, %ecx
1:  mov %ecx, %eax
    shl $12, %eax
    add $boot_pd, %eax
    or $PTE_PRESENT_WRITE, %eax
    mov %eax, boot_pdpt(, %ecx, 8)
    inc %ecx
    cmp $4, %ecx
    jne 1b
    xor %ecx, %ecx
2:  mov %ecx, %eax
    shl $21, %eax
    or $PDE_LARGE_PRESENT_WRITE, %eax
    mov %eax, boot_pd(, %ecx, 8)
    inc %ecx
    cmp $2048, %ecx
    jne 2b

    mov %cr4, %eax
    or $CR4_PAE, %eax
    mov %eax, %cr4
    mov $boot_pml4, %eax
    mov %eax, %cr3
    mov $EFER_MSR, %ecx
    rdmsr
    or $EFER_LME, %eax
    wrmsr
    mov %cr0, %eax
    or $(CR0_PG | CR0_PE), %eax
    mov %eax, %cr0

    lgdt boot_gdt_pointer
    ljmp $0x08, $long_mode_entry

.Lno_long_mode:
    mov $no_long_mode_message, %ebx
    jmp boot_fail32

/* Writes the NUL-terminated string at EBX to COM1 by polling, then halts this CPU. */
boot_fail32:
1:  movb (%ebx), %al
    test %al, %al
    jz 3f
    mov %al, %ah
    mov $(SERIAL_PORT + 5), %dx
2:  inb %dx, %al
    test $0x20, %al                 /* LSR.THRE: transmitter ready */
    jz 2b
    mov $SERIAL_PORT, %dx
    mov %ah, %al
    outb %al, %dx
    inc %ebx
    jmp 1b
3:  cli
    hlt
    jmp 3b

    .code64
long_mode_entry:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    xor %ax, %ax
    mov %ax, %fs
    mov %ax, %gs
    mov $boot_stack_top, %rsp
    mov %edi, %edi                  /* zero-extend magic and info pointer */
    mov %esi, %esi
    xor %ebp, %ebp
    call kernel_main
1:  cli
    hlt
    jmp 1b

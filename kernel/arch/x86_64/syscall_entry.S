/*
 * SYSCALL lands here (IA32_LSTAR) in ring 0 with RCX = user RIP, R11 = user RFLAGS, RSP still
 * the user's and interrupts off (IA32_FMASK clears IF). It switches to the CPU's kernel stack and
 * builds the same InterruptFrame an interrupt from ring 3 would, with vector 0x100, so one
 * dispatcher and one IRETQ exit serve both (SDM Vol. 3 §5.8.8; AMD APM Vol. 2 §6.1.1).
 * PerCpu offsets: gs:8 = syscall_stack_top, gs:16 = user_rsp_scratch (static_asserts in percpu.hpp).
 */
#define USER_DATA_SELECTOR (0x18 | 3)
#define USER_CODE_SELECTOR (0x20 | 3)
#define VECTOR_SYSCALL 0x100

    .text
    .balign 16
    .global syscall_entry
syscall_entry:
    swapgs
    mov %rsp, %gs:16
    mov %gs:8, %rsp
    pushq $USER_DATA_SELECTOR       /* SS */
    pushq %gs:16                    /* RSP */
    pushq %r11                      /* RFLAGS */
    pushq $USER_CODE_SELECTOR       /* CS */
    pushq %rcx                      /* RIP */
    pushq $0                        /* error code */
    pushq $VECTOR_SYSCALL
    jmp interrupt_common_swapped

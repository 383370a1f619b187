// Interrupt and exception entry: the frame the assembly stubs build, and the vectors we use.
#pragma once

#include <stdint.h>

namespace vlibos::x86 {

// Architectural exception vectors (SDM Vol. 3 §6.3.1, Table 6-1).
constexpr uint8_t kVectorDivideError = 0;
constexpr uint8_t kVectorNmi = 2;
constexpr uint8_t kVectorInvalidOpcode = 6;
constexpr uint8_t kVectorDoubleFault = 8;
constexpr uint8_t kVectorGeneralProtection = 13;
constexpr uint8_t kVectorPageFault = 14;
constexpr uint8_t kVectorMachineCheck = 18;
constexpr uint8_t kFirstExternalVector = 32;

// Vectors the monitor assigns.
constexpr uint8_t kVectorLapicTimer = 0x20;
// Another CPU wants this one to look at its work again (a Linux vCPU got an interrupt): the
// interrupt itself is the message; it only wakes HLT or forces a VM exit.
constexpr uint8_t kVectorKick = 0x21;
// Interrupt lines of devices passed to the Linux VM (ioapic.hpp routes them here): the handler
// masks the line and tells the VM; the monitor sends the EOI after it.
constexpr uint8_t kVectorForwardedFirst = 0x30;
constexpr uint8_t kForwardedVectors = 8;
using ForwardedHandler = void (*)(unsigned index);  // index = vector - kVectorForwardedFirst
void set_forwarded_handler(ForwardedHandler handler);
constexpr uint8_t kVectorSpurious = 0xff;

// Saved by isr.S in this order (lowest address first), then the CPU's own frame.
struct InterruptFrame {
    uint64_t r15, r14, r13, r12, r11, r10, r9, r8, rbp, rdi, rsi, rdx, rcx, rbx, rax;
    uint64_t vector, error_code;
    uint64_t rip, cs, rflags, rsp, ss;
};

const char* exception_mnemonic(uint64_t vector);

} // namespace vlibos::x86

extern "C" const uint64_t interrupt_stub_table[256];
extern "C" void interrupt_dispatch(vlibos::x86::InterruptFrame* frame);

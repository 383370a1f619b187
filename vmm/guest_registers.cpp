#include "vmm/guest_registers.hpp"

namespace vlibos::vmm {

uint64_t* GuestRegisters::by_index(unsigned index)
{
    // ModR/M register numbering (SDM Vol. 2A Table 2-2); 4 is RSP, which lives in the VMCS/VMCB.
    switch (index) {
    case 0: return &rax;
    case 1: return &rcx;
    case 2: return &rdx;
    case 3: return &rbx;
    case 5: return &rbp;
    case 6: return &rsi;
    case 7: return &rdi;
    case 8: return &r8;
    case 9: return &r9;
    case 10: return &r10;
    case 11: return &r11;
    case 12: return &r12;
    case 13: return &r13;
    case 14: return &r14;
    case 15: return &r15;
    default: return nullptr;
    }
}

} // namespace vlibos::vmm

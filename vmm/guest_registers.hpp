// The guest's general-purpose registers that neither the VMCS nor the VMCB holds. The backends'
// entry stubs swap these with the host's around VMLAUNCH/VMRESUME/VMRUN. RSP and RIP live in the
// VMCS/VMCB (and RAX too on SVM: the SVM backend copies it between this struct and the VMCB).
#pragma once

#include <stdint.h>

namespace vlibos::vmm {

struct GuestRegisters {
    uint64_t rax, rbx, rcx, rdx, rsi, rdi, rbp;
    uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
    uint64_t cr2;

    // Index as in the ModR/M encoding (0 = rax, 1 = rcx, 2 = rdx, 3 = rbx, 4 = rsp, ...);
    // 4 (rsp) is not here: callers read RSP from the backend.
    uint64_t* by_index(unsigned index);
};

} // namespace vlibos::vmm

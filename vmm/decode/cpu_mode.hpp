// The guest's code-segment mode, shared by the instruction fetch (guest_page_walk.hpp) and the
// decoder (mmio_decode.hpp): it fixes how linear addresses are formed and the default operand
// and address sizes.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace vlibos::vmm::decode {

// No x86 instruction is longer than 15 bytes; a longer one raises #GP (SDM Vol. 2A §2.3.11,
// AMD APM Vol. 3 §1.1).
inline constexpr size_t kMaxInstructionLength = 15;

enum class CodeSize : uint8_t {
    Bits16,  // real mode, virtual-8086 mode, or a 16-bit protected-mode code segment
    Bits32,  // 32-bit protected mode, or compatibility mode under IA-32e
    Bits64,  // 64-bit mode
};

// The mode the CPU executes in, from IA-32_EFER.LMA and the hidden CS attributes L (bit 53 of
// the descriptor) and D (bit 54): SDM Vol. 3 §5.2.1 and Vol. 1 §3.6.1, AMD APM Vol. 2 §4.8.1.
// L is only meaningful with LMA set; with L set, D must be 0 (L=1 D=1 is reserved, and VM entry
// refuses it), so L alone selects 64-bit mode. The backends read L and D out of the VMCS
// access-rights field or the VMCB attribute field.
constexpr CodeSize code_size(bool long_mode_active, bool cs_l, bool cs_d)
{
    if (long_mode_active && cs_l)
        return CodeSize::Bits64;
    return cs_d ? CodeSize::Bits32 : CodeSize::Bits16;
}

} // namespace vlibos::vmm::decode

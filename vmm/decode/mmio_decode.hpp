// Decoding the one instruction behind an MMIO exit.
//
// An emulated device page (xAPIC at 0xFEE00000, IOAPIC at 0xFEC00000) is left out of the nested
// page tables, so each guest access to it exits with the guest-physical address and whether it
// read or wrote, but without the register or the value, and under SVM without decode assists
// not even the instruction length. The monitor fetches the bytes at RIP (guest_page_walk.hpp),
// decodes them here, carries out the access on the device model and advances RIP by `length`.
//
// Only the forms with which Linux and ordinary drivers touch device registers are accepted
// (the readl()/writel() family, the xAPIC accessors, compiler output for volatile accesses):
//
//   88 /r  MOV r/m8, r8          8A /r  MOV r8, r/m8          86 /r  XCHG r/m8, r8
//   89 /r  MOV r/m, r            8B /r  MOV r, r/m            87 /r  XCHG r/m, r
//   C6 /0  MOV r/m8, imm8        C7 /0  MOV r/m, imm16/32     A0-A3  MOV AL/AX/EAX/RAX, moffs and back
//   0F B6  MOVZX r, r/m8         0F B7  MOVZX r, r/m16
//   0F BE  MOVSX r, r/m8         0F BF  MOVSX r, r/m16
//
// with the prefixes 66 (operand size), 67 (address size), 2E/36/3E/26/64/65 (segment), REX
// (64-bit mode only; it counts only directly before the opcode, elsewhere the CPU ignores it,
// SDM Vol. 2A §2.2.1), LOCK on XCHG only, and F2/F3 only where they are the XACQUIRE/XRELEASE
// hints (XCHG; F3 on a MOV store; SDM Vol. 1 §16.3.3). Every other byte sequence is refused with
// the byte at fault: string instructions, read-modify-write arithmetic, SSE/AVX moves and so on
// are not device-register accesses a driver makes, and a wrong emulation is worse than a stop.
//
// The bytes are untrusted guest memory: decode_mmio() reads only the `length` bytes it is given
// (at most 15) and answers every input with an instruction or an error.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "lib/result.hpp"
#include "vmm/decode/cpu_mode.hpp"
#include "vmm/guest_registers.hpp"

namespace vlibos::vmm::decode {

enum class MmioDirection : uint8_t {
    Read,      // memory -> register (MOV load, MOVZX, MOVSX)
    Write,     // register or immediate -> memory (MOV store)
    Exchange,  // both (XCHG): the register's value is written, the old memory value loaded
};

enum class Extension : uint8_t {
    None,
    Zero,  // MOVZX
    Sign,  // MOVSX
};

enum class Segment : uint8_t { Default, Es, Cs, Ss, Ds, Fs, Gs };

struct MmioInstruction {
    uint8_t length = 0;       // whole instruction, prefixes to immediate: RIP advances by this
    uint8_t size = 0;         // bytes of memory accessed: 1, 2, 4 or 8
    MmioDirection direction = MmioDirection::Read;

    bool has_immediate = false;  // a MOV store of `immediate` (C6, C7); no register involved
    uint64_t immediate = 0;      // the stored value, `size` bytes (C7 with REX.W: imm32 sign-extended)

    // The register operand, unless has_immediate: 0-15 as in ModR/M (0 = rAX, 1 = rCX, 2 = rDX,
    // 3 = rBX, 4 = rSP, ...), REX.R included. high_byte: the operand is bits 15:8 of register
    // 0-3 (AH, CH, DH, BH: an 8-bit operand, ModR/M.reg 4-7 and no REX; SDM Vol. 2A §3.7.2.1).
    uint8_t reg = 0;
    bool high_byte = false;
    // Width of the register operand: `size`, or wider for MOVZX/MOVSX, which extend the
    // loaded `size` bytes to it as `extension` says.
    uint8_t register_size = 0;
    Extension extension = Extension::None;

    // For reports only: the hardware already gave the guest-physical address.
    Segment segment = Segment::Default;  // the segment override, if any
    uint8_t address_size = 0;            // 2, 4 or 8 bytes
    bool rip_relative = false;           // [RIP + disp32] (64-bit mode)
};

enum class DecodeError : uint8_t {
    Truncated,            // the bytes given end inside the instruction
    TooLong,              // the instruction would be longer than 15 bytes (#GP on the CPU)
    UnsupportedOpcode,    // not one of the forms above; `byte` is the opcode (the second for 0F xx)
    BadOpcodeExtension,   // C6/C7 with ModR/M.reg != 0 (not MOV); `byte` is the ModR/M
    RegisterOperand,      // ModR/M.mod = 3: the operand is a register, no memory is accessed
    LockPrefix,           // LOCK on anything but XCHG (#UD on the CPU)
    RepeatPrefix,         // F2/F3 where they are not XACQUIRE/XRELEASE (on 0F xx they select
                          // another instruction altogether)
    StackPointer,         // write_value()/complete_read(): the operand is SP/ESP/RSP, which
                          // lives in the VMCS/VMCB rather than in GuestRegisters
    NotARead,             // complete_read() on a plain store
};

const char* describe(DecodeError error);

struct DecodeFault {
    DecodeError error = DecodeError::Truncated;
    uint8_t offset = 0;  // where in the bytes the problem is (for Truncated: how many there were)
    uint8_t byte = 0;    // the byte at `offset`, if there is one
};

// Decodes the instruction at the start of `bytes` (the first min(length, 15) are looked at)
// executed in `mode`.
Result<MmioInstruction, DecodeFault> decode_mmio(const uint8_t* bytes, size_t length, CodeSize mode);

// True if the decoded instruction can have made the reported access: a guard against code the
// guest changed between the exit and the fetch (another vCPU, or DMA). XCHG matches both: a
// read-modify-write may be reported as either.
constexpr bool matches_access(const MmioInstruction& insn, bool write)
{
    return insn.direction == MmioDirection::Exchange || (insn.direction == MmioDirection::Write) == write;
}

// The `size` bytes a Write or Exchange stores, zero-extended: the immediate, or the low bytes
// (bits 15:8 for AH-BH) of the source register. StackPointer for SPL/SP/ESP/RSP.
Result<uint64_t, DecodeError> write_value(const MmioInstruction& insn, const GuestRegisters& regs);

// Completes a Read or Exchange: puts the `size` bytes read from the device into the register
// with the x86 rules (SDM Vol. 1 §3.4.1.1): extended to register_size as `extension` says; then
// a 4-byte result zeroes bits 63:32, a 1- or 2-byte result leaves the rest of the register as it
// was, and AH-BH replace bits 15:8 only. StackPointer for an SP destination, NotARead for a Write.
Status<DecodeError> complete_read(const MmioInstruction& insn, GuestRegisters& regs, uint64_t value);

} // namespace vlibos::vmm::decode

#include "vmm/decode/mmio_decode.hpp"

namespace vlibos::vmm::decode {

namespace {

// Opcodes (SDM Vol. 2A Appendix A, Table; Vol. 2B "MOV", "MOVZX", "MOVSX", "XCHG").
constexpr uint8_t kXchg8 = 0x86, kXchg = 0x87;
constexpr uint8_t kMovStore8 = 0x88, kMovStore = 0x89, kMovLoad8 = 0x8A, kMovLoad = 0x8B;
constexpr uint8_t kMovLoadAccMoffs8 = 0xA0, kMovLoadAccMoffs = 0xA1;
constexpr uint8_t kMovStoreAccMoffs8 = 0xA2, kMovStoreAccMoffs = 0xA3;
constexpr uint8_t kMovStoreImm8 = 0xC6, kMovStoreImm = 0xC7;
constexpr uint8_t kTwoByteEscape = 0x0F;
constexpr uint8_t kMovzx8 = 0xB6, kMovzx16 = 0xB7, kMovsx8 = 0xBE, kMovsx16 = 0xBF;

// Legacy prefixes (SDM Vol. 2A §2.1.1) and REX (§2.2.1).
constexpr uint8_t kOperandSize = 0x66, kAddressSize = 0x67, kLock = 0xF0, kRepne = 0xF2, kRep = 0xF3;
constexpr uint8_t kRexFirst = 0x40, kRexLast = 0x4F;
constexpr uint8_t kRexW = 0x08, kRexR = 0x04;

Segment segment_of(uint8_t prefix)
{
    switch (prefix) {
    case 0x26: return Segment::Es;
    case 0x2E: return Segment::Cs;
    case 0x36: return Segment::Ss;
    case 0x3E: return Segment::Ds;
    case 0x64: return Segment::Fs;
    case 0x65: return Segment::Gs;
    default: return Segment::Default;
    }
}

// Reads the instruction bytes in order, never past `available` nor past 15.
class Cursor {
public:
    Cursor(const uint8_t* bytes, size_t length)
        : bytes_(bytes), available_(length < kMaxInstructionLength ? length : kMaxInstructionLength)
    {
    }

    size_t pos() const { return pos_; }

    // Whether `count` more bytes exist; TooLong beats Truncated, because the CPU refuses an
    // instruction past 15 bytes however many are mapped.
    Status<DecodeFault> need(size_t count) const
    {
        if (pos_ + count > kMaxInstructionLength)
            return fail(fault(DecodeError::TooLong, pos_));
        if (pos_ + count > available_)
            return fail(DecodeFault{DecodeError::Truncated, static_cast<uint8_t>(available_), 0});
        return {};
    }

    uint8_t peek() const { return bytes_[pos_]; }  // only after need(1)
    uint8_t take() { return bytes_[pos_++]; }      // only after need(1)

    // `count` (0, 1, 2, 4 or 8) little-endian bytes, after need(count).
    uint64_t take_le(size_t count)
    {
        uint64_t value = 0;
        for (size_t i = 0; i < count; ++i)
            value |= uint64_t{bytes_[pos_ + i]} << (8 * i);
        pos_ += count;
        return value;
    }

    void skip(size_t count) { pos_ += count; }  // only after need(count)

    DecodeFault fault(DecodeError error, size_t at) const
    {
        return DecodeFault{error, static_cast<uint8_t>(at), at < available_ ? bytes_[at] : uint8_t{0}};
    }

private:
    const uint8_t* bytes_;
    size_t available_;
    size_t pos_ = 0;
};

struct Prefixes {
    bool operand_size = false;
    bool address_size = false;
    bool lock = false;
    bool repne = false;  // F2
    bool rep = false;    // F3
    uint8_t rex = 0;     // 0 or 0x40-0x4F, if directly before the opcode
    Segment segment = Segment::Default;
};

Result<Prefixes, DecodeFault> read_prefixes(Cursor& in, CodeSize mode)
{
    Prefixes p;
    for (;;) {
        TRY(in.need(1));
        uint8_t b = in.peek();
        if (mode == CodeSize::Bits64 && b >= kRexFirst && b <= kRexLast) {
            p.rex = b;  // a later REX replaces it, a later legacy prefix voids it (§2.2.1)
            in.skip(1);
            continue;
        }
        if (b == kOperandSize)
            p.operand_size = true;
        else if (b == kAddressSize)
            p.address_size = true;
        else if (b == kLock)
            p.lock = true;
        else if (b == kRepne)
            p.repne = true;
        else if (b == kRep)
            p.rep = true;
        else if (segment_of(b) != Segment::Default)
            // In 64-bit mode CS/DS/ES/SS overrides are ignored (§3.3.7.2 of Vol. 1); kept for reports.
            p.segment = segment_of(b);
        else
            return p;
        p.rex = 0;
        in.skip(1);
    }
}

// Operand size (SDM Vol. 1 §3.6, Table 3-4; Vol. 2A §2.2.1.2): REX.W gives 64 bits, else 66
// toggles the segment's default between 16 and 32.
uint8_t operand_size(CodeSize mode, const Prefixes& p)
{
    if (mode == CodeSize::Bits64 && (p.rex & kRexW) != 0)
        return 8;
    bool default16 = mode == CodeSize::Bits16;
    return (default16 != p.operand_size) ? 2 : 4;
}

// Address size: 64 bits in 64-bit mode (67 makes it 32), otherwise 67 toggles 16 and 32.
uint8_t address_size(CodeSize mode, const Prefixes& p)
{
    if (mode == CodeSize::Bits64)
        return p.address_size ? 4 : 8;
    bool default16 = mode == CodeSize::Bits16;
    return (default16 != p.address_size) ? 2 : 4;
}

// Skips the ModR/M memory operand's SIB and displacement (SDM Vol. 2A §2.1.5, Tables 2-1 to 2-3;
// §2.2.1.6 for RIP-relative). `modrm` has been read already and mod != 3.
Status<DecodeFault> skip_memory_operand(Cursor& in, uint8_t modrm, CodeSize mode, MmioInstruction& insn)
{
    unsigned mod = modrm >> 6;
    unsigned rm = modrm & 7;
    size_t displacement = 0;
    if (insn.address_size == 2) {
        // 16-bit forms (Table 2-1): [BX+SI] ... [BX]; mod 0 rm 6 is a bare disp16; no SIB.
        if (mod == 0 && rm == 6)
            displacement = 2;
        else if (mod != 0)
            displacement = mod == 1 ? 1 : 2;
    } else {
        // 32/64-bit forms (Table 2-2): rm 4 brings a SIB byte; SIB base 5 with mod 0 means a
        // disp32 and no base (Table 2-3); mod 0 rm 5 is disp32, RIP-relative in 64-bit mode.
        if (rm == 4) {
            TRY(in.need(1));
            uint8_t sib = in.take();
            if (mod == 0 && (sib & 7) == 5)
                displacement = 4;
        }
        if (mod == 0 && rm == 5) {
            displacement = 4;
            insn.rip_relative = mode == CodeSize::Bits64;
        } else if (mod != 0) {
            displacement = mod == 1 ? 1 : 4;
        }
    }
    TRY(in.need(displacement));
    in.skip(displacement);
    return {};
}

// The register named by ModR/M.reg (with REX.R) as an operand of `size` bytes. Without any REX
// prefix, 8-bit operands 4-7 are AH, CH, DH, BH; with one (even 40h) they are SPL, BPL, SIL, DIL
// (SDM Vol. 2A §3.7.2.1, Table 3-1; §2.2.1.2).
void set_register(MmioInstruction& insn, unsigned reg, uint8_t size, const Prefixes& p)
{
    if (size == 1 && p.rex == 0 && reg >= 4 && reg <= 7) {
        insn.reg = static_cast<uint8_t>(reg - 4);
        insn.high_byte = true;
        return;
    }
    insn.reg = static_cast<uint8_t>(reg | ((p.rex & kRexR) != 0 ? 8 : 0));
}

uint64_t mask_of(unsigned size) { return size >= 8 ? ~uint64_t{0} : (uint64_t{1} << (8 * size)) - 1; }

uint64_t sign_extend(uint64_t value, unsigned size)
{
    unsigned shift = 64 - 8 * size;
    return static_cast<uint64_t>(static_cast<int64_t>(value << shift) >> shift);
}

// The register's value for reading; nullptr for RSP. by_index() has no const overload, and
// only reads happen through this pointer.
const uint64_t* register_slot(const GuestRegisters& regs, unsigned index)
{
    return const_cast<GuestRegisters&>(regs).by_index(index);
}

} // namespace

const char* describe(DecodeError error)
{
    switch (error) {
    case DecodeError::Truncated: return "the instruction bytes end before the instruction does";
    case DecodeError::TooLong: return "the instruction is longer than 15 bytes";
    case DecodeError::UnsupportedOpcode: return "the instruction is not a MOV, MOVZX, MOVSX or XCHG the MMIO emulation supports";
    case DecodeError::BadOpcodeExtension: return "opcode C6/C7 with ModR/M.reg other than 0 is not a MOV";
    case DecodeError::RegisterOperand: return "the instruction has no memory operand (ModR/M.mod = 3)";
    case DecodeError::LockPrefix: return "a LOCK prefix on an instruction other than XCHG";
    case DecodeError::RepeatPrefix: return "an F2/F3 prefix where it is neither XACQUIRE nor XRELEASE";
    case DecodeError::StackPointer: return "the register operand is the stack pointer, which is not emulated";
    case DecodeError::NotARead: return "the instruction stores to memory and loads nothing";
    }
    return "unknown MMIO decode error";
}

Result<MmioInstruction, DecodeFault> decode_mmio(const uint8_t* bytes, size_t length, CodeSize mode)
{
    Cursor in(bytes, bytes == nullptr ? 0 : length);
    Prefixes p = TRY(read_prefixes(in, mode));

    MmioInstruction insn;
    insn.segment = p.segment;
    insn.address_size = address_size(mode, p);
    const uint8_t opsize = operand_size(mode, p);

    // The opcode; read_prefixes() left at least one byte.
    const size_t opcode_at = in.pos();
    uint8_t opcode = in.take();
    uint8_t opcode2 = 0;
    if (opcode == kTwoByteEscape) {
        TRY(in.need(1));
        opcode2 = in.take();
    }

    bool xrelease_allowed = false;  // F3 on a MOV store
    bool hle_allowed = false;       // F2 and F3 on XCHG
    bool has_modrm = true;
    switch (opcode) {
    case kMovStore8:
    case kMovLoad8:
    case kXchg8:
    case kMovStore:
    case kMovLoad:
    case kXchg: {
        bool byte_form = opcode == kMovStore8 || opcode == kMovLoad8 || opcode == kXchg8;
        insn.size = byte_form ? 1 : opsize;
        bool store = opcode == kMovStore8 || opcode == kMovStore;
        bool xchg = opcode == kXchg8 || opcode == kXchg;
        insn.direction = xchg ? MmioDirection::Exchange : store ? MmioDirection::Write : MmioDirection::Read;
        xrelease_allowed = store;
        hle_allowed = xchg;
        break;
    }
    case kMovStoreImm8:
    case kMovStoreImm:
        insn.size = opcode == kMovStoreImm8 ? 1 : opsize;
        insn.direction = MmioDirection::Write;
        insn.has_immediate = true;
        xrelease_allowed = true;
        break;
    case kMovLoadAccMoffs8:
    case kMovLoadAccMoffs:
    case kMovStoreAccMoffs8:
    case kMovStoreAccMoffs:
        // moffs: a bare address of the address size, no ModR/M; the register is always rAX.
        insn.size = (opcode & 1) == 0 ? 1 : opsize;
        insn.direction = opcode <= kMovLoadAccMoffs ? MmioDirection::Read : MmioDirection::Write;
        has_modrm = false;
        break;
    case kTwoByteEscape:
        if (opcode2 != kMovzx8 && opcode2 != kMovzx16 && opcode2 != kMovsx8 && opcode2 != kMovsx16)
            return fail(in.fault(DecodeError::UnsupportedOpcode, opcode_at + 1));
        insn.size = (opcode2 & 1) == 0 ? 1 : 2;
        insn.register_size = opsize;
        insn.extension = opcode2 == kMovzx8 || opcode2 == kMovzx16 ? Extension::Zero : Extension::Sign;
        insn.direction = MmioDirection::Read;
        break;
    default:
        return fail(in.fault(DecodeError::UnsupportedOpcode, opcode_at));
    }
    if (insn.register_size == 0)
        insn.register_size = insn.size;

    // LOCK is #UD except on read-modify-write instructions (SDM Vol. 2A "LOCK"); F2/F3 are
    // XACQUIRE/XRELEASE on XCHG and XRELEASE on MOV stores (Vol. 1 §16.3.3), and on 0F xx
    // would name a different instruction (a mandatory prefix, Vol. 2A §2.1.2).
    if (p.lock && !hle_allowed)
        return fail(in.fault(DecodeError::LockPrefix, opcode_at));
    if ((p.repne && !hle_allowed) || (p.rep && !hle_allowed && !xrelease_allowed))
        return fail(in.fault(DecodeError::RepeatPrefix, opcode_at));

    if (has_modrm) {
        TRY(in.need(1));
        const size_t modrm_at = in.pos();
        uint8_t modrm = in.take();
        if ((modrm >> 6) == 3)
            return fail(in.fault(DecodeError::RegisterOperand, modrm_at));
        unsigned reg = (modrm >> 3) & 7;
        if (insn.has_immediate && reg != 0)
            return fail(in.fault(DecodeError::BadOpcodeExtension, modrm_at));
        TRY(skip_memory_operand(in, modrm, mode, insn));
        if (!insn.has_immediate)
            set_register(insn, reg, insn.register_size, p);
    } else {
        TRY(in.need(insn.address_size));
        in.skip(insn.address_size);
        insn.reg = 0;
    }

    if (insn.has_immediate) {
        // imm8, imm16 or imm32; with REX.W the imm32 is sign-extended to 64 bits (Vol. 2B "MOV").
        size_t immediate_size = insn.size == 8 ? 4 : insn.size;
        TRY(in.need(immediate_size));
        uint64_t imm = in.take_le(immediate_size);
        insn.immediate = insn.size == 8 ? sign_extend(imm, 4) : imm;
    }

    insn.length = static_cast<uint8_t>(in.pos());
    return insn;
}

Result<uint64_t, DecodeError> write_value(const MmioInstruction& insn, const GuestRegisters& regs)
{
    if (insn.has_immediate)
        return insn.immediate & mask_of(insn.size);
    const uint64_t* slot = register_slot(regs, insn.reg);
    if (slot == nullptr)
        return fail(DecodeError::StackPointer);
    uint64_t value = insn.high_byte ? *slot >> 8 : *slot;
    return value & mask_of(insn.size);
}

Status<DecodeError> complete_read(const MmioInstruction& insn, GuestRegisters& regs, uint64_t value)
{
    if (insn.direction == MmioDirection::Write)
        return fail(DecodeError::NotARead);
    uint64_t* slot = regs.by_index(insn.reg);
    if (slot == nullptr)
        return fail(DecodeError::StackPointer);

    value &= mask_of(insn.size);
    if (insn.extension == Extension::Sign)
        value = sign_extend(value, insn.size);
    value &= mask_of(insn.register_size);

    if (insn.high_byte) {
        *slot = (*slot & ~uint64_t{0xFF00}) | (value << 8);
    } else if (insn.register_size >= 4) {
        *slot = value;  // a 32-bit result zero-extends into bits 63:32 (SDM Vol. 1 §3.4.1.1)
    } else {
        uint64_t keep = ~mask_of(insn.register_size);
        *slot = (*slot & keep) | value;
    }
    return {};
}

} // namespace vlibos::vmm::decode

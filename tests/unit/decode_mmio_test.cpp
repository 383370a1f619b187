// MMIO instruction decoder: byte sequences as GNU as and GCC emit them (each checked against
// objdump), one rejection per error, the register write-back rules, and random inputs that must
// never read outside their buffer.
#include <catch2/catch.hpp>

#include <stdint.h>
#include <string.h>

#include <algorithm>
#include <initializer_list>
#include <iterator>
#include <memory>
#include <vector>

#include "test_random.hpp"
#include "vmm/decode/mmio_decode.hpp"

using namespace vlibos;
using namespace vlibos::vmm;
using namespace vlibos::vmm::decode;

namespace {

using Bytes = std::vector<uint8_t>;

constexpr CodeSize k64 = CodeSize::Bits64;
constexpr CodeSize k32 = CodeSize::Bits32;
constexpr CodeSize k16 = CodeSize::Bits16;

// Decodes from a heap block of exactly the given size, so ASan catches any read past its end.
Result<MmioInstruction, DecodeFault> decode_exact(const Bytes& bytes, CodeSize mode)
{
    std::unique_ptr<uint8_t[]> exact(new uint8_t[bytes.size() + 1]);  // +1: new[0] is not usable
    if (!bytes.empty())
        memcpy(exact.get(), bytes.data(), bytes.size());
    return decode_mmio(exact.get(), bytes.size(), mode);
}

MmioInstruction decode_ok(const Bytes& bytes, CodeSize mode = k64)
{
    auto result = decode_exact(bytes, mode);
    INFO("error: " << (result.ok() ? "none" : describe(result.error().error)) << " at offset "
                   << int(result.ok() ? 0 : result.error().offset));
    REQUIRE(result.ok());
    const MmioInstruction& insn = result.value();
    // Every accepted instruction ends exactly where the decoder says: one byte less is truncated.
    CHECK(insn.length == bytes.size());
    Bytes shorter(bytes.begin(), bytes.end() - 1);
    auto truncated = decode_exact(shorter, mode);
    REQUIRE_FALSE(truncated.ok());
    CHECK(truncated.error().error == DecodeError::Truncated);
    CHECK(truncated.error().offset == shorter.size());
    return insn;
}

DecodeFault decode_error(const Bytes& bytes, CodeSize mode = k64)
{
    auto result = decode_exact(bytes, mode);
    REQUIRE_FALSE(result.ok());
    CHECK(describe(result.error().error)[0] != '\0');
    return result.error();
}

void check_register(const MmioInstruction& insn, MmioDirection direction, unsigned size, unsigned reg,
                    bool high_byte = false)
{
    CHECK(insn.direction == direction);
    CHECK(insn.size == size);
    CHECK(insn.register_size == size);
    CHECK(insn.reg == reg);
    CHECK(insn.high_byte == high_byte);
    CHECK_FALSE(insn.has_immediate);
    CHECK(insn.extension == Extension::None);
}

void check_immediate(const MmioInstruction& insn, unsigned size, uint64_t immediate)
{
    CHECK(insn.direction == MmioDirection::Write);
    CHECK(insn.size == size);
    CHECK(insn.has_immediate);
    CHECK(insn.immediate == immediate);
}

bool same(const MmioInstruction& a, const MmioInstruction& b)
{
    return a.length == b.length && a.size == b.size && a.direction == b.direction &&
           a.has_immediate == b.has_immediate && a.immediate == b.immediate && a.reg == b.reg &&
           a.high_byte == b.high_byte && a.register_size == b.register_size && a.extension == b.extension &&
           a.segment == b.segment && a.address_size == b.address_size && a.rip_relative == b.rip_relative;
}

GuestRegisters sample_registers()
{
    GuestRegisters regs{};
    regs.rax = 0x1122'3344'5566'7788;
    regs.rcx = 0x0101'0101'0101'0101;
    regs.rdx = 0xAAAA'BBBB'CCCC'DDDD;
    regs.rbx = 0x8877'6655'4433'2211;
    regs.rsi = 0x5555'5555'5555'5555;
    regs.r9 = 0x9999'9999'9999'9999;
    regs.r15 = 0xF0F0'F0F0'F0F0'F0F0;
    return regs;
}

} // namespace

TEST_CASE("decode: 32-bit MOV stores and loads as Linux emits them for the xAPIC", "[decode]")
{
    // mov %eax,(%rdx): native_apic_mem_write with the address in a register.
    MmioInstruction store = decode_ok({0x89, 0x02});
    check_register(store, MmioDirection::Write, 4, 0);
    CHECK(store.length == 2);
    CHECK(store.address_size == 8);
    CHECK_FALSE(store.rip_relative);
    CHECK(store.segment == Segment::Default);

    // mov 0x320(%rdx),%eax: disp32.
    MmioInstruction load = decode_ok({0x8b, 0x82, 0x20, 0x03, 0x00, 0x00});
    check_register(load, MmioDirection::Read, 4, 0);
    CHECK(load.length == 6);

    // mov %eax,0xffffffffff5fb0b0: the APIC fixmap address, SIB without base or index + disp32.
    MmioInstruction fixmap = decode_ok({0x89, 0x04, 0x25, 0xb0, 0xb0, 0x5f, 0xff});
    check_register(fixmap, MmioDirection::Write, 4, 0);

    // movl $0,0xffffffffff5fb0b0 (EOI) in 64-bit code, movl $0,0xfee000b0 in 32-bit code.
    for (CodeSize mode : {k64, k32}) {
        MmioInstruction eoi = decode_ok({0xc7, 0x04, 0x25, 0xb0, 0x00, 0xe0, 0xfe, 0x00, 0x00, 0x00, 0x00}, mode);
        check_immediate(eoi, 4, 0);
        CHECK(eoi.length == 11);
    }

    // mov %r9d,(%rax): REX.R.
    MmioInstruction r9 = decode_ok({0x44, 0x89, 0x08});
    check_register(r9, MmioDirection::Write, 4, 9);

    // xchg %eax,(%rdx): the xAPIC write on CPUs with the 11AP erratum.
    MmioInstruction xchg = decode_ok({0x87, 0x02});
    check_register(xchg, MmioDirection::Exchange, 4, 0);

    // movl $0x12345678,0x320(%rdi): imm32 after a disp32.
    MmioInstruction imm = decode_ok({0xc7, 0x87, 0x20, 0x03, 0x00, 0x00, 0x78, 0x56, 0x34, 0x12});
    check_immediate(imm, 4, 0x12345678);
}

TEST_CASE("decode: ModR/M and SIB addressing forms have the right length", "[decode]")
{
    // mov 0x1234(%rip),%eax
    MmioInstruction rip = decode_ok({0x8b, 0x05, 0x34, 0x12, 0x00, 0x00});
    CHECK(rip.rip_relative);
    check_register(rip, MmioDirection::Read, 4, 0);
    // mov %edx,0x0(,%rcx,4): SIB, no base, disp32.
    check_register(decode_ok({0x89, 0x14, 0x8d, 0x00, 0x00, 0x00, 0x00}), MmioDirection::Write, 4, 2);
    // mov (%rdx,%rcx,4),%eax / 0x10(...) / 0x100(...)
    check_register(decode_ok({0x8b, 0x04, 0x8a}), MmioDirection::Read, 4, 0);
    check_register(decode_ok({0x8b, 0x44, 0x8a, 0x10}), MmioDirection::Read, 4, 0);
    check_register(decode_ok({0x8b, 0x84, 0x8a, 0x00, 0x01, 0x00, 0x00}), MmioDirection::Read, 4, 0);
    // mov 0x8(%rsp),%eax: base RSP always needs a SIB.
    check_register(decode_ok({0x8b, 0x44, 0x24, 0x08}), MmioDirection::Read, 4, 0);
    // mov 0x0(%r13),%eax: base 5 with mod 1 is R13/RBP + disp8, not the no-base form.
    check_register(decode_ok({0x41, 0x8b, 0x45, 0x00}), MmioDirection::Read, 4, 0);
    // mov (%r12),%eax: REX.B base 4 still needs the SIB.
    check_register(decode_ok({0x41, 0x8b, 0x04, 0x24}), MmioDirection::Read, 4, 0);
    // mov %r15,0x12345678(%r13,%r14,8): REX.WRXB, SIB, disp32.
    check_register(decode_ok({0x4f, 0x89, 0xbc, 0xf5, 0x78, 0x56, 0x34, 0x12}), MmioDirection::Write, 8, 15);
    // SIB base 5 with mod 0 and an index: disp32, no base.
    CHECK(decode_ok({0x8b, 0x04, 0x8d, 0, 0, 0, 0}).length == 7);
}

TEST_CASE("decode: 8-bit forms and the AH-BH versus SPL-DIL rule", "[decode]")
{
    check_register(decode_ok({0x88, 0x02}), MmioDirection::Write, 1, 0);                // mov %al,(%rdx)
    check_register(decode_ok({0x88, 0x22}), MmioDirection::Write, 1, 0, true);          // mov %ah,(%rdx)
    check_register(decode_ok({0x88, 0x3a}), MmioDirection::Write, 1, 3, true);          // mov %bh,(%rdx)
    check_register(decode_ok({0x40, 0x88, 0x22}), MmioDirection::Write, 1, 4);         // mov %spl,(%rdx)
    check_register(decode_ok({0x40, 0x88, 0x32}), MmioDirection::Write, 1, 6);         // mov %sil,(%rdx)
    check_register(decode_ok({0x8a, 0x42, 0x04}), MmioDirection::Read, 1, 0);           // mov 4(%rdx),%al
    check_register(decode_ok({0x8a, 0x62, 0x04}), MmioDirection::Read, 1, 0, true);     // mov 4(%rdx),%ah
    check_register(decode_ok({0x45, 0x86, 0x13}), MmioDirection::Exchange, 1, 10);     // xchg %r10b,(%r11)
    check_register(decode_ok({0x86, 0x2a}), MmioDirection::Exchange, 1, 1, true);      // xchg %ch,(%rdx)
    check_immediate(decode_ok({0xc6, 0x02, 0xff}), 1, 0xff);                           // movb $0xff,(%rdx)
    check_immediate(decode_ok({0x48, 0xc6, 0x02, 0x80}), 1, 0x80);                     // REX.W does not widen C6
    // In 16/32-bit code there is no REX: 4-7 are always AH-BH.
    check_register(decode_ok({0x88, 0x22}, k32), MmioDirection::Write, 1, 0, true);
}

TEST_CASE("decode: 16-bit and 64-bit operand sizes", "[decode]")
{
    check_register(decode_ok({0x66, 0x89, 0x02}), MmioDirection::Write, 2, 0);          // mov %ax,(%rdx)
    check_register(decode_ok({0x66, 0x8b, 0x42, 0x02}), MmioDirection::Read, 2, 0);     // mov 2(%rdx),%ax
    check_register(decode_ok({0x48, 0x89, 0x02}), MmioDirection::Write, 8, 0);          // mov %rax,(%rdx)
    check_register(decode_ok({0x48, 0x8b, 0x02}), MmioDirection::Read, 8, 0);           // mov (%rdx),%rax
    check_register(decode_ok({0x4c, 0x8b, 0x02}), MmioDirection::Read, 8, 8);           // mov (%rdx),%r8
    check_register(decode_ok({0x66, 0x48, 0x89, 0x02}), MmioDirection::Write, 8, 0);    // REX.W beats 66
    check_register(decode_ok({0x48, 0x87, 0x02}), MmioDirection::Exchange, 8, 0);       // xchg %rax,(%rdx)
    check_immediate(decode_ok({0x66, 0xc7, 0x02, 0x34, 0x12}), 2, 0x1234);              // movw $0x1234,(%rdx)
    // movq $-1,(%rdx): imm32 sign-extended to 64 bits.
    MmioInstruction q = decode_ok({0x48, 0xc7, 0x02, 0xff, 0xff, 0xff, 0xff});
    check_immediate(q, 8, 0xFFFF'FFFF'FFFF'FFFF);
    check_immediate(decode_ok({0x48, 0xc7, 0x02, 0x78, 0x56, 0x34, 0x12}), 8, 0x12345678);
}

TEST_CASE("decode: MOVZX and MOVSX", "[decode]")
{
    struct Case {
        Bytes bytes;
        unsigned size, register_size;
        Extension extension;
    };
    const Case cases[] = {
        {{0x0f, 0xb6, 0x02}, 1, 4, Extension::Zero},        // movzbl (%rdx),%eax
        {{0x0f, 0xb7, 0x42, 0x02}, 2, 4, Extension::Zero},  // movzwl 2(%rdx),%eax
        {{0x48, 0x0f, 0xb6, 0x02}, 1, 8, Extension::Zero},  // movzbq (%rdx),%rax
        {{0x66, 0x0f, 0xb6, 0x02}, 1, 2, Extension::Zero},  // movzbw (%rdx),%ax
        {{0x0f, 0xbe, 0x02}, 1, 4, Extension::Sign},        // movsbl (%rdx),%eax
        {{0x48, 0x0f, 0xbf, 0x02}, 2, 8, Extension::Sign},  // movswq (%rdx),%rax
    };
    for (const Case& c : cases) {
        MmioInstruction insn = decode_ok(c.bytes);
        CHECK(insn.direction == MmioDirection::Read);
        CHECK(insn.size == c.size);
        CHECK(insn.register_size == c.register_size);
        CHECK(insn.extension == c.extension);
        CHECK(insn.reg == 0);
        CHECK_FALSE(insn.high_byte);
    }
    // movzbl (%rdx),%esp with reg 4 is ESP, never AH: the destination is not 8-bit.
    MmioInstruction esp = decode_ok({0x0f, 0xb6, 0x22});
    CHECK(esp.reg == 4);
    CHECK_FALSE(esp.high_byte);
    // movzbl (%rdx),%r11d
    CHECK(decode_ok({0x44, 0x0f, 0xb6, 0x1a}).reg == 11);
}

TEST_CASE("decode: MOV with moffs (A0-A3)", "[decode]")
{
    // 64-bit mode: an 8-byte address (movabs), or 4 bytes with 67.
    MmioInstruction movabs = decode_ok({0xa1, 0xb0, 0x00, 0xe0, 0xfe, 0x00, 0x00, 0x00, 0x00});
    check_register(movabs, MmioDirection::Read, 4, 0);
    CHECK(movabs.length == 9);
    CHECK(decode_ok({0x67, 0xa1, 0xb0, 0x00, 0xe0, 0xfe}).length == 6);
    check_register(decode_ok({0xa3, 0xb0, 0x00, 0xe0, 0xfe, 0, 0, 0, 0}), MmioDirection::Write, 4, 0);
    check_register(decode_ok({0x48, 0xa1, 0xb0, 0x00, 0xe0, 0xfe, 0, 0, 0, 0}), MmioDirection::Read, 8, 0);
    // 32-bit mode: mov 0xfee000b0,%eax and mov %eax,0xfec00010 as a 32-bit kernel has them.
    check_register(decode_ok({0xa1, 0xb0, 0x00, 0xe0, 0xfe}, k32), MmioDirection::Read, 4, 0);
    check_register(decode_ok({0xa3, 0x10, 0x00, 0xc0, 0xfe}, k32), MmioDirection::Write, 4, 0);
    check_register(decode_ok({0xa2, 0x10, 0x00, 0xc0, 0xfe}, k32), MmioDirection::Write, 1, 0);
    // 16-bit mode: mov 0x1234,%al.
    check_register(decode_ok({0xa0, 0x34, 0x12}, k16), MmioDirection::Read, 1, 0);
}

TEST_CASE("decode: 32-bit and 16-bit code", "[decode]")
{
    check_register(decode_ok({0x89, 0x02}, k32), MmioDirection::Write, 4, 0);                           // mov %eax,(%edx)
    check_register(decode_ok({0x8b, 0x82, 0x20, 0x03, 0x00, 0x00}, k32), MmioDirection::Read, 4, 0);
    // movl $0,0xfee000b0: mod 0 rm 5 is an absolute disp32 outside 64-bit mode.
    MmioInstruction eoi = decode_ok({0xc7, 0x05, 0xb0, 0x00, 0xe0, 0xfe, 0x00, 0x00, 0x00, 0x00}, k32);
    check_immediate(eoi, 4, 0);
    CHECK_FALSE(eoi.rip_relative);
    CHECK(eoi.address_size == 4);
    check_register(decode_ok({0x66, 0x89, 0x02}, k32), MmioDirection::Write, 2, 0);
    // mov (%bx),%eax: 67 selects 16-bit addressing in 32-bit code.
    MmioInstruction bx = decode_ok({0x67, 0x8b, 0x07}, k32);
    CHECK(bx.address_size == 2);

    check_register(decode_ok({0x89, 0x07}, k16), MmioDirection::Write, 2, 0);           // mov %ax,(%bx)
    check_register(decode_ok({0x66, 0x89, 0x07}, k16), MmioDirection::Write, 4, 0);     // mov %eax,(%bx)
    check_register(decode_ok({0x8b, 0x46, 0x02}, k16), MmioDirection::Read, 2, 0);      // mov 2(%bp),%ax
    check_register(decode_ok({0x89, 0x36, 0x34, 0x12}, k16), MmioDirection::Write, 2, 6);  // mov %si,0x1234
    check_register(decode_ok({0x8b, 0x87, 0x00, 0x01}, k16), MmioDirection::Read, 2, 0);  // mov 0x100(%bx),%ax
    check_immediate(decode_ok({0xc7, 0x04, 0x78, 0x56}, k16), 2, 0x5678);               // movw $0x5678,(%si)
    // mov %ax,(%edx): 67 selects 32-bit addressing (with SIB forms) in 16-bit code.
    MmioInstruction edx = decode_ok({0x67, 0x89, 0x02}, k16);
    CHECK(edx.address_size == 4);
    CHECK(decode_ok({0x67, 0x89, 0x04, 0x8d, 0, 0, 0, 0}, k16).length == 8);
    // In 16-bit addressing rm 4 is [SI], no SIB: 89 04 is two bytes.
    CHECK(decode_ok({0x89, 0x04}, k16).length == 2);

    // 40-4F are INC/DEC outside 64-bit mode, not REX.
    DecodeFault inc = decode_error({0x44, 0x89, 0x08}, k32);
    CHECK(inc.error == DecodeError::UnsupportedOpcode);
    CHECK(inc.byte == 0x44);
    CHECK(inc.offset == 0);
}

TEST_CASE("decode: prefixes", "[decode]")
{
    // mov %gs:0x10,%eax
    MmioInstruction gs = decode_ok({0x65, 0x8b, 0x04, 0x25, 0x10, 0x00, 0x00, 0x00});
    CHECK(gs.segment == Segment::Gs);
    CHECK(gs.length == 8);
    const std::pair<uint8_t, Segment> segments[] = {{0x26, Segment::Es}, {0x2e, Segment::Cs}, {0x36, Segment::Ss},
                                                    {0x3e, Segment::Ds}, {0x64, Segment::Fs}, {0x65, Segment::Gs}};
    for (auto [prefix, segment] : segments)
        CHECK(decode_ok({prefix, 0x89, 0x02}).segment == segment);

    // mov (%edx),%eax: 67 gives 32-bit addressing in 64-bit mode, same ModR/M forms.
    MmioInstruction addr32 = decode_ok({0x67, 0x8b, 0x02});
    CHECK(addr32.address_size == 4);
    CHECK(decode_ok({0x67, 0x8b, 0x05, 0, 0, 0, 0}).rip_relative);

    // REX counts only directly before the opcode; elsewhere the CPU ignores it (SDM Vol. 2A §2.2.1).
    MmioInstruction ignored = decode_ok({0x44, 0x66, 0x89, 0x08});
    check_register(ignored, MmioDirection::Write, 2, 1);
    CHECK(decode_ok({0x48, 0x65, 0x89, 0x02}).size == 4);
    CHECK(decode_ok({0x41, 0x44, 0x89, 0x08}).reg == 9);  // of two REX, the last one counts
    CHECK(decode_ok({0x65, 0x44, 0x89, 0x08}).reg == 9);

    // XACQUIRE/XRELEASE hints, LOCK on XCHG.
    CHECK(decode_ok({0xf2, 0xf0, 0x87, 0x02}).direction == MmioDirection::Exchange);  // xacquire lock xchg
    CHECK(decode_ok({0xf3, 0x89, 0x02}).direction == MmioDirection::Write);           // xrelease mov
    CHECK(decode_ok({0xf3, 0xc7, 0x02, 1, 0, 0, 0}).immediate == 1);
    CHECK(decode_ok({0xf0, 0x87, 0x02}).direction == MmioDirection::Exchange);

    // Repeated prefixes up to the 15-byte limit.
    Bytes longest(13, 0x66);
    longest.insert(longest.end(), {0x89, 0x02});
    MmioInstruction fifteen = decode_ok(longest);
    CHECK(fifteen.length == 15);
    CHECK(fifteen.size == 2);
}

TEST_CASE("decode: rejections", "[decode]")
{
    struct Case {
        Bytes bytes;
        DecodeError error;
        uint8_t offset;
        uint8_t byte;
        CodeSize mode = k64;
    };
    Bytes too_long(14, 0x66);
    too_long.insert(too_long.end(), {0x89, 0x02});
    const Case cases[] = {
        {{}, DecodeError::Truncated, 0, 0},
        {{0x66}, DecodeError::Truncated, 1, 0},
        {{0x8b}, DecodeError::Truncated, 1, 0},
        {{0x0f}, DecodeError::Truncated, 1, 0},
        {{0x8b, 0x82, 0x20, 0x03}, DecodeError::Truncated, 4, 0},
        {{0x8b, 0x04}, DecodeError::Truncated, 2, 0},                      // SIB missing
        {{0xc7, 0x02, 0x00, 0x00}, DecodeError::Truncated, 4, 0},          // imm32 cut short
        {{0xa1, 0xb0, 0x00, 0xe0, 0xfe}, DecodeError::Truncated, 5, 0},    // moffs64
        {too_long, DecodeError::TooLong, 15, 0},
        {Bytes(15, 0x66), DecodeError::TooLong, 15, 0},
        {Bytes(20, 0x2e), DecodeError::TooLong, 15, 0},                    // only 15 are looked at
        // 11 prefixes, C7, ModR/M, SIB: the disp32 starting at 14 would end past 15.
        {{0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0xc7, 0x04, 0x25, 0, 0, 0, 0, 0, 0},
         DecodeError::TooLong, 14, 0},
        {{0x01, 0x02}, DecodeError::UnsupportedOpcode, 0, 0x01},           // add %eax,(%rdx)
        {{0xa5}, DecodeError::UnsupportedOpcode, 0, 0xa5},                 // movsl
        {{0xf3, 0xa5}, DecodeError::UnsupportedOpcode, 1, 0xa5},           // rep movsl
        {{0xff, 0x02}, DecodeError::UnsupportedOpcode, 0, 0xff},           // incl (%rdx)
        {{0x85, 0x02}, DecodeError::UnsupportedOpcode, 0, 0x85},           // test %eax,(%rdx)
        {{0x63, 0x02}, DecodeError::UnsupportedOpcode, 0, 0x63},           // movslq without REX.W
        {{0x0f, 0x10, 0x02}, DecodeError::UnsupportedOpcode, 1, 0x10},     // movups (%rdx),%xmm0
        {{0x66, 0x0f, 0x6e, 0x02}, DecodeError::UnsupportedOpcode, 2, 0x6e},  // movd (%rdx),%xmm0
        {{0x0f, 0xc3, 0x02}, DecodeError::UnsupportedOpcode, 1, 0xc3},     // movnti %eax,(%rdx)
        {{0xc5, 0xf8, 0x10, 0x02}, DecodeError::UnsupportedOpcode, 0, 0xc5},  // vmovups (VEX)
        {{0x89, 0xc2}, DecodeError::RegisterOperand, 1, 0xc2},             // mov %eax,%edx
        {{0x8b, 0xc2}, DecodeError::RegisterOperand, 1, 0xc2},
        {{0x0f, 0xb6, 0xc2}, DecodeError::RegisterOperand, 2, 0xc2},       // movzbl %dl,%eax
        {{0xc7, 0xc0, 1, 0, 0, 0}, DecodeError::RegisterOperand, 1, 0xc0}, // mov $1,%eax
        {{0x87, 0xd0}, DecodeError::RegisterOperand, 1, 0xd0},
        {{0xc7, 0x4a, 0x04, 0, 0, 0, 0}, DecodeError::BadOpcodeExtension, 1, 0x4a},
        {{0xc6, 0xf8, 0x01}, DecodeError::RegisterOperand, 1, 0xf8},       // xabort $1
        {{0xc6, 0x3a, 0x01}, DecodeError::BadOpcodeExtension, 1, 0x3a},
        {{0xf0, 0x89, 0x02}, DecodeError::LockPrefix, 1, 0x89},
        {{0xf0, 0x0f, 0xb6, 0x02}, DecodeError::LockPrefix, 1, 0x0f},
        {{0xf3, 0x8b, 0x02}, DecodeError::RepeatPrefix, 1, 0x8b},
        {{0xf2, 0x89, 0x02}, DecodeError::RepeatPrefix, 1, 0x89},
        {{0xf3, 0x0f, 0xb6, 0x02}, DecodeError::RepeatPrefix, 1, 0x0f},
        {{0xf3, 0xa1, 0, 0, 0, 0}, DecodeError::RepeatPrefix, 1, 0xa1, k32},
        {{0x4c, 0x0f, 0x10, 0x02}, DecodeError::UnsupportedOpcode, 2, 0x10},
    };
    for (const Case& c : cases) {
        INFO("bytes: " << c.bytes.size() << " first " << std::hex << int(c.bytes.empty() ? 0 : c.bytes[0]));
        DecodeFault fault = decode_error(c.bytes, c.mode);
        CHECK(fault.error == c.error);
        CHECK(int(fault.offset) == c.offset);
        CHECK(int(fault.byte) == c.byte);
    }
    // A null pointer is an empty instruction.
    auto null = decode_mmio(nullptr, 15, k64);
    REQUIRE_FALSE(null.ok());
    CHECK(null.error().error == DecodeError::Truncated);
}

TEST_CASE("decode: the value a write stores", "[decode]")
{
    GuestRegisters regs = sample_registers();
    auto value = [&](const Bytes& bytes) {
        auto result = write_value(decode_ok(bytes), regs);
        REQUIRE(result.ok());
        return result.value();
    };
    CHECK(value({0x89, 0x02}) == 0x5566'7788);                 // %eax
    CHECK(value({0x48, 0x89, 0x02}) == 0x1122'3344'5566'7788); // %rax
    CHECK(value({0x66, 0x89, 0x02}) == 0x7788);                // %ax
    CHECK(value({0x88, 0x02}) == 0x88);                        // %al
    CHECK(value({0x88, 0x22}) == 0x77);                        // %ah
    CHECK(value({0x88, 0x3a}) == 0x22);                        // %bh
    CHECK(value({0x40, 0x88, 0x32}) == 0x55);                  // %sil
    CHECK(value({0x44, 0x89, 0x08}) == 0x9999'9999);           // %r9d
    CHECK(value({0x4c, 0x89, 0x3a}) == 0xF0F0'F0F0'F0F0'F0F0); // %r15
    CHECK(value({0x87, 0x0a}) == 0x0101'0101);                 // xchg %ecx,(%rdx)
    CHECK(value({0xc7, 0x02, 0x78, 0x56, 0x34, 0x12}) == 0x12345678);
    CHECK(value({0x48, 0xc7, 0x02, 0xfe, 0xff, 0xff, 0xff}) == 0xFFFF'FFFF'FFFF'FFFE);
    CHECK(value({0xa3, 0, 0, 0, 0, 0, 0, 0, 0}) == 0x5566'7788);

    // SP, ESP, RSP and SPL live in the VMCS/VMCB.
    for (const Bytes& bytes : {Bytes{0x89, 0x22}, Bytes{0x40, 0x88, 0x22}, Bytes{0x48, 0x89, 0x22}}) {
        auto sp = write_value(decode_ok(bytes), regs);
        REQUIRE_FALSE(sp.ok());
        CHECK(sp.error() == DecodeError::StackPointer);
    }
}

TEST_CASE("decode: loading a value into the destination register", "[decode]")
{
    const GuestRegisters before = sample_registers();
    auto load = [&](const Bytes& bytes, uint64_t value) {
        GuestRegisters regs = before;
        Status<DecodeError> status = complete_read(decode_ok(bytes), regs, value);
        REQUIRE(status.ok());
        return regs;
    };
    // 32-bit destinations zero bits 63:32.
    CHECK(load({0x8b, 0x02}, 0xDEAD'BEEF).rax == 0xDEAD'BEEF);
    // 16- and 8-bit destinations merge; bits beyond the access size are dropped.
    CHECK(load({0x66, 0x8b, 0x02}, 0xFFFF'1234).rax == 0x1122'3344'5566'1234);
    CHECK(load({0x8a, 0x02}, 0xAB).rax == 0x1122'3344'5566'77AB);
    CHECK(load({0x8a, 0x22}, 0x1AB).rax == 0x1122'3344'5566'AB88);  // AH
    CHECK(load({0x8a, 0x3a}, 0xCD).rbx == 0x8877'6655'4433'CD11);   // BH
    CHECK(load({0x40, 0x8a, 0x32}, 0xCD).rsi == 0x5555'5555'5555'55CD);  // SIL
    CHECK(load({0x48, 0x8b, 0x02}, 0x0123'4567'89AB'CDEF).rax == 0x0123'4567'89AB'CDEF);
    CHECK(load({0x4c, 0x8b, 0x0a}, 7).r9 == 7);
    CHECK(load({0x44, 0x8b, 0x3a}, 0x1'0000'0007).r15 == 7);
    // MOVZX/MOVSX.
    CHECK(load({0x0f, 0xb6, 0x02}, 0xF0).rax == 0xF0);
    CHECK(load({0x66, 0x0f, 0xb6, 0x02}, 0xF0).rax == 0x1122'3344'5566'00F0);
    CHECK(load({0x0f, 0xbe, 0x02}, 0x80).rax == 0xFFFF'FF80);
    CHECK(load({0x0f, 0xbe, 0x02}, 0x7F).rax == 0x7F);
    CHECK(load({0x48, 0x0f, 0xbf, 0x02}, 0x8000).rax == 0xFFFF'FFFF'FFFF'8000);
    CHECK(load({0x66, 0x0f, 0xbe, 0x02}, 0x80).rax == 0x1122'3344'5566'FF80);
    CHECK(load({0x0f, 0xb7, 0x0a}, 0xABCD'1234).rcx == 0x1234);
    // XCHG: the device's old value lands in the register.
    CHECK(load({0x87, 0x0a}, 0x42).rcx == 0x42);
    CHECK(load({0xa1, 0, 0, 0, 0, 0, 0, 0, 0}, 0x99).rax == 0x99);
    // Nothing else changes.
    GuestRegisters after = load({0x8b, 0x1a}, 5);
    CHECK(after.rbx == 5);
    after.rbx = before.rbx;
    CHECK(memcmp(&after, &before, sizeof(after)) == 0);

    GuestRegisters regs = before;
    Status<DecodeError> store = complete_read(decode_ok({0x89, 0x02}), regs, 1);
    REQUIRE_FALSE(store.ok());
    CHECK(store.error() == DecodeError::NotARead);
    Status<DecodeError> esp = complete_read(decode_ok({0x8b, 0x22}), regs, 1);
    REQUIRE_FALSE(esp.ok());
    CHECK(esp.error() == DecodeError::StackPointer);
    CHECK(memcmp(&regs, &before, sizeof(regs)) == 0);
}

TEST_CASE("decode: the decoded access must match the reported one", "[decode]")
{
    CHECK(matches_access(decode_ok({0x89, 0x02}), true));
    CHECK_FALSE(matches_access(decode_ok({0x89, 0x02}), false));
    CHECK(matches_access(decode_ok({0x8b, 0x02}), false));
    CHECK_FALSE(matches_access(decode_ok({0x8b, 0x02}), true));
    CHECK(matches_access(decode_ok({0x87, 0x02}), true));
    CHECK(matches_access(decode_ok({0x87, 0x02}), false));
}

TEST_CASE("decode: the code-segment mode", "[decode]")
{
    CHECK(code_size(true, true, false) == k64);
    CHECK(code_size(true, false, true) == k32);   // compatibility mode
    CHECK(code_size(true, false, false) == k16);
    CHECK(code_size(false, true, true) == k32);   // L means nothing without LMA
    CHECK(code_size(false, false, false) == k16);
}

TEST_CASE("decode: random bytes never read out of bounds and decode consistently", "[decode]")
{
    // Half the inputs are mutations of valid instructions, so the accepting paths are hit too.
    const Bytes seeds[] = {
        {0x89, 0x02}, {0x8b, 0x82, 0x20, 0x03, 0x00, 0x00}, {0xc7, 0x04, 0x25, 0xb0, 0x00, 0xe0, 0xfe, 0, 0, 0, 0},
        {0x44, 0x89, 0x08}, {0x66, 0x0f, 0xb6, 0x02}, {0x48, 0xa1, 1, 2, 3, 4, 5, 6, 7, 8},
        {0x65, 0x8b, 0x04, 0x25, 0x10, 0x00, 0x00, 0x00}, {0x4f, 0x89, 0xbc, 0xf5, 0x78, 0x56, 0x34, 0x12},
    };
    test::Lcg rng{0x6d6d696f};
    const CodeSize modes[] = {k16, k32, k64};
    size_t accepted = 0;
    for (int i = 0; i < 200000; ++i) {
        Bytes bytes(rng.below(kMaxInstructionLength + 2));
        for (auto& b : bytes)
            b = static_cast<uint8_t>(rng.next());
        if (i % 2 == 0) {
            const Bytes& seed = seeds[rng.below(std::size(seeds))];
            for (size_t j = 0; j < seed.size() && j < bytes.size(); ++j)
                if (rng.below(4) != 0)
                    bytes[j] = seed[j];
        }
        CodeSize mode = modes[rng.below(3)];
        auto result = decode_exact(bytes, mode);
        if (!result.ok()) {
            const DecodeFault& fault = result.error();
            CHECK(fault.offset <= kMaxInstructionLength);
            CHECK(fault.offset <= bytes.size());
            if (fault.error == DecodeError::Truncated)
                CHECK(fault.offset == std::min(bytes.size(), kMaxInstructionLength));
            continue;
        }
        ++accepted;
        const MmioInstruction& insn = result.value();
        REQUIRE(insn.length >= 1);
        REQUIRE(insn.length <= std::min(bytes.size(), kMaxInstructionLength));
        CHECK((insn.size == 1 || insn.size == 2 || insn.size == 4 || insn.size == 8));
        CHECK(insn.register_size >= insn.size);
        CHECK(insn.reg < 16);
        CHECK((!insn.high_byte || (insn.reg < 4 && insn.size == 1)));
        CHECK((mode == k64 || (insn.reg < 8 && insn.size <= 4)));
        // The decoder looks at nothing beyond the instruction: the exact bytes decode the same.
        Bytes exact(bytes.begin(), bytes.begin() + insn.length);
        auto again = decode_exact(exact, mode);
        REQUIRE(again.ok());
        CHECK(same(again.value(), insn));
        // And the write-back helpers are total on whatever was accepted.
        GuestRegisters regs = sample_registers();
        if (insn.direction != MmioDirection::Read)
            (void)write_value(insn, regs);
        if (insn.direction != MmioDirection::Write)
            (void)complete_read(insn, regs, rng.next());
    }
    CHECK(accepted > 10000);
}

#include "vmm/vmx/exit_decode.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace vlibos::vmm;
using namespace vlibos::vmm::vmx;

TEST_CASE("VMX I/O exit qualification decodes port, size, direction, string and REP", "[vmx]")
{
    // OUT DX, AL to 0x3f8: size 0 (1 byte), direction 0.
    IoExit out = decode_io(0x03f80000);
    CHECK(out.port == 0x3f8);
    CHECK(out.size == 1);
    CHECK_FALSE(out.in);
    CHECK_FALSE(out.string);
    CHECK_FALSE(out.rep);
    // REP INSD from 0x1f0: size 3 (4 bytes), IN, string, REP.
    IoExit ins = decode_io((0x1f0ull << 16) | 3 | (1 << 3) | (1 << 4) | (1 << 5));
    CHECK(ins.port == 0x1f0);
    CHECK(ins.size == 4);
    CHECK(ins.in);
    CHECK(ins.string);
    CHECK(ins.rep);
    CHECK(decode_io((0x80ull << 16) | 1 | (1 << 6)).size == 2);
}

TEST_CASE("VMX control-register exit qualification", "[vmx]")
{
    // MOV CR3, RBX (write): CR 3, type 0, GPR 3.
    ControlRegisterExit write = decode_cr(3 | (0 << 4) | (3 << 8));
    CHECK(write.cr == 3);
    CHECK(write.write);
    CHECK(write.gpr == 3);
    // MOV R12, CR4 (read): type 1.
    ControlRegisterExit read = decode_cr(4 | (1 << 4) | (12 << 8));
    CHECK(read.cr == 4);
    CHECK_FALSE(read.write);
    CHECK(read.gpr == 12);
    // LMSW writes CR0.
    CHECK(decode_cr(0 | (3 << 4)).write);
}

TEST_CASE("VMX EPT violation qualification", "[vmx]")
{
    // A write to a page mapped read-only: access bit 1, readable bit 3.
    NestedPageFaultExit ro = decode_ept_violation((1 << 1) | (1 << 3) | (1 << 7), 0x200000);
    CHECK(ro.guest_physical == 0x200000);
    CHECK_FALSE(ro.read);
    CHECK(ro.write);
    CHECK_FALSE(ro.execute);
    CHECK(ro.mapped);
    // A fetch from nothing.
    NestedPageFaultExit none = decode_ept_violation(1 << 2, 0x40000000);
    CHECK(none.execute);
    CHECK_FALSE(none.mapped);
}

TEST_CASE("VMX exits decode into vendor-neutral reasons", "[vmx]")
{
    ExitInfo info;
    RawExit raw;
    raw.guest_rip = 0x8010;
    raw.instruction_length = 3;

    raw.reason = 18;
    decode_exit(raw, info);
    CHECK(info.reason == ExitReason::Hypercall);
    CHECK(info.guest_rip == 0x8010);
    CHECK(info.instruction_length == 3);

    raw.reason = 10;
    decode_exit(raw, info);
    CHECK(info.reason == ExitReason::Cpuid);
    raw.reason = 12;
    decode_exit(raw, info);
    CHECK(info.reason == ExitReason::Hlt);
    raw.reason = 52;
    decode_exit(raw, info);
    CHECK(info.reason == ExitReason::Timer);
    raw.reason = 7;
    decode_exit(raw, info);
    CHECK(info.reason == ExitReason::InterruptWindow);
    raw.reason = 1;
    decode_exit(raw, info);
    CHECK(info.reason == ExitReason::ExternalInterrupt);
    raw.reason = 2;
    decode_exit(raw, info);
    CHECK(info.reason == ExitReason::TripleFault);

    raw.reason = 31;
    raw.guest_rcx = 0xffffffff'c0000080;
    decode_exit(raw, info);
    CHECK(info.reason == ExitReason::MsrRead);
    CHECK(info.msr.index == 0xc0000080);
    raw.reason = 32;
    decode_exit(raw, info);
    CHECK(info.reason == ExitReason::MsrWrite);

    raw.reason = 30;
    raw.qualification = 0x00e90000;  // OUT to 0xe9
    decode_exit(raw, info);
    CHECK(info.reason == ExitReason::IoPort);
    CHECK(info.io.port == 0xe9);

    raw.reason = 48;
    raw.qualification = 1;  // read of an unmapped page
    raw.guest_physical = 0x40000000;
    decode_exit(raw, info);
    CHECK(info.reason == ExitReason::NestedPageFault);
    CHECK(info.npf.guest_physical == 0x40000000);
    CHECK(info.npf.read);
    CHECK_FALSE(info.npf.mapped);
    CHECK(info.raw_info2 == 0x40000000);

    // Any other exit leaves the stale guest-physical-address field out of the report.
    raw.reason = 2;  // triple fault
    decode_exit(raw, info);
    CHECK(info.reason == ExitReason::TripleFault);
    CHECK(info.raw_info2 == 0);

    raw.reason = 49;
    decode_exit(raw, info);
    CHECK(info.reason == ExitReason::NestedPageFault);
    CHECK(info.npf.mapped);

    raw.reason = 0;
    raw.interruption_info = 0x80000b0d;  // #GP, hardware exception, error code, valid
    raw.interruption_error_code = 0x18;
    decode_exit(raw, info);
    CHECK(info.reason == ExitReason::Exception);
    CHECK(info.exception_vector == 13);
    CHECK(info.exception_has_error_code);
    CHECK(info.exception_error_code == 0x18);

    raw.reason = 55;  // XSETBV: always exits, never emulated
    decode_exit(raw, info);
    CHECK(info.reason == ExitReason::Unhandled);
    CHECK(info.raw_reason == 55);
}

TEST_CASE("VMX #AC and #DB exits carry vector, error code and DR6 bits", "[vmx]")
{
    ExitInfo info;
    RawExit raw;
    raw.reason = 0;
    raw.guest_rip = 0x8020;
    raw.instruction_length = 3;  // not valid for a hardware exception: must not be used

    // #AC: hardware exception (type 3), error code delivered (bit 11), valid; error code 0.
    raw.interruption_info = interruption::make(exception_vector::kAlignmentCheck, interruption::Type::HardwareException, true);
    CHECK(raw.interruption_info == 0x80000b11u);
    raw.interruption_error_code = 0;
    decode_exit(raw, info);
    CHECK(info.reason == ExitReason::Exception);
    CHECK(info.exception_vector == 17);
    CHECK(info.exception_has_error_code);
    CHECK(info.exception_error_code == 0);
    CHECK(info.instruction_length == 0);
    CHECK(info.guest_rip == 0x8020);

    // #DB from a single step: no error code; the qualification holds DR6.BS.
    raw.interruption_info = interruption::make(exception_vector::kDebug, interruption::Type::HardwareException, false);
    CHECK(raw.interruption_info == 0x80000301u);
    raw.interruption_error_code = 0xdead;  // stale: bit 11 is clear
    raw.qualification = qualification::debug::kSingleStep;
    decode_exit(raw, info);
    CHECK(info.reason == ExitReason::Exception);
    CHECK(info.exception_vector == 1);
    CHECK_FALSE(info.exception_has_error_code);
    CHECK(info.exception_error_code == 0);
    CHECK(info.raw_qualification == (1u << 14));
    CHECK(info.instruction_length == 0);

    // Both are in the exception bitmap the backend writes.
    CHECK(exception_bitmap::of(exception_vector::kDebug) == (1u << 1));
    CHECK(exception_bitmap::of(exception_vector::kAlignmentCheck) == (1u << 17));
}

TEST_CASE("VMX host NMI exits decode as Nmi, not as a guest exception", "[vmx]")
{
    ExitInfo info;
    RawExit raw;
    raw.reason = 0;
    raw.interruption_info = interruption::make(2, interruption::Type::Nmi, false);
    CHECK(raw.interruption_info == 0x80000202u);
    decode_exit(raw, info);
    CHECK(info.reason == ExitReason::Nmi);
    CHECK(info.raw_reason == 0);
    CHECK(info.instruction_length == 0);
}

TEST_CASE("VMX INVD and WBINVD decode as CacheControl with their length; XSETBV stops the VM", "[vmx]")
{
    ExitInfo info;
    RawExit raw;
    raw.guest_rip = 0x8030;
    raw.instruction_length = 2;  // 0F 08 / 0F 09

    raw.reason = 13;  // INVD
    decode_exit(raw, info);
    CHECK(info.reason == ExitReason::CacheControl);
    CHECK(info.instruction_length == 2);
    CHECK(info.raw_reason == 13);

    raw.reason = 54;  // WBINVD
    decode_exit(raw, info);
    CHECK(info.reason == ExitReason::CacheControl);
    CHECK(info.instruction_length == 2);
    CHECK(info.raw_reason == 54);

    raw.instruction_length = 3;  // a prefixed WBINVD (66 0F 09): the CPU's length counts
    decode_exit(raw, info);
    CHECK(info.instruction_length == 3);

    raw.reason = 55;  // XSETBV
    decode_exit(raw, info);
    CHECK(info.reason == ExitReason::Unhandled);
    CHECK(info.raw_reason == 55);

    CHECK(secondary::kWbinvdExiting == (1u << 6));  // SDM Table 25-7
}

TEST_CASE("VMX entry failures are explained", "[vmx]")
{
    ExitInfo info;
    RawExit raw;
    raw.reason = 0x80000000u | 33;
    decode_exit(raw, info);
    CHECK(info.reason == ExitReason::EntryFailed);
    REQUIRE(info.entry_failure != nullptr);
    CHECK(std::string(info.entry_failure).find("invalid guest state") != std::string::npos);

    raw.qualification = 4;
    decode_exit(raw, info);
    CHECK(std::string(info.entry_failure).find("VMCS link pointer") != std::string::npos);

    raw.reason = 0x80000000u | 34;
    decode_exit(raw, info);
    CHECK(std::string(info.entry_failure).find("MSR") != std::string::npos);
    raw.reason = 0x80000000u | 41;
    decode_exit(raw, info);
    CHECK(std::string(info.entry_failure).find("machine-check") != std::string::npos);

    CHECK(std::string(describe_instruction_error(7)) == "VM entry with invalid control field(s)");
    CHECK(std::string(describe_instruction_error(8)) == "VM entry with invalid host-state field(s)");
    CHECK(std::string(describe_instruction_error(11)) == "VMPTRLD with incorrect VMCS revision identifier");
    CHECK(std::string(describe_instruction_error(99)) == "unknown VM-instruction error");
}

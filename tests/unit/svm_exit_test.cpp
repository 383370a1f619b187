// Decoding #VMEXIT records into vmm::ExitInfo (AMD SVM).
#include "vmm/svm/svm_exit.hpp"
#include "arch/x86_64/lapic_timer.hpp"

#include <catch2/catch.hpp>

using namespace vlibos::svm;
using vlibos::x86::one_shot_count;
using vlibos::vmm::ExitInfo;
using vlibos::vmm::ExitReason;

namespace {

ExitInfo decode(ExitRecord r)
{
    ExitInfo out;
    decode_exit(r, out);
    return out;
}

ExitRecord record(uint64_t code, uint64_t info1 = 0, uint64_t info2 = 0)
{
    ExitRecord r{};
    r.exit_code = code;
    r.exit_info1 = info1;
    r.exit_info2 = info2;
    r.rip = 0x8010;
    return r;
}

} // namespace

TEST_CASE("Intercepted instructions decode with their fixed lengths without NRIP save", "[svm]")
{
    ExitInfo e = decode(record(exit_code::kCpuid));
    CHECK(e.reason == ExitReason::Cpuid);
    CHECK(e.instruction_length == 2);
    CHECK(e.guest_rip == 0x8010);
    CHECK(e.raw_reason == 0x72);

    e = decode(record(exit_code::kHlt));
    CHECK(e.reason == ExitReason::Hlt);
    CHECK(e.instruction_length == 1);

    e = decode(record(exit_code::kVmmcall));
    CHECK(e.reason == ExitReason::Hypercall);
    CHECK(e.instruction_length == 3);
}

TEST_CASE("NRIP save gives the instruction length when the CPU has it", "[svm]")
{
    ExitRecord r = record(exit_code::kCpuid);
    r.next_rip = 0x8013;  // e.g. a prefixed CPUID
    r.next_rip_valid = true;
    CHECK(decode(r).instruction_length == 3);
    r.next_rip = 0x8010;  // nonsense: unknown rather than wrong
    CHECK(decode(r).instruction_length == 0);
}

TEST_CASE("IOIO EXITINFO1 decodes port, size, direction, string and REP", "[svm]")
{
    // OUT DX, AL to port 0xE9; next RIP in EXITINFO2.
    ExitInfo e = decode(record(exit_code::kIoio, (0xe9ull << 16) | ioio::kSize8, 0x8011));
    CHECK(e.reason == ExitReason::IoPort);
    CHECK(e.io.port == 0xe9);
    CHECK(e.io.size == 1);
    CHECK_FALSE(e.io.in);
    CHECK_FALSE(e.io.string);
    CHECK_FALSE(e.io.rep);
    CHECK(e.instruction_length == 1);

    // IN EAX, 0x71 (2 bytes, with a 66h prefix in real mode: 3).
    e = decode(record(exit_code::kIoio, (0x71ull << 16) | ioio::kSize32 | ioio::kIn, 0x8013));
    CHECK(e.io.port == 0x71);
    CHECK(e.io.size == 4);
    CHECK(e.io.in);
    CHECK(e.instruction_length == 3);

    // REP OUTSW to port 0xFFFF.
    e = decode(record(exit_code::kIoio, (0xffffull << 16) | ioio::kSize16 | ioio::kString | ioio::kRep, 0x8012));
    CHECK(e.io.port == 0xffff);
    CHECK(e.io.size == 2);
    CHECK(e.io.string);
    CHECK(e.io.rep);
}

TEST_CASE("MSR exits take the index from ECX and the direction from EXITINFO1", "[svm]")
{
    ExitRecord r = record(exit_code::kMsr, msr_access::kRead);
    r.guest_rcx = 0xffffffff'c0000080ull;  // only ECX counts
    ExitInfo e = decode(r);
    CHECK(e.reason == ExitReason::MsrRead);
    CHECK(e.msr.index == 0xc0000080u);
    CHECK(e.instruction_length == 2);
    r.exit_info1 = msr_access::kWrite;
    CHECK(decode(r).reason == ExitReason::MsrWrite);
}

TEST_CASE("Nested page faults decode the GPA and the access", "[svm]")
{
    // A write to a present read-only page.
    ExitInfo e = decode(record(exit_code::kNpf, npf::kPresent | npf::kWrite | npf::kUser | npf::kFinalTranslation,
                               0x200010));
    CHECK(e.reason == ExitReason::NestedPageFault);
    CHECK(e.npf.guest_physical == 0x200010);
    CHECK(e.npf.mapped);
    CHECK(e.npf.write);
    CHECK_FALSE(e.npf.read);
    CHECK_FALSE(e.npf.execute);

    // A read of an unmapped page.
    e = decode(record(exit_code::kNpf, npf::kUser | npf::kFinalTranslation, 0x40000000));
    CHECK_FALSE(e.npf.mapped);
    CHECK(e.npf.read);

    // A fetch from a no-execute page.
    e = decode(record(exit_code::kNpf, npf::kPresent | npf::kUser | npf::kFetch, 0x201000));
    CHECK(e.npf.execute);
    CHECK_FALSE(e.npf.read);
}

TEST_CASE("Interrupt, window, shutdown, exception and invalid exits", "[svm]")
{
    CHECK(decode(record(exit_code::kVintr)).reason == ExitReason::InterruptWindow);
    CHECK(decode(record(exit_code::kIntr)).reason == ExitReason::ExternalInterrupt);
    ExitRecord timer = record(exit_code::kIntr);
    timer.timer_expired = true;
    CHECK(decode(timer).reason == ExitReason::Timer);
    CHECK(decode(record(exit_code::kNmi)).reason == ExitReason::Nmi);
    CHECK(decode(record(exit_code::kShutdown)).reason == ExitReason::TripleFault);
    CHECK(decode(record(exit_code::kInvalid)).reason == ExitReason::EntryFailed);
    CHECK(decode(record(0xffffffffull)).reason == ExitReason::EntryFailed);  // as QEMU 7.2 stores it

    ExitInfo e = decode(record(exit_code::kExceptionFirst + 13, 0x18));
    CHECK(e.reason == ExitReason::Exception);
    CHECK(e.exception_vector == 13);
    CHECK(e.exception_has_error_code);
    CHECK(e.exception_error_code == 0x18);

    e = decode(record(exit_code::kVmrun));
    CHECK(e.reason == ExitReason::Unhandled);
    CHECK(e.raw_reason == 0x80);
}

TEST_CASE("#AC and #DB intercepts decode with their error code", "[svm]")
{
    // #AC (exit code 51h): error code 0 in EXITINFO1; re-injected, so no length.
    ExitRecord r = record(exit_code::kExceptionFirst + exception_vector::kAlignmentCheck, 0);
    r.next_rip = 0x8013;
    r.next_rip_valid = true;
    CHECK(r.exit_code == 0x51);
    ExitInfo e = decode(r);
    CHECK(e.reason == ExitReason::Exception);
    CHECK(e.exception_vector == 17);
    CHECK(e.exception_has_error_code);
    CHECK(e.exception_error_code == 0);
    CHECK(e.instruction_length == 0);

    // #DB (exit code 41h): no error code, whatever EXITINFO1 holds.
    e = decode(record(exit_code::kExceptionFirst + exception_vector::kDebug, 0xdead));
    CHECK(e.reason == ExitReason::Exception);
    CHECK(e.exception_vector == 1);
    CHECK_FALSE(e.exception_has_error_code);
    CHECK(e.exception_error_code == 0);
    CHECK(e.instruction_length == 0);
    CHECK(e.raw_qualification == 0xdead);
}

TEST_CASE("INVD and WBINVD decode as CacheControl; XSETBV stays unhandled", "[svm]")
{
    ExitInfo e = decode(record(exit_code::kInvd));
    CHECK(e.reason == ExitReason::CacheControl);
    CHECK(e.raw_reason == 0x76);
    CHECK(e.instruction_length == 2);

    e = decode(record(exit_code::kWbinvd));
    CHECK(e.reason == ExitReason::CacheControl);
    CHECK(e.raw_reason == 0x89);
    CHECK(e.instruction_length == 2);

    ExitRecord r = record(exit_code::kWbinvd);
    r.next_rip = 0x8013;  // 66 0F 09: NRIP counts the prefix
    r.next_rip_valid = true;
    CHECK(decode(r).instruction_length == 3);

    e = decode(record(exit_code::kXsetbv));
    CHECK(e.reason == ExitReason::Unhandled);
    CHECK(e.raw_reason == 0x8d);
}

TEST_CASE("CR exits need decode assists to name the register", "[svm]")
{
    ExitRecord r = record(exit_code::kCrWriteFirst + 3, cr_access::kMovCr | 7);
    CHECK(decode(r).reason == ExitReason::Unhandled);
    r.decode_assists = true;
    ExitInfo e = decode(r);
    CHECK(e.reason == ExitReason::ControlRegister);
    CHECK(e.cr.cr == 3);
    CHECK(e.cr.write);
    CHECK(e.cr.gpr == 7);
    r.exit_code = exit_code::kCrReadFirst + 0;
    e = decode(r);
    CHECK(e.cr.cr == 0);
    CHECK_FALSE(e.cr.write);
}

TEST_CASE("LAPIC one-shot counts from TSC ticks", "[svm]")
{
    bool clamped = true;
    CHECK(one_shot_count(1000, 1ull << 32, clamped) == 1000);  // LAPIC as fast as the TSC
    CHECK_FALSE(clamped);
    CHECK(one_shot_count(1000, 1ull << 31, clamped) == 500);   // half as fast
    CHECK(one_shot_count(1, 1ull << 30, clamped) == 1);        // never 0: 0 would stop the timer
    CHECK(one_shot_count(1ull << 40, 1ull << 32, clamped) == 0xffffffffu);
    CHECK(clamped);
}

#include "vmm/devices/virtual_lapic.hpp"

#include <catch2/catch.hpp>

#include <vector>

#include "test_random.hpp"

using namespace vlibos::vmm::devices;
using L = VirtualLapic;

namespace {

// TSC at 3 GHz, APIC timer input at 1 GHz: one timer tick (divide 1) is 3 TSC ticks.
constexpr L::Clock kClock{3'000'000'000ull, 1'000'000'000ull, 0};

uint32_t rd(L& apic, uint32_t offset, Ticks now = 0)
{
    auto r = apic.read(offset, 4, now);
    REQUIRE(r.ok());
    return r.value();
}

LapicEffect wr(L& apic, uint32_t offset, uint32_t value, Ticks now = 0)
{
    auto r = apic.write(offset, 4, value, now);
    REQUIRE(r.ok());
    return r.value();
}

L enabled_apic(uint8_t id = 0)
{
    L apic(id, id == 0, kClock);
    wr(apic, L::kSvr, 0x1ff);  // software enable, spurious vector 0xFF
    return apic;
}

uint32_t latched_esr(L& apic)
{
    wr(apic, L::kEsr, 0);
    return rd(apic, L::kEsr);
}

} // namespace

TEST_CASE("lapic: power-up register values", "[devices][lapic]")
{
    L apic(3, false, kClock);
    CHECK(rd(apic, L::kId) == 0x0300'0000);
    CHECK(rd(apic, L::kVersion) == 0x0005'0014);
    CHECK(rd(apic, L::kTpr) == 0);
    CHECK(rd(apic, L::kPpr) == 0);
    CHECK(rd(apic, L::kLdr) == 0);
    CHECK(rd(apic, L::kDfr) == 0xffff'ffff);
    CHECK(rd(apic, L::kSvr) == 0xff);
    for (uint32_t off = L::kLvtTimer; off <= L::kLvtError; off += 0x10)
        CHECK(rd(apic, off) == 0x0001'0000);
    for (uint32_t off = L::kIsr; off < L::kIrr + 0x80; off += 0x10)
        CHECK(rd(apic, off) == 0);
    CHECK(rd(apic, L::kTimerInitial) == 0);
    CHECK(rd(apic, L::kTimerCurrent) == 0);
    CHECK(rd(apic, L::kTimerDivide) == 0);
    CHECK(rd(apic, L::kIcrLow) == 0);
    CHECK(apic.apic_base() == 0xfee0'0800);  // enabled, not the BSP
    CHECK(L(0, true, kClock).apic_base() == 0xfee0'0900);
    CHECK_FALSE(apic.software_enabled());
}

TEST_CASE("lapic: unaligned, odd-sized and illegal accesses are reported", "[devices][lapic]")
{
    L apic = enabled_apic();
    CHECK(apic.read(L::kTpr, 1, 0).error() == LapicError::BadSize);
    CHECK(apic.read(L::kTpr, 2, 0).error() == LapicError::BadSize);
    CHECK(apic.read(L::kTpr, 8, 0).error() == LapicError::BadSize);
    CHECK(apic.read(L::kTpr + 4, 4, 0).error() == LapicError::Unaligned);
    CHECK(apic.read(L::kTpr + 1, 4, 0).error() == LapicError::Unaligned);
    CHECK(apic.write(L::kTpr + 8, 4, 0xff, 0).error() == LapicError::Unaligned);
    CHECK(apic.read(0x1000, 4, 0).error() == LapicError::OutsidePage);
    CHECK(apic.write(0xffff'fff0, 4, 0, 0).error() == LapicError::OutsidePage);
    CHECK(rd(apic, L::kTpr) == 0);  // nothing was written

    CHECK(apic.read(L::kEoi, 4, 0).error() == LapicError::WriteOnly);
    for (uint32_t off : {L::kVersion, L::kPpr, L::kApr, L::kRrd, L::kIsr, L::kTmr + 0x70, L::kIrr + 0x30,
                         L::kTimerCurrent})
        CHECK(apic.write(off, 4, 0xffff'ffff, 0).error() == LapicError::ReadOnly);
    CHECK(apic.write(L::kId, 4, 0x0700'0000, 0).error() == LapicError::IdFixed);
    CHECK(rd(apic, L::kId) == 0);
    CHECK(rd(apic, L::kVersion) == 0x0005'0014);
    CHECK(rd(apic, L::kIsr) == 0);
    CHECK(latched_esr(apic) == 0);  // none of these is an APIC error

    // Reserved offsets (no CMCI LVT: max LVT 5; no x2APIC self IPI; nothing at 0x000) set ESR
    // bit 7, visible after the next ESR write (SDM 11.5.3).
    for (uint32_t off : {0x000u, 0x010u, 0x040u, 0x2f0u, 0x3a0u, 0x3f0u, 0x400u, 0xff0u}) {
        CHECK(apic.read(off, 4, 0).error() == LapicError::IllegalRegister);
        CHECK(apic.write(off, 4, 1, 0).error() == LapicError::IllegalRegister);
    }
    CHECK(rd(apic, L::kEsr) == 0);
    CHECK(latched_esr(apic) == L::kEsrIllegalRegister);
    CHECK(latched_esr(apic) == 0);  // the write cleared it
    CHECK(apic.stats().errors >= 30);
    CHECK(std::string(describe(LapicError::Unaligned)).find("16-byte") != std::string::npos);
}

TEST_CASE("lapic: writable bits of each register", "[devices][lapic]")
{
    L apic(1, false, kClock);
    // While software-disabled the LVT mask bits stay set (SDM 11.4.7.2).
    wr(apic, L::kLvtLint0, 0);
    CHECK(rd(apic, L::kLvtLint0) == 0x0001'0000);

    wr(apic, L::kSvr, 0xffff'ffff);
    CHECK(rd(apic, L::kSvr) == 0x3ff);  // no EOI-broadcast suppression bit
    CHECK(apic.software_enabled());
    wr(apic, L::kTpr, 0xffff'ffff);
    CHECK(rd(apic, L::kTpr) == 0xff);
    wr(apic, L::kLdr, 0xffff'ffff);
    CHECK(rd(apic, L::kLdr) == 0xff00'0000);
    wr(apic, L::kDfr, 0);
    CHECK(rd(apic, L::kDfr) == 0x0fff'ffff);
    wr(apic, L::kIcrHigh, 0xffff'ffff);
    CHECK(rd(apic, L::kIcrHigh) == 0xff00'0000);
    wr(apic, L::kLvtTimer, 0xfff9'ffff);          // mode 00: one-shot
    CHECK(rd(apic, L::kLvtTimer) == 0x0001'00ff);
    wr(apic, L::kLvtThermal, 0xffff'ffff);
    CHECK(rd(apic, L::kLvtThermal) == 0x0001'07ff);
    wr(apic, L::kLvtPerf, 0xffff'ffff);
    CHECK(rd(apic, L::kLvtPerf) == 0x0001'07ff);
    wr(apic, L::kLvtLint0, 0xffff'ffff);
    CHECK(rd(apic, L::kLvtLint0) == 0x0001'a7ff);  // delivery status and remote IRR read-only
    wr(apic, L::kLvtLint1, 0x0000'0400);            // NMI, unmasked
    CHECK(rd(apic, L::kLvtLint1) == 0x0000'0400);
    wr(apic, L::kLvtError, 0xffff'ffff);
    CHECK(rd(apic, L::kLvtError) == 0x0001'00ff);
    wr(apic, L::kTimerDivide, 0xffff'ffff);
    CHECK(rd(apic, L::kTimerDivide) == 0xb);
    CHECK(apic.write(L::kLvtTimer, 4, 0x0006'0020, 0).error() == LapicError::ReservedTimerMode);
    CHECK(rd(apic, L::kLvtTimer) == 0x0001'00ff);

    // Software disable masks every LVT entry again.
    wr(apic, L::kSvr, 0xff);
    CHECK(rd(apic, L::kLvtLint1) == 0x0001'0400);
    CHECK(rd(apic, L::kLvtError) == 0x0001'00ff);
}

TEST_CASE("lapic: ICR writes become IPI effects", "[devices][lapic]")
{
    L apic = enabled_apic();
    auto send = [&](uint32_t high, uint32_t low) {
        wr(apic, L::kIcrHigh, high);
        return wr(apic, L::kIcrLow, low);
    };

    SECTION("fixed, physical")
    {
        LapicEffect e = send(0x0200'0000, 0x0000'4041);
        REQUIRE(e.kind == LapicEffect::Kind::Ipi);
        CHECK(e.ipi.vector == 0x41);
        CHECK(e.ipi.delivery == DeliveryMode::Fixed);
        CHECK(e.ipi.destination_mode == DestinationMode::Physical);
        CHECK(e.ipi.shorthand == Shorthand::None);
        CHECK(e.ipi.destination == 2);
        CHECK_FALSE(e.ipi.level_triggered);
        CHECK(rd(apic, L::kIcrLow) == 0x0000'4041);  // delivery status: idle
    }
    SECTION("logical, lowest priority, level trigger flag ignored")
    {
        LapicEffect e = send(0x0c00'0000, 0x0000'c951);
        REQUIRE(e.kind == LapicEffect::Kind::Ipi);
        CHECK(e.ipi.delivery == DeliveryMode::LowestPriority);
        CHECK(e.ipi.destination_mode == DestinationMode::Logical);
        CHECK(e.ipi.destination == 0x0c);
        CHECK(e.ipi.vector == 0x51);
        CHECK_FALSE(e.ipi.level_triggered);
    }
    SECTION("NMI, INIT, SIPI as Linux sends them")
    {
        LapicEffect nmi = send(0x0100'0000, 0x0000'0400);
        CHECK(nmi.ipi.delivery == DeliveryMode::Nmi);
        CHECK(nmi.ipi.vector == 0);
        LapicEffect init = send(0x0100'0000, 0x0000'c500);  // level, assert, INIT
        REQUIRE(init.kind == LapicEffect::Kind::Ipi);
        CHECK(init.ipi.delivery == DeliveryMode::Init);
        LapicEffect deassert = send(0x0100'0000, 0x0000'8500);  // level, de-assert, INIT
        CHECK(deassert.kind == LapicEffect::Kind::None);
        LapicEffect sipi = send(0x0100'0000, 0x0000'069a);
        REQUIRE(sipi.kind == LapicEffect::Kind::Ipi);
        CHECK(sipi.ipi.delivery == DeliveryMode::Startup);
        CHECK(sipi.ipi.vector == 0x9a);
        CHECK(sipi.ipi.destination == 1);
        CHECK(apic.stats().ipis == 3);
        CHECK(apic.stats().ipis_dropped == 1);
    }
    SECTION("shorthands")
    {
        LapicEffect self = send(0x0500'0000, 0x0004'0030);
        CHECK(self.ipi.shorthand == Shorthand::Self);
        CHECK(self.ipi.destination == 0);  // the destination field is ignored
        CHECK(send(0, 0x0008'0031).ipi.shorthand == Shorthand::AllIncludingSelf);
        LapicEffect others = send(0, 0x000c'0400);
        CHECK(others.ipi.shorthand == Shorthand::AllExcludingSelf);
        CHECK(others.ipi.delivery == DeliveryMode::Nmi);
        // Self and All Including Self take only Fixed.
        CHECK(send(0, 0x0004'0400).kind == LapicEffect::Kind::None);
        CHECK(send(0, 0x0008'0500).kind == LapicEffect::Kind::None);
        CHECK(send(0, 0x0004'0130).kind == LapicEffect::Kind::None);
    }
    SECTION("reserved delivery modes are dropped, SMI is left to the router to refuse")
    {
        CHECK(send(0x0100'0000, 0x0000'0330).kind == LapicEffect::Kind::None);  // 011b
        CHECK(send(0x0100'0000, 0x0000'0730).kind == LapicEffect::Kind::None);  // 111b ExtINT
        LapicEffect smi = send(0x0100'0000, 0x0000'0200);
        REQUIRE(smi.kind == LapicEffect::Kind::Ipi);
        CHECK(smi.ipi.delivery == DeliveryMode::Smi);
    }
    SECTION("an illegal vector is not sent and sets ESR 'send illegal vector'")
    {
        CHECK(send(0x0100'0000, 0x0000'000f).kind == LapicEffect::Kind::None);
        CHECK(send(0x0100'0000, 0x0000'0105).kind == LapicEffect::Kind::None);  // lowest priority too
        CHECK(latched_esr(apic) == L::kEsrSendIllegalVector);
        CHECK(send(0x0100'0000, 0x0000'0603).kind == LapicEffect::Kind::Ipi);  // a SIPI vector is a page
        CHECK(apic.stats().illegal_vectors == 2);
    }
}

TEST_CASE("lapic: IRR, ISR and PPR priority order, EOI", "[devices][lapic]")
{
    L apic = enabled_apic();
    CHECK(apic.pending_vector() == 0);
    REQUIRE(apic.post(0x31));
    REQUIRE(apic.post(0x45));
    REQUIRE(apic.post(0x52));
    CHECK(rd(apic, L::kIrr + 0x10) == (1u << (0x31 - 32)));  // IRR[63:32]
    CHECK(rd(apic, L::kIrr + 0x20) == ((1u << (0x45 - 64)) | (1u << (0x52 - 64))));
    CHECK(apic.pending_vector() == 0x52);

    REQUIRE(apic.acknowledge(0x52));
    CHECK(apic.in_isr(0x52));
    CHECK_FALSE(apic.in_irr(0x52));
    CHECK(rd(apic, L::kPpr) == 0x50);
    CHECK(apic.pending_vector() == 0);  // 0x45 is class 4, below PPR class 5
    REQUIRE(apic.post(0x5f));
    CHECK(apic.pending_vector() == 0);  // same class as the one in service: waits
    REQUIRE(apic.post(0x60));
    CHECK(apic.pending_vector() == 0x60);  // a higher class nests
    REQUIRE(apic.acknowledge(0x60));
    CHECK(rd(apic, L::kPpr) == 0x60);

    LapicEffect e = wr(apic, L::kEoi, 0);
    REQUIRE(e.kind == LapicEffect::Kind::Eoi);
    CHECK(e.vector == 0x60);  // the highest in service
    CHECK_FALSE(e.level);
    CHECK(apic.pending_vector() == 0);  // 0x5f still behind 0x52
    CHECK(wr(apic, L::kEoi, 0).vector == 0x52);
    CHECK(rd(apic, L::kPpr) == 0);
    CHECK(apic.pending_vector() == 0x5f);

    // TPR holds back classes at or below its own.
    wr(apic, L::kTpr, 0x50);
    CHECK(rd(apic, L::kPpr) == 0x50);
    CHECK(apic.pending_vector() == 0);
    wr(apic, L::kTpr, 0x4f);
    CHECK(apic.pending_vector() == 0x5f);

    CHECK(apic.acknowledge(0x77).error() == LapicError::NotPending);
    CHECK(wr(apic, L::kEoi, 0).kind == LapicEffect::Kind::None);  // nothing in service

    // Level-triggered: TMR set on acceptance, the EOI says so.
    wr(apic, L::kTpr, 0);
    REQUIRE(apic.post(0x91, true));
    CHECK(apic.in_tmr(0x91));
    CHECK(rd(apic, L::kTmr + 0x40) == (1u << (0x91 - 128)));
    REQUIRE(apic.acknowledge(0x91));
    LapicEffect level = wr(apic, L::kEoi, 0);
    CHECK(level.vector == 0x91);
    CHECK(level.level);
    REQUIRE(apic.post(0x91, false));
    CHECK_FALSE(apic.in_tmr(0x91));
}

TEST_CASE("lapic: illegal and refused interrupts", "[devices][lapic]")
{
    L apic = enabled_apic();
    CHECK_FALSE(apic.post(0));
    CHECK_FALSE(apic.post(15));
    CHECK(rd(apic, L::kIrr) == 0);
    CHECK(apic.pending_vector() == 0);
    CHECK(latched_esr(apic) == L::kEsrReceiveIllegalVector);

    // With the error LVT unmasked, an error raises its vector.
    wr(apic, L::kLvtError, 0xfe);
    CHECK_FALSE(apic.post(3));
    CHECK(apic.in_irr(0xfe));
    CHECK(apic.pending_vector() == 0xfe);
    // An illegal error vector is not delivered either (and does not recurse).
    wr(apic, L::kLvtError, 0x05);
    CHECK_FALSE(apic.post(4));
    CHECK(latched_esr(apic) == L::kEsrReceiveIllegalVector);

    // A software-disabled APIC takes nothing.
    wr(apic, L::kSvr, 0xff);
    CHECK_FALSE(apic.post(0x40));
    CHECK_FALSE(apic.in_irr(0x40));
    CHECK(apic.stats().rejected == 5);
}

TEST_CASE("lapic: one-shot timer arithmetic", "[devices][lapic]")
{
    L apic = enabled_apic();
    CHECK(apic.next_timer_deadline() == kNever);
    wr(apic, L::kLvtTimer, 0xec);                // one-shot, vector 0xEC, unmasked
    wr(apic, L::kTimerDivide, 0x0);              // divide by 2
    LapicEffect e = wr(apic, L::kTimerInitial, 1000, 10'000);
    CHECK(e.kind == LapicEffect::Kind::Timer);
    // 1000 counts * 2 (divider) * 3 TSC ticks per timer tick.
    CHECK(apic.next_timer_deadline() == 16'000);
    CHECK(rd(apic, L::kTimerCurrent, 10'000) == 1000);
    CHECK(rd(apic, L::kTimerCurrent, 13'000) == 500);
    CHECK(rd(apic, L::kTimerCurrent, 15'999) == 1);
    CHECK_FALSE(apic.on_timer(15'999));
    CHECK(apic.on_timer(16'000));
    CHECK(apic.in_irr(0xec));
    CHECK(rd(apic, L::kTimerCurrent, 16'000) == 0);
    CHECK(apic.next_timer_deadline() == kNever);
    CHECK_FALSE(apic.on_timer(30'000));
    CHECK(rd(apic, L::kTimerInitial) == 1000);
    CHECK(apic.stats().timer_interrupts == 1);

    SECTION("every divide code")
    {
        const uint32_t codes[] = {0x0, 0x1, 0x2, 0x3, 0x8, 0x9, 0xa, 0xb};
        const uint64_t divisors[] = {2, 4, 8, 16, 32, 64, 128, 1};
        for (int i = 0; i < 8; ++i) {
            wr(apic, L::kTimerDivide, codes[i]);
            wr(apic, L::kTimerInitial, 10, 0);
            CHECK(apic.next_timer_deadline() == 10 * divisors[i] * 3);
        }
    }
    SECTION("a zero initial count stops the timer")
    {
        wr(apic, L::kTimerInitial, 100, 0);
        wr(apic, L::kTimerInitial, 0, 1);
        CHECK(apic.next_timer_deadline() == kNever);
        CHECK_FALSE(apic.on_timer(1'000'000));
    }
    SECTION("a new divider applies to the counts left")
    {
        wr(apic, L::kTimerInitial, 1000, 0);         // divide 2: 6000 ticks
        wr(apic, L::kTimerDivide, 0xb, 3000);        // 500 counts left, now divide 1
        CHECK(rd(apic, L::kTimerCurrent, 3000) == 500);
        CHECK(apic.next_timer_deadline() == 3000 + 500 * 3);
    }
    SECTION("a masked timer counts but raises nothing, and a late unmask does not fire it")
    {
        wr(apic, L::kLvtTimer, 0x0001'00ec);
        wr(apic, L::kTimerInitial, 100, 0);
        CHECK(apic.next_timer_deadline() == kNever);
        CHECK(rd(apic, L::kTimerCurrent, 300) == 50);
        wr(apic, L::kLvtTimer, 0xec, 1000);          // expired at 600, while masked
        CHECK(apic.next_timer_deadline() == kNever);
        CHECK_FALSE(apic.on_timer(1000));
    }
}

TEST_CASE("lapic: periodic timer arithmetic", "[devices][lapic]")
{
    L apic = enabled_apic();
    wr(apic, L::kLvtTimer, 0x0002'00ef);         // periodic, vector 0xEF
    wr(apic, L::kTimerDivide, 0xb);              // divide by 1
    wr(apic, L::kTimerInitial, 100, 0);          // 300 TSC ticks per period
    CHECK(apic.next_timer_deadline() == 300);
    CHECK(apic.on_timer(300));
    CHECK(apic.next_timer_deadline() == 600);
    CHECK(rd(apic, L::kTimerCurrent, 450) == 50);
    REQUIRE(apic.acknowledge(0xef));
    wr(apic, L::kEoi, 0);
    // Late by two and a half periods: one interrupt, the next reload stays on the grid.
    CHECK(apic.on_timer(1350));
    CHECK(apic.next_timer_deadline() == 1500);
    CHECK(rd(apic, L::kTimerCurrent, 1350) == 50);
    // Counting on while on_timer() is late: the count wraps from the initial value.
    CHECK(rd(apic, L::kTimerCurrent, 1590) == 70);

    SECTION("one-shot <-> periodic keeps the timer running")
    {
        wr(apic, L::kLvtTimer, 0xef, 1400);
        CHECK(apic.next_timer_deadline() == 1500);
        CHECK(apic.on_timer(1500));
        CHECK(apic.next_timer_deadline() == kNever);
    }
    SECTION("a minimum period bounds a hostile guest's interrupt rate")
    {
        L fast(1, false, L::Clock{3'000'000'000ull, 1'000'000'000ull, 30'000});
        wr(fast, L::kSvr, 0x1ff);
        wr(fast, L::kLvtTimer, 0x0002'0040);
        wr(fast, L::kTimerDivide, 0xb);
        wr(fast, L::kTimerInitial, 1, 0);
        CHECK(fast.next_timer_deadline() == 30'000);
        CHECK(fast.on_timer(30'000));
        CHECK(fast.next_timer_deadline() == 60'000);
    }
}

TEST_CASE("lapic: TSC-deadline mode", "[devices][lapic]")
{
    L apic = enabled_apic();
    // Outside TSC-deadline mode the MSR reads 0 and ignores writes.
    CHECK(apic.write_tsc_deadline(5000).kind == LapicEffect::Kind::None);
    CHECK(apic.tsc_deadline() == 0);

    wr(apic, L::kLvtTimer, 0xd1);
    wr(apic, L::kTimerInitial, 1000, 0);
    CHECK(apic.next_timer_deadline() == 6000);
    CHECK(wr(apic, L::kLvtTimer, 0x0004'00d1, 10).kind == LapicEffect::Kind::Timer);
    CHECK(apic.timer_mode() == L::TimerMode::TscDeadline);
    CHECK(apic.next_timer_deadline() == kNever);  // the switch disarmed the one-shot
    CHECK(rd(apic, L::kTimerInitial) == 0);
    CHECK(wr(apic, L::kTimerInitial, 77, 20).kind == LapicEffect::Kind::None);  // ignored
    CHECK(rd(apic, L::kTimerInitial) == 0);
    CHECK(rd(apic, L::kTimerCurrent, 20) == 0);

    CHECK(apic.write_tsc_deadline(123'456).kind == LapicEffect::Kind::Timer);
    CHECK(apic.tsc_deadline() == 123'456);
    CHECK(apic.next_timer_deadline() == 123'456);
    CHECK_FALSE(apic.on_timer(123'455));
    CHECK(apic.on_timer(123'456));
    CHECK(apic.in_irr(0xd1));
    CHECK(apic.tsc_deadline() == 0);
    CHECK(apic.next_timer_deadline() == kNever);

    // A deadline already past fires at once; 0 disarms.
    (void)apic.write_tsc_deadline(100);
    CHECK(apic.next_timer_deadline() == 100);
    (void)apic.write_tsc_deadline(0);
    CHECK(apic.next_timer_deadline() == kNever);
    (void)apic.write_tsc_deadline(100);
    CHECK(apic.on_timer(200'000));

    // Leaving TSC-deadline mode clears the MSR.
    (void)apic.write_tsc_deadline(900'000);
    wr(apic, L::kLvtTimer, 0xd1);
    CHECK(apic.tsc_deadline() == 0);
    CHECK(apic.next_timer_deadline() == kNever);
}

TEST_CASE("lapic: IA32_APIC_BASE allows xAPIC only", "[devices][lapic]")
{
    L apic = enabled_apic(2);
    wr(apic, L::kTpr, 0x20);
    CHECK(apic.write_apic_base(0xfee0'0c00).error() == LapicError::X2apicRefused);
    CHECK(apic.write_apic_base(0xfee0'0801).error() == LapicError::ApicBaseReserved);
    CHECK(apic.write_apic_base(0xfee0'0a00).error() == LapicError::ApicBaseReserved);
    CHECK(apic.write_apic_base(0x8000'0000'fee0'0800ull).error() == LapicError::ApicBaseReserved);
    CHECK(apic.write_apic_base(0xfed0'0800).error() == LapicError::ApicBaseMoved);
    CHECK(apic.write_apic_base(0x1'fee0'0800).error() == LapicError::ApicBaseMoved);
    CHECK(rd(apic, L::kTpr) == 0x20);
    // Rewriting the same value (Linux does) changes nothing; the BSP flag is read-only.
    CHECK(apic.write_apic_base(0xfee0'0900).value().kind == LapicEffect::Kind::None);
    CHECK(apic.apic_base() == 0xfee0'0800);

    // Disable: no page, nothing accepted. Enable again: the reset state.
    CHECK(apic.write_apic_base(0xfee0'0000).value().kind == LapicEffect::Kind::Timer);
    CHECK_FALSE(apic.hardware_enabled());
    CHECK(apic.apic_base() == 0xfee0'0000);
    CHECK(apic.read(L::kTpr, 4, 0).error() == LapicError::Disabled);
    CHECK(apic.write(L::kSvr, 4, 0x1ff, 0).error() == LapicError::Disabled);
    CHECK_FALSE(apic.post(0x40));
    CHECK(apic.pending_vector() == 0);
    REQUIRE(apic.write_apic_base(0xfee0'0800).ok());
    CHECK(rd(apic, L::kTpr) == 0);
    CHECK(rd(apic, L::kSvr) == 0xff);
    CHECK(rd(apic, L::kId) == 0x0200'0000);
}

TEST_CASE("lapic: INIT resets everything but the ID", "[devices][lapic]")
{
    L apic = enabled_apic(5);
    wr(apic, L::kLdr, 0x0100'0000);
    wr(apic, L::kLvtTimer, 0x0002'0030);
    wr(apic, L::kTimerInitial, 10, 0);
    REQUIRE(apic.post(0x44));
    apic.reset();
    CHECK(rd(apic, L::kId) == 0x0500'0000);
    CHECK(rd(apic, L::kLdr) == 0);
    CHECK(rd(apic, L::kSvr) == 0xff);
    CHECK(rd(apic, L::kLvtTimer) == 0x0001'0000);
    CHECK(apic.next_timer_deadline() == kNever);
    CHECK_FALSE(apic.in_irr(0x44));
}

TEST_CASE("lapic: a hostile guest hammering the APIC page and MSRs", "[devices][lapic]")
{
    constexpr size_t kVcpus = 3;
    vlibos::test::Lcg rng{0x1a2b3c};
    std::vector<L> apics;
    for (uint8_t i = 0; i < kVcpus; ++i)
        apics.emplace_back(i, i == 0, L::Clock{3'000'000'000ull, 1'000'000'000ull, 3000});
    IpiFilter filter;
    Ticks now = 0;
    uint64_t blocked_expected = 0;
    const uint8_t sizes[] = {1, 2, 4, 4, 4, 4, 8};

    for (int step = 0; step < 100'000; ++step) {
        now += rng.below(50);
        size_t source = rng.below(kVcpus);
        L& apic = apics[source];
        uint32_t offset = rng.below(8) == 0 ? static_cast<uint32_t>(rng.below(0x1100))
                                            : static_cast<uint32_t>(rng.below(0x40)) * 0x10;
        uint8_t size = sizes[rng.below(7)];
        auto value = static_cast<uint32_t>(rng.next() ^ (rng.next() << 17));
        switch (rng.below(10)) {
        case 0:
            (void)apic.read(offset, size, now);
            break;
        case 1: {
            uint64_t base = rng.below(4) == 0 ? rng.next() << 20 : (0xfee0'0000 | (rng.below(2) << 11));
            (void)apic.write_apic_base(base);
            break;
        }
        case 2:
            (void)apic.write_tsc_deadline(now + rng.below(100'000));
            break;
        case 3:
            (void)apic.post(static_cast<uint8_t>(rng.below(256)), rng.below(2) == 0);
            break;
        case 4:
            if (uint8_t v = apic.pending_vector())
                REQUIRE(apic.acknowledge(v));
            break;
        case 5:
            (void)apic.on_timer(now);
            break;
        default: {
            if (rng.below(3) == 0) {
                // IPIs, the interesting part: a destination, then the command.
                (void)apic.write(L::kIcrHigh, 4, static_cast<uint32_t>(rng.below(256)) << 24, now);
                offset = L::kIcrLow;
                size = 4;
            }
            auto r = apic.write(offset, size, value, now);
            if (!r.ok() || r.value().kind != LapicEffect::Kind::Ipi)
                break;
            GuestApics view;
            view.count = kVcpus;
            for (size_t i = 0; i < kVcpus; ++i)
                view.logical[i] = apics[i].logical_id();
            const InterruptMessage& m = r.value().ipi;
            Route route = filter.route(m, view, static_cast<uint32_t>(source));
            // Never a destination outside the guest.
            REQUIRE((route.targets & ~view.all()) == 0);
            if (m.shorthand == Shorthand::None && m.destination_mode == DestinationMode::Physical &&
                m.destination != kBroadcast && m.destination >= kVcpus && m.delivery != DeliveryMode::Smi) {
                REQUIRE(route.verdict == RouteVerdict::Blocked);
                ++blocked_expected;
            }
            if (m.delivery == DeliveryMode::Smi)
                REQUIRE(route.verdict == RouteVerdict::Refused);
            for (size_t t = 0; t < kVcpus; ++t)
                if ((route.targets >> t) & 1u)
                    if (m.delivery == DeliveryMode::Fixed || m.delivery == DeliveryMode::LowestPriority)
                        (void)apics[t].post(m.vector);
            break;
        }
        }
        // Invariants of every vCPU's APIC.
        for (size_t i = 0; i < kVcpus; ++i) {
            L& a = apics[i];
            REQUIRE(a.id() == i);
            for (uint8_t v = 0; v < 16; ++v) {
                REQUIRE_FALSE(a.in_irr(v));
                REQUIRE_FALSE(a.in_isr(v));
            }
            uint8_t p = a.pending_vector();
            REQUIRE((p == 0 || (p >= 16 && a.in_irr(p))));
            if (a.hardware_enabled()) {
                REQUIRE((a.logical_id().dfr & 0x0fff'ffffu) == 0x0fff'ffffu);
                REQUIRE((a.logical_id().ldr & 0x00ff'ffffu) == 0);
                REQUIRE(a.read(L::kVersion, 4, now).value() == L::kVersionValue);
                REQUIRE(a.read(L::kId, 4, now).value() == uint32_t(i) << 24);
            }
            if (a.hardware_enabled())
                REQUIRE(a.read(L::kTimerCurrent, 4, now).value() <= a.read(L::kTimerInitial, 4, now).value());
        }
    }
    CHECK(filter.stats().blocked >= blocked_expected);
    CHECK(blocked_expected > 100);
    CHECK(filter.stats().delivered > 100);
}

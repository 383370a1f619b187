// One guest vCPU's local APIC in xAPIC mode, emulated in software (Intel SDM Vol. 3A chapter 11,
// "Advanced Programmable Interrupt Controller (APIC)").
//
// The VMM traps the guest's accesses to the APIC page (0xFEE00000), decodes them and calls
// read()/write() with the page offset; it sends the two APIC MSRs (IA32_APIC_BASE,
// IA32_TSC_DEADLINE) here too. What the guest asked for comes back as an Effect for the VMM to
// carry out:
//   - Ipi:   an ICR write sent a message: route it with IpiFilter/resolve_destinations()
//            (interrupt_routing.hpp), then for each target vCPU post() Fixed/LowestPriority
//            vectors, inject NMIs, and handle INIT (reset() + wait for SIPI) and SIPI itself;
//   - Timer: the timer was (re)programmed: re-read next_timer_deadline();
//   - Eoi:   an EOI retired `vector`; if `level`, pass it to the I/O APIC (VirtualIoapic::eoi).
// After any call the VMM injects pending_vector() when the vCPU can take it, and reports the
// injection with acknowledge(). When the TSC reaches next_timer_deadline() it calls on_timer().
//
// Times are the guest's TSC (`now`, in ticks). The timer's input clock (the APIC "bus" clock,
// divided by the divide configuration register) runs at `bus_hz` against a TSC at `tsc_hz`,
// both chosen by the VMM (SDM Vol. 3A 11.5.4).
//
// Decisions beyond the SDM:
//   - The APIC ID register is fixed (vCPU i has ID i): the SDM leaves ID writes model-specific,
//     and a fixed ID keeps interrupt routing a function of the vCPU index. Writes are refused.
//   - xAPIC only: IA32_APIC_BASE refuses x2APIC mode (EXTD) and moving the page (CPUID hides
//     x2APIC, so EXTD is a reserved bit: the VMM injects #GP as a CPU without x2APIC does).
//   - No EOI-broadcast suppression, no CMCI LVT: version 0x14, max LVT entry 5 (SDM Figure 11-7).
//   - A periodic timer's period is at least Clock::min_period_tsc.
// Errors leave the model as it was (an illegal register address also sets ESR bit 7, as the
// hardware does): the VMM completes a faulty read with 0 and drops a faulty write, counting it.
//
// Pure logic: no hardware, no heap, no floating point. One per vCPU, used on that vCPU's CPU.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "lib/result.hpp"
#include "vmm/devices/interrupt_routing.hpp"

namespace vlibos::vmm::devices {

using Ticks = uint64_t;
constexpr Ticks kNever = ~Ticks{0};

enum class LapicError : uint8_t {
    OutsidePage,         // offset beyond the 4 KiB APIC page
    BadSize,             // not a 4-byte access (SDM 11.4.1: 32-bit loads and stores only)
    Unaligned,           // not at a 16-byte register boundary (SDM 11.4.1: 128-bit aligned)
    IllegalRegister,     // a reserved offset; ESR bit 7 "illegal register address" is set
    ReadOnly,            // a write to a read-only register: ignored
    WriteOnly,           // a read of the EOI register
    IdFixed,             // a write to the APIC ID register: ignored (see above)
    ReservedTimerMode,   // LVT timer mode 11b: ignored
    Disabled,            // the APIC is disabled in IA32_APIC_BASE: no APIC page
    X2apicRefused,       // IA32_APIC_BASE.EXTD set: #GP
    ApicBaseReserved,    // a reserved bit of IA32_APIC_BASE set: #GP
    ApicBaseMoved,       // a base other than 0xFEE00000: #GP (relocation is not emulated)
    NotPending,          // acknowledge() of a vector that is not in the IRR
};

const char* describe(LapicError error);

struct LapicEffect {
    enum class Kind : uint8_t { None, Ipi, Timer, Eoi };
    Kind kind = Kind::None;
    InterruptMessage ipi;   // Kind::Ipi
    uint8_t vector = 0;     // Kind::Eoi: the vector retired
    bool level = false;     // Kind::Eoi: it was level-triggered (TMR set): tell the I/O APIC

    static constexpr LapicEffect none() { return LapicEffect{}; }
};

class VirtualLapic {
public:
    // The timer's clock (see above). min_period_tsc bounds how often a periodic timer fires.
    struct Clock {
        uint64_t tsc_hz = 1'000'000'000;
        uint64_t bus_hz = 1'000'000'000;
        Ticks min_period_tsc = 0;
    };

    // Register offsets in the APIC page (SDM Vol. 3A Table 11-1).
    static constexpr uint32_t kId = 0x020;
    static constexpr uint32_t kVersion = 0x030;
    static constexpr uint32_t kTpr = 0x080;
    static constexpr uint32_t kApr = 0x090;
    static constexpr uint32_t kPpr = 0x0a0;
    static constexpr uint32_t kEoi = 0x0b0;
    static constexpr uint32_t kRrd = 0x0c0;
    static constexpr uint32_t kLdr = 0x0d0;
    static constexpr uint32_t kDfr = 0x0e0;
    static constexpr uint32_t kSvr = 0x0f0;
    static constexpr uint32_t kIsr = 0x100;       // 8 registers, 0x100-0x170
    static constexpr uint32_t kTmr = 0x180;       // 8 registers, 0x180-0x1f0
    static constexpr uint32_t kIrr = 0x200;       // 8 registers, 0x200-0x270
    static constexpr uint32_t kEsr = 0x280;
    static constexpr uint32_t kIcrLow = 0x300;
    static constexpr uint32_t kIcrHigh = 0x310;
    static constexpr uint32_t kLvtTimer = 0x320;
    static constexpr uint32_t kLvtThermal = 0x330;
    static constexpr uint32_t kLvtPerf = 0x340;
    static constexpr uint32_t kLvtLint0 = 0x350;
    static constexpr uint32_t kLvtLint1 = 0x360;
    static constexpr uint32_t kLvtError = 0x370;
    static constexpr uint32_t kTimerInitial = 0x380;
    static constexpr uint32_t kTimerCurrent = 0x390;
    static constexpr uint32_t kTimerDivide = 0x3e0;
    static constexpr uint32_t kPageSize = 0x1000;

    // Local APIC version register: version 0x14 (integrated xAPIC), max LVT entry 5 (six LVT
    // registers, no CMCI), no EOI-broadcast suppression (SDM Vol. 3A 11.4.8, Figure 11-7).
    static constexpr uint32_t kVersionValue = 0x0005'0014;

    // IA32_APIC_BASE (MSR 0x1B, SDM Vol. 3A 11.4.4, Figure 11-5).
    static constexpr uint32_t kApicBaseMsr = 0x1b;
    static constexpr uint64_t kDefaultBase = 0xfee0'0000;
    static constexpr uint64_t kApicBaseBsp = 1u << 8;
    static constexpr uint64_t kApicBaseExtd = 1u << 10;
    static constexpr uint64_t kApicBaseEnable = 1u << 11;
    // IA32_TSC_DEADLINE (MSR 0x6E0, SDM Vol. 3A 11.5.4.1).
    static constexpr uint32_t kTscDeadlineMsr = 0x6e0;

    // ESR bits (SDM Vol. 3A 11.5.3, Figure 11-9); the P6-only bus errors are never set.
    static constexpr uint32_t kEsrSendIllegalVector = 1u << 5;
    static constexpr uint32_t kEsrReceiveIllegalVector = 1u << 6;
    static constexpr uint32_t kEsrIllegalRegister = 1u << 7;

    // LVT fields (SDM Vol. 3A 11.5.1, Figure 11-8).
    static constexpr uint32_t kLvtMasked = 1u << 16;
    static constexpr uint32_t kLvtReset = kLvtMasked;
    enum class TimerMode : uint8_t { OneShot = 0, Periodic = 1, TscDeadline = 2, Reserved = 3 };
    enum class Lvt : uint8_t { Timer, Thermal, Perf, Lint0, Lint1, Error, Count };

    // SVR (SDM Vol. 3A 11.9, Figure 11-23): vector, APIC software enable (bit 8), focus processor
    // checking (bit 9). Bit 12 (EOI-broadcast suppression) is not offered.
    static constexpr uint32_t kSvrEnable = 1u << 8;
    static constexpr uint32_t kSvrReset = 0xff;

    struct Stats {
        uint64_t reads = 0;
        uint64_t writes = 0;
        uint64_t errors = 0;          // accesses refused with a LapicError
        uint64_t ipis = 0;            // ICR writes that produced an Ipi effect
        uint64_t ipis_dropped = 0;    // ICR writes the xAPIC ignores (see write())
        uint64_t illegal_vectors = 0; // ESR "send/receive illegal vector" events
        uint64_t posted = 0;          // interrupts accepted into the IRR
        uint64_t rejected = 0;        // post() refused (illegal vector, APIC disabled)
        uint64_t eois = 0;
        uint64_t timer_interrupts = 0;
    };

    VirtualLapic(uint8_t apic_id, bool bsp, const Clock& clock);

    // A 4-byte read or write at `offset` in the APIC page (SDM Vol. 3A 11.4.1). `now` is the TSC
    // (the current-count register and timer writes use it).
    Result<uint32_t, LapicError> read(uint32_t offset, uint8_t size, Ticks now);
    Result<LapicEffect, LapicError> write(uint32_t offset, uint8_t size, uint32_t value, Ticks now);

    uint64_t apic_base() const;
    // WRMSR IA32_APIC_BASE. Clearing the enable bit disables the APIC (its page is gone, posted
    // interrupts are dropped); enabling it again starts from the reset state (SDM 11.4.3).
    Result<LapicEffect, LapicError> write_apic_base(uint64_t value);
    // RDMSR/WRMSR IA32_TSC_DEADLINE: reads 0 and ignores writes outside TSC-deadline mode; 0
    // disarms; a deadline already past fires at the next on_timer().
    uint64_t tsc_deadline() const;
    LapicEffect write_tsc_deadline(uint64_t value);

    // An interrupt arrives (a Fixed or LowestPriority message routed here, or a local source).
    // Sets IRR and, for level-triggered ones, TMR (SDM 11.5.5). Refused (false) if the vector is
    // below 16 (sets ESR "receive illegal vector", SDM 11.5.3) or the APIC is disabled (hardware,
    // or software: SDM 11.4.7.2).
    bool post(uint8_t vector, bool level_triggered = false);
    // The vector to inject next: the highest IRR vector whose priority class is above PPR's, or
    // 0 if none (SDM 11.8.3, 11.8.4). 0 is never a valid vector here (IRR[15:0] stay clear).
    uint8_t pending_vector() const;
    // The VMM injected `vector`: IRR -> ISR, and PPR rises (SDM 11.8.4).
    Status<LapicError> acknowledge(uint8_t vector);

    // When on_timer() must be called (TSC), or kNever: nothing armed, or the LVT timer is masked.
    Ticks next_timer_deadline() const;
    // Called at or after next_timer_deadline(): posts the LVT timer vector if the timer expired;
    // a periodic timer reloads (missed periods collapse into one interrupt). True if posted.
    bool on_timer(Ticks now);

    // INIT (and the state after IA32_APIC_BASE re-enable): every register to its power-up value
    // except the APIC ID (SDM Vol. 3A 11.4.7.1, 11.4.7.3).
    void reset();

    uint8_t id() const { return id_; }
    bool hardware_enabled() const { return hw_enabled_; }
    bool software_enabled() const { return (svr_ & kSvrEnable) != 0; }
    LogicalId logical_id() const { return LogicalId{ldr_, dfr_}; }
    uint32_t tpr() const { return tpr_; }
    uint32_t ppr() const;
    uint32_t esr() const { return esr_; }
    uint32_t lvt(Lvt which) const { return lvt_[static_cast<unsigned>(which)]; }
    TimerMode timer_mode() const;
    bool in_irr(uint8_t vector) const { return test(irr_, vector); }
    bool in_isr(uint8_t vector) const { return test(isr_, vector); }
    bool in_tmr(uint8_t vector) const { return test(tmr_, vector); }
    const Stats& stats() const { return stats_; }

private:
    using Bits256 = uint32_t[8];
    static bool test(const Bits256& bits, uint8_t vector);
    static void set(Bits256& bits, uint8_t vector);
    static void clear(Bits256& bits, uint8_t vector);
    static int highest(const Bits256& bits);  // -1 if empty

    Result<uint32_t, LapicError> read_register(uint32_t offset, Ticks now);
    Result<LapicEffect, LapicError> write_register(uint32_t offset, uint32_t value, Ticks now);
    LapicEffect write_icr(uint32_t value);
    LapicEffect eoi();
    LapicEffect write_lvt(unsigned index, uint32_t value, Ticks now);
    LapicEffect write_initial_count(uint32_t value, Ticks now);
    LapicEffect write_divide(uint32_t value, Ticks now);
    void signal_error(uint32_t esr_bits);
    bool accept(uint8_t vector, bool level_triggered);
    LapicError refuse(LapicError error);

    uint32_t divide_value() const;  // 1..128
    Ticks count_to_tsc(uint64_t count) const;
    uint32_t current_count(Ticks now) const;
    void stop_timer();

    uint8_t id_;
    bool bsp_;
    Clock clock_;
    bool hw_enabled_ = true;
    uint32_t tpr_ = 0;
    uint32_t ldr_ = 0;
    uint32_t dfr_ = 0xffff'ffff;
    uint32_t svr_ = kSvrReset;
    Bits256 isr_ = {};
    Bits256 tmr_ = {};
    Bits256 irr_ = {};
    uint32_t esr_ = 0;          // what reads of the ESR return (latched by the last ESR write)
    uint32_t esr_pending_ = 0;  // errors seen since the last ESR write
    uint32_t icr_low_ = 0;
    uint32_t icr_high_ = 0;
    uint32_t lvt_[static_cast<unsigned>(Lvt::Count)] = {};
    uint32_t timer_initial_ = 0;
    uint32_t timer_divide_ = 0;

    // One-shot/periodic: armed, with the TSC of the next expiry and the period in TSC ticks.
    bool timer_armed_ = false;
    Ticks timer_deadline_ = 0;
    Ticks timer_period_ = 0;
    // TSC-deadline mode: IA32_TSC_DEADLINE, 0 = disarmed.
    uint64_t tsc_deadline_ = 0;

    Stats stats_;
};

} // namespace vlibos::vmm::devices

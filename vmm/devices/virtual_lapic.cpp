// A guest's xAPIC. See virtual_lapic.hpp; section numbers are the Intel SDM Vol. 3A's.
#include "vmm/devices/virtual_lapic.hpp"

namespace vlibos::vmm::devices {

namespace {

using u128 = unsigned __int128;

// Writable bits of each register; the rest read as the SDM's fixed values.
constexpr uint32_t kTprMask = 0xff;                // 11.8.3.1: TPR[7:0]
constexpr uint32_t kLdrMask = 0xff00'0000;         // 11.6.2.2: LDR[31:24]
constexpr uint32_t kDfrModelMask = 0xf000'0000;    // 11.6.2.2: DFR[31:28]; DFR[27:0] read as 1s
constexpr uint32_t kSvrMask = 0x3ff;               // 11.9: vector, enable, focus checking
constexpr uint32_t kIcrLowMask = 0x000c'cfff;      // 11.6.1: vector..dest mode, level, trigger, shorthand
constexpr uint32_t kIcrHighMask = 0xff00'0000;     // 11.6.1: ICR[63:56] destination
constexpr uint32_t kDivideMask = 0xb;              // 11.5.4: bits 0, 1 and 3

// 11.5.1 Figure 11-8: writable LVT bits (delivery status and remote IRR are read-only).
constexpr uint32_t kLvtWritable[] = {
    0x0007'00ff,  // timer: vector, mask, timer mode (bits 18:17)
    0x0001'07ff,  // thermal: vector, delivery mode, mask
    0x0001'07ff,  // performance counters: the same
    0x0001'a7ff,  // LINT0: vector, delivery mode, polarity, trigger mode, mask
    0x0001'a7ff,  // LINT1: the same
    0x0001'00ff,  // error: vector, mask
};

constexpr uint32_t kTimerModeShift = 17;

// ICR fields (11.6.1, Figure 11-12).
constexpr uint32_t kIcrDestModeLogical = 1u << 11;
constexpr uint32_t kIcrLevelAssert = 1u << 14;
constexpr uint32_t kIcrTriggerLevel = 1u << 15;

bool in_bank(uint32_t offset, uint32_t base) { return offset >= base && offset < base + 0x80; }

Ticks add_saturating(Ticks a, Ticks b) { return a > kNever - b ? kNever : a + b; }

} // namespace

const char* describe(LapicError error)
{
    switch (error) {
    case LapicError::OutsidePage: return "access beyond the 4 KiB local APIC page";
    case LapicError::BadSize: return "local APIC access of a size other than 4 bytes";
    case LapicError::Unaligned: return "local APIC access not at a 16-byte register boundary";
    case LapicError::IllegalRegister: return "access to a reserved local APIC register";
    case LapicError::ReadOnly: return "write to a read-only local APIC register";
    case LapicError::WriteOnly: return "read of the write-only EOI register";
    case LapicError::IdFixed: return "write to the local APIC ID register (IDs are fixed)";
    case LapicError::ReservedTimerMode: return "LVT timer mode 11b is reserved";
    case LapicError::Disabled: return "the local APIC is disabled in IA32_APIC_BASE";
    case LapicError::X2apicRefused: return "x2APIC mode is not available (IA32_APIC_BASE.EXTD)";
    case LapicError::ApicBaseReserved: return "reserved bit set in IA32_APIC_BASE";
    case LapicError::ApicBaseMoved: return "the local APIC page cannot be moved from 0xFEE00000";
    case LapicError::NotPending: return "acknowledged vector is not pending in the IRR";
    }
    return "unknown local APIC error";
}

VirtualLapic::VirtualLapic(uint8_t apic_id, bool bsp, const Clock& clock)
    : id_(apic_id), bsp_(bsp), clock_(clock)
{
    reset();
}

void VirtualLapic::reset()
{
    tpr_ = 0;
    ldr_ = 0;
    dfr_ = 0xffff'ffff;
    svr_ = kSvrReset;
    for (unsigned i = 0; i < 8; ++i)
        isr_[i] = tmr_[i] = irr_[i] = 0;
    esr_ = esr_pending_ = 0;
    icr_low_ = icr_high_ = 0;
    for (uint32_t& entry : lvt_)
        entry = kLvtReset;
    timer_initial_ = 0;
    timer_divide_ = 0;
    timer_armed_ = false;
    timer_deadline_ = 0;
    timer_period_ = 0;
    tsc_deadline_ = 0;
}

// --- 256-bit registers (ISR, TMR, IRR: 11.8.4) ---

bool VirtualLapic::test(const Bits256& bits, uint8_t vector)
{
    return (bits[vector >> 5] >> (vector & 31u)) & 1u;
}

void VirtualLapic::set(Bits256& bits, uint8_t vector) { bits[vector >> 5] |= 1u << (vector & 31u); }

void VirtualLapic::clear(Bits256& bits, uint8_t vector) { bits[vector >> 5] &= ~(1u << (vector & 31u)); }

int VirtualLapic::highest(const Bits256& bits)
{
    for (int word = 7; word >= 0; --word) {
        uint32_t w = bits[word];
        if (w != 0)
            return word * 32 + 31 - __builtin_clz(w);
    }
    return -1;
}

// --- priorities (11.8.3) ---

uint32_t VirtualLapic::ppr() const
{
    int isrv = highest(isr_);
    uint32_t isr_class = isrv < 0 ? 0 : static_cast<uint32_t>(isrv) & 0xf0u;
    return (tpr_ & 0xf0u) >= isr_class ? tpr_ & 0xffu : isr_class;
}

uint8_t VirtualLapic::pending_vector() const
{
    if (!hw_enabled_)
        return 0;
    int irrv = highest(irr_);
    if (irrv < 0)
        return 0;
    auto vector = static_cast<uint32_t>(irrv);
    return (vector & 0xf0u) > (ppr() & 0xf0u) ? static_cast<uint8_t>(vector) : 0;
}

Status<LapicError> VirtualLapic::acknowledge(uint8_t vector)
{
    if (!test(irr_, vector))
        return fail(refuse(LapicError::NotPending));
    clear(irr_, vector);
    set(isr_, vector);
    return {};
}

bool VirtualLapic::accept(uint8_t vector, bool level_triggered)
{
    set(irr_, vector);
    if (level_triggered)
        set(tmr_, vector);
    else
        clear(tmr_, vector);
    ++stats_.posted;
    return true;
}

bool VirtualLapic::post(uint8_t vector, bool level_triggered)
{
    // 11.4.7.2: a software-disabled APIC takes no fixed interrupts (NMI, INIT and SIPI are the
    // VMM's, not posted here).
    if (!hw_enabled_ || !software_enabled()) {
        ++stats_.rejected;
        return false;
    }
    // 11.5.3: vectors 0-15 are illegal; the IRR never holds them.
    if (vector < 16) {
        ++stats_.rejected;
        ++stats_.illegal_vectors;
        signal_error(kEsrReceiveIllegalVector);
        return false;
    }
    return accept(vector, level_triggered);
}

// 11.5.3: an error is latched and, unless masked, raises the LVT error interrupt. An illegal
// error vector only adds "receive illegal vector" (no recursion: it is not delivered either).
void VirtualLapic::signal_error(uint32_t esr_bits)
{
    esr_pending_ |= esr_bits;
    uint32_t entry = lvt_[static_cast<unsigned>(Lvt::Error)];
    if (!hw_enabled_ || !software_enabled() || (entry & kLvtMasked))
        return;
    auto vector = static_cast<uint8_t>(entry & 0xff);
    if (vector < 16) {
        esr_pending_ |= kEsrReceiveIllegalVector;
        ++stats_.illegal_vectors;
        return;
    }
    accept(vector, false);
}

LapicError VirtualLapic::refuse(LapicError error)
{
    ++stats_.errors;
    return error;
}

// --- register access (11.4.1: 32-bit accesses, 128-bit aligned) ---

Result<uint32_t, LapicError> VirtualLapic::read(uint32_t offset, uint8_t size, Ticks now)
{
    ++stats_.reads;
    if (offset >= kPageSize)
        return fail(refuse(LapicError::OutsidePage));
    if (size != 4)
        return fail(refuse(LapicError::BadSize));
    if (offset & 0xfu)
        return fail(refuse(LapicError::Unaligned));
    if (!hw_enabled_)
        return fail(refuse(LapicError::Disabled));
    return read_register(offset, now);
}

Result<uint32_t, LapicError> VirtualLapic::read_register(uint32_t offset, Ticks now)
{
    if (in_bank(offset, kIsr))
        return isr_[(offset - kIsr) >> 4];
    if (in_bank(offset, kTmr))
        return tmr_[(offset - kTmr) >> 4];
    if (in_bank(offset, kIrr))
        return irr_[(offset - kIrr) >> 4];
    if (offset >= kLvtTimer && offset <= kLvtError)
        return lvt_[(offset - kLvtTimer) >> 4];
    switch (offset) {
    case kId: return uint32_t{id_} << 24;
    case kVersion: return kVersionValue;
    case kTpr: return tpr_;
    case kApr: return 0u;  // arbitration priority: not modelled (no bus arbitration)
    case kPpr: return ppr();
    case kEoi: return fail(refuse(LapicError::WriteOnly));
    case kRrd: return 0u;  // remote read: never used in xAPIC mode
    case kLdr: return ldr_;
    case kDfr: return dfr_;
    case kSvr: return svr_;
    case kEsr: return esr_;
    case kIcrLow: return icr_low_;  // delivery status (bit 12) is always idle: IPIs go at once
    case kIcrHigh: return icr_high_;
    case kTimerInitial: return timer_initial_;
    case kTimerCurrent: return current_count(now);
    case kTimerDivide: return timer_divide_;
    default: break;
    }
    signal_error(kEsrIllegalRegister);
    return fail(refuse(LapicError::IllegalRegister));
}

Result<LapicEffect, LapicError> VirtualLapic::write(uint32_t offset, uint8_t size, uint32_t value, Ticks now)
{
    ++stats_.writes;
    if (offset >= kPageSize)
        return fail(refuse(LapicError::OutsidePage));
    if (size != 4)
        return fail(refuse(LapicError::BadSize));
    if (offset & 0xfu)
        return fail(refuse(LapicError::Unaligned));
    if (!hw_enabled_)
        return fail(refuse(LapicError::Disabled));
    return write_register(offset, value, now);
}

Result<LapicEffect, LapicError> VirtualLapic::write_register(uint32_t offset, uint32_t value, Ticks now)
{
    if (in_bank(offset, kIsr) || in_bank(offset, kTmr) || in_bank(offset, kIrr))
        return fail(refuse(LapicError::ReadOnly));
    if (offset >= kLvtTimer && offset <= kLvtError) {
        unsigned index = (offset - kLvtTimer) >> 4;
        if (index == static_cast<unsigned>(Lvt::Timer) &&
            static_cast<TimerMode>((value >> kTimerModeShift) & 3u) == TimerMode::Reserved)
            return fail(refuse(LapicError::ReservedTimerMode));
        return write_lvt(index, value, now);
    }
    switch (offset) {
    case kId:
        return fail(refuse(LapicError::IdFixed));
    case kVersion:
    case kApr:
    case kPpr:
    case kRrd:
    case kTimerCurrent:
        return fail(refuse(LapicError::ReadOnly));
    case kTpr:
        tpr_ = value & kTprMask;
        return LapicEffect::none();
    case kEoi:
        return eoi();
    case kLdr:
        ldr_ = value & kLdrMask;
        return LapicEffect::none();
    case kDfr:
        dfr_ = (value & kDfrModelMask) | ~kDfrModelMask;
        return LapicEffect::none();
    case kSvr: {
        bool was_enabled = software_enabled();
        svr_ = value & kSvrMask;
        if (software_enabled() == was_enabled)
            return LapicEffect::none();
        // 11.4.7.2: software disable sets every LVT mask bit (and keeps them set).
        if (!software_enabled())
            for (uint32_t& entry : lvt_)
                entry |= kLvtMasked;
        LapicEffect effect;
        effect.kind = LapicEffect::Kind::Timer;
        return effect;
    }
    case kEsr:
        // 11.5.3: a write latches the errors seen since the previous write and clears them.
        esr_ = esr_pending_;
        esr_pending_ = 0;
        return LapicEffect::none();
    case kIcrLow:
        return write_icr(value);
    case kIcrHigh:
        icr_high_ = value & kIcrHighMask;
        return LapicEffect::none();
    case kTimerInitial:
        return write_initial_count(value, now);
    case kTimerDivide:
        return write_divide(value, now);
    default:
        break;
    }
    signal_error(kEsrIllegalRegister);
    return fail(refuse(LapicError::IllegalRegister));
}

// 11.6.1: writing ICR[31:0] sends the IPI. Which combinations the xAPIC honours is the table
// "Valid Combinations for the Pentium 4 and Intel Xeon Processors' Local xAPIC Interrupt Command
// Register" in 11.6.1: the level and trigger flags have no meaning (every IPI is edge-triggered),
// INIT level de-assert is not supported (ignored here, as KVM does: Linux still sends one after
// INIT), Self and All Including Self take only Fixed, and the ICR has no ExtINT and no 011b.
LapicEffect VirtualLapic::write_icr(uint32_t value)
{
    icr_low_ = value & kIcrLowMask;
    InterruptMessage m;
    m.vector = static_cast<uint8_t>(value & 0xff);
    m.delivery = static_cast<DeliveryMode>((value >> 8) & 7u);
    m.destination_mode = (value & kIcrDestModeLogical) ? DestinationMode::Logical : DestinationMode::Physical;
    m.shorthand = static_cast<Shorthand>((value >> 18) & 3u);
    m.destination = static_cast<uint8_t>(icr_high_ >> 24);
    m.level_triggered = false;

    bool dropped = false;
    if (m.delivery == DeliveryMode::Init && (value & kIcrTriggerLevel) && !(value & kIcrLevelAssert))
        dropped = true;  // INIT level de-assert
    if (m.delivery == DeliveryMode::Reserved3 || m.delivery == DeliveryMode::ExtInt)
        dropped = true;
    if ((m.shorthand == Shorthand::Self || m.shorthand == Shorthand::AllIncludingSelf) &&
        m.delivery != DeliveryMode::Fixed)
        dropped = true;
    if (!dropped && (m.delivery == DeliveryMode::Fixed || m.delivery == DeliveryMode::LowestPriority) &&
        m.vector < 16) {
        // 11.5.3: "send illegal vector"; nothing is sent.
        ++stats_.illegal_vectors;
        signal_error(kEsrSendIllegalVector);
        dropped = true;
    }
    if (dropped) {
        ++stats_.ipis_dropped;
        return LapicEffect::none();
    }
    if (m.delivery == DeliveryMode::Nmi || m.delivery == DeliveryMode::Init || m.delivery == DeliveryMode::Smi)
        m.vector = 0;  // ignored by these modes
    if (m.shorthand != Shorthand::None)
        m.destination = 0;
    ++stats_.ipis;
    LapicEffect effect;
    effect.kind = LapicEffect::Kind::Ipi;
    effect.ipi = m;
    return effect;
}

// 11.8.5: EOI retires the highest-priority in-service interrupt. Level-triggered ones (TMR set)
// are also EOI'd at the I/O APIC: the VMM forwards `level`.
LapicEffect VirtualLapic::eoi()
{
    int isrv = highest(isr_);
    if (isrv < 0)
        return LapicEffect::none();
    auto vector = static_cast<uint8_t>(isrv);
    clear(isr_, vector);
    ++stats_.eois;
    LapicEffect effect;
    effect.kind = LapicEffect::Kind::Eoi;
    effect.vector = vector;
    effect.level = test(tmr_, vector);
    return effect;
}

// --- timer (11.5.4) ---

VirtualLapic::TimerMode VirtualLapic::timer_mode() const
{
    return static_cast<TimerMode>((lvt_[static_cast<unsigned>(Lvt::Timer)] >> kTimerModeShift) & 3u);
}

// 11.5.4 Figure 11-10: divide configuration bits 3, 1:0 -> 2, 4, 8, 16, 32, 64, 128, 1.
uint32_t VirtualLapic::divide_value() const
{
    uint32_t code = (timer_divide_ & 3u) | ((timer_divide_ >> 1) & 4u);
    return code == 7 ? 1u : 2u << code;
}

Ticks VirtualLapic::count_to_tsc(uint64_t count) const
{
    if (clock_.bus_hz == 0 || clock_.tsc_hz == 0)
        return kNever;
    u128 ticks = static_cast<u128>(count) * clock_.tsc_hz / clock_.bus_hz;
    if (ticks > kNever - 1)
        return kNever - 1;
    return ticks == 0 ? 1 : static_cast<Ticks>(ticks);  // at least one tick: time always moves on
}

uint32_t VirtualLapic::current_count(Ticks now) const
{
    if (!timer_armed_ || timer_mode() == TimerMode::TscDeadline || clock_.tsc_hz == 0)
        return 0;
    Ticks remaining;
    if (now < timer_deadline_) {
        remaining = timer_deadline_ - now;
    } else if (timer_mode() == TimerMode::Periodic) {
        Ticks period = timer_period_ > clock_.min_period_tsc ? timer_period_ : clock_.min_period_tsc;
        remaining = period - (now - timer_deadline_) % period;
    } else {
        return 0;  // expired; on_timer() has not been called yet
    }
    // Counts left, rounded up: the count reaches 0 exactly at the deadline.
    u128 per_count = static_cast<u128>(clock_.tsc_hz) * divide_value();
    u128 counts = (static_cast<u128>(remaining) * clock_.bus_hz + per_count - 1) / per_count;
    return counts > timer_initial_ ? timer_initial_ : static_cast<uint32_t>(counts);
}

void VirtualLapic::stop_timer()
{
    timer_armed_ = false;
    timer_deadline_ = 0;
    timer_period_ = 0;
}

LapicEffect VirtualLapic::write_lvt(unsigned index, uint32_t value, Ticks now)
{
    uint32_t old = lvt_[index];
    uint32_t entry = (old & ~kLvtWritable[index]) | (value & kLvtWritable[index]);
    if (!software_enabled())
        entry |= kLvtMasked;  // 11.4.7.2: cannot be unmasked while software-disabled
    if (index != static_cast<unsigned>(Lvt::Timer)) {
        lvt_[index] = entry;
        return LapicEffect::none();
    }

    TimerMode old_mode = timer_mode();
    lvt_[index] = entry;
    TimerMode mode = timer_mode();
    if ((old_mode == TimerMode::TscDeadline) != (mode == TimerMode::TscDeadline)) {
        // 11.5.4.1: moving into or out of TSC-deadline mode disarms the timer.
        stop_timer();
        timer_initial_ = 0;
        tsc_deadline_ = 0;
    } else if ((old & kLvtMasked) && !(entry & kLvtMasked)) {
        // Expiries while masked raised nothing; do not raise them now. A periodic timer moves to
        // its next reload after `now`, a one-shot or TSC deadline that passed is spent.
        if (mode == TimerMode::TscDeadline) {
            if (tsc_deadline_ != 0 && tsc_deadline_ <= now)
                tsc_deadline_ = 0;
        } else if (timer_armed_ && timer_deadline_ <= now) {
            if (mode == TimerMode::Periodic) {
                Ticks period = timer_period_ > clock_.min_period_tsc ? timer_period_ : clock_.min_period_tsc;
                timer_deadline_ = add_saturating(timer_deadline_, ((now - timer_deadline_) / period + 1) * period);
            } else {
                stop_timer();
            }
        }
    }
    LapicEffect effect;
    effect.kind = LapicEffect::Kind::Timer;
    return effect;
}

LapicEffect VirtualLapic::write_initial_count(uint32_t value, Ticks now)
{
    // 11.5.4.1: in TSC-deadline mode writes to the initial-count register are ignored.
    if (timer_mode() == TimerMode::TscDeadline)
        return LapicEffect::none();
    timer_initial_ = value;
    if (value == 0) {
        stop_timer();  // 11.5.4: a zero initial count stops the timer
    } else {
        timer_period_ = count_to_tsc(uint64_t{value} * divide_value());
        Ticks first = timer_period_;
        if (timer_mode() == TimerMode::Periodic && first < clock_.min_period_tsc)
            first = clock_.min_period_tsc;
        timer_armed_ = true;
        timer_deadline_ = add_saturating(now, first);
    }
    LapicEffect effect;
    effect.kind = LapicEffect::Kind::Timer;
    return effect;
}

// A new divider applies to the counts left: the count keeps its value and goes on at the new rate.
LapicEffect VirtualLapic::write_divide(uint32_t value, Ticks now)
{
    uint32_t remaining = current_count(now);
    timer_divide_ = value & kDivideMask;
    if (!timer_armed_ || timer_mode() == TimerMode::TscDeadline)
        return LapicEffect::none();
    timer_period_ = count_to_tsc(uint64_t{timer_initial_} * divide_value());
    if (remaining != 0)
        timer_deadline_ = add_saturating(now, count_to_tsc(uint64_t{remaining} * divide_value()));
    LapicEffect effect;
    effect.kind = LapicEffect::Kind::Timer;
    return effect;
}

Ticks VirtualLapic::next_timer_deadline() const
{
    if (!hw_enabled_ || (lvt_[static_cast<unsigned>(Lvt::Timer)] & kLvtMasked))
        return kNever;
    if (timer_mode() == TimerMode::TscDeadline)
        return tsc_deadline_ != 0 ? tsc_deadline_ : kNever;
    return timer_armed_ ? timer_deadline_ : kNever;
}

bool VirtualLapic::on_timer(Ticks now)
{
    if (!hw_enabled_)
        return false;
    if (timer_mode() == TimerMode::TscDeadline) {
        if (tsc_deadline_ == 0 || now < tsc_deadline_)
            return false;
        tsc_deadline_ = 0;  // 11.5.4.1: the MSR reads 0 once the timer fired
    } else {
        if (!timer_armed_ || now < timer_deadline_)
            return false;
        if (timer_mode() == TimerMode::Periodic) {
            Ticks period = timer_period_ > clock_.min_period_tsc ? timer_period_ : clock_.min_period_tsc;
            timer_deadline_ = add_saturating(timer_deadline_, ((now - timer_deadline_) / period + 1) * period);
        } else {
            timer_armed_ = false;
        }
    }
    uint32_t entry = lvt_[static_cast<unsigned>(Lvt::Timer)];
    if (entry & kLvtMasked)
        return false;
    ++stats_.timer_interrupts;
    return post(static_cast<uint8_t>(entry & 0xff));
}

// --- MSRs ---

uint64_t VirtualLapic::apic_base() const
{
    return kDefaultBase | (bsp_ ? kApicBaseBsp : 0) | (hw_enabled_ ? kApicBaseEnable : 0);
}

Result<LapicEffect, LapicError> VirtualLapic::write_apic_base(uint64_t value)
{
    // 11.4.4 Figure 11-5: bits 7:0 and 9 are reserved, the base is bits 12 to MAXPHYADDR-1
    // (at most 51), BSP (bit 8) is read-only here.
    constexpr uint64_t kReserved = 0xfff0'0000'0000'02ffull;
    constexpr uint64_t kBaseMask = 0x000f'ffff'ffff'f000ull;
    if (value & kApicBaseExtd)
        return fail(refuse(LapicError::X2apicRefused));
    if (value & kReserved)
        return fail(refuse(LapicError::ApicBaseReserved));
    if ((value & kBaseMask) != kDefaultBase)
        return fail(refuse(LapicError::ApicBaseMoved));
    bool enable = (value & kApicBaseEnable) != 0;
    if (enable == hw_enabled_)
        return LapicEffect::none();
    reset();
    hw_enabled_ = enable;
    LapicEffect effect;
    effect.kind = LapicEffect::Kind::Timer;
    return effect;
}

uint64_t VirtualLapic::tsc_deadline() const
{
    return hw_enabled_ && timer_mode() == TimerMode::TscDeadline ? tsc_deadline_ : 0;
}

LapicEffect VirtualLapic::write_tsc_deadline(uint64_t value)
{
    // 11.5.4.1: outside TSC-deadline mode the write is ignored.
    if (!hw_enabled_ || timer_mode() != TimerMode::TscDeadline)
        return LapicEffect::none();
    tsc_deadline_ = value;
    LapicEffect effect;
    effect.kind = LapicEffect::Kind::Timer;
    return effect;
}

} // namespace vlibos::vmm::devices

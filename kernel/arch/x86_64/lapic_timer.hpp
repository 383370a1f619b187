// The monitor's one-shot timer in TSC ticks, on the local APIC (SDM Vol. 3 §11.5.4): TSC-deadline
// mode where the CPU has it; else a one-shot count, converted from TSC ticks with a rate measured
// per CPU against the TSC. It fires vector kVectorLapicTimer. Users: the boot-time timer check,
// the RT core scheduler (next budget exhaustion or release), and SVM's guest-time limit (SVM has
// no VMX-preemption timer, so the LAPIC timer's interrupt forces the #VMEXIT).
#pragma once

#include <stdint.h>

namespace vlibos::x86 {

// LAPIC timer ticks per TSC tick, as a 32.32 fixed-point number.
inline constexpr unsigned kRateFractionBits = 32;
inline constexpr uint64_t kMaxOneShotCount = 0xffff'ffff;  // the initial-count register is 32 bits

// One-shot count for `tsc_ticks`, at least 1 and clamped to the register; `clamped` says
// whether the whole time fits.
constexpr uint32_t one_shot_count(uint64_t tsc_ticks, uint64_t rate_q32, bool& clamped)
{
    unsigned __int128 count = (static_cast<unsigned __int128>(tsc_ticks) * rate_q32) >> kRateFractionBits;
    clamped = count > kMaxOneShotCount;
    if (clamped)
        return static_cast<uint32_t>(kMaxOneShotCount);
    return count == 0 ? 1 : static_cast<uint32_t>(count);
}

class LapicTimer {
public:
    // Picks the mode and, for one-shot, measures the LAPIC timer against the TSC. Interrupts off.
    void calibrate_on_this_cpu();

    // Arms the timer to fire after `tsc_ticks`. Returns false when the time was clamped (the
    // interrupt comes earlier, with time still left).
    bool arm(uint64_t tsc_ticks) const;
    // Arms the timer for TSC value `deadline` (at once if it has passed); same clamping.
    bool arm_at(uint64_t deadline) const;
    void stop() const;

    bool deadline_mode() const { return deadline_mode_; }
    uint64_t rate_q32() const { return rate_q32_; }

private:
    bool deadline_mode_ = false;
    uint64_t rate_q32_ = 0;
};

} // namespace vlibos::x86

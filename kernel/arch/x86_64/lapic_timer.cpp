#include "arch/x86_64/lapic_timer.hpp"

#include "arch/x86_64/cpu.hpp"
#include "arch/x86_64/interrupts.hpp"
#include "arch/x86_64/lapic.hpp"
#include "arch/x86_64/tsc.hpp"

namespace vlibos::x86 {

namespace {
constexpr uint64_t kCalibrationUs = 10000;  // long enough to average out emulator jitter
} // namespace

void LapicTimer::calibrate_on_this_cpu()
{
    deadline_mode_ = Lapic::has_tsc_deadline();
    if (deadline_mode_)
        return;
    // Count down from the top for a known number of TSC ticks; the count never reaches 0, so
    // no interrupt is raised.
    uint64_t start = tsc::now();
    Lapic::arm_one_shot(kVectorLapicTimer, static_cast<uint32_t>(kMaxOneShotCount));
    tsc::delay_microseconds(kCalibrationUs);
    uint32_t remaining = Lapic::timer_current_count();
    uint64_t elapsed = tsc::now() - start;
    Lapic::stop_timer();
    uint64_t consumed = kMaxOneShotCount - remaining;
    // consumed < 2^32, so the shift cannot overflow.
    rate_q32_ = elapsed == 0 ? 0 : (consumed << kRateFractionBits) / elapsed;
}

bool LapicTimer::arm(uint64_t tsc_ticks) const
{
    if (deadline_mode_) {
        Lapic::arm_tsc_deadline(kVectorLapicTimer, tsc::now() + tsc_ticks);
        return true;
    }
    bool clamped = false;
    uint32_t count = one_shot_count(tsc_ticks, rate_q32_, clamped);
    Lapic::arm_one_shot(kVectorLapicTimer, count);
    return !clamped;
}

bool LapicTimer::arm_at(uint64_t deadline) const
{
    if (deadline_mode_) {
        Lapic::arm_tsc_deadline(kVectorLapicTimer, deadline);
        return true;
    }
    uint64_t now = tsc::now();
    return arm(deadline > now ? deadline - now : 0);
}

void LapicTimer::stop() const { Lapic::stop_timer(); }

} // namespace vlibos::x86

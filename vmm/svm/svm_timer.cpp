#include "vmm/svm/svm_timer.hpp"

#include "arch/x86_64/cpu.hpp"
#include "arch/x86_64/interrupts.hpp"
#include "arch/x86_64/lapic.hpp"
#include "arch/x86_64/tsc.hpp"

namespace vlibos::svm {

namespace {
constexpr uint64_t kCalibrationUs = 2000;
} // namespace

void GuestTimer::calibrate_on_this_cpu()
{
    deadline_mode_ = x86::Lapic::has_tsc_deadline();
    if (deadline_mode_)
        return;
    // Count down from the top for a known number of TSC ticks; the count never reaches 0, so
    // no interrupt is raised.
    uint64_t start = x86::tsc::now();
    x86::Lapic::arm_one_shot(x86::kVectorLapicTimer, static_cast<uint32_t>(kMaxOneShotCount));
    x86::tsc::delay_microseconds(kCalibrationUs);
    uint32_t remaining = x86::Lapic::timer_current_count();
    uint64_t elapsed = x86::tsc::now() - start;
    x86::Lapic::stop_timer();
    uint64_t consumed = kMaxOneShotCount - remaining;
    // consumed < 2^32, so the shift cannot overflow.
    rate_q32_ = elapsed == 0 ? 0 : (consumed << kRateFractionBits) / elapsed;
}

bool GuestTimer::arm(uint64_t tsc_ticks) const
{
    if (deadline_mode_) {
        x86::Lapic::arm_tsc_deadline(x86::kVectorLapicTimer, x86::tsc::now() + tsc_ticks);
        return true;
    }
    bool clamped = false;
    uint32_t count = one_shot_count(tsc_ticks, rate_q32_, clamped);
    x86::Lapic::arm_one_shot(x86::kVectorLapicTimer, count);
    return !clamped;
}

void GuestTimer::stop() const { x86::Lapic::stop_timer(); }

} // namespace vlibos::svm

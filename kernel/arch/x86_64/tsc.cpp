#include "arch/x86_64/tsc.hpp"

#include "arch/x86_64/cpu.hpp"
#include "arch/x86_64/pit.hpp"

namespace vlibos::x86::tsc {

namespace {
uint64_t g_hz = 0;

constexpr uint16_t kCalibrationTicks = 11932;  // 10 ms of the 1.193182 MHz PIT
constexpr unsigned kCalibrationRounds = 3;

// CPUID leaf 0x15 (SDM Vol. 2A): TSC = crystal * EBX / EAX, when all three are non-zero.
uint64_t cpuid_frequency()
{
    if (cpuid(0).eax < 0x15)
        return 0;
    CpuidResult r = cpuid(0x15);
    if (r.eax == 0 || r.ebx == 0 || r.ecx == 0)
        return 0;
    return static_cast<uint64_t>(r.ecx) * r.ebx / r.eax;
}
} // namespace

Calibration calibrate()
{
    Calibration result{0, Source::PitCalibration, cpuid_frequency(), false};
    if (cpuid(0x80000000).eax >= 0x80000007)
        result.invariant = (cpuid(0x80000007).edx & feature::kExt7EdxInvariantTsc) != 0;

    // Take the shortest of a few rounds: an interruption can only make a round longer.
    uint64_t best = 0;
    for (unsigned round = 0; round < kCalibrationRounds; ++round) {
        uint64_t delta = pit::measure_tsc_over(kCalibrationTicks);
        if (delta != 0 && (best == 0 || delta < best))
            best = delta;
    }
    if (best != 0) {
        result.hz = best * pit::kFrequencyHz / kCalibrationTicks;
    } else if (result.cpuid_hz != 0) {
        // No usable PIT: trust the CPU's own statement.
        result.hz = result.cpuid_hz;
        result.source = Source::Cpuid;
    }
    return result;
}

void set_frequency(uint64_t hz) { g_hz = hz; }
uint64_t frequency() { return g_hz; }
uint64_t now() { return rdtsc(); }
uint64_t from_microseconds(uint64_t us) { return us * (g_hz / 1000) / 1000; }
uint64_t to_microseconds(uint64_t ticks) { return g_hz == 0 ? 0 : ticks * 1000 / (g_hz / 1000); }

void delay_microseconds(uint64_t us)
{
    uint64_t end = rdtsc() + from_microseconds(us);
    while (rdtsc() < end)
        cpu_relax();
}

} // namespace vlibos::x86::tsc

// The time-stamp counter is the monitor's clock: budgets and deadlines are kept in TSC ticks.
#pragma once

#include <stdint.h>

namespace vlibos::x86::tsc {

enum class Source { Cpuid, PitCalibration };

struct Calibration {
    uint64_t hz;
    Source source;
    uint64_t cpuid_hz;  // what CPUID leaf 0x15 claims, 0 if it gives nothing
    bool invariant;     // CPUID 0x80000007 EDX[8]: constant rate across P-/C-states
};

// Measures the TSC rate against the PIT, and compares it with CPUID leaf 0x15 where given.
// Returns hz == 0 on failure.
Calibration calibrate();

void set_frequency(uint64_t hz);
uint64_t frequency();
uint64_t now();
uint64_t from_microseconds(uint64_t us);
uint64_t to_microseconds(uint64_t ticks);
void delay_microseconds(uint64_t us);

} // namespace vlibos::x86::tsc

// The 8254 programmable interval timer, used only as a known-frequency reference to
// calibrate the TSC (Intel 8254 data sheet; port 0x61 gate/output per the PC/AT design).
#pragma once

#include <stdint.h>

namespace vlibos::x86::pit {

constexpr uint32_t kFrequencyHz = 1193182;

// Counts `ticks` down on channel 2 and returns the TSC delta across it, or 0 when the
// channel's output never rose (no PIT, or a broken emulation).
uint64_t measure_tsc_over(uint16_t ticks);

} // namespace vlibos::x86::pit

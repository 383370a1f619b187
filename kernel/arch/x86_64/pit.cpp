#include "arch/x86_64/pit.hpp"

#include "arch/x86_64/cpu.hpp"

namespace vlibos::x86::pit {

namespace {
constexpr uint16_t kChannel2Data = 0x42;
constexpr uint16_t kModeCommand = 0x43;
constexpr uint16_t kSystemControlB = 0x61;        // bit 0: channel 2 gate, bit 1: speaker, bit 5: OUT2
constexpr uint8_t kGate2 = 1u << 0;
constexpr uint8_t kSpeaker = 1u << 1;
constexpr uint8_t kOut2 = 1u << 5;
constexpr uint8_t kChannel2LoHiMode0 = 0xb0;      // channel 2, lobyte/hibyte, mode 0 (interrupt on terminal count)
constexpr uint64_t kMaxPolls = 100000000;
} // namespace

uint64_t measure_tsc_over(uint16_t ticks)
{
    uint8_t control = inb(kSystemControlB);
    outb(kSystemControlB, static_cast<uint8_t>((control & ~kSpeaker) & ~kGate2));
    outb(kModeCommand, kChannel2LoHiMode0);
    outb(kChannel2Data, static_cast<uint8_t>(ticks & 0xff));
    outb(kChannel2Data, static_cast<uint8_t>(ticks >> 8));

    // Raising the gate starts the count; OUT2 goes high when it reaches zero.
    outb(kSystemControlB, static_cast<uint8_t>((control & ~kSpeaker) | kGate2));
    uint64_t start = rdtsc();
    uint64_t polls = 0;
    while ((inb(kSystemControlB) & kOut2) == 0) {
        if (++polls > kMaxPolls)
            return 0;
    }
    uint64_t end = rdtsc();
    outb(kSystemControlB, control);
    return end - start;
}

} // namespace vlibos::x86::pit

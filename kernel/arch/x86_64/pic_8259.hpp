// The legacy 8259A interrupt controllers. The monitor routes interrupts through the LAPIC and
// IOAPIC, so both 8259s are masked to keep stray legacy IRQs off the boot CPU.
#pragma once

#include "arch/x86_64/cpu.hpp"

namespace vlibos::x86::pic8259 {

constexpr uint16_t kMasterData = 0x21;
constexpr uint16_t kSlaveData = 0xa1;

inline void mask_all()
{
    outb(kMasterData, 0xff);  // OCW1: mask every line
    outb(kSlaveData, 0xff);
}

} // namespace vlibos::x86::pic8259

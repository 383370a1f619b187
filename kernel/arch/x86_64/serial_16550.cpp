#include "arch/x86_64/serial_16550.hpp"

#include "arch/x86_64/cpu.hpp"

namespace vlibos::x86 {

void Serial16550::init() const
{
    outb(static_cast<uint16_t>(base_ + InterruptEnable), 0);
    outb(static_cast<uint16_t>(base_ + LineControl), kLcrDivisorLatch);
    outb(static_cast<uint16_t>(base_ + Data), static_cast<uint8_t>(kDivisor115200 & 0xff));
    outb(static_cast<uint16_t>(base_ + InterruptEnable), static_cast<uint8_t>(kDivisor115200 >> 8));
    outb(static_cast<uint16_t>(base_ + LineControl), kLcr8N1);
    outb(static_cast<uint16_t>(base_ + FifoControl), kFcrEnableClear14);
    outb(static_cast<uint16_t>(base_ + ModemControl), kMcrDtrRtsOut2);
}

void Serial16550::drain() const
{
    for (unsigned spins = 0; spins < 1000000; ++spins) {
        if ((inb(static_cast<uint16_t>(base_ + LineStatus)) & kLsrTransmitterIdle) != 0)
            return;
        cpu_relax();
    }
}

void Serial16550::put(char c) const
{
    // Bounded wait: a missing UART (all-ones reads) must not hang the monitor.
    for (unsigned spins = 0; spins < 100000; ++spins) {
        if ((inb(static_cast<uint16_t>(base_ + LineStatus)) & kLsrTransmitterEmpty) != 0)
            break;
        cpu_relax();
    }
    outb(static_cast<uint16_t>(base_ + Data), static_cast<uint8_t>(c));
}

unsigned Serial16550::room() const
{
    return (inb(static_cast<uint16_t>(base_ + LineStatus)) & kLsrTransmitterEmpty) != 0 ? kFifoDepth : 0;
}

bool Serial16550::get_now(uint8_t& byte) const
{
    if ((inb(static_cast<uint16_t>(base_ + LineStatus)) & kLsrDataReady) == 0)
        return false;
    byte = inb(static_cast<uint16_t>(base_ + Data));
    return true;
}

void Serial16550::put_now(char c) const { outb(static_cast<uint16_t>(base_ + Data), static_cast<uint8_t>(c)); }

} // namespace vlibos::x86

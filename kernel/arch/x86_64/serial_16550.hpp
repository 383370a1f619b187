// Polled driver for a 16550-compatible UART (COM1 at I/O port 0x3f8), the monitor's console.
#pragma once

#include <stdint.h>

namespace vlibos::x86 {

class Serial16550 {
public:
    static constexpr uint16_t kCom1 = 0x3f8;

    explicit constexpr Serial16550(uint16_t base) : base_(base) {}
    void init() const;           // 115200 baud, 8N1, FIFOs on, interrupts off
    void put(char c) const;      // waits for the transmitter, then writes one byte
    void drain() const;          // waits until every written byte has left the shift register
    // Without waiting: how many bytes the transmit FIFO takes now (all 16 once THRE says it is
    // empty, PC16550D "FIFO mode"; none otherwise), and writing one of them.
    unsigned room() const;
    void put_now(char c) const;
    // A received byte, if the receive buffer holds one (LSR.DR); never waits.
    bool get_now(uint8_t& byte) const;

    static constexpr unsigned kFifoDepth = 16;

private:
    // Register offsets from the base port (PC16550D data sheet, Table II).
    enum Register : uint16_t {
        Data = 0,            // THR (write) / RBR (read); divisor latch low when DLAB=1
        InterruptEnable = 1, // IER; divisor latch high when DLAB=1
        FifoControl = 2,     // FCR
        LineControl = 3,     // LCR
        ModemControl = 4,    // MCR
        LineStatus = 5,      // LSR
    };
    static constexpr uint8_t kLsrDataReady = 0x01;
    static constexpr uint8_t kLcrDivisorLatch = 0x80;
    static constexpr uint8_t kLcr8N1 = 0x03;
    static constexpr uint8_t kFcrEnableClear14 = 0xc7;  // enable, clear both FIFOs, 14-byte trigger
    static constexpr uint8_t kMcrDtrRtsOut2 = 0x0b;
    static constexpr uint8_t kLsrTransmitterEmpty = 0x20; // THRE: holding register empty
    static constexpr uint8_t kLsrTransmitterIdle = 0x40;  // TEMT: holding and shift registers empty
    static constexpr uint16_t kDivisor115200 = 1;         // 1.8432 MHz / (16 * 115200)

    uint16_t base_;
};

} // namespace vlibos::x86

// A serial port for the guest, emulated in software: a 16550A UART (National Semiconductor
// PC16550D datasheet, "Registers", Tables I-IV) as the PC wires it (8 I/O ports, one ISA IRQ).
// The Linux VM's console is COM2 (ports 0x2F8-0x2FF, IRQ 3) on this model.
//
// The VMM hands every trapped port access to read()/write() with the offset from the base port.
// The host side of the wire:
//   - take_output(): bytes the guest transmitted, in order, for the VMM to write to the real UART
//     when it has room. The transmit queue is bounded (kTxQueueSize); while it has less than one
//     FIFO's worth of room, LSR.THRE and LSR.TEMT read 0, so a guest that checks them (Linux does)
//     waits and nothing is lost. Draining the queue sets THRE again (and the THRE interrupt).
//   - receive(byte): a byte arrived for the guest. A full receive FIFO is an overrun (LSR.OE),
//     as on the chip; receive_room() lets the VMM hold input back instead.
//   - line_idle(): no further input for now. This stands in for the 16550A's character timeout
//     (four character times of silence): received bytes below the FIFO trigger level interrupt
//     only after it. The VMM calls it after each batch of receive() calls.
// Every call that can change the interrupt output returns an IrqEdge: Raised/Lowered when
// irq_line() changed during the call. irq_line() is the IRQ pin as the interrupt controller sees
// it: an interrupt is pending in IIR, MCR.OUT2 is set (on a PC, OUT2 gates the UART's IRQ onto
// the ISA bus) and the UART is not in loopback mode (the output pins, OUT2 included, are forced
// inactive there). The VMM passes Raised to VirtualIoapic::raise(pin) and Lowered to lower(pin).
//
// Decisions beyond the datasheet:
//   - The transmitter is infinitely fast: a THR write goes straight into the transmit queue, so
//     THR is empty again at once when the queue has room. Without FIFOs the write re-raises the
//     THRE interrupt itself (a 16450 does so a moment later; Linux's autoconfig_irq() waits for
//     exactly that). With FIFOs the interrupt follows the end of the burst: the next access
//     other than a THR write, or the next host call (a 16550A raises it when the FIFO has
//     drained, long after a burst of up to 16 writes). TEMT reads as THRE:
//     the queue belongs to the host, not to the UART. A transmit FIFO reset (FCR bit 2) does not
//     drop queued bytes (they have left the virtual UART). THR writes while the queue is full
//     are dropped and counted; a guest that waits for THRE never sees that.
//   - No parity, framing or break errors (the host hands over bytes, not line signals): LSR
//     bits 2-4 and 7 read 0. The divisor latch and LCR are stored and read back, nothing more.
//   - Outside loopback the modem inputs read CTS, DSR and DCD asserted, RI not (a null-modem
//     cable to a ready peer); in loopback they follow MCR (CTS=RTS, DSR=DTR, RI=OUT1, DCD=OUT2),
//     with the delta bits and the modem status interrupt, and receive() input is dropped
//     (counted): the serial input is disconnected there.
//   - Wider accesses: the bus splits a 2- or 4-byte port access to an 8-bit device into byte
//     accesses at offset, offset+1, ... (least significant byte first), so read()/write() do
//     exactly that, side effects included. Bytes beyond offset 7 belong to no register: they read
//     0xFF and writes to them are dropped (counted). Offsets 8 and up and sizes other than 1, 2, 4
//     are refused with an error and change nothing; the VMM completes such a read with all ones.
//   - Writes to LSR and MSR (factory test on the chip) are ignored and counted.
//
// Pure logic: no hardware, no heap, no floating point. One per virtual UART; not thread-safe
// (the VMM serialises access).
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "lib/result.hpp"

namespace vlibos::vmm::devices {

enum class UartError : uint8_t {
    BadOffset,  // offset 8 or above: not one of the UART's eight ports
    BadSize,    // not a 1-, 2- or 4-byte access
};

const char* describe(UartError error);

// How the IRQ output changed during one call.
enum class IrqEdge : uint8_t { None, Raised, Lowered };

struct UartRead {
    uint32_t value = 0;
    IrqEdge irq = IrqEdge::None;
};

struct UartOutput {
    size_t count = 0;  // bytes copied out of the transmit queue
    IrqEdge irq = IrqEdge::None;
};

class VirtualUart {
public:
    // The PC's COM2 (the Linux VM's console) and the size of a 16550A's port block.
    static constexpr uint16_t kCom2Port = 0x2f8;
    static constexpr uint8_t kCom2Irq = 3;
    static constexpr uint32_t kPorts = 8;

    // Register offsets (PC16550D Table II). DLAB is LCR bit 7.
    static constexpr uint32_t kRbrThr = 0;  // DLAB=0: read RBR, write THR; DLAB=1: DLL
    static constexpr uint32_t kIer = 1;     // DLAB=0: IER; DLAB=1: DLM
    static constexpr uint32_t kIirFcr = 2;  // read IIR, write FCR (DLAB does not matter)
    static constexpr uint32_t kLcr = 3;
    static constexpr uint32_t kMcr = 4;
    static constexpr uint32_t kLsr = 5;
    static constexpr uint32_t kMsr = 6;
    static constexpr uint32_t kScr = 7;

    // IER: the four interrupt enables; bits 7:4 are always 0.
    static constexpr uint8_t kIerRdi = 1u << 0;   // ERBFI: received data available (and timeout)
    static constexpr uint8_t kIerThri = 1u << 1;  // ETBEI: transmitter holding register empty
    static constexpr uint8_t kIerRlsi = 1u << 2;  // ELSI: receiver line status
    static constexpr uint8_t kIerMsi = 1u << 3;   // EDSSI: modem status
    static constexpr uint8_t kIerMask = 0x0f;

    // IIR: bit 0 set = nothing pending; bits 3:1 the source (Table IV); bits 7:6 set when the
    // FIFOs are enabled.
    static constexpr uint8_t kIirNoInterrupt = 0x01;
    static constexpr uint8_t kIirModemStatus = 0x00;
    static constexpr uint8_t kIirThre = 0x02;
    static constexpr uint8_t kIirReceivedData = 0x04;
    static constexpr uint8_t kIirLineStatus = 0x06;
    static constexpr uint8_t kIirCharTimeout = 0x0c;
    static constexpr uint8_t kIirFifosEnabled = 0xc0;

    // FCR (write only).
    static constexpr uint8_t kFcrEnable = 1u << 0;
    static constexpr uint8_t kFcrClearRx = 1u << 1;
    static constexpr uint8_t kFcrClearTx = 1u << 2;
    static constexpr uint8_t kFcrDmaMode = 1u << 3;
    static constexpr unsigned kFcrTriggerShift = 6;  // bits 7:6: 1, 4, 8 or 14 bytes

    static constexpr uint8_t kLcrDlab = 1u << 7;

    // MCR; bits 7:5 are always 0.
    static constexpr uint8_t kMcrDtr = 1u << 0;
    static constexpr uint8_t kMcrRts = 1u << 1;
    static constexpr uint8_t kMcrOut1 = 1u << 2;
    static constexpr uint8_t kMcrOut2 = 1u << 3;
    static constexpr uint8_t kMcrLoop = 1u << 4;
    static constexpr uint8_t kMcrMask = 0x1f;

    // LSR.
    static constexpr uint8_t kLsrDr = 1u << 0;    // data ready
    static constexpr uint8_t kLsrOe = 1u << 1;    // overrun error (cleared by reading LSR)
    static constexpr uint8_t kLsrThre = 1u << 5;  // THR (FIFO) empty: room for a FIFO's worth
    static constexpr uint8_t kLsrTemt = 1u << 6;  // transmitter empty (here: as THRE)

    // MSR: delta bits 3:0 (cleared by reading MSR), line states 7:4.
    static constexpr uint8_t kMsrDcts = 1u << 0;
    static constexpr uint8_t kMsrDdsr = 1u << 1;
    static constexpr uint8_t kMsrTeri = 1u << 2;  // RI went from on to off
    static constexpr uint8_t kMsrDdcd = 1u << 3;
    static constexpr uint8_t kMsrCts = 1u << 4;
    static constexpr uint8_t kMsrDsr = 1u << 5;
    static constexpr uint8_t kMsrRi = 1u << 6;
    static constexpr uint8_t kMsrDcd = 1u << 7;
    static constexpr uint8_t kMsrDeltas = 0x0f;

    static constexpr size_t kFifoSize = 16;
    static constexpr size_t kTxQueueSize = 4096;

    struct Stats {
        uint64_t reads = 0;               // read() calls, refused ones included
        uint64_t writes = 0;              // write() calls, refused ones included
        uint64_t errors = 0;              // calls refused with a UartError
        uint64_t wide_accesses = 0;       // 2- and 4-byte accesses (split into bytes)
        uint64_t outside_bytes = 0;       // bytes of a wide access beyond offset 7
        uint64_t ignored_writes = 0;      // writes to LSR or MSR
        uint64_t tx_bytes = 0;            // THR writes queued for the host
        uint64_t tx_dropped = 0;          // THR writes dropped: transmit queue full
        uint64_t tx_drained = 0;          // bytes handed to the host by take_output()
        uint64_t loopback_bytes = 0;      // THR writes looped back to the receiver
        uint64_t rx_bytes = 0;            // receive() bytes put into the receive FIFO
        uint64_t rx_overruns = 0;         // bytes lost to overrun (LSR.OE set)
        uint64_t rx_dropped_loopback = 0; // receive() bytes dropped in loopback mode
        uint64_t irq_raised = 0;          // IRQ output edges, low to high
        uint64_t irq_lowered = 0;         // and high to low
    };

    VirtualUart();

    // A guest access at `offset` (0-7) from the base port; see the header comment for sizes.
    Result<UartRead, UartError> read(uint32_t offset, uint8_t size);
    // Only the low `size` bytes of `value` are used.
    Result<IrqEdge, UartError> write(uint32_t offset, uint8_t size, uint32_t value);

    // Host side: input. receive() returns the edge; an overrun is counted and sets LSR.OE.
    IrqEdge receive(uint8_t byte);
    IrqEdge line_idle();
    // Bytes receive() can still take without an overrun (0 in loopback mode).
    size_t receive_room() const;

    // Host side: output. Copies up to `max` queued bytes to `out`, oldest first.
    UartOutput take_output(uint8_t* out, size_t max);
    size_t output_pending() const { return tx_count_; }

    bool irq_line() const;
    // What a read of IIR would return now, without its side effect.
    uint8_t iir() const;
    uint8_t lsr() const;
    uint8_t msr() const { return static_cast<uint8_t>(modem_inputs() | msr_deltas_); }
    uint8_t ier() const { return ier_; }
    uint8_t lcr() const { return lcr_; }
    uint8_t mcr() const { return mcr_; }
    uint8_t scratch() const { return scr_; }
    uint16_t divisor() const { return static_cast<uint16_t>(dll_ | (dlm_ << 8)); }
    bool fifo_enabled() const { return (fcr_ & kFcrEnable) != 0; }
    size_t rx_trigger() const;   // bytes; 1 without FIFOs
    size_t rx_level() const { return rx_count_; }
    bool loopback() const { return (mcr_ & kMcrLoop) != 0; }
    const Stats& stats() const { return stats_; }

private:
    enum class Source : uint8_t { None, LineStatus, ReceivedData, CharTimeout, Thre, ModemStatus };
    Source source() const;

    uint8_t read_byte(uint32_t offset);
    void write_byte(uint32_t offset, uint8_t value);
    void write_ier(uint8_t value);
    void write_fcr(uint8_t value);
    void write_mcr(uint8_t value);
    void transmit(uint8_t byte);
    void settle();  // a THR write burst has ended: the transmit FIFO has drained
    bool push_rx(uint8_t byte);  // false: the byte was lost to an overrun
    void clear_rx();
    bool thr_empty() const { return kTxQueueSize - tx_count_ >= kFifoSize; }
    size_t rx_capacity() const { return fifo_enabled() ? kFifoSize : 1; }
    uint8_t modem_inputs() const;
    IrqEdge edge_since(bool before);

    uint8_t ier_ = 0;
    uint8_t fcr_ = 0;       // bits 0, 3, 7:6 as last programmed
    uint8_t lcr_ = 0;
    uint8_t mcr_ = 0;
    uint8_t scr_ = 0;
    uint8_t dll_ = 1;       // divisor 1: 115200 baud
    uint8_t dlm_ = 0;
    uint8_t lsr_errors_ = 0;  // LSR.OE until LSR is read
    uint8_t msr_deltas_ = 0;
    bool thre_pending_ = false;  // the THRE interrupt latch (IIR source 001)
    bool tx_draining_ = false;   // FIFO mode: THR written, THRE interrupt due at settle()
    bool rx_idle_ = false;       // the character timeout has run (see line_idle())

    uint8_t rx_[kFifoSize] = {};
    size_t rx_head_ = 0;
    size_t rx_count_ = 0;

    uint8_t tx_[kTxQueueSize] = {};
    size_t tx_head_ = 0;
    size_t tx_count_ = 0;

    Stats stats_;
};

} // namespace vlibos::vmm::devices

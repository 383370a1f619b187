// The guest's 16550A UART. See virtual_uart.hpp; "datasheet" is National Semiconductor's PC16550D.
#include "vmm/devices/virtual_uart.hpp"

namespace vlibos::vmm::devices {

namespace {

// FCR bits 7:6 -> receive FIFO trigger level in bytes (datasheet, "FIFO Control Register").
constexpr size_t kRxTriggers[4] = {1, 4, 8, 14};

// The FCR bits the UART keeps; bits 1 and 2 are self-clearing, 5:4 reserved.
constexpr uint8_t kFcrStored = VirtualUart::kFcrEnable | VirtualUart::kFcrDmaMode | 0xc0;

// Outside loopback the modem inputs read as a ready peer on a null-modem cable.
constexpr uint8_t kIdleModemInputs = VirtualUart::kMsrCts | VirtualUart::kMsrDsr | VirtualUart::kMsrDcd;

constexpr uint8_t kNoRegister = 0xff;  // what a byte of a wide access beyond offset 7 reads

} // namespace

const char* describe(UartError error)
{
    switch (error) {
    case UartError::BadOffset: return "UART access beyond its eight ports";
    case UartError::BadSize: return "UART access of a size other than 1, 2 or 4 bytes";
    }
    return "unknown UART error";
}

VirtualUart::VirtualUart() = default;

size_t VirtualUart::rx_trigger() const
{
    return fifo_enabled() ? kRxTriggers[fcr_ >> kFcrTriggerShift] : 1;
}

uint8_t VirtualUart::modem_inputs() const
{
    if (!loopback())
        return kIdleModemInputs;
    // Loopback: the modem control outputs drive the modem status inputs (datasheet, MCR bit 4).
    uint8_t in = 0;
    if (mcr_ & kMcrRts)
        in |= kMsrCts;
    if (mcr_ & kMcrDtr)
        in |= kMsrDsr;
    if (mcr_ & kMcrOut1)
        in |= kMsrRi;
    if (mcr_ & kMcrOut2)
        in |= kMsrDcd;
    return in;
}

// The highest-priority pending and enabled interrupt (datasheet Table IV): line status, then
// received data or character timeout, then THR empty, then modem status.
VirtualUart::Source VirtualUart::source() const
{
    if ((ier_ & kIerRlsi) && lsr_errors_)
        return Source::LineStatus;
    if (ier_ & kIerRdi) {
        if (rx_count_ >= rx_trigger())
            return Source::ReceivedData;
        if (fifo_enabled() && rx_count_ > 0 && rx_idle_)
            return Source::CharTimeout;
    }
    if ((ier_ & kIerThri) && thre_pending_)
        return Source::Thre;
    if ((ier_ & kIerMsi) && msr_deltas_)
        return Source::ModemStatus;
    return Source::None;
}

uint8_t VirtualUart::iir() const
{
    uint8_t id = kIirNoInterrupt;
    switch (source()) {
    case Source::None: id = kIirNoInterrupt; break;
    case Source::LineStatus: id = kIirLineStatus; break;
    case Source::ReceivedData: id = kIirReceivedData; break;
    case Source::CharTimeout: id = kIirCharTimeout; break;
    case Source::Thre: id = kIirThre; break;
    case Source::ModemStatus: id = kIirModemStatus; break;
    }
    return static_cast<uint8_t>(id | (fifo_enabled() ? kIirFifosEnabled : 0));
}

uint8_t VirtualUart::lsr() const
{
    uint8_t v = lsr_errors_;
    if (rx_count_ > 0)
        v |= kLsrDr;
    if (thr_empty())
        v |= kLsrThre | kLsrTemt;
    return v;
}

bool VirtualUart::irq_line() const
{
    // PC wiring: OUT2 enables the IRQ driver; loopback forces the OUT pins inactive.
    return source() != Source::None && (mcr_ & kMcrOut2) && !(mcr_ & kMcrLoop);
}

IrqEdge VirtualUart::edge_since(bool before)
{
    bool after = irq_line();
    if (after == before)
        return IrqEdge::None;
    if (after) {
        ++stats_.irq_raised;
        return IrqEdge::Raised;
    }
    ++stats_.irq_lowered;
    return IrqEdge::Lowered;
}

void VirtualUart::clear_rx()
{
    rx_head_ = 0;
    rx_count_ = 0;
    rx_idle_ = false;
}

bool VirtualUart::push_rx(uint8_t byte)
{
    if (rx_count_ < rx_capacity()) {
        rx_[(rx_head_ + rx_count_) % kFifoSize] = byte;
        ++rx_count_;
        return true;
    }
    // Overrun (datasheet, LSR bit 1). With FIFOs the character in the shift register is lost
    // and the FIFO kept; without, the new character overwrites the unread one in RBR.
    lsr_errors_ |= kLsrOe;
    ++stats_.rx_overruns;
    if (fifo_enabled())
        return false;
    rx_[rx_head_] = byte;
    return true;
}

void VirtualUart::transmit(uint8_t byte)
{
    // Writing THR clears the THRE interrupt; the byte leaves at once, so THR is empty again
    // unless the transmit queue is short of room.
    thre_pending_ = false;
    if (loopback()) {
        ++stats_.loopback_bytes;
        push_rx(byte);
        rx_idle_ = true;  // nothing follows the byte on the internal line
    } else if (tx_count_ == kTxQueueSize) {
        ++stats_.tx_dropped;
    } else {
        tx_[(tx_head_ + tx_count_) % kTxQueueSize] = byte;
        ++tx_count_;
        ++stats_.tx_bytes;
    }
    if (!thr_empty())
        return;
    // Without FIFOs the byte moves on to the shift register and THR is empty at once. With
    // them, a burst of THR writes fills the FIFO and the THRE interrupt comes once it has
    // drained: here at the next access that is not a THR write, or when the host takes output.
    // Linux writes up to 16 bytes per THRE interrupt and then reads IIR, so it sees no
    // interrupt in the middle of its own burst.
    if (fifo_enabled())
        tx_draining_ = true;
    else
        thre_pending_ = true;
}

void VirtualUart::settle()
{
    if (!tx_draining_)
        return;
    tx_draining_ = false;
    if (thr_empty())
        thre_pending_ = true;
}

void VirtualUart::write_ier(uint8_t value)
{
    auto next = static_cast<uint8_t>(value & kIerMask);
    bool thri_rising = (next & kIerThri) && !(ier_ & kIerThri);
    ier_ = next;
    // Enabling ETBEI while THR is empty raises the THRE interrupt even if an IIR read cleared it
    // before; Linux's THRE test in serial8250_do_startup() and autoconfig_irq() rely on it.
    if (!(next & kIerThri))
        thre_pending_ = false;
    else if (thri_rising)
        thre_pending_ = thr_empty();
}

void VirtualUart::write_fcr(uint8_t value)
{
    bool was_enabled = fifo_enabled();
    if (!(value & kFcrEnable)) {
        // Leaving FIFO mode clears the FIFOs; the other bits are programmed only with bit 0 set.
        if (was_enabled)
            clear_rx();
        fcr_ = static_cast<uint8_t>(fcr_ & ~kFcrEnable);
        return;
    }
    if (!was_enabled || (value & kFcrClearRx))
        clear_rx();
    // kFcrClearTx: the transmit FIFO is always empty here (see the header); queued bytes stay.
    fcr_ = static_cast<uint8_t>(value & kFcrStored);
}

void VirtualUart::write_mcr(uint8_t value)
{
    uint8_t before = modem_inputs();
    mcr_ = static_cast<uint8_t>(value & kMcrMask);
    uint8_t after = modem_inputs();
    auto changed = static_cast<uint8_t>(before ^ after);
    if (changed & kMsrCts)
        msr_deltas_ |= kMsrDcts;
    if (changed & kMsrDsr)
        msr_deltas_ |= kMsrDdsr;
    if (changed & kMsrDcd)
        msr_deltas_ |= kMsrDdcd;
    if ((before & kMsrRi) && !(after & kMsrRi))
        msr_deltas_ |= kMsrTeri;  // trailing edge only
}

uint8_t VirtualUart::read_byte(uint32_t offset)
{
    settle();
    bool dlab = (lcr_ & kLcrDlab) != 0;
    switch (offset) {
    case kRbrThr: {
        if (dlab)
            return dll_;
        if (rx_count_ == 0)
            return 0;
        uint8_t byte = rx_[rx_head_];
        rx_head_ = (rx_head_ + 1) % kFifoSize;
        --rx_count_;
        return byte;
    }
    case kIer:
        return dlab ? dlm_ : ier_;
    case kIirFcr: {
        uint8_t v = iir();
        if (source() == Source::Thre)
            thre_pending_ = false;  // reading IIR clears the THRE interrupt it reports
        return v;
    }
    case kLcr:
        return lcr_;
    case kMcr:
        return mcr_;
    case kLsr: {
        uint8_t v = lsr();
        lsr_errors_ = 0;
        return v;
    }
    case kMsr: {
        uint8_t v = msr();
        msr_deltas_ = 0;
        return v;
    }
    case kScr:
        return scr_;
    default:
        ++stats_.outside_bytes;
        return kNoRegister;
    }
}

void VirtualUart::write_byte(uint32_t offset, uint8_t value)
{
    bool dlab = (lcr_ & kLcrDlab) != 0;
    if (offset != kRbrThr || dlab)
        settle();
    switch (offset) {
    case kRbrThr:
        if (dlab)
            dll_ = value;
        else
            transmit(value);
        return;
    case kIer:
        if (dlab)
            dlm_ = value;
        else
            write_ier(value);
        return;
    case kIirFcr:
        write_fcr(value);
        return;
    case kLcr:
        lcr_ = value;
        return;
    case kMcr:
        write_mcr(value);
        return;
    case kLsr:
    case kMsr:
        ++stats_.ignored_writes;
        return;
    case kScr:
        scr_ = value;
        return;
    default:
        ++stats_.outside_bytes;
        return;
    }
}

Result<UartRead, UartError> VirtualUart::read(uint32_t offset, uint8_t size)
{
    ++stats_.reads;
    if (offset >= kPorts) {
        ++stats_.errors;
        return fail(UartError::BadOffset);
    }
    if (size != 1 && size != 2 && size != 4) {
        ++stats_.errors;
        return fail(UartError::BadSize);
    }
    if (size > 1)
        ++stats_.wide_accesses;
    bool before = irq_line();
    UartRead r;
    for (uint32_t i = 0; i < size; ++i)
        r.value |= uint32_t{read_byte(offset + i)} << (8 * i);
    r.irq = edge_since(before);
    return r;
}

Result<IrqEdge, UartError> VirtualUart::write(uint32_t offset, uint8_t size, uint32_t value)
{
    ++stats_.writes;
    if (offset >= kPorts) {
        ++stats_.errors;
        return fail(UartError::BadOffset);
    }
    if (size != 1 && size != 2 && size != 4) {
        ++stats_.errors;
        return fail(UartError::BadSize);
    }
    if (size > 1)
        ++stats_.wide_accesses;
    bool before = irq_line();
    for (uint32_t i = 0; i < size; ++i)
        write_byte(offset + i, static_cast<uint8_t>(value >> (8 * i)));
    return edge_since(before);
}

IrqEdge VirtualUart::receive(uint8_t byte)
{
    bool before = irq_line();
    settle();
    if (loopback()) {
        ++stats_.rx_dropped_loopback;  // the serial input is disconnected in loopback mode
    } else {
        if (push_rx(byte))
            ++stats_.rx_bytes;
        rx_idle_ = false;  // a character arrived: the timeout starts over
    }
    return edge_since(before);
}

IrqEdge VirtualUart::line_idle()
{
    bool before = irq_line();
    settle();
    rx_idle_ = true;
    return edge_since(before);
}

size_t VirtualUart::receive_room() const
{
    if (loopback())
        return 0;
    return rx_capacity() - rx_count_;
}

UartOutput VirtualUart::take_output(uint8_t* out, size_t max)
{
    bool before = irq_line();
    settle();
    bool was_empty = thr_empty();
    UartOutput result;
    if (out == nullptr)
        max = 0;
    size_t n = max < tx_count_ ? max : tx_count_;
    for (size_t i = 0; i < n; ++i)
        out[i] = tx_[(tx_head_ + i) % kTxQueueSize];
    tx_head_ = (tx_head_ + n) % kTxQueueSize;
    tx_count_ -= n;
    stats_.tx_drained += n;
    // THR becoming empty again sets the THRE interrupt (datasheet, IIR priority 3 "set").
    if (!was_empty && thr_empty())
        thre_pending_ = true;
    result.count = n;
    result.irq = edge_since(before);
    return result;
}

} // namespace vlibos::vmm::devices

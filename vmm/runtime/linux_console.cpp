#include "vmm/runtime/linux_console.hpp"

#include "vmm/io_policy.hpp"

namespace vlibos::vmm {

using devices::IrqEdge;

void LinuxConsole::init(LinuxBoard& board)
{
    board_ = &board;
    hardware_.init();
}

void LinuxConsole::signal(IrqEdge edge)
{
    // ISA interrupts are edge-triggered (the MP table says "conforms to the bus"): a rising
    // edge sends one interrupt; Linux's handler reads IIR until the line is low again.
    if (edge == IrqEdge::Raised)
        board_->raise(kPin);
    else if (edge == IrqEdge::Lowered)
        board_->lower(kPin);
}

void LinuxConsole::handle(const IoExit& io, GuestRegisters& regs)
{
    IrqEdge edge = IrqEdge::None;
    {
        SpinlockGuard guard(lock_);
        const uint32_t offset = static_cast<uint32_t>(io.port - kBase);
        const uint32_t mask = IoPolicy::size_mask(io.size);
        if (io.in) {
            auto r = uart_.read(offset, io.size);
            if (r)
                edge = r.value().irq;
            // A refused access reads as an empty bus.
            IoPolicy::complete_in(regs, io.size, r ? r.value().value : mask);
        } else {
            auto r = uart_.write(offset, io.size, static_cast<uint32_t>(regs.rax) & mask);
            if (r)
                edge = r.value();
        }
    }
    signal(edge);
    // Output the guest just wrote goes out now if the real FIFO has room (no wait for the poll).
    if (!io.in)
        poll();
}

void LinuxConsole::poll()
{
    IrqEdge edges[3] = {IrqEdge::None, IrqEdge::None, IrqEdge::None};
    {
        SpinlockGuard guard(lock_);
        if (uart_.output_pending() != 0) {
            unsigned room = hardware_.room();
            uint8_t bytes[x86::Serial16550::kFifoDepth];
            if (room != 0) {
                devices::UartOutput out = uart_.take_output(bytes, room);
                for (size_t i = 0; i < out.count; ++i)
                    hardware_.put_now(static_cast<char>(bytes[i]));
                edges[0] = out.irq;
            }
        }
        uint8_t byte = 0;
        bool received = false;
        while (uart_.receive_room() != 0 && hardware_.get_now(byte)) {
            IrqEdge e = uart_.receive(byte);
            if (e != IrqEdge::None)
                edges[1] = e;
            received = true;
        }
        // The batch is over: bytes below the trigger level interrupt now (the character timeout).
        if (received)
            edges[2] = uart_.line_idle();
    }
    for (IrqEdge e : edges)
        signal(e);
}

devices::VirtualUart::Stats LinuxConsole::stats()
{
    SpinlockGuard guard(lock_);
    return uart_.stats();
}

} // namespace vlibos::vmm

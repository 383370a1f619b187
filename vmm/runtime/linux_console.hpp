// The Linux VM's console: COM2 as the guest sees it is the monitor's software 16550
// (vmm/devices/virtual_uart.hpp), whose interrupt goes to the virtual I/O APIC pin 3 (ISA IRQ 3,
// as on a PC); the real COM2 carries its bytes. The monitor owns the real UART: it drains the
// guest's transmit queue into it when it has room and feeds what arrives into the guest's
// receive FIFO, on every exit and every idle wake (at least once per millisecond), so neither
// side ever waits for the other.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "arch/x86_64/serial_16550.hpp"
#include "lib/spinlock.hpp"
#include "vmm/devices/virtual_uart.hpp"
#include "vmm/exit.hpp"
#include "vmm/guest_registers.hpp"
#include "vmm/runtime/linux_board.hpp"

namespace vlibos::vmm {

class LinuxConsole {
public:
    static constexpr uint16_t kBase = devices::VirtualUart::kCom2Port;
    static constexpr uint8_t kPin = devices::VirtualUart::kCom2Irq;

    // Programs the real COM2 (115200 8N1, FIFOs, no interrupts) and connects the model's IRQ to
    // `board`.
    void init(LinuxBoard& board);
    static bool owns(uint16_t port) { return port >= kBase && port < kBase + devices::VirtualUart::kPorts; }
    // An IN/OUT on COM2's ports by the guest.
    void handle(const IoExit& io, GuestRegisters& regs);
    // Moves bytes between the model and the real UART.
    void poll();

    devices::VirtualUart::Stats stats();

private:
    void signal(devices::IrqEdge edge);

    Spinlock lock_;
    devices::VirtualUart uart_;
    x86::Serial16550 hardware_{kBase};
    LinuxBoard* board_ = nullptr;
};

} // namespace vlibos::vmm

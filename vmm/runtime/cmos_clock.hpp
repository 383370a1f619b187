// The PC's real-time clock (Motorola MC146818 in the CMOS, ports 0x70 index / 0x71 data), read
// through for the Linux VM so it gets the date at boot: the clock registers 0x00-0x0d and the
// century byte are read from the real chip; everything else reads as an empty bus, and every
// write to the data port is ignored (the machine's clock and CMOS belong to the monitor). The
// index the guest selects is kept here, never written to the chip's index port as given: bit 7
// of that port masks NMIs on a PC, which is not the guest's to decide.
#pragma once

#include <stdint.h>

#include "vmm/exit.hpp"
#include "vmm/guest_registers.hpp"

namespace vlibos::vmm {

class CmosClock {
public:
    static constexpr uint16_t kIndexPort = 0x70;
    static constexpr uint16_t kDataPort = 0x71;
    static bool owns(uint16_t port) { return port == kIndexPort || port == kDataPort; }

    // A byte IN/OUT on port 0x70 or 0x71 (the caller serialises the VM's vCPUs).
    void handle(const IoExit& io, GuestRegisters& regs);

    uint64_t reads() const { return reads_; }

private:
    uint8_t index_ = 0;
    uint64_t reads_ = 0;
};

} // namespace vlibos::vmm

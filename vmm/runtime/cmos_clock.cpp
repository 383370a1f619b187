#include "vmm/runtime/cmos_clock.hpp"

#include "arch/x86_64/cpu.hpp"
#include "vmm/io_policy.hpp"

namespace vlibos::vmm {

namespace {

// MC146818 registers the guest may read: seconds to year (0x00-0x09, alarms included), status
// A-D (0x0a-0x0d: update-in-progress, BCD/24-hour format, flags), and the century byte that
// PC firmware keeps at 0x32.
bool readable(uint8_t index) { return index <= 0x0d || index == 0x32; }

constexpr uint8_t kIndexMask = 0x7f;  // bit 7 of the index port is the PC's NMI mask

} // namespace

void CmosClock::handle(const IoExit& io, GuestRegisters& regs)
{
    uint32_t value = IoPolicy::size_mask(io.size);  // an empty bus, unless a clock register answers
    if (io.port == kIndexPort) {
        if (!io.in)
            index_ = static_cast<uint8_t>(regs.rax & kIndexMask);
    } else if (io.in && readable(index_)) {
        x86::outb(kIndexPort, index_);  // NMI mask bit clear, as the monitor runs
        value = x86::inb(kDataPort);
        ++reads_;
    }
    if (io.in)
        IoPolicy::complete_in(regs, io.size, value);
}

} // namespace vlibos::vmm

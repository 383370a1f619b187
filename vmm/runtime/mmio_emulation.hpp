// Completing a guest access to an emulated device page (the xAPIC, the I/O APIC).
//
// Such pages are left out of the nested page tables, so the access exits as a nested page fault
// with the guest-physical address and its direction, but not the register or the value. The
// monitor re-fetches the instruction at the guest's RIP through the guest's own page tables
// (vmm/decode/guest_page_walk), decodes it (vmm/decode/mmio_decode), carries the access out on
// the device and moves RIP past it. Both backends use this path; neither relies on decode
// assists, which QEMU's SVM does not offer.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "vmm/backend.hpp"
#include "vmm/guest_memory.hpp"

namespace vlibos::vmm {

// The device side: one access of `size` bytes at `gpa`. False: the device refuses it (the
// monitor then completes a read with all ones and drops a write, as an empty bus does).
class MmioDevice {
public:
    virtual bool mmio_read(uint64_t gpa, uint8_t size, uint64_t& value) = 0;
    virtual bool mmio_write(uint64_t gpa, uint8_t size, uint64_t value) = 0;

protected:
    ~MmioDevice() = default;
};

// Emulates the access behind `exit` (a NestedPageFault). On success RIP has moved past the
// instruction. On failure `why` says what could not be done (the instruction could not be
// fetched or is not a plain load/store, or it is not the access the CPU reported) and the guest
// is left as it was.
bool emulate_mmio(Vcpu& vcpu, GuestRegisters& regs, const ExitInfo& exit, const GuestMemory& memory,
                  MmioDevice& device, char* why, size_t why_size);

} // namespace vlibos::vmm

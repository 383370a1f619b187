#include "vmm/backend.hpp"

namespace vlibos::vmm {

const char* describe(VmError error)
{
    switch (error) {
    case VmError::NotSupported: return "the CPU lacks a virtualisation feature the monitor requires";
    case VmError::DisabledByFirmware: return "virtualisation is disabled by the firmware";
    case VmError::EnableFailed: return "virtualisation could not be turned on";
    case VmError::OutOfMemory: return "the monitor pool has no memory left for VM structures";
    case VmError::BadGuestMemory: return "the guest memory map cannot be expressed in nested page tables";
    case VmError::BadEntryState: return "the vCPU entry state is not supported";
    case VmError::HardwareError: return "a virtualisation instruction failed";
    }
    return "unknown VM error";
}

bool entry_state_valid(const EntryState& entry)
{
    switch (entry.mode) {
    case EntryState::Mode::Real16:
        return entry.rip < (uint64_t{1} << 20);
    case EntryState::Mode::Protected32: {
        auto inside = [&](uint16_t selector) {
            return (selector & ~uint16_t{7}) != 0 && (selector & 4) == 0 &&
                   static_cast<uint32_t>(selector | 7) <= entry.gdtr_limit;
        };
        return entry.rip < (uint64_t{1} << 32) && entry.rsp <= (uint64_t{1} << 32) && inside(entry.code_selector) &&
               inside(entry.data_selector) && entry.code_selector != entry.data_selector;
    }
    }
    return false;
}

} // namespace vlibos::vmm

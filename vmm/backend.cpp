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

} // namespace vlibos::vmm

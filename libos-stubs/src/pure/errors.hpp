// Names of the system-call error codes of kernel/rt/syscall_abi.h, for vlibos_strerror() and the
// C++ API. Pure: the host unit tests check that every code has its name.
#pragma once

#include <stdint.h>

#include "rt/syscall_abi.h"  // kernel/: the library and the host tests have it on their include path

namespace vlibos::rt::detail {

// `code` in either sign: 14 and -14 are both "EFAULT".
constexpr const char* error_name(int64_t code)
{
    uint64_t magnitude = code < 0 ? 0 - static_cast<uint64_t>(code) : static_cast<uint64_t>(code);
    switch (magnitude) {
    case 0: return "OK";
    case VLIBOS_EPERM: return "EPERM";
    case VLIBOS_ENOENT: return "ENOENT";
    case VLIBOS_EAGAIN: return "EAGAIN";
    case VLIBOS_EFAULT: return "EFAULT";
    case VLIBOS_EBUSY: return "EBUSY";
    case VLIBOS_EINVAL: return "EINVAL";
    case VLIBOS_ENOSYS: return "ENOSYS";
    case VLIBOS_EADMISSION: return "EADMISSION";
    default: return "E?";
    }
}

} // namespace vlibos::rt::detail

// Reading little-endian fields out of untrusted byte buffers (boot information, ACPI tables,
// ELF images). memcpy, never a cast: the data need not be aligned, and a cast would be UB.
#pragma once

#include <stdint.h>
#include <string.h>

namespace vlibos {

template <typename T>
inline T load(const uint8_t* p)
{
    T value;
    memcpy(&value, p, sizeof(value));
    return value;
}

inline uint16_t read_u16(const uint8_t* p) { return load<uint16_t>(p); }
inline uint32_t read_u32(const uint8_t* p) { return load<uint32_t>(p); }
inline uint64_t read_u64(const uint8_t* p) { return load<uint64_t>(p); }

} // namespace vlibos

// Writing little-endian fields into guest memory buffers (zero page, MP table, GDT, page tables).
// memcpy, never a cast: the buffers need not be aligned. The counterpart of lib/bytes.hpp's readers.
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <string.h>

namespace vlibos::vmm::linux_boot {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "guest structures are stored in host byte order");

template <typename T>
inline void store(uint8_t* p, T value)
{
    memcpy(p, &value, sizeof(value));
}

inline void store_u8(uint8_t* base, size_t offset, uint8_t value) { base[offset] = value; }
inline void store_u16(uint8_t* base, size_t offset, uint16_t value) { store(base + offset, value); }
inline void store_u32(uint8_t* base, size_t offset, uint32_t value) { store(base + offset, value); }
inline void store_u64(uint8_t* base, size_t offset, uint64_t value) { store(base + offset, value); }

// The byte that makes `bytes` sum to zero modulo 256 (MP spec and ACPI checksums).
inline uint8_t checksum_byte(const uint8_t* bytes, size_t length)
{
    uint8_t sum = 0;
    for (size_t i = 0; i < length; ++i)
        sum = static_cast<uint8_t>(sum + bytes[i]);
    return static_cast<uint8_t>(0x100 - sum);
}

} // namespace vlibos::vmm::linux_boot

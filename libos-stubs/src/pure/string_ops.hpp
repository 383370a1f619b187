// The C library subset of the RT runtime (memcpy ... strnlen), as inline functions in a namespace.
// libc.cpp exports them under their C names in the ring-3 build; the host unit tests
// (tests/unit/libos_libc_test.cpp) call them here without clashing with the host's C library.
//
// The copies and fills use `rep movsb`/`rep stosb` (fast on CPUs with ERMS, Intel SDM Vol. 1
// §7.3.9.3) written in asm on purpose: GCC turns a byte loop into a call to memcpy/memset, which
// inside memcpy itself would recurse forever.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace vlibos::rt::libc {

inline void* memcpy(void* dst, const void* src, size_t n)
{
    void* d = dst;
    asm volatile("rep movsb" : "+D"(d), "+S"(src), "+c"(n) : : "memory");
    return dst;
}

// Overlap-safe: forwards when the destination lies below the source, backwards (DF = 1, the
// string instructions then walk down from the last byte) otherwise. DF is clear again before
// returning, as the System V ABI requires of every function.
inline void* memmove(void* dst, const void* src, size_t n)
{
    auto d = reinterpret_cast<uintptr_t>(dst);
    auto s = reinterpret_cast<uintptr_t>(src);
    if (d <= s || d - s >= n)
        return memcpy(dst, src, n);
    void* last_d = static_cast<unsigned char*>(dst) + n - 1;
    const void* last_s = static_cast<const unsigned char*>(src) + n - 1;
    asm volatile("std\n\trep movsb\n\tcld" : "+D"(last_d), "+S"(last_s), "+c"(n) : : "memory", "cc");
    return dst;
}

inline void* memset(void* dst, int value, size_t n)
{
    void* d = dst;
    asm volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(value) : "memory");
    return dst;
}

inline int memcmp(const void* a, const void* b, size_t n)
{
    auto* x = static_cast<const unsigned char*>(a);
    auto* y = static_cast<const unsigned char*>(b);
    for (size_t i = 0; i < n; ++i) {
        if (x[i] != y[i])
            return x[i] < y[i] ? -1 : 1;
    }
    return 0;
}

inline size_t strlen(const char* s)
{
    size_t n = 0;
    while (s[n] != '\0')
        ++n;
    return n;
}

// Reads at most `limit` bytes, so `s` need not be terminated inside them.
inline size_t strnlen(const char* s, size_t limit)
{
    size_t n = 0;
    while (n < limit && s[n] != '\0')
        ++n;
    return n;
}

// Characters compare as unsigned char, as C requires.
inline int strncmp(const char* a, const char* b, size_t n)
{
    for (size_t i = 0; i < n; ++i) {
        auto x = static_cast<unsigned char>(a[i]);
        auto y = static_cast<unsigned char>(b[i]);
        if (x != y)
            return x < y ? -1 : 1;
        if (x == '\0')
            return 0;
    }
    return 0;
}

inline int strcmp(const char* a, const char* b) { return strncmp(a, b, SIZE_MAX); }

} // namespace vlibos::rt::libc

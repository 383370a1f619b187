// The C library subset of the RT runtime under its C names: the memory and string functions the
// compiler may call on its own (struct copies, zeroing), plus snprintf/vsnprintf over the
// kernel's formatter (kernel/lib/format.cpp, the one printf of the project). The bodies live in
// pure/string_ops.hpp so the host unit tests can check them.
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/format.hpp"
#include "pure/string_ops.hpp"

namespace libc = vlibos::rt::libc;

extern "C" {

void* memcpy(void* dst, const void* src, size_t n) { return libc::memcpy(dst, src, n); }
void* memmove(void* dst, const void* src, size_t n) { return libc::memmove(dst, src, n); }
void* memset(void* dst, int value, size_t n) { return libc::memset(dst, value, n); }
int memcmp(const void* a, const void* b, size_t n) { return libc::memcmp(a, b, n); }
size_t strlen(const char* s) { return libc::strlen(s); }
size_t strnlen(const char* s, size_t limit) { return libc::strnlen(s, limit); }
int strcmp(const char* a, const char* b) { return libc::strcmp(a, b); }
int strncmp(const char* a, const char* b, size_t n) { return libc::strncmp(a, b, n); }

// C's contract: the length the whole output would have had (clamped to INT_MAX, which an
// application never reaches), at most size - 1 bytes stored plus the NUL.
int vsnprintf(char* buffer, size_t size, const char* fmt, va_list args)
{
    size_t length = vlibos::format_v(buffer, size, fmt, args);
    return length > INT32_MAX ? INT32_MAX : static_cast<int>(length);
}

int snprintf(char* buffer, size_t size, const char* fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    int length = vsnprintf(buffer, size, fmt, args);
    va_end(args);
    return length;
}

} // extern "C"

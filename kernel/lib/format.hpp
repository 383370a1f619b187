// Formatted printing into a bounded buffer, the kernel's only printf.
// Supports %d %i %u %x %X %o %c %s %p %% with flags '-', '0', '#', width and precision (numbers or '*';
// precision for %s and integers), and length modifiers l, ll, z, h, hh. Unknown conversions are printed verbatim.
#pragma once

#include <stdarg.h>
#include <stddef.h>

namespace vlibos {

// Writes at most `size` bytes including the terminating NUL (when size > 0) and returns the
// length the full output would have had, like C's vsnprintf.
size_t format_v(char* buffer, size_t size, const char* fmt, va_list args);
size_t format(char* buffer, size_t size, const char* fmt, ...) __attribute__((format(printf, 3, 4)));

// A fixed-capacity string that accumulates formatted text; it truncates, never overflows.
template <size_t Capacity>
class FormatBuffer {
public:
    void append(const char* fmt, ...) __attribute__((format(printf, 2, 3)))
    {
        va_list args;
        va_start(args, fmt);
        size_t room = Capacity - length_;
        size_t wanted = format_v(text_ + length_, room, fmt, args);
        va_end(args);
        length_ += wanted < room ? wanted : room - 1;
    }
    const char* c_str() const { return text_; }
    size_t length() const { return length_; }
    void clear() { length_ = 0; text_[0] = '\0'; }

private:
    char text_[Capacity] = {};
    size_t length_ = 0;
};

} // namespace vlibos

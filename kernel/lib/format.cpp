#include "lib/format.hpp"

#include <stdint.h>

namespace vlibos {

namespace {

// Output cursor that counts every character but stores only what fits.
struct Sink {
    char* buffer;
    size_t size;
    size_t length = 0;

    void put(char c)
    {
        if (length + 1 < size)
            buffer[length] = c;
        ++length;
    }
    void finish()
    {
        if (size == 0)
            return;
        buffer[length < size ? length : size - 1] = '\0';
    }
};

struct Spec {
    bool left = false;
    bool zero = false;
    bool alternate = false;  // '#': 0x prefix for hex
    bool has_precision = false;
    unsigned width = 0;
    unsigned precision = 0;
};

void pad(Sink& out, unsigned count, char c)
{
    for (unsigned i = 0; i < count; ++i)
        out.put(c);
}

void emit_string(Sink& out, const char* s, const Spec& spec)
{
    if (s == nullptr)
        s = "(null)";
    unsigned len = 0;
    // Precision first: with "%.*s" the text need not be NUL-terminated, and s[precision] may lie
    // outside its buffer.
    while ((!spec.has_precision || len < spec.precision) && s[len] != '\0')
        ++len;
    unsigned fill = spec.width > len ? spec.width - len : 0;
    if (!spec.left)
        pad(out, fill, ' ');
    for (unsigned i = 0; i < len; ++i)
        out.put(s[i]);
    if (spec.left)
        pad(out, fill, ' ');
}

void emit_number(Sink& out, uint64_t value, bool negative, unsigned base, bool upper, const char* prefix,
                 const Spec& spec)
{
    char digits[24];
    unsigned n = 0;
    const char* alphabet = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    do {
        digits[n++] = alphabet[value % base];
        value /= base;
    } while (value != 0);

    unsigned min_digits = spec.has_precision ? spec.precision : 1;
    unsigned zeros = min_digits > n ? min_digits - n : 0;
    unsigned prefix_len = 0;
    while (prefix[prefix_len] != '\0')
        ++prefix_len;
    unsigned body = n + zeros + prefix_len + (negative ? 1 : 0);
    unsigned fill = spec.width > body ? spec.width - body : 0;

    bool zero_fill = spec.zero && !spec.left && !spec.has_precision;
    if (!spec.left && !zero_fill)
        pad(out, fill, ' ');
    if (negative)
        out.put('-');
    for (unsigned i = 0; i < prefix_len; ++i)
        out.put(prefix[i]);
    if (zero_fill)
        pad(out, fill, '0');
    pad(out, zeros, '0');
    while (n > 0)
        out.put(digits[--n]);
    if (spec.left)
        pad(out, fill, ' ');
}

enum class Length { Int, Char, Short, Long, LongLong, Size };

uint64_t fetch_unsigned(va_list& args, Length length)
{
    switch (length) {
    case Length::Char: return static_cast<unsigned char>(va_arg(args, unsigned));
    case Length::Short: return static_cast<unsigned short>(va_arg(args, unsigned));
    case Length::Long: return va_arg(args, unsigned long);
    case Length::LongLong: return va_arg(args, unsigned long long);
    case Length::Size: return va_arg(args, size_t);
    case Length::Int: break;
    }
    return va_arg(args, unsigned);
}

int64_t fetch_signed(va_list& args, Length length)
{
    switch (length) {
    case Length::Char: return static_cast<signed char>(va_arg(args, int));
    case Length::Short: return static_cast<short>(va_arg(args, int));
    case Length::Long: return va_arg(args, long);
    case Length::LongLong: return va_arg(args, long long);
    case Length::Size: return static_cast<int64_t>(va_arg(args, size_t));
    case Length::Int: break;
    }
    return va_arg(args, int);
}

} // namespace

size_t format_v(char* buffer, size_t size, const char* fmt, va_list args_in)
{
    va_list args;
    va_copy(args, args_in);
    Sink out{buffer, size};

    for (const char* p = fmt; *p != '\0'; ++p) {
        if (*p != '%') {
            out.put(*p);
            continue;
        }
        const char* start = p++;
        Spec spec;
        for (;; ++p) {
            if (*p == '-')
                spec.left = true;
            else if (*p == '0')
                spec.zero = true;
            else if (*p == '#')
                spec.alternate = true;
            else
                break;
        }
        if (*p == '*') {
            int width = va_arg(args, int);
            if (width < 0) {
                spec.left = true;
                width = -width;
            }
            spec.width = static_cast<unsigned>(width);
            ++p;
        }
        while (*p >= '0' && *p <= '9')
            spec.width = spec.width * 10 + static_cast<unsigned>(*p++ - '0');
        if (*p == '.') {
            spec.has_precision = true;
            ++p;
            if (*p == '*') {
                int precision = va_arg(args, int);
                // A negative precision counts as none, as in C.
                spec.has_precision = precision >= 0;
                spec.precision = precision >= 0 ? static_cast<unsigned>(precision) : 0;
                ++p;
            }
            while (*p >= '0' && *p <= '9')
                spec.precision = spec.precision * 10 + static_cast<unsigned>(*p++ - '0');
        }
        Length length = Length::Int;
        if (*p == 'h') {
            length = (p[1] == 'h') ? Length::Char : Length::Short;
            p += (p[1] == 'h') ? 2 : 1;
        } else if (*p == 'l') {
            length = (p[1] == 'l') ? Length::LongLong : Length::Long;
            p += (p[1] == 'l') ? 2 : 1;
        } else if (*p == 'z') {
            length = Length::Size;
            ++p;
        }

        switch (*p) {
        case 'd':
        case 'i': {
            int64_t v = fetch_signed(args, length);
            uint64_t magnitude = v < 0 ? 0 - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
            emit_number(out, magnitude, v < 0, 10, false, "", spec);
            break;
        }
        case 'u': emit_number(out, fetch_unsigned(args, length), false, 10, false, "", spec); break;
        case 'x':
            emit_number(out, fetch_unsigned(args, length), false, 16, false, spec.alternate ? "0x" : "", spec);
            break;
        case 'X':
            emit_number(out, fetch_unsigned(args, length), false, 16, true, spec.alternate ? "0X" : "", spec);
            break;
        case 'o': emit_number(out, fetch_unsigned(args, length), false, 8, false, "", spec); break;
        case 'p': {
            Spec pointer_spec = spec;
            pointer_spec.has_precision = true;
            pointer_spec.precision = 16;
            emit_number(out, reinterpret_cast<uintptr_t>(va_arg(args, void*)), false, 16, false, "0x",
                        pointer_spec);
            break;
        }
        case 'c': out.put(static_cast<char>(va_arg(args, int))); break;
        case 's': emit_string(out, va_arg(args, const char*), spec); break;
        case '%': out.put('%'); break;
        default:
            // Unknown conversion: print it as written so the mistake is visible.
            for (const char* q = start; q <= p && *q != '\0'; ++q)
                out.put(*q);
            if (*p == '\0')
                --p;
            break;
        }
    }
    out.finish();
    va_end(args);
    return out.length;
}

size_t format(char* buffer, size_t size, const char* fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    size_t n = format_v(buffer, size, fmt, args);
    va_end(args);
    return n;
}

} // namespace vlibos

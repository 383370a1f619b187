// Kernel command line: space-separated words, each `key=value` or a bare `key`.
// The text comes from the boot loader and is untrusted; lookups never write past `out_size`.
// There is no quoting: a value ends at the next blank.
#pragma once

#include <stddef.h>

namespace vlibos {

class CommandLine {
public:
    // `text` must stay alive and NUL-terminated while this object is used; null means empty.
    explicit CommandLine(const char* text);

    // True if some word is exactly `key` or starts with `key=`.
    bool has(const char* key) const;

    // Copies the value of the last occurrence of `key` into `out` (NUL-terminated; empty for a
    // bare key). Returns false if the key is absent or the value plus NUL does not fit.
    bool get(const char* key, char* out, size_t out_size) const;

    const char* text() const { return text_; }

private:
    // Finds the last word whose key is `key`; sets the value range (empty for a bare key).
    bool find_last(const char* key, const char*& value, size_t& value_length) const;

    const char* text_;
};

} // namespace vlibos

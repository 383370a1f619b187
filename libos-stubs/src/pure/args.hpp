// Parsing an application's argument string (the configuration's `args`): words separated by
// spaces (or tabs), each a flag ("badptr") or key=value ("periods=200"). Pure: host-tested in
// tests/unit/libos_libc_test.cpp. The string comes from the configuration, so nothing here
// trusts it: every read stops at the terminating NUL and numbers are overflow-checked.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace vlibos::rt::detail {

constexpr bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n'; }

// The next word at *cursor, its length in *length; the cursor moves past it. nullptr at the end.
inline const char* next_word(const char** cursor, size_t* length)
{
    const char* p = *cursor;
    if (p == nullptr)
        return nullptr;
    while (is_space(*p))
        ++p;
    if (*p == '\0') {
        *cursor = p;
        return nullptr;
    }
    const char* start = p;
    while (*p != '\0' && !is_space(*p))
        ++p;
    *cursor = p;
    *length = static_cast<size_t>(p - start);
    return start;
}

// The value of the first word that is exactly "key=...", or nullptr.
inline const char* find_value(const char* args, const char* key, size_t* length)
{
    size_t key_length = 0;
    while (key[key_length] != '\0')
        ++key_length;
    const char* cursor = args;
    size_t word_length = 0;
    while (const char* word = next_word(&cursor, &word_length)) {
        if (word_length <= key_length || word[key_length] != '=')
            continue;
        bool same = true;
        for (size_t i = 0; i < key_length && same; ++i)
            same = word[i] == key[i];
        if (same) {
            *length = word_length - key_length - 1;
            return word + key_length + 1;
        }
    }
    return nullptr;
}

// Decimal, or hexadecimal after "0x"/"0X"; the whole text must be digits and fit 64 bits.
inline bool parse_u64(const char* text, size_t length, uint64_t* value)
{
    unsigned base = 10;
    if (length > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
        base = 16;
        text += 2;
        length -= 2;
    }
    if (length == 0)
        return false;
    uint64_t result = 0;
    for (size_t i = 0; i < length; ++i) {
        char c = text[i];
        unsigned digit;
        if (c >= '0' && c <= '9')
            digit = static_cast<unsigned>(c - '0');
        else if (base == 16 && c >= 'a' && c <= 'f')
            digit = static_cast<unsigned>(c - 'a' + 10);
        else if (base == 16 && c >= 'A' && c <= 'F')
            digit = static_cast<unsigned>(c - 'A' + 10);
        else
            return false;
        if (result > (UINT64_MAX - digit) / base)
            return false;
        result = result * base + digit;
    }
    *value = result;
    return true;
}

// 1 and *value set if "key=N" is present and N a number; 0 if absent; -1 if N is malformed.
inline int find_u64(const char* args, const char* key, uint64_t* value)
{
    size_t length = 0;
    const char* text = find_value(args, key, &length);
    if (text == nullptr)
        return 0;
    return parse_u64(text, length, value) ? 1 : -1;
}

} // namespace vlibos::rt::detail

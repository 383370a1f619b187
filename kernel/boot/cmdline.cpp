// Kernel command line lookups. See cmdline.hpp.
#include "boot/cmdline.hpp"

#include <string.h>

namespace vlibos {

namespace {

bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

} // namespace

CommandLine::CommandLine(const char* text)
    : text_(text != nullptr ? text : "")
{
}

bool CommandLine::find_last(const char* key, const char*& value, size_t& value_length) const
{
    if (key == nullptr)
        return false;
    size_t key_length = strlen(key);
    if (key_length == 0)
        return false;

    bool found = false;
    const char* p = text_;
    while (*p != '\0') {
        while (is_blank(*p))
            ++p;
        if (*p == '\0')
            break;
        const char* word = p;
        while (*p != '\0' && !is_blank(*p))
            ++p;
        size_t word_length = static_cast<size_t>(p - word);

        // The key is the part before the first '='; it must match in full, so that
        // "vlibos.configx" never answers for "vlibos.config".
        size_t name_length = 0;
        while (name_length < word_length && word[name_length] != '=')
            ++name_length;
        if (name_length != key_length || memcmp(word, key, key_length) != 0)
            continue;
        found = true; // keep scanning: the last occurrence wins
        if (name_length == word_length) {
            value = word + word_length;
            value_length = 0;
        } else {
            value = word + name_length + 1;
            value_length = word_length - name_length - 1;
        }
    }
    return found;
}

bool CommandLine::has(const char* key) const
{
    const char* value = nullptr;
    size_t value_length = 0;
    return find_last(key, value, value_length);
}

bool CommandLine::get(const char* key, char* out, size_t out_size) const
{
    const char* value = nullptr;
    size_t value_length = 0;
    if (!find_last(key, value, value_length))
        return false;
    if (out == nullptr || value_length >= out_size)
        return false;
    memcpy(out, value, value_length);
    out[value_length] = '\0';
    return true;
}

} // namespace vlibos

#include <catch2/catch.hpp>

#include <string>

#include "lib/format.hpp"

using vlibos::format;

namespace {
template <typename... Args>
std::string fmt(const char* f, Args... args)
{
    char buffer[256];
    format(buffer, sizeof(buffer), f, args...);
    return buffer;
}
} // namespace

TEST_CASE("format: integers in every base and width", "[format]")
{
    CHECK(fmt("%d", -42) == "-42");
    CHECK(fmt("%u", 42u) == "42");
    CHECK(fmt("%x", 0xbeefu) == "beef");
    CHECK(fmt("%X", 0xbeefu) == "BEEF");
    CHECK(fmt("%#x", 0x1fu) == "0x1f");
    CHECK(fmt("%08x", 0x1fu) == "0000001f");
    CHECK(fmt("%#010llx", 0x1fULL) == "0x0000001f");
    CHECK(fmt("%5d|", 7) == "    7|");
    CHECK(fmt("%-5d|", 7) == "7    |");
    CHECK(fmt("%llu", 18446744073709551615ULL) == "18446744073709551615");
    CHECK(fmt("%lld", static_cast<long long>(-9223372036854775807LL - 1)) == "-9223372036854775808");
    CHECK(fmt("%zu", static_cast<size_t>(123)) == "123");
    CHECK(fmt("%hhu", 300) == "44");
    CHECK(fmt("%o", 8u) == "10");
    CHECK(fmt("%.3d", 5) == "005");
}

TEST_CASE("format: strings, chars, pointers and percent", "[format]")
{
    CHECK(fmt("%s!", "hi") == "hi!");
    CHECK(fmt("%5s|%-5s|", "ab", "cd") == "   ab|cd   |");
    CHECK(fmt("%.2s", "abcdef") == "ab");
    CHECK(fmt("%.*s|", 3, "abcdef") == "abc|");
    CHECK(fmt("%.*s|", -1, "abc") == "abc|");
    CHECK(fmt("%*d|", 4, 7) == "   7|");
    CHECK(fmt("%*d|", -4, 7) == "7   |");
    CHECK(fmt("%s", static_cast<const char*>(nullptr)) == "(null)");
    CHECK(fmt("%c%c", 'o', 'k') == "ok");
    CHECK(fmt("%p", reinterpret_cast<void*>(0x1000)) == "0x0000000000001000");
    CHECK(fmt("100%%") == "100%");
}

TEST_CASE("format: %.*s never reads past the precision", "[format]")
{
    // No terminator: ASan flags any read of text[3].
    char* text = new char[3]{'a', 'b', 'c'};
    CHECK(fmt("%.*s|", 3, text) == "abc|");
    delete[] text;
}

TEST_CASE("format: unknown conversions are shown, not swallowed", "[format]")
{
    CHECK(fmt("a%qb") == "a%qb");
    CHECK(fmt("end%") == "end%");
}

TEST_CASE("format: truncates safely and reports the full length", "[format]")
{
    char small[6];
    size_t n = format(small, sizeof(small), "%s", "hello world");
    CHECK(n == 11);
    CHECK(std::string(small) == "hello");

    char none[1] = {'x'};
    CHECK(format(none, 0, "abc") == 3);
    CHECK(none[0] == 'x');
    CHECK(format(none, 1, "abc") == 3);
    CHECK(none[0] == '\0');
}

TEST_CASE("FormatBuffer accumulates and truncates without overflow", "[format]")
{
    vlibos::FormatBuffer<8> b;
    b.append("%s", "abc");
    b.append("%d", 12345);
    CHECK(std::string(b.c_str()) == "abc1234");
    CHECK(b.length() == 7);
    b.append("more");
    CHECK(std::string(b.c_str()) == "abc1234");
    b.clear();
    CHECK(std::string(b.c_str()).empty());
}

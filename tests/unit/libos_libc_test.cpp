// The pure parts of the RT runtime (libos-stubs/src/pure): the C library subset against the
// host's C library, the argument parser, and the error names. The ring-3 build exports the same
// code under the C names (libos-stubs/src/libc.cpp).
#include <catch2/catch.hpp>

#include <stdint.h>
#include <string.h>

#include <string>
#include <vector>

#include "libos-stubs/src/pure/args.hpp"
#include "libos-stubs/src/pure/errors.hpp"
#include "libos-stubs/src/pure/string_ops.hpp"
#include "rt/syscall_abi.h"
#include "test_random.hpp"

namespace libc = vlibos::rt::libc;
using namespace vlibos::rt::detail;

namespace {

int sign(int v) { return (v > 0) - (v < 0); }

std::vector<std::string> words(const char* args)
{
    std::vector<std::string> out;
    const char* cursor = args;
    size_t length = 0;
    while (const char* w = next_word(&cursor, &length))
        out.emplace_back(w, length);
    return out;
}

std::string value(const char* args, const char* key)
{
    size_t length = 0;
    const char* v = find_value(args, key, &length);
    return v == nullptr ? std::string("<absent>") : std::string(v, length);
}

} // namespace

TEST_CASE("libos libc: memcpy, memset and memmove agree with the host at every size, offset and overlap", "[libos]")
{
    vlibos::test::Lcg rng{42};
    std::vector<uint8_t> source(512);
    for (auto& b : source)
        b = static_cast<uint8_t>(rng.next());

    for (int round = 0; round < 2000; ++round) {
        size_t n = rng.below(200);
        size_t from = rng.below(256);
        size_t to = rng.below(256);
        std::vector<uint8_t> ours = source, host = source;

        switch (round % 3) {
        case 0: // separate buffers
        {
            std::vector<uint8_t> dst_ours(512, 0xee), dst_host(512, 0xee);
            REQUIRE(libc::memcpy(dst_ours.data() + to, source.data() + from, n) == dst_ours.data() + to);
            memcpy(dst_host.data() + to, source.data() + from, n);
            REQUIRE(dst_ours == dst_host);
            break;
        }
        case 1: // overlapping, either direction
            REQUIRE(libc::memmove(ours.data() + to, ours.data() + from, n) == ours.data() + to);
            memmove(host.data() + to, host.data() + from, n);
            REQUIRE(ours == host);
            break;
        default: {
            int fill = static_cast<int>(rng.next());
            REQUIRE(libc::memset(ours.data() + to, fill, n) == ours.data() + to);
            memset(host.data() + to, fill, n);
            REQUIRE(ours == host);
        }
        }
    }
}

TEST_CASE("libos libc: memmove leaves the direction flag clear", "[libos]")
{
    char buffer[16] = "abcdefghijklmno";
    libc::memmove(buffer + 1, buffer, 8); // backwards: uses std
    CHECK(std::string(buffer) == "aabcdefghjklmno");
    uint64_t flags;
    asm volatile("pushfq; pop %0" : "=r"(flags));
    CHECK((flags & (1u << 10)) == 0); // RFLAGS.DF
}

TEST_CASE("libos libc: comparisons and lengths agree with the host, bytes compare unsigned", "[libos]")
{
    const char* strings[] = {"", "a", "ab", "abc", "abd", "b", "\x80", "\x7f", "a\x80", "a\x01", "abcdefgh"};
    for (const char* a : strings) {
        CHECK(libc::strlen(a) == strlen(a));
        for (size_t limit = 0; limit < 10; ++limit)
            CHECK(libc::strnlen(a, limit) == strnlen(a, limit));
        for (const char* b : strings) {
            CHECK(sign(libc::strcmp(a, b)) == sign(strcmp(a, b)));
            for (size_t n = 0; n < 10; ++n) {
                CHECK(sign(libc::strncmp(a, b, n)) == sign(strncmp(a, b, n)));
                size_t bytes = std::min({n, strlen(a) + 1, strlen(b) + 1});
                CHECK(sign(libc::memcmp(a, b, bytes)) == sign(memcmp(a, b, bytes)));
            }
        }
    }
}

TEST_CASE("libos libc: strnlen reads no byte past its limit", "[libos]")
{
    char unterminated[4] = {'a', 'b', 'c', 'd'}; // ASan catches a read of unterminated[4]
    CHECK(libc::strnlen(unterminated, sizeof(unterminated)) == 4);
    CHECK(libc::strncmp(unterminated, "abcd", 4) == 0);
}

TEST_CASE("libos args: words split on blanks, empty and NULL strings have none", "[libos]")
{
    CHECK(words("") == std::vector<std::string>{});
    CHECK(words("   \t ") == std::vector<std::string>{});
    CHECK(words("badptr") == std::vector<std::string>{"badptr"});
    CHECK(words("  badptr  overrun_periods=5\twrite-kernel ") ==
          std::vector<std::string>{"badptr", "overrun_periods=5", "write-kernel"});
    const char* cursor = nullptr;
    size_t length = 0;
    CHECK(next_word(&cursor, &length) == nullptr);
}

TEST_CASE("libos args: key=value finds whole keys only, the first one wins", "[libos]")
{
    CHECK(value("periods=200", "periods") == "200");
    CHECK(value("x periods=200 periods=3", "periods") == "200");
    CHECK(value("periods2=5 periods=7", "periods") == "7");
    CHECK(value("myperiods=5", "periods") == "<absent>");
    CHECK(value("periods", "periods") == "<absent>");
    CHECK(value("periods=", "periods") == "");
    CHECK(value("a=b=c", "a") == "b=c");
    CHECK(value("", "periods") == "<absent>");
}

TEST_CASE("libos args: numbers are decimal or hex, whole, and must fit 64 bits", "[libos]")
{
    uint64_t v = 99;
    CHECK(find_u64("periods=200", "periods", &v) == 1);
    CHECK(v == 200);
    CHECK(find_u64("mask=0xFf", "mask", &v) == 1);
    CHECK(v == 0xff);
    CHECK(find_u64("n=18446744073709551615", "n", &v) == 1);
    CHECK(v == UINT64_MAX);
    CHECK(find_u64("n=0xffffffffffffffff", "n", &v) == 1);
    CHECK(v == UINT64_MAX);

    v = 7;
    CHECK(find_u64("other=1", "n", &v) == 0);
    CHECK(v == 7); // untouched when absent
    for (const char* bad : {"n=", "n=18446744073709551616", "n=0x10000000000000000", "n=12a", "n=-1", "n=0x",
                            "n= 5", "n=1.5"}) {
        INFO(bad);
        CHECK(find_u64(bad, "n", &v) == -1);
        CHECK(v == 7);
    }
}

TEST_CASE("libos errors: every code of syscall_abi.h has its own name, in either sign", "[libos]")
{
    const std::pair<int, const char*> codes[] = {
        {VLIBOS_EPERM, "EPERM"}, {VLIBOS_ENOENT, "ENOENT"}, {VLIBOS_EAGAIN, "EAGAIN"},
        {VLIBOS_EFAULT, "EFAULT"}, {VLIBOS_EBUSY, "EBUSY"}, {VLIBOS_EINVAL, "EINVAL"},
        {VLIBOS_ENOSYS, "ENOSYS"}, {VLIBOS_EADMISSION, "EADMISSION"},
    };
    for (auto [code, name] : codes) {
        CHECK(std::string(error_name(code)) == name);
        CHECK(std::string(error_name(-code)) == name);
    }
    CHECK(std::string(error_name(0)) == "OK");
    CHECK(std::string(error_name(3)) == "E?");
    CHECK(std::string(error_name(INT64_MIN)) == "E?");
}

// Kernel command line lookups.
#include <catch2/catch.hpp>

#include <string.h>

#include <string>

#include "boot/cmdline.hpp"

using vlibos::CommandLine;

TEST_CASE("cmdline: bare keys and key=value words", "[cmdline]")
{
    CommandLine cmdline("vlibos.config=/boot/system.cfg  debug\tserial=0x3f8 quiet");
    char value[64];

    CHECK(cmdline.has("vlibos.config"));
    CHECK(cmdline.has("debug"));
    CHECK(cmdline.has("serial"));
    CHECK(cmdline.has("quiet"));
    CHECK_FALSE(cmdline.has("verbose"));

    REQUIRE(cmdline.get("vlibos.config", value, sizeof(value)));
    CHECK(std::string(value) == "/boot/system.cfg");
    REQUIRE(cmdline.get("serial", value, sizeof(value)));
    CHECK(std::string(value) == "0x3f8");
    REQUIRE(cmdline.get("debug", value, sizeof(value)));
    CHECK(std::string(value).empty());
    CHECK_FALSE(cmdline.get("verbose", value, sizeof(value)));
}

TEST_CASE("cmdline: keys match whole words only", "[cmdline]")
{
    CommandLine cmdline("vlibos.configx=1 xdebug debugx=2 vlibos=3");
    char value[16];
    CHECK_FALSE(cmdline.has("vlibos.config"));
    CHECK_FALSE(cmdline.get("vlibos.config", value, sizeof(value)));
    CHECK_FALSE(cmdline.has("debug"));
    CHECK_FALSE(cmdline.has("config"));
    CHECK(cmdline.has("vlibos"));
    CHECK(cmdline.has("vlibos.configx"));
    // A key never matches part of a value.
    CommandLine values("a=debug b=x=debug");
    CHECK_FALSE(values.has("debug"));
    CHECK_FALSE(values.has("x"));
}

TEST_CASE("cmdline: the last occurrence wins", "[cmdline]")
{
    char value[16];
    CommandLine twice("level=1 other level=2");
    REQUIRE(twice.get("level", value, sizeof(value)));
    CHECK(std::string(value) == "2");

    CommandLine bare_last("level=1 level");
    REQUIRE(bare_last.get("level", value, sizeof(value)));
    CHECK(std::string(value).empty());

    CommandLine value_last("level level=3");
    REQUIRE(value_last.get("level", value, sizeof(value)));
    CHECK(std::string(value) == "3");
}

TEST_CASE("cmdline: values keep later '=' signs and may be empty", "[cmdline]")
{
    CommandLine cmdline("opt=a=b empty=");
    char value[16];
    REQUIRE(cmdline.get("opt", value, sizeof(value)));
    CHECK(std::string(value) == "a=b");
    CHECK(cmdline.has("empty"));
    REQUIRE(cmdline.get("empty", value, sizeof(value)));
    CHECK(std::string(value).empty());
}

TEST_CASE("cmdline: values that do not fit are refused without overflow", "[cmdline]")
{
    CommandLine cmdline("name=abcdef");
    char value[8];
    memset(value, 'Z', sizeof(value));
    CHECK_FALSE(cmdline.get("name", value, 6)); // needs 7 bytes with the NUL
    CHECK(value[6] == 'Z');
    REQUIRE(cmdline.get("name", value, 7));
    CHECK(std::string(value) == "abcdef");
    CHECK_FALSE(cmdline.get("name", value, 0));
    CHECK_FALSE(cmdline.get("name", nullptr, 0));

    CommandLine bare("flag");
    char one[1] = {'Z'};
    REQUIRE(bare.get("flag", one, 1));
    CHECK(one[0] == '\0');
}

TEST_CASE("cmdline: empty and degenerate input", "[cmdline]")
{
    char value[8];
    CommandLine null_text(nullptr);
    CHECK_FALSE(null_text.has("a"));
    CHECK(std::string(null_text.text()).empty());

    CommandLine blanks("   \t  ");
    CHECK_FALSE(blanks.has("a"));

    CommandLine equals("= =x a");
    CHECK_FALSE(equals.has(""));
    CHECK_FALSE(equals.get("", value, sizeof(value)));
    CHECK_FALSE(equals.has(nullptr));
    CHECK(equals.has("a"));

    CommandLine trailing("a=1 ");
    REQUIRE(trailing.get("a", value, sizeof(value)));
    CHECK(std::string(value) == "1");
}

#include "vmm/io_policy.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace vlibos::vmm;

namespace {

struct FakeSink final : IoSink {
    std::vector<std::string> lines;
    void debug_line(const char* text, size_t length) override
    {
        REQUIRE(length <= IoPolicy::kLineCapacity);
        lines.emplace_back(text, length);
    }
};

void write_text(IoPolicy& io, FakeSink& sink, const std::string& text)
{
    for (char c : text)
        REQUIRE(io.out(0xe9, 1, static_cast<unsigned char>(c), sink));
}

IoExit io_exit(uint16_t port, uint8_t size, bool in, bool string = false, bool rep = false)
{
    return IoExit{port, size, in, string, rep};
}

} // namespace

TEST_CASE("io: IN reads all ones of the access size from any port", "[vmm][io]")
{
    IoPolicy io;
    CHECK(io.in(0x60, 1).value() == 0xffu);
    CHECK(io.in(0x1234, 2).value() == 0xffffu);
    CHECK(io.in(0x1234, 4).value() == 0xffff'ffffu);
    CHECK(io.in(0xe9, 1).value() == 0xffu);
    CHECK(io.in(0xffff, 4).value() == 0xffff'ffffu);
    CHECK(io.in(0, 1).value() == 0xffu);
    CHECK(io.in(0x60, 0).error() == IoError::BadSize);
    CHECK(io.in(0x60, 3).error() == IoError::BadSize);
    CHECK(io.in(0x60, 8).error() == IoError::BadSize);
    CHECK(io.stats().ins == 6);
    CHECK(io.stats().refused == 3);
}

TEST_CASE("io: debug port lines", "[vmm][io]")
{
    IoPolicy io;
    FakeSink sink;
    write_text(io, sink, "port io ok\n");
    REQUIRE(sink.lines.size() == 1);
    CHECK(sink.lines[0] == "port io ok");
    CHECK(io.buffered() == 0);
    CHECK(io.stats().debug_bytes == 11);

    SECTION("partial lines wait for '\\n' or flush")
    {
        write_text(io, sink, "abc");
        CHECK(sink.lines.size() == 1);
        CHECK(io.buffered() == 3);
        io.flush(sink);
        REQUIRE(sink.lines.size() == 2);
        CHECK(sink.lines[1] == "abc");
        io.flush(sink);  // nothing left: no empty line
        CHECK(sink.lines.size() == 2);
    }
    SECTION("blank lines, CR LF and control characters")
    {
        write_text(io, sink, "\nx\r\n\x1b[1m\t\x7f\x80\xff!\n");
        REQUIRE(sink.lines.size() == 4);
        CHECK(sink.lines[1] == "");
        CHECK(sink.lines[2] == "x");
        CHECK(sink.lines[3] == "?[1m????" "!");
    }
    SECTION("a full buffer goes out at 120 characters")
    {
        std::string a(119, 'a');
        write_text(io, sink, a);
        CHECK(sink.lines.size() == 1);
        write_text(io, sink, "b");  // the 120th
        REQUIRE(sink.lines.size() == 2);
        CHECK(sink.lines[1] == a + "b");
        CHECK(io.buffered() == 0);
        write_text(io, sink, "\n");  // ends the line that already went out: no blank line
        CHECK(sink.lines.size() == 2);
        write_text(io, sink, "\n");  // but a second one is a blank line
        REQUIRE(sink.lines.size() == 3);
        CHECK(sink.lines[2] == "");

        std::string long_text(250, 'x');
        write_text(io, sink, long_text + "\n");
        REQUIRE(sink.lines.size() == 6);
        CHECK(sink.lines[3] == std::string(120, 'x'));
        CHECK(sink.lines[4] == std::string(120, 'x'));
        CHECK(sink.lines[5] == std::string(10, 'x'));
    }
    SECTION("only the low byte of the value is written")
    {
        REQUIRE(io.out(0xe9, 1, 0xffff'ff41u, sink));
        REQUIRE(io.out(0xe9, 1, '\n', sink));
        CHECK(sink.lines.back() == "A");
    }
}

TEST_CASE("io: other OUTs are ignored and counted", "[vmm][io]")
{
    IoPolicy io;
    FakeSink sink;
    CHECK(io.out(0x80, 1, 0x12, sink));
    CHECK(io.out(0x3f8, 1, 'x', sink));
    CHECK(io.out(0xe9, 2, 'x', sink));       // not byte-sized: not debug output
    CHECK(io.out(0xe9, 4, 0x0a0a'0a0a, sink));
    CHECK(io.out(0xe8, 1, 'x', sink));
    CHECK(io.out(0xea, 1, '\n', sink));
    CHECK(io.stats().ignored_outs == 6);
    CHECK(io.stats().debug_bytes == 0);
    CHECK(io.buffered() == 0);
    CHECK(sink.lines.empty());
    CHECK(io.out(0x80, 3, 0, sink).error() == IoError::BadSize);
    CHECK(io.stats().refused == 1);
}

TEST_CASE("io: handle() applies exits to RAX", "[vmm][io]")
{
    IoPolicy io;
    FakeSink sink;
    GuestRegisters regs{};

    regs.rax = 0x1122'3344'5566'7788ull;
    REQUIRE(io.handle(io_exit(0x60, 1, true), regs, sink));
    CHECK(regs.rax == 0x1122'3344'5566'77ffull);  // AL only
    regs.rax = 0x1122'3344'5566'7788ull;
    REQUIRE(io.handle(io_exit(0x60, 2, true), regs, sink));
    CHECK(regs.rax == 0x1122'3344'5566'ffffull);  // AX only
    regs.rax = 0x1122'3344'5566'7788ull;
    REQUIRE(io.handle(io_exit(0x1234, 4, true), regs, sink));
    CHECK(regs.rax == 0x0000'0000'ffff'ffffull);  // EAX, upper half cleared

    regs.rax = 0x1122'3344'5566'770aull;  // '\n' in AL
    write_text(io, sink, "hi");
    REQUIRE(io.handle(io_exit(0xe9, 1, false), regs, sink));
    REQUIRE(sink.lines.size() == 1);
    CHECK(sink.lines[0] == "hi");
    CHECK(regs.rax == 0x1122'3344'5566'770aull);  // an OUT leaves RAX alone

    regs.rax = 7;
    CHECK(io.handle(io_exit(0xe9, 1, false, true), regs, sink).error() == IoError::StringIo);
    CHECK(io.handle(io_exit(0xe9, 1, false, true, true), regs, sink).error() == IoError::StringIo);
    CHECK(io.handle(io_exit(0x60, 1, true, true, true), regs, sink).error() == IoError::StringIo);
    CHECK(io.handle(io_exit(0x60, 5, true), regs, sink).error() == IoError::BadSize);
    CHECK(regs.rax == 7);  // refused exits change nothing
    CHECK(io.stats().refused == 4);
    CHECK(std::string(describe(IoError::StringIo)).find("string") != std::string::npos);
}

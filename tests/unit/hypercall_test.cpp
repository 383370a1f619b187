#include "vmm/hypercall.hpp"

#include <catch2/catch.hpp>

#include <cstring>
#include <string>
#include <vector>

using namespace vlibos::vmm;
using namespace vlibos::vmm::hypercall;

namespace {

// A fake VM: guest memory is GuestMemory over a host buffer that stands in for host-physical
// memory (host_physical = offset into `host`), and every request is recorded.
struct FakeEnv final : Environment {
    static constexpr uint64_t kHostBase = 0x10'0000;
    GuestMemory memory;
    std::vector<unsigned char> host = std::vector<unsigned char>(3 * 4096 * 2, 0);
    std::string console;
    int console_calls = 0;
    int reads = 0;
    std::vector<uint64_t> exits;
    std::vector<std::pair<uint64_t, uint8_t>> timers;

    FakeEnv()
    {
        // GPA [0, 8 KiB) RW at host page 0-1, GPA [8 KiB, 12 KiB) read-only at host page 2,
        // GPA [0x10000, 0x11000) write-only at host page 3; nothing else.
        auto any = [](uint64_t, uint64_t) { return true; };
        REQUIRE(memory.add({0x0, kHostBase, 0x2000, {}}, any));
        REQUIRE(memory.add({0x2000, kHostBase + 0x2000, 0x1000, {true, false, false}}, any));
        REQUIRE(memory.add({0x10000, kHostBase + 0x3000, 0x1000, {false, true, false}}, any));
    }
    void poke(uint64_t gpa, const std::string& text)
    {
        auto t = memory.translate(gpa);
        REQUIRE(t);
        std::memcpy(host.data() + (t.value().host_physical - kHostBase), text.data(), text.size());
    }
    bool read_guest(uint64_t gpa, void* out, size_t length) override
    {
        ++reads;
        return read_guest_checked(memory, gpa, out, length, [&](uint64_t hpa, void* to, size_t n) {
            REQUIRE(hpa >= kHostBase);
            REQUIRE(hpa - kHostBase + n <= host.size());
            std::memcpy(to, host.data() + (hpa - kHostBase), n);
        });
    }
    void console_write(const char* text, size_t length) override
    {
        ++console_calls;
        console.append(text, length);
    }
    void request_exit(uint64_t code) override { exits.push_back(code); }
    void arm_guest_timer(uint64_t microseconds, uint8_t vector) override { timers.emplace_back(microseconds, vector); }
};

int64_t call(FakeEnv& env, uint64_t number, uint64_t a0 = 0, uint64_t a1 = 0, uint64_t a2 = 0, uint64_t a3 = 0)
{
    return dispatch(Call{number, a0, a1, a2, a3}, env);
}

} // namespace

TEST_CASE("hypercall: version and unknown numbers", "[vmm][hypercall]")
{
    FakeEnv env;
    CHECK(call(env, 0) == 1);
    CHECK(call(env, 0, ~0ull, ~0ull, ~0ull, ~0ull) == 1);  // unused arguments are ignored
    CHECK(call(env, 4) == kEnosys);
    CHECK(call(env, 99) == kEnosys);
    CHECK(call(env, ~0ull) == kEnosys);
    CHECK(call(env, 1ull << 32) == kEnosys);  // the number is all 64 bits, not EAX
    CHECK(env.console_calls == 0);
    CHECK(env.exits.empty());
    CHECK(env.timers.empty());
    CHECK(kEnosys == -38);
    CHECK(kEinval == -22);
    CHECK(kEfault == -14);
}

TEST_CASE("hypercall: console write", "[vmm][hypercall]")
{
    FakeEnv env;
    const std::string hello = "hello from the guest\n";
    env.poke(0x100, hello);
    CHECK(call(env, 1, 0x100, hello.size()) == static_cast<int64_t>(hello.size()));
    CHECK(env.console == hello);

    SECTION("control characters become '?', newline stays")
    {
        env.console.clear();
        env.poke(0x200, std::string("a\x1b[2J\r\t\x7f\x80\xff\nz", 12));
        CHECK(call(env, 1, 0x200, 12) == 12);
        CHECK(env.console == "a?[2J?????\nz");
    }
    SECTION("length bounds")
    {
        env.console_calls = 0;
        env.reads = 0;
        CHECK(call(env, 1, 0x100, 0) == kEinval);
        CHECK(call(env, 1, 0x100, 257) == kEinval);
        CHECK(call(env, 1, 0x100, ~0ull) == kEinval);
        CHECK(call(env, 1, 0x100, 1ull << 32) == kEinval);
        CHECK(call(env, 1, ~0ull, 0) == kEinval);  // length is checked before the address
        CHECK(env.reads == 0);
        CHECK(env.console_calls == 0);
        CHECK(call(env, 1, 0x100, 1) == 1);
        CHECK(call(env, 1, 0x100, 256) == 256);
        CHECK(env.console_calls == 2);
    }
    SECTION("every byte must be readable")
    {
        env.console_calls = 0;
        CHECK(call(env, 1, 0x2f00, 256) == 256);        // ends exactly at the end of the RO page
        CHECK(call(env, 1, 0x2f01, 256) == kEfault);    // one byte past it
        CHECK(call(env, 1, 0x2fff, 1) == 1);
        CHECK(call(env, 1, 0x3000, 1) == kEfault);      // unmapped
        CHECK(call(env, 1, 0x1f80, 256) == 256);        // across two regions (RW then RO)
        CHECK(call(env, 1, 0x10000, 16) == kEfault);    // mapped, but write-only
        CHECK(call(env, 1, 0xff80, 256) == kEfault);    // starts unmapped, ends in a mapped page
        CHECK(call(env, 1, 0x4000'0000, 16) == kEfault);
        CHECK(call(env, 1, ~0ull, 1) == kEfault);           // the last byte below 2^64
        CHECK(call(env, 1, ~0ull - 15, 16) == kEfault);  // ends exactly at 2^64
        CHECK(call(env, 1, ~0ull - 14, 16) == kEfault);  // wraps
        CHECK(call(env, 1, ~0ull, 256) == kEfault);
        CHECK(call(env, 1, 1ull << 52, 1) == kEfault);
        CHECK(env.console_calls == 3);
    }
}

TEST_CASE("hypercall: exit", "[vmm][hypercall]")
{
    FakeEnv env;
    call(env, 2, 0);
    call(env, 2, 0xdead'beef'0000'0001ull, 7, 7, 7);
    REQUIRE(env.exits.size() == 2);
    CHECK(env.exits[0] == 0);
    CHECK(env.exits[1] == 0xdead'beef'0000'0001ull);
}

TEST_CASE("hypercall: timer one-shot", "[vmm][hypercall]")
{
    FakeEnv env;
    CHECK(call(env, 3, 1, 32) == 0);
    CHECK(call(env, 3, 1'000'000, 255) == 0);
    CHECK(call(env, 3, 1000, 0x30, 99, 99) == 0);
    CHECK(call(env, 3, 0, 32) == kEinval);
    CHECK(call(env, 3, 1'000'001, 32) == kEinval);
    CHECK(call(env, 3, ~0ull, 32) == kEinval);
    CHECK(call(env, 3, 1000, 31) == kEinval);
    CHECK(call(env, 3, 1000, 0) == kEinval);
    CHECK(call(env, 3, 1000, 256) == kEinval);
    CHECK(call(env, 3, 1000, 0x100 + 0x30) == kEinval);  // no truncation to 8 bits
    CHECK(call(env, 3, 1000, ~0ull) == kEinval);
    REQUIRE(env.timers.size() == 3);
    CHECK(env.timers[0] == std::pair<uint64_t, uint8_t>{1, 32});
    CHECK(env.timers[1] == std::pair<uint64_t, uint8_t>{1'000'000, 255});
    CHECK(env.timers[2] == std::pair<uint64_t, uint8_t>{1000, 0x30});
}

TEST_CASE("hypercall: registers and names", "[vmm][hypercall]")
{
    GuestRegisters regs{};
    regs.rax = 1;
    regs.rdi = 2;
    regs.rsi = 3;
    regs.rdx = 4;
    regs.r10 = 5;
    regs.rcx = 66;
    regs.r8 = 77;
    Call c = call_from(regs);
    CHECK(c.number == 1);
    CHECK(c.arg0 == 2);
    CHECK(c.arg1 == 3);
    CHECK(c.arg2 == 4);
    CHECK(c.arg3 == 5);
    set_result(regs, kEfault);
    CHECK(regs.rax == static_cast<uint64_t>(-14));
    set_result(regs, 256);
    CHECK(regs.rax == 256);

    CHECK(std::string(name(0)) == "version");
    CHECK(std::string(name(1)) == "console-write");
    CHECK(std::string(name(2)) == "exit");
    CHECK(std::string(name(3)) == "timer-one-shot");
    CHECK(std::string(name(4)) == "unknown");
}

TEST_CASE("hypercall: read_guest_checked", "[vmm][hypercall]")
{
    FakeEnv env;
    env.poke(0x1ffe, "ab");
    env.poke(0x2000, "cd");
    char out[8] = {};
    int copies = 0;
    auto copy = [&](uint64_t hpa, void* to, size_t n) {
        ++copies;
        std::memcpy(to, env.host.data() + (hpa - FakeEnv::kHostBase), n);
    };
    CHECK(read_guest_checked(env.memory, 0x1ffe, out, 4, copy));
    CHECK(std::string(out, 4) == "abcd");
    CHECK(copies == 2);  // one piece per region

    copies = 0;
    CHECK_FALSE(read_guest_checked(env.memory, 0x2ffe, out, 4, copy));  // runs off the end
    CHECK_FALSE(read_guest_checked(env.memory, 0x10000, out, 4, copy)); // not readable
    CHECK_FALSE(read_guest_checked(env.memory, 0x0, out, 0, copy));     // empty
    CHECK_FALSE(read_guest_checked(env.memory, ~0ull - 1, out, 4, copy));
    CHECK(copies == 0);  // nothing copied from a bad range

    auto piece = readable_piece(env.memory, 0x1800, 0x1000);
    REQUIRE(piece);
    CHECK(piece.value().host_physical == FakeEnv::kHostBase + 0x1800);
    CHECK(piece.value().length == 0x800);
    CHECK(readable_piece(env.memory, 0x10000, 1).error() == GuestMemoryError::NoAccess);
    CHECK(readable_piece(env.memory, 0x3000, 1).error() == GuestMemoryError::NotMapped);
}

#include "vmm/hypercall.hpp"

namespace vlibos::vmm::hypercall {

namespace {

// Guest text reaches the monitor's console: only printable ASCII and '\n' pass, so a guest cannot
// send terminal escape sequences or forge the start of a monitor line with '\r'.
char printable(unsigned char c)
{
    if (c == '\n' || (c >= 0x20 && c <= 0x7e))
        return static_cast<char>(c);
    return '?';
}

int64_t console_write(uint64_t gpa, uint64_t length, Environment& env)
{
    if (length < 1 || length > kConsoleWriteMax)
        return kEinval;
    if (gpa + length < gpa)  // the range would wrap past 2^64: no such guest memory
        return kEfault;
    char text[kConsoleWriteMax];
    if (!env.read_guest(gpa, text, static_cast<size_t>(length)))
        return kEfault;
    for (size_t i = 0; i < length; ++i)
        text[i] = printable(static_cast<unsigned char>(text[i]));
    env.console_write(text, static_cast<size_t>(length));
    return static_cast<int64_t>(length);
}

int64_t timer_one_shot(uint64_t microseconds, uint64_t vector, Environment& env)
{
    if (microseconds < kTimerMinMicroseconds || microseconds > kTimerMaxMicroseconds)
        return kEinval;
    if (vector < kTimerMinVector || vector > kTimerMaxVector)
        return kEinval;
    env.arm_guest_timer(microseconds, static_cast<uint8_t>(vector));
    return 0;
}

} // namespace

Call call_from(const GuestRegisters& regs)
{
    return Call{regs.rax, regs.rdi, regs.rsi, regs.rdx, regs.r10};
}

void set_result(GuestRegisters& regs, int64_t result)
{
    regs.rax = static_cast<uint64_t>(result);
}

int64_t dispatch(const Call& call, Environment& env)
{
    switch (call.number) {
    case static_cast<uint64_t>(Number::Version):
        return static_cast<int64_t>(kAbiVersion);
    case static_cast<uint64_t>(Number::ConsoleWrite):
        return console_write(call.arg0, call.arg1, env);
    case static_cast<uint64_t>(Number::Exit):
        env.request_exit(call.arg0);
        return 0;  // never seen by the guest
    case static_cast<uint64_t>(Number::TimerOneShot):
        return timer_one_shot(call.arg0, call.arg1, env);
    default:
        return kEnosys;
    }
}

const char* name(uint64_t number)
{
    switch (number) {
    case static_cast<uint64_t>(Number::Version): return "version";
    case static_cast<uint64_t>(Number::ConsoleWrite): return "console-write";
    case static_cast<uint64_t>(Number::Exit): return "exit";
    case static_cast<uint64_t>(Number::TimerOneShot): return "timer-one-shot";
    default: return "unknown";
    }
}

Result<HostPiece, GuestMemoryError> readable_piece(const GuestMemory& memory, uint64_t gpa, uint64_t length)
{
    auto t = TRY(memory.translate(gpa));
    if (!t.access.read)
        return fail(GuestMemoryError::NoAccess);
    return HostPiece{t.host_physical, length < t.bytes_left_in_region ? length : t.bytes_left_in_region};
}

} // namespace vlibos::vmm::hypercall

#include "core/console.hpp"

#include <stdarg.h>

#include "arch/x86_64/serial_16550.hpp"
#include "core/percpu.hpp"
#include "lib/format.hpp"

namespace vlibos::console {

namespace {

constexpr x86::Serial16550 g_uart{x86::Serial16550::kCom1};
constexpr uint32_t kNoOwner = 0xffffffff;
uint32_t g_lock_owner = kNoOwner;  // CPU index holding the console, or kNoOwner

uint32_t current_cpu_id()
{
    PerCpu* cpu = this_cpu();
    return cpu == nullptr ? 0 : cpu->index;
}

// A simple owner-tracking lock: if this CPU already holds it (it faulted while printing),
// printing goes ahead rather than deadlocking the exception report.
bool acquire()
{
    uint32_t me = current_cpu_id();
    if (__atomic_load_n(&g_lock_owner, __ATOMIC_RELAXED) == me)
        return false;
    uint32_t expected = kNoOwner;
    while (!__atomic_compare_exchange_n(&g_lock_owner, &expected, me, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
        expected = kNoOwner;
        __builtin_ia32_pause();
    }
    return true;
}

void release() { __atomic_store_n(&g_lock_owner, kNoOwner, __ATOMIC_RELEASE); }

void emit(const char* text, size_t length)
{
    for (size_t i = 0; i < length; ++i) {
        if (text[i] == '\n')
            g_uart.put('\r');
        g_uart.put(text[i]);
    }
}

} // namespace

void init() { g_uart.init(); }

void drain() { g_uart.drain(); }

void write(const char* text, size_t length)
{
    bool locked = acquire();
    emit(text, length);
    if (locked)
        release();
}

void print(const char* fmt, ...)
{
    char line[512];
    va_list args;
    va_start(args, fmt);
    size_t length = format_v(line, sizeof(line), fmt, args);
    va_end(args);
    write(line, length < sizeof(line) ? length : sizeof(line) - 1);
}

} // namespace vlibos::console

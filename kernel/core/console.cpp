#include "core/console.hpp"

#include <stdarg.h>

#include "arch/x86_64/serial_16550.hpp"
#include "core/percpu.hpp"
#include "lib/format.hpp"

namespace vlibos::console {

namespace {

constexpr x86::Serial16550 g_uart{x86::Serial16550::kCom1};
constexpr uint32_t kNoOwner = 0xffffffff;
// A ticket lock (first come, first served: no CPU waits without bound behind others) that also
// records its holder, so a CPU that faults while printing does not deadlock against itself.
uint32_t g_next_ticket = 0;
uint32_t g_serving = 0;
uint32_t g_lock_owner = kNoOwner;

uint32_t current_cpu_id()
{
    PerCpu* cpu = this_cpu();
    return cpu == nullptr ? 0 : cpu->index;
}

bool acquire()
{
    uint32_t me = current_cpu_id();
    if (__atomic_load_n(&g_lock_owner, __ATOMIC_RELAXED) == me)
        return false;
    uint32_t ticket = __atomic_fetch_add(&g_next_ticket, 1u, __ATOMIC_RELAXED);
    while (__atomic_load_n(&g_serving, __ATOMIC_ACQUIRE) != ticket)
        __builtin_ia32_pause();
    __atomic_store_n(&g_lock_owner, me, __ATOMIC_RELAXED);
    return true;
}

void release()
{
    __atomic_store_n(&g_lock_owner, kNoOwner, __ATOMIC_RELAXED);
    __atomic_store_n(&g_serving, g_serving + 1, __ATOMIC_RELEASE);
}

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

void release_if_held_by_this_cpu()
{
    if (__atomic_load_n(&g_lock_owner, __ATOMIC_RELAXED) == current_cpu_id())
        release();
}

void drain() { g_uart.drain(); }

bool try_hold()
{
    uint32_t me = current_cpu_id();
    if (__atomic_load_n(&g_lock_owner, __ATOMIC_RELAXED) == me)
        return true;
    uint32_t serving = __atomic_load_n(&g_serving, __ATOMIC_ACQUIRE);
    uint32_t expected = serving;
    // Take a ticket only if it is served at once: nobody holds or waits for the console.
    if (!__atomic_compare_exchange_n(&g_next_ticket, &expected, serving + 1, false, __ATOMIC_ACQUIRE,
                                     __ATOMIC_RELAXED))
        return false;
    __atomic_store_n(&g_lock_owner, me, __ATOMIC_RELAXED);
    return true;
}

size_t write_ready(const char* text, size_t length)
{
    unsigned room = g_uart.room();
    size_t used = 0;
    while (used < length) {
        unsigned need = text[used] == '\n' ? 2 : 1;
        if (room < need)
            break;
        if (text[used] == '\n')
            g_uart.put_now('\r');
        g_uart.put_now(text[used]);
        room -= need;
        ++used;
    }
    return used;
}

void give_back() { release_if_held_by_this_cpu(); }

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

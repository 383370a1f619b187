// The C API of <vlibos/rt.h> over the system calls, and the pool of thread stacks behind
// vlibos_thread_spawn* and rt::Thread::spawn.
#include <stddef.h>
#include <stdint.h>

#include <vlibos/rt.h>
#include <vlibos/rt.hpp>
#include <vlibos/syscall.h>

#include "lib/format.hpp"
#include "pure/args.hpp"
#include "pure/errors.hpp"

static_assert(VLIBOS_SYS_THREAD_EXIT == 5, "crt0.S hard-codes SYS_THREAD_EXIT");
static_assert(VLIBOS_THREAD_STACK % 4096 == 0, "pool stacks are whole pages");

extern "C" {
// crt0.S. Hidden: defined in this program for sure, so GCC takes the address RIP-relative (lea)
// instead of loading it from the GOT.
[[gnu::visibility("hidden")]] void vlibos_rt_thread_entry(uint64_t record);
[[gnu::visibility("hidden"), noreturn]] void vlibos_rt_release_and_exit(uint8_t* busy);
[[noreturn]] void vlibos_rt_thread_main(vlibos::rt::detail::StartRecord* record);
}

namespace {

using vlibos::rt::detail::StartRecord;

// One pool entry: a start record, its busy flag (set while a thread owns the entry or one is being
// started on it), and (in g_stacks, same index) a stack. The stacks have no guard pages between
// them: an overflow runs into the stack below. Page-aligned so each lies on its own pages.
struct Slot {
    StartRecord record;
    uint8_t busy;
};
Slot g_slots[VLIBOS_THREAD_SLOTS];
alignas(4096) unsigned char g_stacks[VLIBOS_THREAD_SLOTS][VLIBOS_THREAD_STACK];

size_t slot_index(const StartRecord* record)
{
    return static_cast<size_t>(reinterpret_cast<const Slot*>(record) - g_slots);
}

void release(size_t index) { __atomic_store_n(&g_slots[index].busy, 0, __ATOMIC_RELEASE); }

// The pool slot whose stack holds the calling thread's stack pointer, or VLIBOS_THREAD_SLOTS.
size_t current_slot()
{
    uintptr_t sp;
    asm volatile("mov %%rsp, %0" : "=r"(sp));
    auto base = reinterpret_cast<uintptr_t>(g_stacks);
    if (sp < base || sp - base >= sizeof(g_stacks))
        return VLIBOS_THREAD_SLOTS;
    return (sp - base) / VLIBOS_THREAD_STACK;
}

// The body of a thread started by vlibos_thread_spawn*: a C function and its argument.
struct CBody {
    void (*fn)(void*);
    void* arg;
};

int64_t spawn_c(const char* vcpu, uint64_t budget_ns, uint64_t period_ns, uint32_t priority, void (*fn)(void*),
                void* arg)
{
    if (fn == nullptr)
        return -VLIBOS_EINVAL;
    StartRecord* record = vlibos::rt::detail::acquire_start_record();
    if (record == nullptr)
        return -VLIBOS_EAGAIN;
    ::new (static_cast<void*>(record->body)) CBody{fn, arg};
    record->run = [](void* p) {
        auto* body = static_cast<CBody*>(p);
        body->fn(body->arg);
    };
    record->destroy = [](void*) {};
    return vlibos::rt::detail::start_thread(record, vcpu, budget_ns, period_ns, priority);
}

} // namespace

namespace vlibos::rt::detail {

StartRecord* acquire_start_record()
{
    for (Slot& slot : g_slots) {
        if (__atomic_exchange_n(&slot.busy, 1, __ATOMIC_ACQUIRE) == 0)
            return &slot.record;
    }
    return nullptr;
}

int64_t start_thread(StartRecord* record, const char* vcpu, uint64_t budget_ns, uint64_t period_ns,
                     uint32_t priority)
{
    size_t index = slot_index(record);
    vlibos_thread_params params{};
    params.entry = reinterpret_cast<uint64_t>(&vlibos_rt_thread_entry);
    params.arg = reinterpret_cast<uint64_t>(record);
    params.stack_top = reinterpret_cast<uint64_t>(g_stacks[index] + VLIBOS_THREAD_STACK);
    if (vcpu != nullptr) {
        size_t length = 0;
        while (length < VLIBOS_NAME_MAX && vcpu[length] != '\0')
            ++length;
        // A name that does not fit is refused here, as the kernel would (unterminated name).
        if (length == VLIBOS_NAME_MAX) {
            record->destroy(record->body);
            release(index);
            return -VLIBOS_EINVAL;
        }
        for (size_t i = 0; i < length; ++i)
            params.vcpu[i] = vcpu[i];
    } else {
        params.budget_ns = budget_ns;
        params.period_ns = period_ns;
        params.priority = priority;
    }
    int64_t id = vlibos_thread_create(&params);
    if (id < 0) {
        record->destroy(record->body);
        release(index);
    }
    return id;
}

} // namespace vlibos::rt::detail

extern "C" {

// Entered from vlibos_rt_thread_entry on the new thread's pool stack.
void vlibos_rt_thread_main(StartRecord* record)
{
    record->run(record->body);
    record->destroy(record->body);
    vlibos_rt_release_and_exit(&g_slots[slot_index(record)].busy);
}

void vlibos_exit(int status)
{
    vlibos_syscall1(VLIBOS_SYS_EXIT, static_cast<uint64_t>(static_cast<int64_t>(status)));
    __builtin_trap(); // EXIT does not return
}

int64_t vlibos_write(const void* text, size_t length)
{
    auto p = reinterpret_cast<uint64_t>(text);
    size_t done = 0;
    while (done < length) {
        constexpr size_t kConsoleMax = VLIBOS_CONSOLE_MAX;
        size_t piece = length - done < kConsoleMax ? length - done : kConsoleMax;
        int64_t written = vlibos_syscall2(VLIBOS_SYS_CONSOLE_WRITE, p + done, piece);
        if (written < 0)
            return done > 0 ? static_cast<int64_t>(done) : written;
        if (written == 0)
            break;
        done += static_cast<size_t>(written);
    }
    return static_cast<int64_t>(done);
}

int64_t vlibos_print(const char* text)
{
    size_t length = 0;
    while (text[length] != '\0')
        ++length;
    return vlibos_write(text, length);
}

int64_t vlibos_vprintf(const char* fmt, va_list args)
{
    char buffer[VLIBOS_PRINTF_MAX];
    size_t wanted = vlibos::format_v(buffer, sizeof(buffer), fmt, args);
    return vlibos_write(buffer, wanted < sizeof(buffer) ? wanted : sizeof(buffer) - 1);
}

int64_t vlibos_printf(const char* fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    int64_t result = vlibos_vprintf(fmt, args);
    va_end(args);
    return result;
}

uint64_t vlibos_clock_ns(void) { return static_cast<uint64_t>(vlibos_syscall0(VLIBOS_SYS_CLOCK)); }

int64_t vlibos_thread_create(const vlibos_thread_params* params)
{
    return vlibos_syscall1(VLIBOS_SYS_THREAD_CREATE, reinterpret_cast<uint64_t>(params));
}

int64_t vlibos_thread_spawn_on(const char* vcpu, void (*fn)(void*), void* arg)
{
    if (vcpu == nullptr)
        return -VLIBOS_EINVAL;
    return spawn_c(vcpu, 0, 0, 0, fn, arg);
}

int64_t vlibos_thread_spawn(uint64_t budget_ns, uint64_t period_ns, uint32_t priority, void (*fn)(void*), void* arg)
{
    return spawn_c(nullptr, budget_ns, period_ns, priority, fn, arg);
}

void vlibos_thread_exit(void)
{
    size_t index = current_slot();
    if (index < VLIBOS_THREAD_SLOTS)
        vlibos_rt_release_and_exit(&g_slots[index].busy);
    vlibos_syscall0(VLIBOS_SYS_THREAD_EXIT);
    __builtin_trap(); // THREAD_EXIT does not return
}

int64_t vlibos_wait_period(void) { return vlibos_syscall0(VLIBOS_SYS_WAIT_PERIOD); }

int64_t vlibos_read_vcpu_stats(vlibos_vcpu_stats* out)
{
    return vlibos_syscall1(VLIBOS_SYS_VCPU_STATS, reinterpret_cast<uint64_t>(out));
}

int vlibos_linux_state(void) { return static_cast<int>(vlibos_syscall0(VLIBOS_SYS_LINUX_STATE)); }

const char* vlibos_strerror(int64_t code) { return vlibos::rt::detail::error_name(code); }

const char* vlibos_arg_next(const char** cursor, size_t* length)
{
    return vlibos::rt::detail::next_word(cursor, length);
}

const char* vlibos_arg_find(const char* args, const char* key, size_t* length)
{
    return vlibos::rt::detail::find_value(args, key, length);
}

int vlibos_arg_u64(const char* args, const char* key, uint64_t* value)
{
    int found = vlibos::rt::detail::find_u64(args, key, value);
    return found < 0 ? -VLIBOS_EINVAL : found;
}

} // extern "C"

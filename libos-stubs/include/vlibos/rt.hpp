// The vlibos RT runtime, C++ API (namespace vlibos::rt): a thin, allocation-free layer over the C
// API of <vlibos/rt.h>. docs/rt-apps.md has the startup contract and examples.
//
//   rt::Thread::spawn("fast", [&] { ... })          on a configured VCPU
//   rt::Thread::spawn(budget, period, prio, body)   on a new VCPU (admission control decides)
//   rt::Clock::now_ns(), rt::wait_period(), rt::vcpu_stats(), rt::linux_state(), rt::print(fmt, ...),
//   rt::exit(status)
//
// Fallible calls return rt::Result<T>: a value or an rt::Error (the kernel's VLIBOS_E* code).
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <new>
#include <type_traits>
#include <utility>

#include <vlibos/rt.h>

namespace vlibos::rt {

// The kernel's error codes (syscall_abi.h), by name.
enum class Error : int32_t {
    Permission = VLIBOS_EPERM,      // not allowed for this application
    NoEntry = VLIBOS_ENOENT,        // no VCPU of that name in the configuration
    Again = VLIBOS_EAGAIN,          // no free thread, VCPU or runtime stack slot
    Fault = VLIBOS_EFAULT,          // a pointer outside the application's mappings
    Busy = VLIBOS_EBUSY,            // the named VCPU already has a thread
    Invalid = VLIBOS_EINVAL,        // a malformed argument
    NoSys = VLIBOS_ENOSYS,          // no such call
    Admission = VLIBOS_EADMISSION,  // admission control refused the VCPU (the console says why)
};

// "EFAULT", "EADMISSION", ...
inline const char* name(Error error) { return vlibos_strerror(static_cast<int64_t>(error)); }

// A value of type T, or the error that prevented it. T must be default-constructible.
template <typename T>
class [[nodiscard]] Result {
public:
    Result(T value) : value_(std::move(value)), ok_(true) {}
    Result(Error error) : error_(error), ok_(false) {}

    bool ok() const { return ok_; }
    explicit operator bool() const { return ok_; }
    T& value() { return value_; }
    const T& value() const { return value_; }
    // The value, or `fallback` on error.
    T value_or(T fallback) const { return ok_ ? value_ : fallback; }
    Error error() const { return error_; }
    const char* error_name() const { return ok_ ? "OK" : name(error_); }

private:
    T value_{};
    Error error_{};
    bool ok_;
};

// A raw system-call result (>= 0 value, < 0 -error) as a Result.
inline Result<uint64_t> from_syscall(int64_t raw)
{
    if (raw < 0)
        return static_cast<Error>(-raw);
    return static_cast<uint64_t>(raw);
}

using VcpuStats = vlibos_vcpu_stats;

struct Clock {
    // Nanoseconds since boot, from the invariant TSC; never goes backwards.
    static uint64_t now_ns() { return vlibos_clock_ns(); }
};

// Ends the current job and sleeps until the VCPU's next release; the release time (ns since boot).
inline Result<uint64_t> wait_period() { return from_syscall(vlibos_wait_period()); }

// Statistics of the calling thread's VCPU.
inline Result<VcpuStats> vcpu_stats()
{
    VcpuStats stats{};
    int64_t raw = vlibos_read_vcpu_stats(&stats);
    if (raw < 0)
        return static_cast<Error>(-raw);
    return stats;
}

// The Linux VM's life (syscall_abi.h, enum vlibos_linux_state).
enum class LinuxState : int32_t {
    Absent = VLIBOS_LINUX_ABSENT,      // no Linux partition or no kernel module
    Starting = VLIBOS_LINUX_STARTING,  // being loaded, or not yet entered
    Running = VLIBOS_LINUX_RUNNING,    // its vCPUs run
    Stopped = VLIBOS_LINUX_STOPPED,    // it stopped (halt, power-off, crash, refused)
};

// "absent", "starting", "running", "stopped" ("unknown" for anything else).
inline const char* name(LinuxState state)
{
    switch (state) {
    case LinuxState::Absent:
        return "absent";
    case LinuxState::Starting:
        return "starting";
    case LinuxState::Running:
        return "running";
    case LinuxState::Stopped:
        return "stopped";
    }
    return "unknown";
}

// The Linux VM's state now; never blocks.
inline LinuxState linux_state() { return static_cast<LinuxState>(vlibos_linux_state()); }

// printf-style output, one console write per call (see vlibos_printf for the format subset).
__attribute__((format(printf, 1, 2))) inline void print(const char* fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    vlibos_vprintf(fmt, args);
    va_end(args);
}

// Ends the whole application.
[[noreturn]] inline void exit(int status) { vlibos_exit(status); }
// Ends the calling thread; the application ends with its last thread.
[[noreturn]] inline void thread_exit() { vlibos_thread_exit(); }

namespace detail {
// How a spawned thread finds its body: the callable is copied into the record (there is no heap),
// and the runtime's thread entry calls run(), then destroy(), then frees the record and stack.
constexpr size_t kBodyMax = 256;
struct StartRecord {
    void (*run)(void* body);
    void (*destroy)(void* body);
    alignas(16) unsigned char body[kBodyMax];
};
// A free record and stack from the runtime's pool, or nullptr.
StartRecord* acquire_start_record();
// Starts the thread (on VCPU `vcpu` if not null, else on a new one with the reservation). On
// failure the body is destroyed and the record freed; returns the thread id or -error.
int64_t start_thread(StartRecord* record, const char* vcpu, uint64_t budget_ns, uint64_t period_ns,
                     uint32_t priority);
} // namespace detail

class Thread {
public:
    Thread() = default;
    int64_t id() const { return id_; }

    // Runs body() in a new thread on the configured VCPU `vcpu`. The body is copied (at most
    // detail::kBodyMax bytes: capture by reference or pointer); returning from it ends the thread.
    template <typename F>
    static Result<Thread> spawn(const char* vcpu, F&& body)
    {
        return start(vcpu, 0, 0, 0, std::forward<F>(body));
    }

    // Runs body() in a new thread on a new VCPU with budget C = budget_ns per period T = period_ns
    // (priority: 0 most urgent, used only on explicit-priority cores). Error::Admission if the
    // core cannot take it.
    template <typename F>
    static Result<Thread> spawn(uint64_t budget_ns, uint64_t period_ns, uint32_t priority, F&& body)
    {
        return start(nullptr, budget_ns, period_ns, priority, std::forward<F>(body));
    }

private:
    explicit Thread(int64_t id) : id_(id) {}

    template <typename F>
    static Result<Thread> start(const char* vcpu, uint64_t budget_ns, uint64_t period_ns, uint32_t priority,
                                F&& body)
    {
        using Body = std::decay_t<F>;
        static_assert(std::is_invocable_v<Body&>, "a thread body is called with no arguments");
        static_assert(sizeof(Body) <= detail::kBodyMax,
                      "thread body too large: capture a pointer or reference to the data instead");
        static_assert(alignof(Body) <= 16, "thread body over-aligned");
        detail::StartRecord* record = detail::acquire_start_record();
        if (record == nullptr)
            return Error::Again;
        ::new (static_cast<void*>(record->body)) Body(std::forward<F>(body));
        record->run = [](void* p) { (*static_cast<Body*>(p))(); };
        record->destroy = [](void* p) { static_cast<Body*>(p)->~Body(); };
        int64_t id = detail::start_thread(record, vcpu, budget_ns, period_ns, priority);
        if (id < 0)
            return static_cast<Error>(-id);
        return Thread(id);
    }

    int64_t id_ = -1;
};

// The application's argument string: words separated by spaces, flags or key=value.
class Args {
public:
    // One word; not NUL-terminated.
    struct Word {
        const char* text = nullptr;
        size_t length = 0;
        bool is(const char* s) const
        {
            size_t i = 0;
            for (; i < length; ++i) {
                if (s[i] != text[i])
                    return false;
            }
            return s[i] == '\0';
        }
    };

    class Iterator {
    public:
        explicit Iterator(const char* cursor) : cursor_(cursor) { advance(); }
        const Word& operator*() const { return word_; }
        Iterator& operator++()
        {
            advance();
            return *this;
        }
        bool operator!=(const Iterator& other) const { return word_.text != other.word_.text; }

    private:
        void advance() { word_.text = cursor_ != nullptr ? vlibos_arg_next(&cursor_, &word_.length) : nullptr; }
        const char* cursor_;
        Word word_{};
    };

    explicit Args(const char* text) : text_(text != nullptr ? text : "") {}

    // for (rt::Args::Word w : args) ...
    Iterator begin() const { return Iterator(text_); }
    Iterator end() const { return Iterator(nullptr); }

    // "key=N" (decimal or 0x hex): N, `fallback` if absent, Error::Invalid if N is not a number.
    Result<uint64_t> u64(const char* key, uint64_t fallback) const
    {
        uint64_t value = fallback;
        if (vlibos_arg_u64(text_, key, &value) < 0)
            return Error::Invalid;
        return value;
    }

    const char* text() const { return text_; }

private:
    const char* text_;
};

} // namespace vlibos::rt

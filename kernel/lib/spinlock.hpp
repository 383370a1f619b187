// Ticket spinlock: FIFO order, so no core starves another.
#pragma once

#include <stdint.h>

namespace vlibos {

class Spinlock {
public:
    void lock()
    {
        uint32_t ticket = __atomic_fetch_add(&next_, 1u, __ATOMIC_RELAXED);
        while (__atomic_load_n(&serving_, __ATOMIC_ACQUIRE) != ticket)
            __builtin_ia32_pause();
    }
    void unlock() { __atomic_store_n(&serving_, serving_ + 1, __ATOMIC_RELEASE); }

private:
    uint32_t next_ = 0;
    uint32_t serving_ = 0;
};

class SpinlockGuard {
public:
    explicit SpinlockGuard(Spinlock& lock) : lock_(lock) { lock_.lock(); }
    ~SpinlockGuard() { lock_.unlock(); }
    SpinlockGuard(const SpinlockGuard&) = delete;
    SpinlockGuard& operator=(const SpinlockGuard&) = delete;

private:
    Spinlock& lock_;
};

} // namespace vlibos

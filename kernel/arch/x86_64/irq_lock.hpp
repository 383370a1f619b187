// A spinlock held with this CPU's interrupts off, for state an interrupt handler shares with
// ordinary code: the handler can never spin on a lock its own CPU holds.
#pragma once

#include "arch/x86_64/cpu.hpp"
#include "lib/spinlock.hpp"

namespace vlibos::x86 {

class IrqSpinlockGuard {
public:
    explicit IrqSpinlockGuard(Spinlock& lock) : lock_(lock), enabled_(interrupts_enabled())
    {
        disable_interrupts();
        lock_.lock();
    }
    ~IrqSpinlockGuard()
    {
        lock_.unlock();
        if (enabled_)
            enable_interrupts();
    }
    IrqSpinlockGuard(const IrqSpinlockGuard&) = delete;
    IrqSpinlockGuard& operator=(const IrqSpinlockGuard&) = delete;

private:
    Spinlock& lock_;
    bool enabled_;
};

} // namespace vlibos::x86

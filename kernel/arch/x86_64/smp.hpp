// Starting application processors with INIT-SIPI-SIPI through the real-mode trampoline.
#pragma once

#include <stdint.h>

namespace vlibos::x86::smp {

constexpr uint64_t kTrampolineBase = 0x8000;  // must match trampoline.S
constexpr uint64_t kParametersBase = 0x9000;  // must match trampoline.S; a page of its own
// The low pages the trampoline uses: code at kTrampolineBase, parameters at kParametersBase.
constexpr uint64_t kLowPagesStart = kTrampolineBase;
constexpr uint64_t kLowPagesEnd = kParametersBase + 0x1000;

// Copies the trampoline to kTrampolineBase. Call once, while low memory is still writable.
void install_trampoline();

// Boots the CPU with `apic_id` into `entry(argument)` on `stack_top` with page tables `cr3`
// (below 4 GiB: the trampoline loads it in 32-bit mode). `started` is polled until it becomes
// non-zero; returns false if it does not within `timeout_us` after the second STARTUP IPI.
bool start_cpu(uint32_t apic_id, uint64_t cr3, uint64_t stack_top, void (*entry)(void*), void* argument,
               const volatile uint32_t* started, uint64_t timeout_us);

} // namespace vlibos::x86::smp

// x87/SSE state for ring-3 threads. The monitor itself never uses these registers (it is built
// with -mgeneral-regs-only), so it saves a thread's state only when it switches threads.
// FXSAVE/FXRSTOR (SDM Vol. 1 §10.5; the 512-byte area must be 16-byte aligned).
#pragma once

#include <stdint.h>

#include "arch/x86_64/cpu.hpp"

namespace vlibos::x86 {

struct alignas(16) FxState {
    uint8_t bytes[512];
};

// CR0.EM off, MP and NE on; CR4.OSFXSR and OSXMMEXCPT on (SDM Vol. 3 §13.1.3, §13.1.4).
inline void enable_sse_on_this_cpu()
{
    write_cr0((read_cr0() & ~(cr0::kEmulation | cr0::kTaskSwitched)) | cr0::kMonitorCoprocessor | cr0::kNumericError);
    write_cr4(read_cr4() | cr4::kOsFxsr | cr4::kOsXmmExceptions);
}

inline void fx_save(FxState& state) { asm volatile("fxsave64 %0" : "=m"(state)::"memory"); }
inline void fx_restore(const FxState& state) { asm volatile("fxrstor64 %0" ::"m"(state) : "memory"); }

// The state a new thread starts with: x87 reset (FNINIT), MXCSR 0x1f80 (all exceptions masked,
// round to nearest), every register zero.
inline void fx_initial(FxState& state)
{
    for (uint8_t& b : state.bytes)
        b = 0;
    state.bytes[0] = 0x7f;   // FCW 0x037f, the FNINIT value
    state.bytes[1] = 0x03;
    state.bytes[24] = 0x80;  // MXCSR 0x00001f80 at offset 24
    state.bytes[25] = 0x1f;
}

} // namespace vlibos::x86

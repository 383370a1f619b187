// The monitor's console: COM1. Every line is formatted first and written whole under a lock,
// so lines from different CPUs never interleave.
#pragma once

#include <stddef.h>

namespace vlibos::console {

void init();
// Prints one formatted message (include the '\n'). Safe from any CPU and from exception
// handlers: a CPU that faults while printing does not deadlock against itself.
void print(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void write(const char* text, size_t length);
// Waits until everything printed has left the UART (before powering off).
void drain();
// For a CPU about to stop for good: if it was interrupted while printing, let the others print.
void release_if_held_by_this_cpu();

// Output that never waits for the UART, for RT cores (kernel/core/rt_output.cpp): take the
// console only if it is free (true also if this CPU holds it already), write what the UART's
// FIFO takes right now, and give it back between lines so no line is split.
bool try_hold();
size_t write_ready(const char* text, size_t length);  // bytes of `text` consumed
void give_back();

} // namespace vlibos::console

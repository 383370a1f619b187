// Console output of an RT core. Writing to the UART takes about 87 us per byte at 115200 baud
// (real hardware and Bochs both pace it), so an RT core never waits for it: system calls and
// the core's own reports append to this queue, and the core feeds the UART's FIFO, without
// waiting, on every kernel entry and while idle. Lines stay whole on the console: the core holds
// the console from the first byte of a line to its newline (other CPUs' prints wait for that).
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace vlibos::rt_core {

class OutputQueue {
public:
    static constexpr size_t kCapacity = 32 * 1024;

    // Appends as much of `text` as fits; returns that length (a short count means the queue is full).
    size_t push(const char* text, size_t length);
    size_t free_space() const { return kCapacity - (tail_ - head_); }
    bool empty() const { return head_ == tail_; }
    uint64_t dropped() const { return dropped_; }
    void count_dropped(size_t bytes) { dropped_ += bytes; }

    // Feeds the UART what it takes now; never waits.
    void drain_ready();
    // Writes everything, waiting for the UART (when the core has nothing left to run).
    void flush();

private:
    char buffer_[kCapacity];
    uint64_t head_ = 0;  // next byte to send
    uint64_t tail_ = 0;  // next free byte
    bool holding_ = false;
    uint64_t dropped_ = 0;
};

} // namespace vlibos::rt_core

#include "core/rt_output.hpp"

#include "arch/x86_64/cpu.hpp"
#include "core/console.hpp"

namespace vlibos::rt_core {

size_t OutputQueue::push(const char* text, size_t length)
{
    size_t room = free_space();
    size_t n = length < room ? length : room;
    for (size_t i = 0; i < n; ++i)
        buffer_[(tail_ + i) % kCapacity] = text[i];
    tail_ += n;
    return n;
}

void OutputQueue::drain_ready()
{
    while (!empty()) {
        if (!holding_) {
            if (!console::try_hold())
                return;  // another CPU is printing: try again at the next entry
            holding_ = true;
        }
        // Up to the end of the current line, or of the contiguous part of the ring.
        size_t at = static_cast<size_t>(head_ % kCapacity);
        size_t span = static_cast<size_t>(tail_ - head_);
        if (span > kCapacity - at)
            span = kCapacity - at;
        size_t line = 0;
        while (line < span && buffer_[at + line] != '\n')
            ++line;
        bool ends_line = line < span;
        size_t want = ends_line ? line + 1 : span;
        size_t sent = console::write_ready(buffer_ + at, want);
        head_ += sent;
        if (ends_line && sent == want) {
            console::give_back();  // between lines: let other CPUs print
            holding_ = false;
            continue;
        }
        if (sent < want)
            return;  // the UART is full
    }
    // Empty in the middle of a line (an application wrote no newline yet): keep the console
    // only while there is more to say.
    if (holding_) {
        console::give_back();
        holding_ = false;
    }
}

void OutputQueue::flush()
{
    while (!empty()) {
        drain_ready();
        x86::cpu_relax();
    }
}

} // namespace vlibos::rt_core

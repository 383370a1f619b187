#include "vmm/io_policy.hpp"

namespace vlibos::vmm {

namespace {

bool valid_size(uint8_t size) { return size == 1 || size == 2 || size == 4; }

} // namespace

const char* describe(IoError error)
{
    switch (error) {
    case IoError::StringIo: return "string port I/O (INS/OUTS) is not emulated";
    case IoError::BadSize: return "port I/O of a size other than 1, 2 or 4 bytes";
    }
    return "unknown port I/O error";
}

Result<uint32_t, IoError> IoPolicy::in(uint16_t port, uint8_t size)
{
    (void)port;  // no devices: every port reads as an empty bus
    if (!valid_size(size)) {
        ++stats_.refused;
        return fail(IoError::BadSize);
    }
    ++stats_.ins;
    return size_mask(size);
}

Status<IoError> IoPolicy::out(uint16_t port, uint8_t size, uint32_t value, IoSink& sink)
{
    if (!valid_size(size)) {
        ++stats_.refused;
        return fail(IoError::BadSize);
    }
    if (port == kDebugPort && size == 1) {
        ++stats_.debug_bytes;
        debug_byte(static_cast<uint8_t>(value & 0xff), sink);
    } else {
        ++stats_.ignored_outs;
    }
    return {};
}

void IoPolicy::complete_in(GuestRegisters& regs, uint8_t size, uint32_t value)
{
    if (size >= 4)
        regs.rax = value;  // a 32-bit destination clears RAX[63:32]
    else
        regs.rax = (regs.rax & ~uint64_t{size_mask(size)}) | (value & size_mask(size));
}

Status<IoError> IoPolicy::handle(const IoExit& exit, GuestRegisters& regs, IoSink& sink)
{
    if (exit.string) {
        ++stats_.refused;
        return fail(IoError::StringIo);
    }
    if (exit.in) {
        complete_in(regs, exit.size, TRY(in(exit.port, exit.size)));
        return {};
    }
    return out(exit.port, exit.size, static_cast<uint32_t>(regs.rax), sink);
}

void IoPolicy::debug_byte(uint8_t byte, IoSink& sink)
{
    if (byte == '\r')
        return;  // "\r\n" line ends print as one line
    if (byte == '\n') {
        // A line of exactly kLineCapacity characters went out when it filled; its '\n' must not
        // add a blank line.
        if (!just_wrapped_)
            flush_line(sink);
        just_wrapped_ = false;
        return;
    }
    just_wrapped_ = false;
    line_[length_++] = (byte >= 0x20 && byte <= 0x7e) ? static_cast<char>(byte) : '?';
    if (length_ == kLineCapacity) {
        flush_line(sink);
        just_wrapped_ = true;
    }
}

void IoPolicy::flush_line(IoSink& sink)
{
    sink.debug_line(line_, length_);
    length_ = 0;
}

void IoPolicy::flush(IoSink& sink)
{
    if (length_ > 0)
        flush_line(sink);
    just_wrapped_ = false;
}

} // namespace vlibos::vmm

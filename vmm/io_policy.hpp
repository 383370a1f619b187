// Port I/O of a test VM. There are no virtual devices yet; every IN and OUT exits to the monitor
// and lands here:
//   - OUT byte to the debug port 0xE9 (the Bochs/QEMU "port E9 hack"): appended to the VM's line
//     buffer, which goes to the console on '\n' or when kLineCapacity characters are buffered;
//   - IN from any port reads all ones of the access size (an empty bus);
//   - any other OUT (and a word/dword OUT to 0xE9) is ignored and counted;
//   - string I/O (INS/OUTS, with or without REP) is refused: the caller stops the VM.
// One IoPolicy per VM; not thread-safe (a VM's exits are handled on its own CPU).
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "lib/result.hpp"
#include "vmm/exit.hpp"
#include "vmm/guest_registers.hpp"

namespace vlibos::vmm {

enum class IoError : uint8_t {
    StringIo,  // INS/OUTS: not emulated
    BadSize,   // an access size other than 1, 2 or 4 (a decoding bug in the backend)
};

const char* describe(IoError error);

// Where the debug port's lines go (the runtime prefixes them with the VM's name).
class IoSink {
public:
    // One line of guest text without its '\n': printable ASCII only, 0 (a blank line) to
    // kLineCapacity bytes. `text` is not NUL-terminated.
    virtual void debug_line(const char* text, size_t length) = 0;

protected:
    ~IoSink() = default;
};

class IoPolicy {
public:
    static constexpr uint16_t kDebugPort = 0xe9;
    static constexpr size_t kLineCapacity = 120;

    struct Stats {
        uint64_t ins = 0;            // IN instructions answered with all ones
        uint64_t debug_bytes = 0;    // bytes written to the debug port (before sanitising)
        uint64_t ignored_outs = 0;   // OUTs to any other port (or not byte-sized to 0xE9)
        uint64_t refused = 0;        // string I/O and bad sizes
    };

    // IN from `port`: the value read, zero-extended to 32 bits.
    Result<uint32_t, IoError> in(uint16_t port, uint8_t size);
    // OUT of the low `size` bytes of `value` to `port`.
    Status<IoError> out(uint16_t port, uint8_t size, uint32_t value, IoSink& sink);

    // Completes an IN of `size` bytes with `value` as the instruction does: AL/AX keep the rest of
    // RAX, EAX clears bits 63:32 (SDM Vol. 1 §3.4.1.1). Every port device of a VM uses this.
    static void complete_in(GuestRegisters& regs, uint8_t size, uint32_t value);
    // The low `size` bytes of a value (size 1, 2 or 4).
    static uint32_t size_mask(uint8_t size) { return size >= 4 ? 0xffff'ffffu : (1u << (8u * size)) - 1u; }

    // Handles a whole I/O exit against the guest's registers: an IN writes AL, AX or EAX as the
    // instruction does (AL/AX keep the rest of RAX; EAX clears bits 63:32), an OUT reads them.
    // On success the caller advances RIP; on failure it stops the VM.
    Status<IoError> handle(const IoExit& exit, GuestRegisters& regs, IoSink& sink);

    // Sends a partial line (a VM that stops without a final '\n').
    void flush(IoSink& sink);

    const Stats& stats() const { return stats_; }
    size_t buffered() const { return length_; }

private:
    void debug_byte(uint8_t byte, IoSink& sink);
    void flush_line(IoSink& sink);

    char line_[kLineCapacity] = {};
    size_t length_ = 0;
    bool just_wrapped_ = false;  // the last byte filled the buffer and sent it
    Stats stats_;
};

} // namespace vlibos::vmm

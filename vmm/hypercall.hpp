// The hypercall ABI: how a guest asks the monitor for something. Identical on both backends
// except for the instruction (VMCALL on Intel, VMMCALL on AMD), which the guest learns from
// CPUID leaf 0x40000001 (see cpuid_policy.hpp). The full description is docs/hypercalls.md.
//
//   RAX = call number; arguments in RDI, RSI, RDX, R10 (the Linux syscall order);
//   result in RAX: >= 0 success, negative = -errno with Linux's values.
//
// Everything here is pure: `dispatch` validates the untrusted arguments and turns a call into
// requests on an Environment that the runtime implements (read guest memory, print, stop the VM,
// arm a timer). The runtime advances RIP past the instruction.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "vmm/guest_memory.hpp"
#include "vmm/guest_registers.hpp"

namespace vlibos::vmm::hypercall {

enum class Number : uint64_t {
    Version = 0,       // () -> kAbiVersion
    ConsoleWrite = 1,  // (gpa, length) -> length
    Exit = 2,          // (code) -> does not return to the guest
    TimerOneShot = 3,  // (microseconds, vector) -> 0
};

// Negative errno values, as Linux numbers them (asm-generic/errno-base.h, errno.h).
constexpr int64_t kEnosys = -38;  // unknown call number
constexpr int64_t kEinval = -22;  // an argument out of range
constexpr int64_t kEfault = -14;  // a guest buffer that is not readable guest memory
constexpr int64_t kEperm = -1;    // the caller is not at CPL 0 (a guest's user space may not call)

constexpr uint64_t kAbiVersion = 1;

// Limits of the calls' arguments.
constexpr uint64_t kConsoleWriteMax = 256;
constexpr uint64_t kTimerMinMicroseconds = 1;
constexpr uint64_t kTimerMaxMicroseconds = 1'000'000;
constexpr uint64_t kTimerMinVector = 32;  // 0-31 are exceptions
constexpr uint64_t kTimerMaxVector = 255;

// CPUID leaves through which a guest finds the ABI (the values are filled in by cpuid_policy).
constexpr uint32_t kCpuidSignatureLeaf = 0x4000'0000;  // EAX = max leaf, EBX:ECX:EDX = "vlibosvlibos"
constexpr uint32_t kCpuidInterfaceLeaf = 0x4000'0001;  // EAX = ABI version, EBX = instruction
constexpr uint32_t kCpuidMaxLeaf = kCpuidInterfaceLeaf;
// "vlibosvlibos" as three little-endian registers: EBX = "vlib", ECX = "osvl", EDX = "ibos".
constexpr uint32_t kSignatureEbx = 0x6269'6c76;
constexpr uint32_t kSignatureEcx = 0x6c76'736f;
constexpr uint32_t kSignatureEdx = 0x736f'6269;

// CPUID 0x40000001 EBX: which instruction makes a hypercall.
enum class Instruction : uint32_t {
    Vmcall = 1,   // 0F 01 C1 (Intel VMX)
    Vmmcall = 2,  // 0F 01 D9 (AMD SVM)
};

struct Call {
    uint64_t number;  // RAX
    uint64_t arg0;    // RDI
    uint64_t arg1;    // RSI
    uint64_t arg2;    // RDX
    uint64_t arg3;    // R10
};

// Reads a call from the guest's registers, and writes its result back to RAX.
Call call_from(const GuestRegisters& regs);
void set_result(GuestRegisters& regs, int64_t result);

// What a hypercall may ask of the monitor. The runtime implements it for one VM.
class Environment {
public:
    // Copies guest-physical [gpa, gpa + length) to `out`. False if any byte is not readable guest
    // memory (then `out` may be partly written). `length` is at most kConsoleWriteMax and
    // gpa + length does not wrap: dispatch checks both first.
    virtual bool read_guest(uint64_t gpa, void* out, size_t length) = 0;
    // Prints guest text: only printable ASCII and '\n' (dispatch has replaced everything else).
    virtual void console_write(const char* text, size_t length) = 0;
    // Stops the VM with `code` once this exit is handled; the guest does not run again.
    virtual void request_exit(uint64_t code) = 0;
    // Injects `vector` (32-255) once `microseconds` (1 to 1,000,000) have passed.
    virtual void arm_guest_timer(uint64_t microseconds, uint8_t vector) = 0;

protected:
    ~Environment() = default;
};

// Carries out one call and returns what goes to the guest's RAX.
int64_t dispatch(const Call& call, Environment& env);

// The call's name for reports ("version", "console-write", ...), or "unknown".
const char* name(uint64_t number);

// Copies guest-physical [gpa, gpa + length) into `out` if, and only if, every byte lies in a
// region of `memory` the guest may read. `copy_from_host(hpa, out, length)` copies host-physical
// memory (the runtime passes its direct-map copy); it is called once per contiguous piece, and
// only after the whole range has been checked, so nothing is copied from a bad range.
// A range that wraps past 2^64 or is empty is refused.
struct HostPiece {
    uint64_t host_physical;
    uint64_t length;
};

// The readable piece that starts at `gpa`: its host address and how many of the `length` bytes
// lie in the same region. Fails if `gpa` is unmapped or not readable.
Result<HostPiece, GuestMemoryError> readable_piece(const GuestMemory& memory, uint64_t gpa, uint64_t length);

template <class CopyFromHost>
bool read_guest_checked(const GuestMemory& memory, uint64_t gpa, void* out, size_t length, CopyFromHost&& copy_from_host)
{
    if (length == 0 || gpa + length < gpa)
        return false;
    // Pass 1 checks, pass 2 copies.
    for (int pass = 0; pass < 2; ++pass) {
        uint64_t at = gpa;
        uint64_t left = length;
        unsigned char* to = static_cast<unsigned char*>(out);
        while (left > 0) {
            auto piece = readable_piece(memory, at, left);
            if (!piece)
                return false;
            if (pass == 1)
                copy_from_host(piece.value().host_physical, to, static_cast<size_t>(piece.value().length));
            at += piece.value().length;
            to += piece.value().length;
            left -= piece.value().length;
        }
    }
    return true;
}

} // namespace vlibos::vmm::hypercall

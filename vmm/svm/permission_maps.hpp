// The I/O and MSR permission maps (APM Vol. 2 §15.10.1 and §15.11): one bit per port, two bits
// per MSR; a set bit makes the access exit. The monitor sets every bit except the two for
// IA32_EFER, which the guest must be able to write to enter long mode on its own (see
// vmm/msr_policy.hpp). Pure, so the bit positions are unit-tested.
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <string.h>

namespace vlibos::svm {

inline constexpr size_t kIopmBytes = 12 * 1024;  // 64 Ki ports, plus a page so a 4-byte access at 0xffff is covered
inline constexpr size_t kMsrpmBytes = 8 * 1024;

struct MsrpmBit {
    size_t byte;
    unsigned bit;  // the read bit; the write bit is the next one
    bool covered;  // false: the MSR is outside the three ranges (and always exits)
};

// The MSRPM holds three 2 KiB vectors (APM §15.11, Table 15-11):
// MSRs 0000_0000-0000_1FFF at byte 000h, C000_0000-C000_1FFF at 800h, C001_0000-C001_1FFF at 1000h.
constexpr MsrpmBit msrpm_bit(uint32_t msr)
{
    struct Range {
        uint32_t first;
        size_t offset;
    };
    constexpr Range ranges[] = {{0x0000'0000, 0x000}, {0xc000'0000, 0x800}, {0xc001'0000, 0x1000}};
    constexpr uint32_t kMsrsPerRange = 0x2000;
    for (const Range& r : ranges) {
        if (msr >= r.first && msr - r.first < kMsrsPerRange) {
            size_t bit_index = size_t{msr - r.first} * 2;
            return {r.offset + bit_index / 8, static_cast<unsigned>(bit_index % 8), true};
        }
    }
    return {0, 0, false};
}

// Every port intercepted.
inline void fill_iopm(uint8_t* iopm) { memset(iopm, 0xff, kIopmBytes); }

// Every MSR intercepted but the ones in `pass_through`.
inline void fill_msrpm(uint8_t* msrpm, const uint32_t* pass_through, size_t count)
{
    memset(msrpm, 0xff, kMsrpmBytes);
    for (size_t i = 0; i < count; ++i) {
        MsrpmBit b = msrpm_bit(pass_through[i]);
        if (b.covered)
            msrpm[b.byte] = static_cast<uint8_t>(msrpm[b.byte] & ~(3u << b.bit));
    }
}

} // namespace vlibos::svm

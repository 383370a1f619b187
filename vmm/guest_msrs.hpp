// The few architectural MSRs a Linux guest reads or writes without an exception handler, with
// the values a plain PC would give (Intel SDM Vol. 4, Table 2-2; AMD APM Vol. 2 App. A). They
// are emulated per vCPU and never reach the hardware; every other MSR keeps MsrPolicy's #GP.
//   IA32_APIC_BASE (0x1b):     0xfee00000, enabled, BSP flag on vCPU 0; writes may only keep it
//   IA32_MISC_ENABLE (0x1a0):  fast strings on; XD not disabled (Linux's verify_cpu reads it
//                              unguarded in the decompressor, where a #GP is a triple fault)
//   IA32_PAT (0x277):          the power-on value, and what the guest writes (kept, not applied:
//                              guest memory is write-back in the nested tables whatever it says)
#pragma once

#include <stdint.h>

namespace vlibos::vmm {

class GuestMsrs {
public:
    static constexpr uint32_t kApicBase = 0x1b;
    static constexpr uint32_t kMiscEnable = 0x1a0;
    static constexpr uint32_t kPat = 0x277;
    static constexpr uint64_t kApicBaseValue = 0xfee0'0000 | (1u << 11);  // EN
    static constexpr uint64_t kBspFlag = 1u << 8;
    static constexpr uint64_t kMiscEnableValue = 1;  // fast-string operations enabled
    static constexpr uint64_t kPatPowerOn = 0x0007'0406'0007'0406;

    explicit GuestMsrs(bool bootstrap_processor) : bsp_(bootstrap_processor) {}

    // True if `index` is emulated here; `value` receives what the guest reads.
    bool read(uint32_t index, uint64_t& value) const;
    // True if the write is accepted (emulated and a legal value); false means "not ours or
    // refused": the caller injects #GP.
    bool write(uint32_t index, uint64_t value);

private:
    bool bsp_;
    uint64_t pat_ = kPatPowerOn;
};

} // namespace vlibos::vmm

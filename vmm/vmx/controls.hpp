// Fitting VMX controls and control registers to what this CPU allows. Pure.
//
// Each VMX capability MSR (SDM Vol. 3 Appendix A.3-A.5) reports, for a 32-bit control field,
// the allowed-0 settings in bits 31:0 (a 1 there means the control must be 1) and the allowed-1
// settings in bits 63:32 (a 0 there means the control must be 0). CR0 and CR4 have FIXED0/FIXED1
// MSR pairs with the same meaning (A.7, A.8).
#pragma once

#include <stdint.h>

#include "vmm/vmx/vmx_arch.hpp"

namespace vlibos::vmm::vmx {

struct AdjustedControls {
    uint32_t value;    // what to write to the VMCS
    uint32_t missing;  // required bits this CPU cannot set (0 = all there)
};

// `required` bits must be settable or they are reported in `missing`; `wanted` bits are set when
// the CPU allows them. Bits the CPU forces to 1 are set, bits it forces to 0 are cleared.
constexpr AdjustedControls adjust_controls(uint64_t capability, uint32_t required, uint32_t wanted = 0)
{
    uint32_t must_be_one = static_cast<uint32_t>(capability);
    uint32_t may_be_one = static_cast<uint32_t>(capability >> 32);
    return {(required | wanted | must_be_one) & may_be_one, required & ~may_be_one};
}

// True if `value` is a setting the capability MSR allows.
constexpr bool controls_allowed(uint64_t capability, uint32_t value)
{
    uint32_t must_be_one = static_cast<uint32_t>(capability);
    uint32_t may_be_one = static_cast<uint32_t>(capability >> 32);
    return (value & must_be_one) == must_be_one && (value & ~may_be_one) == 0;
}

// A control register value with the FIXED0 bits set and the bits FIXED1 does not allow cleared.
constexpr uint64_t apply_fixed_bits(uint64_t value, uint64_t fixed0, uint64_t fixed1)
{
    return (value | fixed0) & fixed1;
}

// The CR0 bits a guest must keep at 1: FIXED0, except PE and PG when "unrestricted guest" is on
// (SDM Vol. 3 §27.3.1.1, A.7): that relaxation is what lets a guest run in real mode.
constexpr uint64_t guest_cr0_fixed0(uint64_t fixed0, bool unrestricted_guest)
{
    return unrestricted_guest ? fixed0 & ~(cr0::kProtectionEnable | cr0::kPaging) : fixed0;
}

// The VMX-preemption timer counts down by 1 every 2^rate TSC ticks (§26.5.1, A.6). The 32-bit
// field saturates: longer budgets are cut to the longest the timer can express.
constexpr uint32_t preemption_timer_value(uint64_t tsc_ticks, unsigned rate)
{
    uint64_t value = tsc_ticks >> rate;
    return value > UINT32_MAX ? UINT32_MAX : static_cast<uint32_t>(value);
}

} // namespace vlibos::vmm::vmx

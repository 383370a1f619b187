#include "vmm/msr_policy.hpp"

namespace vlibos::vmm {

const char* msr_reason_name(MsrReason reason)
{
    switch (reason) {
    case MsrReason::X2apic: return "x2apic";
    case MsrReason::Efer: return "efer";
    case MsrReason::Other: return "other";
    case MsrReason::Count: break;
    }
    return "unknown";
}

MsrReason MsrPolicy::classify(uint32_t index)
{
    if (index >= kX2apicFirst && index <= kX2apicLast)
        return MsrReason::X2apic;
    if (index == kEfer)
        return MsrReason::Efer;
    return MsrReason::Other;
}

unsigned MsrPolicy::slot(MsrReason reason)
{
    auto i = static_cast<unsigned>(reason);
    return i < kReasons ? i : static_cast<unsigned>(MsrReason::Other);
}

MsrVerdict MsrPolicy::refuse(uint32_t index, uint64_t* counts)
{
    MsrReason reason = classify(index);
    ++counts[slot(reason)];
    last_index_ = index;
    return MsrVerdict{kGeneralProtection, true, 0, reason};
}

MsrVerdict MsrPolicy::read(uint32_t index)
{
    return refuse(index, reads_);
}

MsrVerdict MsrPolicy::write(uint32_t index, uint64_t value)
{
    (void)value;  // nothing is written anywhere
    return refuse(index, writes_);
}

uint64_t MsrPolicy::total() const
{
    uint64_t sum = 0;
    for (unsigned i = 0; i < kReasons; ++i)
        sum += reads_[i] + writes_[i];
    return sum;
}

} // namespace vlibos::vmm

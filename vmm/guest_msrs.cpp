#include "vmm/guest_msrs.hpp"

namespace vlibos::vmm {

namespace {
// Each PAT entry is a memory type: 0 UC, 1 WC, 4 WT, 5 WP, 6 WB, 7 UC-; 2 and 3 are reserved
// (SDM Vol. 3 §13.12.2), and a write with a reserved type raises #GP.
bool valid_pat(uint64_t value)
{
    for (unsigned i = 0; i < 8; ++i) {
        uint64_t type = (value >> (8 * i)) & 0xff;
        if (type == 2 || type == 3 || type > 7)
            return false;
    }
    return true;
}
} // namespace

bool GuestMsrs::read(uint32_t index, uint64_t& value) const
{
    switch (index) {
    case kApicBase:
        value = kApicBaseValue | (bsp_ ? kBspFlag : 0);
        return true;
    case kMiscEnable:
        value = kMiscEnableValue;
        return true;
    case kPat:
        value = pat_;
        return true;
    default:
        return false;
    }
}

bool GuestMsrs::write(uint32_t index, uint64_t value)
{
    switch (index) {
    case kApicBase:
        // Moving or disabling the APIC, or switching to x2APIC, is not offered.
        return value == (kApicBaseValue | (bsp_ ? kBspFlag : 0));
    case kMiscEnable:
        return value == kMiscEnableValue;
    case kPat:
        if (!valid_pat(value))
            return false;
        pat_ = value;
        return true;
    default:
        return false;
    }
}

} // namespace vlibos::vmm

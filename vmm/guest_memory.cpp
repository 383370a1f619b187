#include "vmm/guest_memory.hpp"

namespace vlibos::vmm {

namespace {
constexpr uint64_t kPage = 4096;
bool aligned(uint64_t v) { return (v & (kPage - 1)) == 0; }
} // namespace

const char* describe(GuestMemoryError error)
{
    switch (error) {
    case GuestMemoryError::Empty: return "the guest memory region is empty";
    case GuestMemoryError::Unaligned: return "the guest memory region is not 4 KiB aligned";
    case GuestMemoryError::Wraps: return "the guest memory region runs past the physical address limit";
    case GuestMemoryError::Overlap: return "the guest memory region overlaps another one";
    case GuestMemoryError::NotOwned: return "the host memory behind the guest region does not belong to the VM's partition";
    case GuestMemoryError::Full: return "too many guest memory regions";
    case GuestMemoryError::NotMapped: return "the guest-physical address is not mapped";
    case GuestMemoryError::NoAccess: return "the guest memory region allows no access at all";
    }
    return "unknown guest memory error";
}

Status<GuestMemoryError> GuestMemory::validate(const GuestRegion& r) const
{
    if (r.size == 0)
        return fail(GuestMemoryError::Empty);
    if (!aligned(r.guest_physical) || !aligned(r.host_physical) || !aligned(r.size))
        return fail(GuestMemoryError::Unaligned);
    if (r.guest_physical >= kPhysicalLimit || r.size > kPhysicalLimit - r.guest_physical ||
        r.host_physical >= kPhysicalLimit || r.size > kPhysicalLimit - r.host_physical)
        return fail(GuestMemoryError::Wraps);
    if (!r.access.read && !r.access.write && !r.access.execute)
        return fail(GuestMemoryError::NoAccess);
    return {};
}

Status<GuestMemoryError> GuestMemory::insert(const GuestRegion& r)
{
    size_t at = 0;
    while (at < count_ && regions_[at].guest_physical < r.guest_physical)
        ++at;
    uint64_t end = r.guest_physical + r.size;
    if (at > 0) {
        const GuestRegion& before = regions_[at - 1];
        if (before.guest_physical + before.size > r.guest_physical)
            return fail(GuestMemoryError::Overlap);
    }
    if (at < count_ && regions_[at].guest_physical < end)
        return fail(GuestMemoryError::Overlap);
    if (count_ == kMaxRegions)
        return fail(GuestMemoryError::Full);
    for (size_t i = count_; i > at; --i)
        regions_[i] = regions_[i - 1];
    regions_[at] = r;
    ++count_;
    return {};
}

Result<GuestMemory::Translation, GuestMemoryError> GuestMemory::translate(uint64_t gpa) const
{
    for (size_t i = 0; i < count_; ++i) {
        const GuestRegion& r = regions_[i];
        if (gpa >= r.guest_physical && gpa - r.guest_physical < r.size)
            return Translation{r.host_physical + (gpa - r.guest_physical), r.access, r.size - (gpa - r.guest_physical)};
    }
    return fail(GuestMemoryError::NotMapped);
}

} // namespace vlibos::vmm

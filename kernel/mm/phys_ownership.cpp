#include "mm/phys_ownership.hpp"

namespace vlibos::mm {

const char* describe(OwnershipError error)
{
    switch (error) {
    case OwnershipError::Empty:
        return "the physical range is empty";
    case OwnershipError::Unaligned:
        return "the physical range does not start and end on 4 KiB page boundaries";
    case OwnershipError::Overlap:
        return "part of the physical range is already owned";
    case OwnershipError::Full:
        return "the ownership ledger has no free entry";
    case OwnershipError::NotOwned:
        return "the physical address is not owned by anyone";
    }
    return "unknown ownership error";
}

Status<OwnershipError> PhysOwnership::claim(PhysRange range, OwnerId owner)
{
    if (range.empty())
        return fail(OwnershipError::Empty);
    if (!range.is_page_aligned())
        return fail(OwnershipError::Unaligned);

    // `at` is the first entry ending above range.base; entries before it lie entirely below.
    size_t at = 0;
    while (at < count_ && entries_[at].range.end <= range.base)
        ++at;
    if (at < count_ && entries_[at].range.base < range.end) {
        last_conflict_ = entries_[at];
        return fail(OwnershipError::Overlap);
    }

    bool joins_left = at > 0 && entries_[at - 1].owner == owner && entries_[at - 1].range.end == range.base;
    bool joins_right = at < count_ && entries_[at].owner == owner && entries_[at].range.base == range.end;
    if (joins_left && joins_right) {
        entries_[at - 1].range.end = entries_[at].range.end;
        for (size_t i = at; i + 1 < count_; ++i)
            entries_[i] = entries_[i + 1];
        --count_;
        return {};
    }
    if (joins_left) {
        entries_[at - 1].range.end = range.end;
        return {};
    }
    if (joins_right) {
        entries_[at].range.base = range.base;
        return {};
    }

    if (count_ == CAPACITY)
        return fail(OwnershipError::Full);
    for (size_t i = count_; i > at; --i)
        entries_[i] = entries_[i - 1];
    entries_[at] = OwnedRange{range, owner};
    ++count_;
    return {};
}

Result<OwnerId, OwnershipError> PhysOwnership::owner_of(uint64_t address) const
{
    for (size_t i = 0; i < count_; ++i)
        if (entries_[i].range.contains(address))
            return entries_[i].owner;
    return fail(OwnershipError::NotOwned);
}

bool PhysOwnership::owned_entirely_by(PhysRange range, OwnerId owner) const
{
    // Adjacent entries of one owner are always merged, so a range held entirely by one owner
    // lies within a single entry.
    for (size_t i = 0; i < count_; ++i)
        if (entries_[i].owner == owner && entries_[i].range.contains(range))
            return true;
    return false;
}

bool PhysOwnership::any_claimed(PhysRange range) const
{
    for (size_t i = 0; i < count_; ++i)
        if (entries_[i].range.overlaps(range))
            return true;
    return false;
}

uint64_t PhysOwnership::total_owned_by(OwnerId owner) const
{
    uint64_t total = 0;
    for (size_t i = 0; i < count_; ++i)
        if (entries_[i].owner == owner)
            total += entries_[i].range.size();
    return total;
}

} // namespace vlibos::mm

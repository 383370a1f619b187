// The physical memory ledger: which owner (the monitor or a partition) holds each page.
// Every page handed to a partition is claimed here first, and a claim fails if any byte of it
// is already claimed by anyone, so no frame can ever be given to two owners.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "lib/result.hpp"
#include "mm/phys_range.hpp"

namespace vlibos::mm {

// Chosen and named by the caller (e.g. 0 = monitor, 1 = "rt", 2 = "linux").
using OwnerId = uint8_t;

enum class OwnershipError : uint8_t {
    Empty,
    Unaligned,
    Overlap,
    Full,
    NotOwned,
};

const char* describe(OwnershipError error);

struct OwnedRange {
    PhysRange range;
    OwnerId owner = 0;
};

class PhysOwnership {
public:
    static constexpr size_t CAPACITY = 64;

    // Records that `owner` holds every page of `range`. A claim adjacent to one of the same owner
    // extends it instead of using a new entry.
    // Returns OwnershipError::Empty for an empty range, Unaligned unless both bounds are 4 KiB
    // aligned, Overlap if any byte is already claimed (see last_conflict()), Full if the ledger
    // has no free entry. On failure the ledger is unchanged.
    Status<OwnershipError> claim(PhysRange range, OwnerId owner);

    // Returns the owner of the page holding `address`, or OwnershipError::NotOwned.
    Result<OwnerId, OwnershipError> owner_of(uint64_t address) const;

    // True if `owner` holds every byte of a non-empty `range`.
    bool owned_entirely_by(PhysRange range, OwnerId owner) const;

    // True if any byte of `range` is claimed by anyone.
    bool any_claimed(PhysRange range) const;

    // Sum of the sizes of all ranges held by `owner`.
    uint64_t total_owned_by(OwnerId owner) const;

    // After claim() failed with Overlap: the lowest existing entry that clashed with it.
    const OwnedRange& last_conflict() const { return last_conflict_; }

    // Entries in address order; they never overlap, and adjacent entries have different owners.
    size_t count() const { return count_; }
    const OwnedRange& operator[](size_t index) const { return entries_[index]; }
    const OwnedRange* begin() const { return entries_; }
    const OwnedRange* end() const { return entries_ + count_; }

private:
    OwnedRange entries_[CAPACITY] = {};
    size_t count_ = 0;
    OwnedRange last_conflict_{};
};

} // namespace vlibos::mm

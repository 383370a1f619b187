// Physical address ranges and sorted sets of them: the vocabulary the memory manager uses to
// describe RAM, reservations and partition memory before any frame is handed out.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "lib/result.hpp"

namespace vlibos::mm {

// The smallest x86-64 page (SDM Vol. 3 §4.5, Table 4-20). Every ownership and allocation
// decision is made in units of it.
inline constexpr uint64_t PAGE_SIZE = 0x1000;

constexpr uint64_t align_down(uint64_t value, uint64_t alignment) { return value & ~(alignment - 1); }

// Saturates at the top of the address space instead of wrapping, so a bogus firmware entry can
// never turn into a range that starts above where it ends.
constexpr uint64_t align_up(uint64_t value, uint64_t alignment)
{
    uint64_t mask = alignment - 1;
    return value > UINT64_MAX - mask ? align_down(UINT64_MAX, alignment) : (value + mask) & ~mask;
}

constexpr bool is_aligned(uint64_t value, uint64_t alignment) { return (value & (alignment - 1)) == 0; }

// The half-open interval [base, end). A range whose end is not above its base is empty.
struct PhysRange {
    uint64_t base = 0;
    uint64_t end = 0;

    // Builds [base, base + size), clamping at the top of the address space rather than wrapping.
    static constexpr PhysRange from_size(uint64_t base, uint64_t size)
    {
        return {base, size > UINT64_MAX - base ? UINT64_MAX : base + size};
    }

    constexpr bool empty() const { return end <= base; }
    constexpr uint64_t size() const { return empty() ? 0 : end - base; }
    constexpr bool contains(uint64_t address) const { return base <= address && address < end; }
    // An empty range is contained nowhere, so ownership and containment checks never pass
    // vacuously for a zero-sized request.
    constexpr bool contains(PhysRange other) const
    {
        return !other.empty() && base <= other.base && other.end <= end;
    }
    constexpr bool overlaps(PhysRange other) const
    {
        return !empty() && !other.empty() && base < other.end && other.base < end;
    }
    constexpr bool is_page_aligned() const { return is_aligned(base, PAGE_SIZE) && is_aligned(end, PAGE_SIZE); }
    // The largest sub-range whose bounds are multiples of `alignment` (a power of two).
    constexpr PhysRange shrunk_to(uint64_t alignment) const
    {
        return {align_up(base, alignment), align_down(end, alignment)};
    }
    // The smallest range with aligned bounds that covers this one.
    constexpr PhysRange grown_to(uint64_t alignment) const
    {
        return {align_down(base, alignment), align_up(end, alignment)};
    }

    constexpr bool operator==(const PhysRange&) const = default;
};

enum class RangeError : uint8_t {
    Full,
};

const char* describe(RangeError error);

namespace detail {
// The set algorithms, shared by every RangeSet<N> so the kernel carries one copy. `ranges` holds
// `count` sorted, disjoint, non-touching, non-empty ranges; on failure nothing is modified.
Status<RangeError> range_set_add(PhysRange* ranges, size_t& count, size_t capacity, PhysRange range);
Status<RangeError> range_set_remove(PhysRange* ranges, size_t& count, size_t capacity, PhysRange range);
bool range_set_contains(const PhysRange* ranges, size_t count, PhysRange range);
bool range_set_overlaps(const PhysRange* ranges, size_t count, PhysRange range);
void range_set_shrink(PhysRange* ranges, size_t& count, uint64_t alignment);
} // namespace detail

// A set of physical addresses kept as at most N sorted, disjoint ranges. Touching or overlapping
// ranges are merged on insertion, so every range is maximal and iteration is in address order.
template <size_t N>
class RangeSet {
    static_assert(N > 0, "a RangeSet needs room for at least one range");

public:
    static constexpr size_t capacity() { return N; }

    // Adds every address of `range` (a no-op for an empty range).
    // Returns RangeError::Full if the result would need more than N ranges; the set is unchanged.
    Status<RangeError> add(PhysRange range) { return detail::range_set_add(ranges_, count_, N, range); }

    // Removes every address of `range`; removing from the middle of a range splits it.
    // Returns RangeError::Full if the split would need more than N ranges; the set is unchanged.
    Status<RangeError> remove(PhysRange range) { return detail::range_set_remove(ranges_, count_, N, range); }

    // True if every address of a non-empty `range` is in the set.
    bool contains(PhysRange range) const { return detail::range_set_contains(ranges_, count_, range); }
    bool contains(uint64_t address) const { return contains(PhysRange{address, address + 1}); }
    // True if any address of `range` is in the set.
    bool overlaps(PhysRange range) const { return detail::range_set_overlaps(ranges_, count_, range); }

    // Shrinks every range inward to multiples of `alignment` (a power of two) and drops the
    // ranges that vanish. Never fails: shrinking cannot create ranges.
    void shrink_to(uint64_t alignment) { detail::range_set_shrink(ranges_, count_, alignment); }

    // The biggest range (the lowest one on a tie), or an empty range if the set is empty.
    PhysRange largest() const
    {
        PhysRange best{};
        for (size_t i = 0; i < count_; ++i)
            if (ranges_[i].size() > best.size())
                best = ranges_[i];
        return best;
    }

    uint64_t total() const
    {
        uint64_t sum = 0;
        for (size_t i = 0; i < count_; ++i)
            sum += ranges_[i].size();
        return sum;
    }

    void clear() { count_ = 0; }
    size_t count() const { return count_; }
    bool empty() const { return count_ == 0; }
    const PhysRange& operator[](size_t index) const { return ranges_[index]; }
    const PhysRange* begin() const { return ranges_; }
    const PhysRange* end() const { return ranges_ + count_; }

private:
    PhysRange ranges_[N] = {};
    size_t count_ = 0;
};

// One entry of a firmware memory map (Multiboot2 mmap, E820, UEFI), reduced to what matters:
// may the monitor hand this memory out or not.
struct FirmwareRegion {
    uint64_t base;
    uint64_t length;
    bool usable;
};

// Computes the usable RAM: union(usable) minus union(non-usable), each range then shrunk inward
// to whole 4 KiB pages. Input may be unsorted, overlapping and unaligned; a byte both usable and
// reserved counts as reserved. N >= region_count always suffices.
// Returns RangeError::Full if `out` runs out of room (its contents are then incomplete).
template <size_t N>
Status<RangeError> sanitize_memory_map(const FirmwareRegion* regions, size_t region_count, RangeSet<N>& out)
{
    out.clear();
    for (size_t i = 0; i < region_count; ++i)
        if (regions[i].usable)
            TRY(out.add(PhysRange::from_size(regions[i].base, regions[i].length)));
    // Growing a reservation to page bounds removes exactly the pages the final shrink would drop
    // anyway, but leaves fewer slivers behind, so the set needs less room along the way.
    for (size_t i = 0; i < region_count; ++i)
        if (!regions[i].usable)
            TRY(out.remove(PhysRange::from_size(regions[i].base, regions[i].length).grown_to(PAGE_SIZE)));
    out.shrink_to(PAGE_SIZE);
    return {};
}

} // namespace vlibos::mm

#include "mm/phys_range.hpp"

namespace vlibos::mm {

const char* describe(RangeError error)
{
    switch (error) {
    case RangeError::Full:
        return "the range set is full: the change would need more ranges than its fixed capacity";
    }
    return "unknown range set error";
}

namespace detail {

namespace {

constexpr uint64_t min(uint64_t a, uint64_t b) { return a < b ? a : b; }
constexpr uint64_t max(uint64_t a, uint64_t b) { return a > b ? a : b; }

// Moves ranges[from, count) so that they start at index `to`; the caller fixes up `count`.
void shift(PhysRange* ranges, size_t count, size_t from, size_t to)
{
    if (to < from) {
        for (size_t i = from; i < count; ++i)
            ranges[to + (i - from)] = ranges[i];
    } else if (to > from) {
        for (size_t i = count; i > from; --i)
            ranges[to + (i - 1 - from)] = ranges[i - 1];
    }
}

} // namespace

Status<RangeError> range_set_add(PhysRange* ranges, size_t& count, size_t capacity, PhysRange range)
{
    if (range.empty())
        return {};
    // ranges[first, last) are the ones that overlap or touch `range` and merge with it.
    size_t first = 0;
    while (first < count && ranges[first].end < range.base)
        ++first;
    size_t last = first;
    while (last < count && ranges[last].base <= range.end)
        ++last;

    if (first == last) {
        if (count == capacity)
            return fail(RangeError::Full);
        shift(ranges, count, first, first + 1);
        ranges[first] = range;
        ++count;
        return {};
    }
    PhysRange merged{min(range.base, ranges[first].base), max(range.end, ranges[last - 1].end)};
    ranges[first] = merged;
    shift(ranges, count, last, first + 1);
    count -= last - (first + 1);
    return {};
}

Status<RangeError> range_set_remove(PhysRange* ranges, size_t& count, size_t capacity, PhysRange range)
{
    if (range.empty())
        return {};
    // ranges[first, last) are the ones that share at least one address with `range`.
    size_t first = 0;
    while (first < count && ranges[first].end <= range.base)
        ++first;
    size_t last = first;
    while (last < count && ranges[last].base < range.end)
        ++last;
    if (first == last)
        return {};

    PhysRange head{ranges[first].base, range.base};  // What survives left of the hole.
    PhysRange tail{range.end, ranges[last - 1].end}; // What survives right of the hole.
    size_t keep = (head.empty() ? 0u : 1u) + (tail.empty() ? 0u : 1u);
    size_t removed = last - first;
    if (count - removed + keep > capacity)
        return fail(RangeError::Full);

    shift(ranges, count, last, first + keep);
    count = count - removed + keep;
    size_t at = first;
    if (!head.empty())
        ranges[at++] = head;
    if (!tail.empty())
        ranges[at] = tail;
    return {};
}

bool range_set_contains(const PhysRange* ranges, size_t count, PhysRange range)
{
    // Ranges are maximal, so a contained range lies within a single one of them.
    for (size_t i = 0; i < count; ++i)
        if (ranges[i].contains(range))
            return true;
    return false;
}

bool range_set_overlaps(const PhysRange* ranges, size_t count, PhysRange range)
{
    for (size_t i = 0; i < count; ++i)
        if (ranges[i].overlaps(range))
            return true;
    return false;
}

void range_set_shrink(PhysRange* ranges, size_t& count, uint64_t alignment)
{
    size_t kept = 0;
    for (size_t i = 0; i < count; ++i) {
        PhysRange shrunk = ranges[i].shrunk_to(alignment);
        if (!shrunk.empty())
            ranges[kept++] = shrunk;
    }
    count = kept;
}

} // namespace detail

} // namespace vlibos::mm

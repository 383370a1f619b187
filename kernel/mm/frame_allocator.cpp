#include "mm/frame_allocator.hpp"

#include <string.h>

namespace vlibos::mm {

namespace {

constexpr uint64_t BITS_PER_WORD = 64;

constexpr uint64_t frame_of(uint64_t address) { return address / PAGE_SIZE; }

} // namespace

const char* describe(FrameError error)
{
    switch (error) {
    case FrameError::Empty:
        return "the physical range is empty";
    case FrameError::Unaligned:
        return "the physical address or range is not 4 KiB aligned";
    case FrameError::BitmapTooSmall:
        return "the frame bitmap does not cover the physical range";
    case FrameError::Overlap:
        return "part of the physical range is already managed by the frame allocator";
    case FrameError::TooManyRanges:
        return "the frame allocator cannot track any more separate ranges";
    case FrameError::InvalidRequest:
        return "the frame count is zero or the alignment is not a power of two";
    case FrameError::OutOfMemory:
        return "no run of free frames satisfies the request";
    case FrameError::NotManaged:
        return "the frames were never given to the frame allocator";
    case FrameError::DoubleFree:
        return "the frames are already free (double free)";
    }
    return "unknown frame allocator error";
}

void FrameAllocator::init(uint64_t* bitmap_words, size_t word_count)
{
    bitmap_ = bitmap_words;
    word_count_ = bitmap_words == nullptr ? 0 : word_count;
    if (word_count_ > 0)
        memset(bitmap_, 0, word_count_ * sizeof(uint64_t));
    managed_.clear();
    free_frames_ = 0;
    total_frames_ = 0;
}

void FrameAllocator::mark(uint64_t frame, size_t count, bool free_state)
{
    for (uint64_t f = frame; f < frame + count; ++f) {
        uint64_t mask = uint64_t{1} << (f % BITS_PER_WORD);
        if (free_state)
            bitmap_[f / BITS_PER_WORD] |= mask;
        else
            bitmap_[f / BITS_PER_WORD] &= ~mask;
    }
}

Status<FrameError> FrameAllocator::add_range(PhysRange range)
{
    if (range.empty())
        return fail(FrameError::Empty);
    if (!range.is_page_aligned())
        return fail(FrameError::Unaligned);
    if (frame_of(range.end) > word_count_ * BITS_PER_WORD)
        return fail(FrameError::BitmapTooSmall);
    if (managed_.overlaps(range))
        return fail(FrameError::Overlap);
    if (!managed_.add(range))
        return fail(FrameError::TooManyRanges);

    size_t frames = frame_of(range.size());
    mark(frame_of(range.base), frames, true);
    free_frames_ += frames;
    total_frames_ += frames;
    return {};
}

Result<uint64_t, FrameError> FrameAllocator::allocate(size_t count, size_t align_frames, uint64_t below)
{
    if (count == 0 || align_frames == 0 || (align_frames & (align_frames - 1)) != 0)
        return fail(FrameError::InvalidRequest);

    // Frame f lies entirely below `below` exactly when f < limit.
    uint64_t limit = frame_of(below);
    for (const PhysRange& range : managed_) {
        uint64_t end = frame_of(range.end) < limit ? frame_of(range.end) : limit;
        uint64_t start = align_up(frame_of(range.base), align_frames);
        while (start < end && count <= end - start) {
            // Check the window from its top down: the first busy frame found is the highest one,
            // so no window starting at or below it can fit and the next try starts above it.
            uint64_t busy = start + count;
            for (uint64_t f = start + count; f > start; --f) {
                if (!bit(f - 1)) {
                    busy = f - 1;
                    break;
                }
            }
            if (busy == start + count) {
                mark(start, count, false);
                free_frames_ -= count;
                return start * PAGE_SIZE;
            }
            start = align_up(busy + 1, align_frames);
        }
    }
    return fail(FrameError::OutOfMemory);
}

Status<FrameError> FrameAllocator::free(uint64_t address, size_t count)
{
    if (count == 0)
        return fail(FrameError::InvalidRequest);
    if (!is_aligned(address, PAGE_SIZE))
        return fail(FrameError::Unaligned);
    if (count > (UINT64_MAX - address) / PAGE_SIZE)
        return fail(FrameError::NotManaged);
    if (!managed_.contains(PhysRange::from_size(address, count * PAGE_SIZE)))
        return fail(FrameError::NotManaged);

    uint64_t first = frame_of(address);
    for (uint64_t f = first; f < first + count; ++f)
        if (bit(f))
            return fail(FrameError::DoubleFree);
    mark(first, count, true);
    free_frames_ += count;
    return {};
}

bool FrameAllocator::is_free(uint64_t address) const
{
    return managed_.contains(address) && bit(frame_of(address));
}

} // namespace vlibos::mm

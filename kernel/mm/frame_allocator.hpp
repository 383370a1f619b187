// The 4 KiB physical frame allocator: one bit per frame (1 = free), indexed from physical
// address 0, in a bitmap the caller provides (the kernel keeps it in .bss). It hands out only
// frames from ranges given to add_range(), and remembers those ranges so that free() can tell a
// foreign address from a double free.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "lib/result.hpp"
#include "mm/phys_range.hpp"

namespace vlibos::mm {

enum class FrameError : uint8_t {
    Empty,
    Unaligned,
    BitmapTooSmall,
    Overlap,
    TooManyRanges,
    InvalidRequest,
    OutOfMemory,
    NotManaged,
    DoubleFree,
};

const char* describe(FrameError error);

class FrameAllocator {
public:
    static constexpr size_t MAX_RANGES = 32;

    // Uses bitmap_words[0, word_count) as the bitmap, which covers the frames below
    // word_count * 64 * 4 KiB, and clears it. Forgets every range added before.
    void init(uint64_t* bitmap_words, size_t word_count);

    // Makes every frame of `range` free and managed.
    // Returns FrameError::Empty, Unaligned (bounds not 4 KiB aligned), BitmapTooSmall (the
    // range ends above what the bitmap covers), Overlap (part of it is already managed) or
    // TooManyRanges. On failure nothing changes.
    Status<FrameError> add_range(PhysRange range);

    // Allocates `count` contiguous frames whose first frame number is a multiple of
    // `align_frames` (a power of two) and whose every byte lies below `below`; lowest fit first.
    // Returns the physical address, FrameError::InvalidRequest (count 0 or a bad alignment) or
    // OutOfMemory.
    Result<uint64_t, FrameError> allocate(size_t count = 1, size_t align_frames = 1, uint64_t below = UINT64_MAX);

    // Returns `count` frames starting at `address` to the free pool.
    // Returns FrameError::InvalidRequest (count 0), Unaligned, NotManaged (some frame was never
    // added) or DoubleFree (some frame is already free). On failure nothing changes.
    Status<FrameError> free(uint64_t address, size_t count = 1);

    // True if the frame holding `address` is managed and free.
    bool is_free(uint64_t address) const;

    size_t free_frames() const { return free_frames_; }
    size_t total_frames() const { return total_frames_; }
    const RangeSet<MAX_RANGES>& ranges() const { return managed_; }

private:
    bool bit(uint64_t frame) const { return (bitmap_[frame / 64] >> (frame % 64)) & 1; }
    void mark(uint64_t frame, size_t count, bool free_state);

    uint64_t* bitmap_ = nullptr;
    size_t word_count_ = 0;
    RangeSet<MAX_RANGES> managed_;
    size_t free_frames_ = 0;
    size_t total_frames_ = 0;
};

} // namespace vlibos::mm

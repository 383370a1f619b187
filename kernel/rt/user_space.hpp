// An RT application's ring-3 address space as data: where its pieces go in the user window and
// which user addresses it may hand to a system call. No page tables here (the kernel builds
// them from the plan in kernel/core/rt_apps.cpp); this is the part that decides and checks.
//
// Every application gets the same window, [kUserWindowBase, kUserWindowEnd): its ELF segments
// where it was linked, and its main stack at the top with an unmapped guard page below. The
// window lies far above any RAM the monitor's direct map covers, in a PML4 slot of its own, so
// the application's mappings never overlap the monitor's (which stay supervisor-only).
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "elf/elf64.hpp"
#include "lib/result.hpp"

namespace vlibos::rt {

constexpr uint64_t kUserWindowBase = 0x0000'4000'0000'0000;  // PML4 slot 128
constexpr uint64_t kUserWindowSize = uint64_t{1} << 30;      // 1 GiB
constexpr uint64_t kUserWindowEnd = kUserWindowBase + kUserWindowSize;
constexpr uint64_t kUserPage = 4096;
constexpr uint64_t kMinStack = 8 * 1024;

enum class Access : uint8_t { Read, Write, Execute };

struct UserRegion {
    uint64_t base = 0;  // page aligned
    uint64_t end = 0;   // page aligned, > base
    bool write = false;
    bool execute = false;
    bool stack = false;
    // Where the region's file bytes come from (segments only): see elf::Segment.
    uint64_t file_offset = 0;
    uint64_t file_size = 0;
    uint64_t copy_to = 0;  // user address of the first file byte (>= base)
};

enum class UserSpaceError : uint8_t {
    Null,               // the pointer is 0 (and the length not)
    Wraps,              // pointer + length overflows
    NotMapped,          // some byte lies outside every region of the application
    NotWritable,        // the kernel would write into read-only or executable pages
    NotExecutable,      // an entry point outside the executable pages
    SegmentOutsideWindow,
    StackTooSmall,
    DoesNotFit,         // segments + stack need more than the application's memory
    TooManyRegions,
};

const char* describe(UserSpaceError error);

class UserSpace {
public:
    static constexpr size_t kMaxRegions = elf::kMaxSegments + 1;

    // Lays out `program` (already checked by elf::parse against kUserWindowEnd) with a main
    // stack of `stack` bytes in `memory` bytes of RAM. On failure the space is left empty.
    Status<UserSpaceError> plan(const elf::Program& program, uint64_t memory, uint64_t stack);

    // Checks that [pointer, pointer + length) lies inside the application's regions, every byte
    // with `access`. A zero length is always fine (nothing is touched).
    Status<UserSpaceError> check(uint64_t pointer, uint64_t length, Access access) const;

    size_t region_count() const { return count_; }
    const UserRegion& region(size_t i) const { return regions_[i]; }
    uint64_t pages() const { return pages_; }  // RAM pages the regions need
    uint64_t stack_top() const { return stack_top_; }
    uint64_t entry() const { return entry_; }

private:
    const UserRegion* find(uint64_t address) const;

    UserRegion regions_[kMaxRegions] = {};
    size_t count_ = 0;
    uint64_t pages_ = 0;
    uint64_t stack_top_ = 0;
    uint64_t entry_ = 0;
};

} // namespace vlibos::rt

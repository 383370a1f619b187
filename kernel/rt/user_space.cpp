#include "rt/user_space.hpp"

namespace vlibos::rt {

const char* describe(UserSpaceError error)
{
    switch (error) {
    case UserSpaceError::Null:
        return "null pointer";
    case UserSpaceError::Wraps:
        return "pointer plus length wraps around the address space";
    case UserSpaceError::NotMapped:
        return "address outside the application's memory";
    case UserSpaceError::NotWritable:
        return "address in read-only memory where the kernel must write";
    case UserSpaceError::NotExecutable:
        return "address outside the application's code";
    case UserSpaceError::SegmentOutsideWindow:
        return "a segment lies outside the user window 0x400000000000-0x400040000000 (link apps with libos-stubs/app.ld)";
    case UserSpaceError::StackTooSmall:
        return "the main stack is smaller than 8 KiB or not a 4 KiB multiple";
    case UserSpaceError::DoesNotFit:
        return "segments and stack need more memory than the application is given";
    case UserSpaceError::TooManyRegions:
        return "too many segments";
    }
    return "unknown user-space error";
}

Status<UserSpaceError> UserSpace::plan(const elf::Program& program, uint64_t memory, uint64_t stack)
{
    *this = UserSpace{};
    if (stack < kMinStack || stack % kUserPage != 0 || stack > kUserWindowSize / 2)
        return fail(UserSpaceError::StackTooSmall);
    // The stack sits at the top of the window with one unmapped guard page below it.
    uint64_t stack_base = kUserWindowEnd - stack;
    uint64_t segments_end = stack_base - kUserPage;
    if (program.segment_count + 1 > kMaxRegions)
        return fail(UserSpaceError::TooManyRegions);

    UserSpace planned;
    uint64_t pages = stack / kUserPage;
    for (size_t i = 0; i < program.segment_count; ++i) {
        const elf::Segment& s = program.segments[i];
        uint64_t base = elf::page_base(s), end = elf::page_end(s);
        if (base < kUserWindowBase || end > segments_end || end <= base)
            return fail(UserSpaceError::SegmentOutsideWindow);
        planned.regions_[planned.count_++] =
            UserRegion{base, end, s.write, s.execute, false, s.file_offset, s.filesz, s.vaddr};
        pages += (end - base) / kUserPage;
    }
    planned.regions_[planned.count_++] = UserRegion{stack_base, kUserWindowEnd, true, false, true, 0, 0, stack_base};
    if (pages > memory / kUserPage)
        return fail(UserSpaceError::DoesNotFit);
    planned.pages_ = pages;
    planned.stack_top_ = kUserWindowEnd;
    planned.entry_ = program.entry;
    if (planned.find(program.entry) == nullptr || !planned.find(program.entry)->execute)
        return fail(UserSpaceError::NotExecutable);
    *this = planned;
    return {};
}

const UserRegion* UserSpace::find(uint64_t address) const
{
    for (size_t i = 0; i < count_; ++i)
        if (address >= regions_[i].base && address < regions_[i].end)
            return &regions_[i];
    return nullptr;
}

Status<UserSpaceError> UserSpace::check(uint64_t pointer, uint64_t length, Access access) const
{
    if (length == 0)
        return {};
    if (pointer == 0)
        return fail(UserSpaceError::Null);
    uint64_t end = pointer + length;
    if (end < pointer)
        return fail(UserSpaceError::Wraps);
    // A buffer may span adjacent regions (say .rodata into .data) if each allows the access.
    for (uint64_t cursor = pointer; cursor < end;) {
        const UserRegion* r = find(cursor);
        if (r == nullptr)
            return fail(UserSpaceError::NotMapped);
        if (access == Access::Write && !r->write)
            return fail(UserSpaceError::NotWritable);
        if (access == Access::Execute && !r->execute)
            return fail(UserSpaceError::NotExecutable);
        cursor = r->end;
    }
    return {};
}

} // namespace vlibos::rt

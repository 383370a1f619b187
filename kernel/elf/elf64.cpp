// ELF64 program parser. See elf64.hpp. Field offsets and constants are from the System V gABI
// ("ELF Header", "Program Header") and the x86-64 psABI.
#include "elf/elf64.hpp"
#include "lib/bytes.hpp"

#include <string.h>

namespace vlibos::elf {

namespace {

// Fields are read with memcpy in host byte order, which is the image's only when both are little-endian.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the ELF parser reads little-endian fields natively");

// e_ident (gABI "ELF Identification").
constexpr uint8_t kMagic[4] = {0x7f, 'E', 'L', 'F'};
constexpr size_t kIdentClass = 4;
constexpr size_t kIdentData = 5;
constexpr size_t kIdentVersion = 6;
constexpr uint8_t kClass64 = 2;       // ELFCLASS64
constexpr uint8_t kDataLsb = 1;       // ELFDATA2LSB
constexpr uint32_t kVersionCurrent = 1; // EV_CURRENT

// Elf64_Ehdr field offsets.
constexpr size_t kEhType = 16;
constexpr size_t kEhMachine = 18;
constexpr size_t kEhVersion = 20;
constexpr size_t kEhEntry = 24;
constexpr size_t kEhPhoff = 32;
constexpr size_t kEhEhsize = 52;
constexpr size_t kEhPhentsize = 54;
constexpr size_t kEhPhnum = 56;
constexpr size_t kEhdrSize = 64;
constexpr uint16_t kTypeExec = 2;     // ET_EXEC
constexpr uint16_t kMachineX86_64 = 62; // EM_X86_64

// Elf64_Phdr field offsets.
constexpr size_t kPhType = 0;
constexpr size_t kPhFlags = 4;
constexpr size_t kPhOffset = 8;
constexpr size_t kPhVaddr = 16;
constexpr size_t kPhFilesz = 32;
constexpr size_t kPhMemsz = 40;
constexpr size_t kPhAlign = 48;
constexpr size_t kPhdrSize = 56;

constexpr uint32_t kPtLoad = 1;
constexpr uint32_t kPtDynamic = 2;
constexpr uint32_t kPtInterp = 3;
constexpr uint32_t kPtGnuStack = 0x6474e551;

constexpr uint32_t kPfX = 1;
constexpr uint32_t kPfW = 2;
constexpr uint32_t kPfR = 4;

constexpr bool is_power_of_two(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

Status<Error> check_header(const uint8_t* image, size_t size)
{
    if (image == nullptr || size < kEhdrSize)
        return fail(Error::TooSmall);
    if (memcmp(image, kMagic, sizeof(kMagic)) != 0)
        return fail(Error::BadMagic);
    if (image[kIdentClass] != kClass64)
        return fail(Error::NotElf64);
    if (image[kIdentData] != kDataLsb)
        return fail(Error::NotLittleEndian);
    if (image[kIdentVersion] != kVersionCurrent || read_u32(image + kEhVersion) != kVersionCurrent)
        return fail(Error::BadVersion);
    // EI_OSABI is not checked: GNU ld writes SYSV or GNU, and neither changes how a static
    // executable is loaded.
    if (read_u16(image + kEhType) != kTypeExec)
        return fail(Error::NotExecutable);
    if (read_u16(image + kEhMachine) != kMachineX86_64)
        return fail(Error::WrongMachine);
    if (read_u16(image + kEhEhsize) != kEhdrSize)
        return fail(Error::BadHeaderSize);
    if (read_u16(image + kEhPhentsize) != kPhdrSize)
        return fail(Error::BadProgramHeaderSize);
    return {};
}

// Checks one PT_LOAD header and, unless it is empty, appends it to `out`.
// `limit` is the exclusive end of user space, at most kLowerHalfEnd.
Status<Error> add_load_segment(const uint8_t* ph, size_t size, uint64_t limit, Program& out)
{
    uint32_t flags = read_u32(ph + kPhFlags);
    uint64_t offset = read_u64(ph + kPhOffset);
    uint64_t vaddr = read_u64(ph + kPhVaddr);
    uint64_t filesz = read_u64(ph + kPhFilesz);
    uint64_t memsz = read_u64(ph + kPhMemsz);
    uint64_t align = read_u64(ph + kPhAlign);

    if (offset > size || filesz > size - offset)
        return fail(Error::SegmentOutsideFile);
    if (filesz > memsz)
        return fail(Error::FileSizeExceedsMemorySize);
    if (memsz == 0)
        return {}; // maps nothing
    if (vaddr + memsz < vaddr)
        return fail(Error::SegmentWrapsAddress);
    uint64_t end = vaddr + memsz;
    // Checked before rounding up, so the rounding below cannot overflow.
    if (end > limit)
        return fail(Error::SegmentNotCanonicalUser);
    Segment segment{vaddr, memsz, offset, filesz, (flags & kPfR) != 0, (flags & kPfW) != 0, (flags & kPfX) != 0};
    if (page_end(segment) > limit)
        return fail(Error::SegmentNotCanonicalUser);
    if (page_base(segment) == 0)
        return fail(Error::SegmentInNullPage);
    // gABI: p_vaddr and p_offset are congruent modulo p_align. With p_align >= 4096 the file's
    // pages line up with the memory pages, which is what lets a loader copy or map them by page.
    if (!is_power_of_two(align) || align < kPageSize || vaddr % align != offset % align)
        return fail(Error::UnalignedSegment);
    if (segment.write && segment.execute)
        return fail(Error::WritableAndExecutable);
    if (out.segment_count == kMaxSegments)
        return fail(Error::TooManySegments);
    // Page permissions come from the segment, so two segments must not share a page, or one
    // would get the other's rights (and a writable page next to code would break W^X).
    for (size_t i = 0; i < out.segment_count; ++i) {
        const Segment& other = out.segments[i];
        if (page_base(segment) < page_end(other) && page_base(other) < page_end(segment))
            return fail(Error::SegmentsOverlap);
    }
    out.segments[out.segment_count++] = segment;
    return {};
}

bool entry_is_executable(const Program& program)
{
    for (size_t i = 0; i < program.segment_count; ++i) {
        const Segment& s = program.segments[i];
        // Within the file bytes: the zero-filled tail holds no instructions.
        if (s.execute && program.entry >= s.vaddr && program.entry - s.vaddr < s.filesz)
            return true;
    }
    return false;
}

Status<Error> parse_into(const uint8_t* image, size_t size, uint64_t user_limit, Program& out)
{
    TRY(check_header(image, size));

    uint64_t phoff = read_u64(image + kEhPhoff);
    uint64_t phnum = read_u16(image + kEhPhnum);
    // phnum <= 0xffff, so the product cannot overflow. PN_XNUM (0xffff, the real count in
    // section header 0) is not supported; such a table is simply too large for the image or
    // has too many segments.
    if (phoff > size || phnum * kPhdrSize > size - phoff)
        return fail(Error::ProgramHeadersOutside);

    uint64_t limit = user_limit < kLowerHalfEnd ? user_limit : kLowerHalfEnd;
    for (uint64_t i = 0; i < phnum; ++i) {
        const uint8_t* ph = image + phoff + i * kPhdrSize;
        uint32_t type = read_u32(ph + kPhType);
        switch (type) {
        case kPtLoad:
            TRY(add_load_segment(ph, size, limit, out));
            break;
        case kPtInterp:
            return fail(Error::Interpreter);
        case kPtDynamic:
            return fail(Error::Dynamic);
        case kPtGnuStack:
            if ((read_u32(ph + kPhFlags) & kPfX) != 0)
                return fail(Error::ExecutableStack);
            break;
        default:
            break; // PT_NOTE, PT_PHDR, PT_TLS, PT_GNU_PROPERTY, ...: nothing to load
        }
    }
    if (out.segment_count == 0)
        return fail(Error::NoLoadableSegment);
    out.entry = read_u64(image + kEhEntry);
    if (!entry_is_executable(out))
        return fail(Error::EntryNotInExecutableSegment);
    return {};
}

void reset(Program& out)
{
    out.entry = 0;
    out.segment_count = 0;
}

} // namespace

const char* describe(Error error)
{
    switch (error) {
    case Error::TooSmall: return "the ELF image is smaller than an ELF64 header";
    case Error::BadMagic: return "the image is not ELF (bad magic)";
    case Error::NotElf64: return "the ELF image is not 64-bit (ELFCLASS64)";
    case Error::NotLittleEndian: return "the ELF image is not little-endian";
    case Error::BadVersion: return "the ELF version is not 1 (EV_CURRENT)";
    case Error::NotExecutable: return "the ELF image is not a static executable (ET_EXEC); position-independent programs need relocation, which is not supported";
    case Error::WrongMachine: return "the ELF image is not for x86-64";
    case Error::BadHeaderSize: return "the ELF header size is not 64";
    case Error::BadProgramHeaderSize: return "the ELF program header size is not 56";
    case Error::ProgramHeadersOutside: return "the ELF program header table lies outside the image";
    case Error::TooManySegments: return "the ELF image has more loadable segments than the loader can hold";
    case Error::SegmentOutsideFile: return "an ELF segment's file bytes lie outside the image";
    case Error::FileSizeExceedsMemorySize: return "an ELF segment has more file bytes than memory bytes";
    case Error::SegmentWrapsAddress: return "an ELF segment wraps around the address space";
    case Error::SegmentNotCanonicalUser: return "an ELF segment lies above the user address limit";
    case Error::SegmentInNullPage: return "an ELF segment touches page 0, which stays unmapped";
    case Error::SegmentsOverlap: return "two ELF segments share a page";
    case Error::WritableAndExecutable: return "an ELF segment is both writable and executable";
    case Error::ExecutableStack: return "the ELF image asks for an executable stack";
    case Error::EntryNotInExecutableSegment: return "the ELF entry point is not inside an executable segment";
    case Error::UnalignedSegment: return "an ELF segment is not page-aligned (p_align below 4096, not a power of two, or p_vaddr and p_offset not congruent)";
    case Error::NoLoadableSegment: return "the ELF image has no loadable segment";
    case Error::Interpreter: return "the ELF image is dynamically linked (PT_INTERP)";
    case Error::Dynamic: return "the ELF image needs dynamic linking or relocation (PT_DYNAMIC)";
    }
    return "unknown ELF error";
}

Status<Error> parse(const uint8_t* image, size_t size, uint64_t user_limit, Program& out)
{
    reset(out);
    Status<Error> status = parse_into(image, size, user_limit, out);
    if (!status)
        reset(out);
    return status;
}

} // namespace vlibos::elf

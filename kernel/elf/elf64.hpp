// ELF64 program parser: turns an RT application image (a static x86-64 executable handed over
// as a GRUB module) into a load plan: the entry point and the loadable segments, each with its
// file bytes and its page permissions. It maps nothing itself; the loader that builds the
// application's ring-3 address space uses the plan.
//
// The image is untrusted. Every offset, size and count is checked against the buffer and the
// user address range before it is used, all arithmetic is overflow-checked, and fields are read
// with memcpy, so the buffer needs no alignment. Section headers are never read: a loader needs
// only the program headers (System V gABI, "Program Loading").
//
// Accepted: ELFCLASS64, little-endian, EV_CURRENT, ET_EXEC, EM_X86_64, no PT_INTERP or
// PT_DYNAMIC (no dynamic linker, no relocations), a non-executable stack, W^X segments that do
// not share a page, and an entry point inside an executable segment's file bytes.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "lib/result.hpp"

namespace vlibos::elf {

// Segments are mapped with 4 KiB pages, so that is the finest alignment a segment may ask for.
constexpr uint64_t kPageSize = 4096;
// End of the lower canonical half with 4-level paging (SDM Vol. 1 §3.3.7.1): user addresses lie below it.
constexpr uint64_t kLowerHalfEnd = 0x0000'8000'0000'0000;
// At most this many PT_LOAD segments (a static executable has 2-5).
constexpr size_t kMaxSegments = 16;

// One PT_LOAD segment. The loader copies `filesz` bytes from `file_offset` in the image to
// `vaddr` and fills the rest of [page_base(s), page_end(s)) with zeros.
// x86 paging has no write-only or execute-only pages: a present page is always readable.
struct Segment {
    uint64_t vaddr;       // user virtual address of the first byte
    uint64_t memsz;       // bytes in memory, > 0
    uint64_t file_offset; // where the file bytes start in the image
    uint64_t filesz;      // file bytes, <= memsz; the tail up to memsz is zero (.bss)
    bool read;
    bool write;
    bool execute;         // never together with write
};

// The pages a segment occupies. parse() guarantees no two segments share one.
constexpr uint64_t page_base(const Segment& s) { return s.vaddr & ~(kPageSize - 1); }
constexpr uint64_t page_end(const Segment& s) { return (s.vaddr + s.memsz + kPageSize - 1) & ~(kPageSize - 1); }

// The load plan. Only meaningful after parse() succeeded.
struct Program {
    uint64_t entry;                  // first instruction, inside an executable segment
    Segment segments[kMaxSegments];  // in program header order
    size_t segment_count;            // 1..kMaxSegments
};

enum class Error {
    TooSmall,                    // null image, or fewer bytes than an ELF64 header
    BadMagic,                    // e_ident does not start with 0x7f 'E' 'L' 'F'
    NotElf64,                    // EI_CLASS is not ELFCLASS64
    NotLittleEndian,             // EI_DATA is not ELFDATA2LSB
    BadVersion,                  // EI_VERSION or e_version is not EV_CURRENT
    NotExecutable,               // e_type is not ET_EXEC (ET_DYN refused: no relocation support)
    WrongMachine,                // e_machine is not EM_X86_64
    BadHeaderSize,               // e_ehsize is not 64
    BadProgramHeaderSize,        // e_phentsize is not 56
    ProgramHeadersOutside,       // the program header table does not lie inside the image
    TooManySegments,             // more than kMaxSegments non-empty PT_LOAD segments
    SegmentOutsideFile,          // p_offset + p_filesz lies beyond the image
    FileSizeExceedsMemorySize,   // p_filesz > p_memsz
    SegmentWrapsAddress,         // p_vaddr + p_memsz overflows
    SegmentNotCanonicalUser,     // a segment's pages reach past the user limit (or the lower half)
    SegmentInNullPage,           // a segment touches page 0, which stays unmapped to catch null pointers
    SegmentsOverlap,             // two segments share a page
    WritableAndExecutable,       // PF_W and PF_X together (W^X)
    ExecutableStack,             // PT_GNU_STACK asks for an executable stack
    EntryNotInExecutableSegment, // e_entry is not inside an executable segment's file bytes
    UnalignedSegment,            // p_align not a power of two >= 4096, or p_vaddr, p_offset not congruent
    NoLoadableSegment,           // no non-empty PT_LOAD segment
    Interpreter,                 // PT_INTERP: a dynamically linked program
    Dynamic,                     // PT_DYNAMIC: the program wants dynamic linking or relocations
};

const char* describe(Error error);

// Parses the ELF64 executable in [image, image + size). Segments must lie in
// [kPageSize, min(user_limit, kLowerHalfEnd)), page-rounded. Only PT_LOAD segments are kept
// (empty ones are skipped); PT_INTERP, PT_DYNAMIC and an executable PT_GNU_STACK are refused;
// other types (PT_NOTE, PT_PHDR, PT_TLS, PT_GNU_*) are ignored. The first problem found is
// returned. On failure `out` is reset (no segments, entry 0).
Status<Error> parse(const uint8_t* image, size_t size, uint64_t user_limit, Program& out);

} // namespace vlibos::elf

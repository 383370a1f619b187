// Multiboot2 boot information parser (Multiboot2 spec §3.6).
// The boot loader hands us a blob of tags; we copy out the facts the kernel needs and keep
// pointers only to strings and the RSDP copy that were proven to lie inside the blob.
// Nothing inside the blob is trusted: every size is checked against the bytes we may read.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "lib/result.hpp"

namespace vlibos::mb2 {

// Value left in EAX by a Multiboot2 boot loader (spec §3.3).
constexpr uint32_t kBootloaderMagic = 0x36d76289;

// Memory map entry types (spec §3.6.8). Types we do not know are reported as Reserved,
// so nothing unknown is ever handed out as usable RAM.
enum class MemoryType : uint32_t {
    Usable = 1,
    Reserved = 2,
    AcpiReclaimable = 3,
    AcpiNvs = 4,
    Bad = 5,
};

struct MemoryRegion {
    uint64_t base;
    uint64_t length;
    MemoryType type;
};

// A boot module (spec §3.6.6): physical range [start, end) and its NUL-terminated
// command line, which points into the boot information.
struct Module {
    uint64_t start;
    uint64_t end;
    const char* cmdline;
};

constexpr size_t kMaxMemoryRegions = 128;
constexpr size_t kMaxModules = 16;

// What the kernel learns from the boot information. Only meaningful after parse() succeeded.
struct BootInfo {
    const char* cmdline = "";         // points into the info; NUL-terminated within its tag
    const char* bootloader_name = ""; // likewise
    MemoryRegion memory[kMaxMemoryRegions];
    size_t memory_count = 0;          // zero-length entries are dropped
    Module modules[kMaxModules];
    size_t module_count = 0;
    const uint8_t* rsdp = nullptr;    // RSDP copy inside the info: tag 15 (new) preferred over 14 (old)
    size_t rsdp_length = 0;           // bytes available at rsdp (the tag payload)
    uint32_t total_size = 0;          // bytes of the info structure, so the kernel can reserve it
};

enum class Error {
    BadMagic,               // EAX did not hold kBootloaderMagic
    NullInfo,               // no boot information pointer
    Misaligned,             // info not 8-byte aligned (spec §3.6.1)
    TooShort,               // fewer than 16 bytes: cannot even hold the header and the end tag
    TotalSizeTooLarge,      // total_size exceeds the bytes we may read
    TagOverrun,             // a tag reaches past total_size
    TagTooShort,            // a tag is smaller than its header or its fixed fields
    BadEndTag,              // end tag with a size other than 8
    MissingEndTag,          // tags ran out before the end tag
    DuplicateTag,           // a tag that must be unique appeared twice
    UnterminatedString,     // a string has no NUL inside its tag
    BadMemoryMapEntrySize,  // entry_size < 24 or not a multiple of 8
    BadMemoryMapLength,     // memory map tag is not a whole number of entries
    BadMemoryRegion,        // base + length wraps around
    TooManyMemoryRegions,   // more than kMaxMemoryRegions non-empty entries
    NoMemoryMap,            // no memory map tag (type 6)
    TooManyModules,         // more than kMaxModules modules
    BadModuleRange,         // module end <= start
    BadAcpiTag,             // ACPI RSDP tag too small for the RSDP it claims to hold
};

const char* describe(Error error);

// Tag types (spec §3.6.x). Public so tests and diagnostics can name them.
enum class TagType : uint32_t {
    End = 0,
    Cmdline = 1,
    BootloaderName = 2,
    Module = 3,
    BasicMeminfo = 4,
    BootDevice = 5,
    MemoryMap = 6,
    AcpiOld = 14,
    AcpiNew = 15,
};

// `info` points at the boot information; `available` is how many bytes may be read there.
// On failure `out` holds partial data and must not be used.
Status<Error> parse(uint32_t magic, const uint8_t* info, size_t available, BootInfo& out);

} // namespace vlibos::mb2

// Multiboot2 boot information parser. See multiboot2.hpp and the Multiboot2 spec §3.6.
#include "boot/multiboot2.hpp"
#include "lib/bytes.hpp"

#include <string.h>

namespace vlibos::mb2 {

namespace {

// Spec §3.6.1: the info starts with u32 total_size and u32 reserved; tags follow, each
// 8-byte aligned, with a u32 type and a u32 size that counts the 8-byte tag header.
constexpr size_t kInfoHeaderSize = 8;
constexpr size_t kTagHeaderSize = 8;
constexpr size_t kTagAlignment = 8;
constexpr size_t kMinTotalSize = kInfoHeaderSize + kTagHeaderSize; // header plus end tag

// Spec §3.6.6: mod_start, mod_end, then the string.
constexpr size_t kModuleStringOffset = 16;
// Spec §3.6.8: entry_size, entry_version, then entries of {u64 base, u64 length, u32 type, u32 reserved}.
constexpr size_t kMemoryMapEntriesOffset = 16;
constexpr uint32_t kMinMemoryMapEntrySize = 24;
// ACPI §5.2.5.3: the RSDP is 20 bytes in ACPI 1.0 and 36 bytes from ACPI 2.0 on.
constexpr size_t kRsdpV1Length = 20;
constexpr size_t kRsdpV2Length = 36;

// A tag already proven to lie inside the info: [data, data + size).
struct Tag {
    uint32_t type;
    const uint8_t* data;
    size_t size;
};

// Returns the string at `offset` in the tag if a NUL terminates it before the tag ends.
Result<const char*, Error> tag_string(const Tag& tag, size_t offset)
{
    if (offset >= tag.size)
        return fail(Error::TagTooShort);
    for (size_t i = offset; i < tag.size; ++i) {
        if (tag.data[i] == 0)
            return reinterpret_cast<const char*>(tag.data + offset);
    }
    return fail(Error::UnterminatedString);
}

MemoryType memory_type(uint32_t raw)
{
    switch (raw) {
    case 1: return MemoryType::Usable;
    case 3: return MemoryType::AcpiReclaimable;
    case 4: return MemoryType::AcpiNvs;
    case 5: return MemoryType::Bad;
    default: return MemoryType::Reserved; // includes 2 and anything newer than we know
    }
}

Status<Error> parse_module(const Tag& tag, BootInfo& out)
{
    if (tag.size < kModuleStringOffset)
        return fail(Error::TagTooShort);
    uint32_t start = read_u32(tag.data + 8);
    uint32_t end = read_u32(tag.data + 12);
    const char* cmdline = TRY(tag_string(tag, kModuleStringOffset));
    if (end <= start)
        return fail(Error::BadModuleRange);
    if (out.module_count == kMaxModules)
        return fail(Error::TooManyModules);
    out.modules[out.module_count++] = Module{start, end, cmdline};
    return {};
}

Status<Error> parse_memory_map(const Tag& tag, BootInfo& out)
{
    if (tag.size < kMemoryMapEntriesOffset)
        return fail(Error::TagTooShort);
    uint32_t entry_size = read_u32(tag.data + 8);
    // entry_size lets newer loaders append fields; it stays a multiple of 8 (spec §3.6.8).
    if (entry_size < kMinMemoryMapEntrySize || entry_size % 8 != 0)
        return fail(Error::BadMemoryMapEntrySize);
    size_t entries_bytes = tag.size - kMemoryMapEntriesOffset;
    if (entries_bytes % entry_size != 0)
        return fail(Error::BadMemoryMapLength);

    for (size_t offset = kMemoryMapEntriesOffset; offset < tag.size; offset += entry_size) {
        const uint8_t* entry = tag.data + offset;
        uint64_t base = read_u64(entry);
        uint64_t length = read_u64(entry + 8);
        uint32_t type = read_u32(entry + 16);
        if (length == 0)
            continue;
        if (base + length - 1 < base)
            return fail(Error::BadMemoryRegion);
        if (out.memory_count == kMaxMemoryRegions)
            return fail(Error::TooManyMemoryRegions);
        out.memory[out.memory_count++] = MemoryRegion{base, length, memory_type(type)};
    }
    return {};
}

void reset(BootInfo& out)
{
    out.cmdline = "";
    out.bootloader_name = "";
    out.memory_count = 0;
    out.module_count = 0;
    out.rsdp = nullptr;
    out.rsdp_length = 0;
    out.total_size = 0;
}

} // namespace

const char* describe(Error error)
{
    switch (error) {
    case Error::BadMagic: return "the boot loader is not Multiboot2 (wrong magic in EAX)";
    case Error::NullInfo: return "the Multiboot2 boot information pointer is null";
    case Error::Misaligned: return "the Multiboot2 boot information is not 8-byte aligned";
    case Error::TooShort: return "the Multiboot2 boot information is shorter than its header and end tag";
    case Error::TotalSizeTooLarge: return "the Multiboot2 total_size is larger than the readable memory";
    case Error::TagOverrun: return "a Multiboot2 tag runs past the end of the boot information";
    case Error::TagTooShort: return "a Multiboot2 tag is too short for its fields";
    case Error::BadEndTag: return "the Multiboot2 end tag does not have size 8";
    case Error::MissingEndTag: return "the Multiboot2 boot information has no end tag";
    case Error::DuplicateTag: return "a Multiboot2 tag that must be unique appears twice";
    case Error::UnterminatedString: return "a Multiboot2 string is not NUL-terminated inside its tag";
    case Error::BadMemoryMapEntrySize: return "the Multiboot2 memory map entry size is below 24 or not a multiple of 8";
    case Error::BadMemoryMapLength: return "the Multiboot2 memory map tag is not a whole number of entries";
    case Error::BadMemoryRegion: return "a Multiboot2 memory map region wraps around the address space";
    case Error::TooManyMemoryRegions: return "the Multiboot2 memory map has more regions than the kernel can hold";
    case Error::NoMemoryMap: return "the Multiboot2 boot information has no memory map";
    case Error::TooManyModules: return "there are more Multiboot2 modules than the kernel can hold";
    case Error::BadModuleRange: return "a Multiboot2 module ends before it starts";
    case Error::BadAcpiTag: return "a Multiboot2 ACPI tag is too short to hold an RSDP";
    }
    return "unknown Multiboot2 error";
}

Status<Error> parse(uint32_t magic, const uint8_t* info, size_t available, BootInfo& out)
{
    reset(out);
    if (magic != kBootloaderMagic)
        return fail(Error::BadMagic);
    if (info == nullptr)
        return fail(Error::NullInfo);
    if (reinterpret_cast<uintptr_t>(info) % kTagAlignment != 0)
        return fail(Error::Misaligned);
    if (available < kMinTotalSize)
        return fail(Error::TooShort);
    uint32_t total_size = read_u32(info);
    if (total_size < kMinTotalSize)
        return fail(Error::TooShort);
    if (total_size > available)
        return fail(Error::TotalSizeTooLarge);

    bool have_cmdline = false, have_name = false, have_mmap = false, have_old = false, have_new = false;
    const uint8_t* rsdp_old = nullptr;
    size_t rsdp_old_length = 0;

    size_t offset = kInfoHeaderSize;
    for (;;) {
        // Each step advances by at least 8 bytes, so the loop ends within total_size / 8 steps.
        if (total_size - offset < kTagHeaderSize)
            return fail(Error::MissingEndTag);
        uint32_t type = read_u32(info + offset);
        uint32_t size = read_u32(info + offset + 4);
        if (size < kTagHeaderSize)
            return fail(Error::TagTooShort);
        if (size > total_size - offset)
            return fail(Error::TagOverrun);
        Tag tag{type, info + offset, size};

        switch (static_cast<TagType>(type)) {
        case TagType::End:
            if (size != kTagHeaderSize)
                return fail(Error::BadEndTag);
            if (!have_mmap)
                return fail(Error::NoMemoryMap);
            if (!have_new && have_old) {
                out.rsdp = rsdp_old;
                out.rsdp_length = rsdp_old_length;
            }
            out.total_size = total_size;
            return {};
        case TagType::Cmdline:
            if (have_cmdline)
                return fail(Error::DuplicateTag);
            have_cmdline = true;
            out.cmdline = TRY(tag_string(tag, kTagHeaderSize));
            break;
        case TagType::BootloaderName:
            if (have_name)
                return fail(Error::DuplicateTag);
            have_name = true;
            out.bootloader_name = TRY(tag_string(tag, kTagHeaderSize));
            break;
        case TagType::Module:
            TRY(parse_module(tag, out));
            break;
        case TagType::MemoryMap:
            if (have_mmap)
                return fail(Error::DuplicateTag);
            have_mmap = true;
            TRY(parse_memory_map(tag, out));
            break;
        case TagType::AcpiOld:
            if (have_old)
                return fail(Error::DuplicateTag);
            if (size - kTagHeaderSize < kRsdpV1Length)
                return fail(Error::BadAcpiTag);
            have_old = true;
            rsdp_old = tag.data + kTagHeaderSize;
            rsdp_old_length = size - kTagHeaderSize;
            break;
        case TagType::AcpiNew:
            if (have_new)
                return fail(Error::DuplicateTag);
            if (size - kTagHeaderSize < kRsdpV2Length)
                return fail(Error::BadAcpiTag);
            have_new = true;
            out.rsdp = tag.data + kTagHeaderSize;
            out.rsdp_length = size - kTagHeaderSize;
            break;
        default:
            // Basic meminfo (type 4) is superseded by the required memory map; other tags
            // (framebuffer, ELF sections, EFI, ...) are not used by the kernel.
            break;
        }

        // Tags are padded to 8 bytes (spec §3.6.2). The padded size may reach total_size
        // exactly; the check at the loop head then reports the missing end tag.
        size_t padded = (static_cast<size_t>(size) + kTagAlignment - 1) & ~(kTagAlignment - 1);
        if (padded > total_size - offset)
            return fail(Error::MissingEndTag);
        offset += padded;
    }
}

} // namespace vlibos::mb2

// The zero page (struct boot_params, 4 KiB) and its e820 memory map: what Linux reads first on
// the 32-bit and 64-bit boot protocols. Written with explicit offsets from
// arch/x86/include/uapi/asm/bootparam.h and Documentation/arch/x86/zero-page.rst, never through a
// C++ struct, so the layout is exactly the ABI's whatever the compiler does.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "lib/result.hpp"
#include "vmm/linux/boot_layout.hpp"
#include "vmm/linux/bzimage.hpp"

namespace vlibos::vmm::linux_boot {

constexpr size_t kZeroPageSize = 4096;

// struct boot_params offsets (bootparam.h; the comments there give the same numbers).
namespace boot_params {
constexpr size_t kScreenInfo = 0x000;       // struct screen_info, 0x40: all zero = no VGA console
constexpr size_t kAcpiRsdpAddr = 0x070;     // u64: 0, the guest has no ACPI
constexpr size_t kExtRamdiskImage = 0x0c0;  // u32: ramdisk_image >> 32
constexpr size_t kExtRamdiskSize = 0x0c4;   // u32: ramdisk_size >> 32
constexpr size_t kExtCmdLinePtr = 0x0c8;    // u32: cmd_line_ptr >> 32
constexpr size_t kAltMemK = 0x1e0;          // u32
constexpr size_t kScratch = 0x1e4;          // u32: the decompressor's first stack word
constexpr size_t kE820Entries = 0x1e8;      // u8
constexpr size_t kSentinel = 0x1ef;         // u8: must stay 0 (a loader that copied too much leaves 0xff)
constexpr size_t kSetupHeader = 0x1f1;      // struct setup_header, copied from the image
constexpr size_t kEddMbrSigBuffer = 0x290;  // first field after the setup header's room
constexpr size_t kE820Table = 0x2d0;        // struct boot_e820_entry[128]
constexpr size_t kE820EntrySize = 20;       // u64 addr, u64 size, u32 type, packed
constexpr size_t kE820MaxEntries = 128;     // E820_MAX_ENTRIES_ZEROPAGE
constexpr size_t kPad8 = 0xcd0;             // first byte after the e820 table

static_assert(kSetupHeader == setup_header::kStart, "the setup header sits at the same offset in both");
static_assert(setup_header::kMaxEnd <= kEddMbrSigBuffer, "the longest setup header fits boot_params' hole");
static_assert(kE820Table + kE820MaxEntries * kE820EntrySize == kPad8, "e820_table is 128 20-byte entries");
static_assert(kPad8 + 48 + 6 * 82 + 276 == kZeroPageSize, "boot_params is 4096 bytes (_pad8, eddbuf, _pad9)");
} // namespace boot_params

// Values this loader writes into the setup header (boot.rst, "Details of Header Fields").
constexpr uint8_t kTypeOfLoaderUndefined = 0xff;   // "0xFF = undefined": vlibos has no assigned ID
constexpr uint16_t kVidModeNormal = 0xffff;        // "vga=normal"
constexpr uint32_t kHardwareSubarchPc = 0;         // X86_SUBARCH_PC

// E820 memory types (ACPI "Address Range Types"; Linux's E820_TYPE_*).
enum class E820Type : uint32_t {
    Ram = 1,
    Reserved = 2,
};

struct E820Entry {
    uint64_t base;
    uint64_t size;
    E820Type type;
};

// The most entries build_e820() can produce is 2 + kMaxRamRanges + kMaxReservedRanges + 2; the
// table holds a little more (the zero page could hold 128), small enough to live on a kernel stack.
constexpr size_t kMaxE820Entries = 32;
static_assert(2 + kMaxRamRanges + kMaxReservedRanges + 2 <= kMaxE820Entries, "build_e820 never fills the table");
static_assert(kMaxE820Entries <= boot_params::kE820MaxEntries, "the zero page holds every entry");

// Sorted by address, non-overlapping, adjacent entries of one type merged.
struct E820Table {
    E820Entry entries[kMaxE820Entries];
    size_t count = 0;
};

// Adds [base, base + size). Merges it with neighbours of the same type that it touches; refuses
// an overlap (E820Overlap), a range that wraps (E820Overlap), or one entry too many (E820Full).
// An empty range adds nothing.
Status<LayoutError> e820_add(E820Table& table, uint64_t base, uint64_t size, E820Type type);

// The guest's memory map:
//   RAM       [0, ebda)                  low memory below the EBDA
//   reserved  [ebda, 1 MiB)              EBDA (MP table), the rest of low memory, VGA/ROM hole
//   RAM       each partition RAM range   GPA == HPA
//   reserved  each reserved range        GPA == HPA: the shared regions (not RAM)
//   reserved  the I/O APIC page and the local APIC page
Status<LayoutError> build_e820(const BootLayout& layout, E820Table& out);

// Fills the zero page `page` (kZeroPageSize bytes, all of it overwritten): zeros, then the
// image's setup header [0x1f1, header_end), then what the loader writes: type_of_loader 0xFF,
// loadflags (LOADED_HIGH only: no QUIET, no CAN_USE_HEAP as no real-mode setup code runs,
// KEEP_SEGMENTS and KASLR_FLAG clear), heap_end_ptr 0, vid_mode "normal", code32_start relocated
// (when the kernel lies below 4 GiB), ramdisk and command line pointers (with their ext_ high
// halves), hardware_subarch 0 (PC), setup_data 0, no ACPI RSDP, and the e820 table.
// `image` must be the one `kernel` was parsed from (BufferMismatch otherwise).
Status<LayoutError> write_zero_page(uint8_t* page, size_t size, const uint8_t* image, size_t image_size,
                                    const BzImage& kernel, const BootLayout& layout);

} // namespace vlibos::vmm::linux_boot

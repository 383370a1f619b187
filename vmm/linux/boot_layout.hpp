// Where everything goes when the VMM boots Linux: the protected-mode kernel and the initrd in
// the partition's RAM (guest-physical == host-physical there, so devices can DMA), and the boot
// data (zero page, command line, GDTs, stack, identity page tables, BIOS data area, EBDA with the
// MP table) at fixed offsets in the guest's low memory, guest-physical [0, low_memory_size), which
// is backed by other frames of the partition. docs/linux-guest.md has the picture.
//
// Pure: it decides addresses and checks that everything fits; the writers (low_memory.hpp) and
// the backend do the copying. Every refusal names its numbers (format_layout_error()).
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "lib/result.hpp"
#include "mm/phys_range.hpp"
#include "vmm/linux/bzimage.hpp"
#include "vmm/linux/mp_table.hpp"

namespace vlibos::vmm::linux_boot {

constexpr uint64_t kPageSize = 4096;

// The guest's low memory, guest-physical. Boot data sits at the bottom, away from the pages
// right below the EBDA: Linux's decompressor borrows those for its 32-bit paging trampoline
// (find_trampoline_placement() in arch/x86/boot/compressed/pgtable_64.c) while it still needs
// the zero page and, on the 64-bit entry, the page tables. Linux (5.13+) reserves the whole
// first MiB once it runs; before that it copies the zero page and command line out early.
namespace low_memory {
constexpr uint64_t kBiosDataArea = 0x400;        // page 0: real-mode IVT (zeros) and the BDA
constexpr uint64_t kGdt32 = 0x1000;              // GDT for the 32-bit entry (4 descriptors)
constexpr uint64_t kGdt64 = 0x1020;              // GDT for the 64-bit entry (4 descriptors)
constexpr uint64_t kGdtSize = 32;
constexpr uint64_t kStackBottom = 0x2000;        // 8 KiB boot stack
constexpr uint64_t kStackTop = 0x4000;
constexpr uint64_t kZeroPage = 0x4000;           // struct boot_params, 4 KiB
constexpr uint64_t kCommandLine = 0x5000;        // NUL-terminated, at most 4095 characters
constexpr uint64_t kCommandLineCapacity = 0x1000;
constexpr uint64_t kPageTables = 0x6000;         // identity map for the 64-bit entry
constexpr size_t kMaxPageTablePages = 13;        // PML4 + 3 PDPTs + 9 PDs (see entry.hpp)
constexpr uint64_t kBootDataEnd = kPageTables + kMaxPageTablePages * kPageSize; // 0x13000
// The EBDA is the last page of low memory; the BDA points at it and Linux reserves it.
constexpr uint64_t kEbdaSize = 0x1000;
constexpr uint64_t kMpFloatingPointerOffset = 0x10;  // byte 0 of the EBDA is its size in KiB
// 256 KiB leaves Linux room for its real-mode trampoline (allocated from low RAM, needed to start
// the other CPUs) and the decompressor's; 640 KiB is the PC's conventional memory.
constexpr uint64_t kMinSize = 256 * 1024;
constexpr uint64_t kMaxSize = 640 * 1024;
static_assert(kBootDataEnd <= kMinSize / 2, "boot data must leave most of the smallest low memory free");
} // namespace low_memory

// Partition RAM ranges the layout accepts (the e820 table has room for many more).
constexpr size_t kMaxRamRanges = 16;
// Reserved ranges (shared regions) the layout accepts: one per [shared NAME] region at most
// (config::kMaxShared).
constexpr size_t kMaxReservedRanges = 8;
// Physical addresses above this do not exist on x86-64 (52-bit MAXPHYADDR at most).
constexpr uint64_t kPhysicalLimit = 1ull << 52;
// With 4-level paging an identity map reaches only the lower canonical half.
constexpr uint64_t kIdentityMapLimit = 1ull << 47;

struct LayoutRequest {
    // The partition's RAM the guest gets at GPA == HPA: 4 KiB aligned (2 MiB in practice), above
    // 1 MiB, not overlapping each other or the APIC pages, in any order. Frames that back low
    // memory must not be in here (the guest would see them twice).
    const mm::PhysRange* ram = nullptr;
    size_t ram_count = 0;
    // Memory the guest sees at GPA == HPA that is not its RAM: the shared regions it has with
    // other partitions (docs/rpc.md). Described as e820 reserved, so Linux never allocates from
    // them and a driver maps them itself; the kernel and initrd never go there. Same rules as RAM:
    // 4 KiB aligned, non-empty, below 2^52, above 1 MiB, not overlapping each other, the RAM
    // ranges or the APIC pages, in any order. At most kMaxReservedRanges; none is fine.
    const mm::PhysRange* reserved = nullptr;
    size_t reserved_count = 0;
    uint64_t low_memory_size = low_memory::kMaxSize;
    uint64_t initrd_size = 0;       // 0: no initrd
    uint64_t cmdline_length = 0;    // without the NUL
    MpConfig mp{};                  // processors, I/O APIC; checked here
};

struct BootLayout {
    mm::PhysRange ram[kMaxRamRanges];  // sorted by address
    size_t ram_count;
    mm::PhysRange reserved[kMaxReservedRanges];  // sorted by address; e820 reserved, not RAM
    size_t reserved_count;
    uint64_t low_memory_size;

    // The protected-mode kernel is copied to kernel_load (BzImage::kernel_offset/kernel_size);
    // [kernel_load, kernel_end) is the init_size window the kernel uses before it reads e820.
    // kernel_load is both the load address and the runtime start (boot.rst "init_size"), as it is
    // a multiple of kernel_alignment and at or above pref_address.
    uint64_t kernel_load;
    uint64_t kernel_end;
    uint64_t entry32;           // kernel_load + (code32_start - 1 MiB)
    uint64_t entry64;           // kernel_load + 0x200
    bool entry32_available;     // the window lies below 4 GiB
    bool entry64_available;     // XLF_KERNEL_64, and the window lies below kIdentityMapLimit

    uint64_t initrd;            // 0 if there is none; page aligned
    uint64_t initrd_size;

    uint64_t zero_page;         // low_memory::kZeroPage
    uint64_t cmdline;           // low_memory::kCommandLine
    uint64_t cmdline_length;
    uint64_t page_tables;       // low_memory::kPageTables
    size_t page_table_pages;    // 0 when the 64-bit entry is unavailable
    uint64_t ebda;              // low_memory_size - kEbdaSize
    uint64_t mp_floating_pointer; // ebda + kMpFloatingPointerOffset

    MpConfig mp;
};

enum class LayoutErrorKind : uint8_t {
    None,
    NoRam,
    TooManyRamRanges,      // value: count
    BadRamRange,           // value, limit: the range (empty, not 4 KiB aligned, or past 2^52)
    RamInFirstMegabyte,    // value, limit: the range
    RamRangesOverlap,      // value, limit: the second range
    RamOverlapsApic,       // value, limit: the range; largest: the APIC page
    TooManyReservedRanges, // value: count
    BadReservedRange,      // value, limit: the range (empty, not 4 KiB aligned, past 2^52, or no pointer)
    ReservedInFirstMegabyte, // value, limit: the range
    ReservedRangesOverlap, // value, limit: the second range
    ReservedOverlapsRam,   // value, limit: the reserved range; largest, alignment: the RAM range's base, end
    ReservedOverlapsApic,  // value, limit: the range; largest: the APIC page
    BadLowMemorySize,      // value: the size
    CommandLineTooLong,    // value: length; limit: the longest allowed
    KernelDoesNotFit,      // value: bytes needed; limit: lowest address; alignment; largest: biggest block
    KernelAbove4G,         // value: where it would go (the kernel cannot run above 4 GiB)
    KernelBeyondIdentityMap, // value: the window's end
    InitrdDoesNotFit,      // value: size; limit: initrd_addr_max; largest: biggest free block below it
    MpTable,               // mp: what is wrong with the MP configuration
    EntryUnavailable,      // value: 32 or 64, the entry asked for
    BufferMismatch,        // a writer got a buffer or image that does not match the layout (a VMM bug)
    E820Overlap,           // value, limit: the range that overlaps
    E820Full,
};

struct LayoutError {
    LayoutErrorKind kind = LayoutErrorKind::None;
    uint64_t value = 0;
    uint64_t limit = 0;
    uint64_t largest = 0;
    uint64_t alignment = 0;
    MpError mp{};
};

const char* describe(LayoutErrorKind kind);
// One sentence with the numbers, e.g. "initrd of 40 MiB does not fit below initrd_addr_max
// 0x7fffffff in the partition's RAM (largest free block there: 30 MiB)".
size_t format_layout_error(char* buffer, size_t size, const LayoutError& error);

// Checks the RAM and reserved ranges and copies them, sorted, into the layout; then chooses
// every address (see the rules in boot_layout.cpp and docs/linux-guest.md):
// - kernel: the lowest multiple of kernel_alignment at or above pref_address (and 1 MiB) whose
//   init_size window lies inside one RAM range;
// - initrd: as high as possible, page aligned, inside one RAM range, ending at or below
//   initrd_addr_max + 1 and outside the kernel's window;
// - zero page, command line, GDTs, stack, page tables, BDA and EBDA/MP table: fixed offsets in low
//   memory (namespace low_memory).
Result<BootLayout, LayoutError> plan_layout(const BzImage& kernel, const LayoutRequest& request);

} // namespace vlibos::vmm::linux_boot

// Boot layout: where the kernel, the initrd and the boot data go. See boot_layout.hpp.
#include "vmm/linux/boot_layout.hpp"

#include "config/config.hpp"
#include "lib/format.hpp"
#include "vmm/linux/entry.hpp"

namespace vlibos::vmm::linux_boot {

namespace {

constexpr uint64_t kOneMiB = 1ull << 20;
constexpr uint64_t kFourGiB = 1ull << 32;

unsigned long long ull(uint64_t v) { return static_cast<unsigned long long>(v); }

Failure<LayoutError> refuse(LayoutErrorKind kind, uint64_t value = 0, uint64_t limit = 0, uint64_t largest = 0,
                            uint64_t alignment = 0)
{
    LayoutError e;
    e.kind = kind;
    e.value = value;
    e.limit = limit;
    e.largest = largest;
    e.alignment = alignment;
    return fail(e);
}

// What take_ranges() reports for each kind of bad range.
struct RangeErrors {
    LayoutErrorKind bad;             // empty, not 4 KiB aligned, or past 2^52
    LayoutErrorKind first_megabyte;  // starts in the guest's low memory and legacy hole
    LayoutErrorKind covers_apic;
    LayoutErrorKind overlap;         // two of the ranges overlap
};

// Checks `count` ranges one by one (and with `refused(r)` for what only the caller knows), copies
// them sorted into `out`, then checks them against each other. RAM and reserved ranges obey the
// same rules; only the error kinds differ.
template <class Extra>
Status<LayoutError> take_ranges(const mm::PhysRange* in, size_t count, const LayoutRequest& request,
                                const RangeErrors& errors, mm::PhysRange* out, size_t& out_count, Extra&& refused)
{
    const mm::PhysRange apic_pages[] = {
        mm::PhysRange::from_size(request.mp.ioapic_address, kPageSize),
        mm::PhysRange::from_size(request.mp.local_apic_address, kPageSize),
    };
    out_count = 0;
    for (size_t i = 0; i < count; ++i) {
        mm::PhysRange r = in[i];
        if (r.empty() || !r.is_page_aligned() || r.end > kPhysicalLimit)
            return refuse(errors.bad, r.base, r.end);
        // The first MiB is the guest's low memory and the legacy hole; partition memory never is.
        if (r.base < kOneMiB)
            return refuse(errors.first_megabyte, r.base, r.end);
        for (const mm::PhysRange& apic : apic_pages)
            if (r.overlaps(apic))
                return refuse(errors.covers_apic, r.base, r.end, apic.base);
        TRY(refused(r));
        // Insertion sort: a handful of ranges.
        size_t at = out_count;
        while (at > 0 && out[at - 1].base > r.base) {
            out[at] = out[at - 1];
            --at;
        }
        out[at] = r;
        ++out_count;
    }
    for (size_t i = 1; i < out_count; ++i)
        if (out[i].overlaps(out[i - 1]))
            return refuse(errors.overlap, out[i].base, out[i].end);
    return {};
}

// The RAM ranges, checked one by one and against each other, copied sorted into `out`.
Status<LayoutError> take_ram(const LayoutRequest& request, BootLayout& out)
{
    if (request.ram == nullptr || request.ram_count == 0)
        return refuse(LayoutErrorKind::NoRam);
    if (request.ram_count > kMaxRamRanges)
        return refuse(LayoutErrorKind::TooManyRamRanges, request.ram_count);
    constexpr RangeErrors kRam{LayoutErrorKind::BadRamRange, LayoutErrorKind::RamInFirstMegabyte,
                               LayoutErrorKind::RamOverlapsApic, LayoutErrorKind::RamRangesOverlap};
    return take_ranges(request.ram, request.ram_count, request, kRam, out.ram, out.ram_count,
                       [](const mm::PhysRange&) -> Status<LayoutError> { return {}; });
}

// The reserved ranges (shared regions), checked as RAM is and against the RAM already in `out`,
// copied sorted into `out`. They never take part in placing the kernel or the initrd: those look
// at out.ram only.
Status<LayoutError> take_reserved(const LayoutRequest& request, BootLayout& out)
{
    out.reserved_count = 0;
    if (request.reserved_count == 0)
        return {};
    if (request.reserved_count > kMaxReservedRanges)
        return refuse(LayoutErrorKind::TooManyReservedRanges, request.reserved_count);
    if (request.reserved == nullptr)
        return refuse(LayoutErrorKind::BadReservedRange, 0, 0);
    constexpr RangeErrors kReserved{LayoutErrorKind::BadReservedRange, LayoutErrorKind::ReservedInFirstMegabyte,
                                    LayoutErrorKind::ReservedOverlapsApic, LayoutErrorKind::ReservedRangesOverlap};
    auto clear_of_ram = [&](const mm::PhysRange& r) -> Status<LayoutError> {
        for (size_t j = 0; j < out.ram_count; ++j)
            if (r.overlaps(out.ram[j]))
                return refuse(LayoutErrorKind::ReservedOverlapsRam, r.base, r.end, out.ram[j].base, out.ram[j].end);
        return {};
    };
    return take_ranges(request.reserved, request.reserved_count, request, kReserved, out.reserved,
                       out.reserved_count, clear_of_ram);
}

// The lowest multiple of kernel_alignment at or above pref_address (and 1 MiB) with room for the
// init_size window inside RAM. Adjacent ranges are one block of memory here (GPA == HPA).
//
// Why at or above pref_address: a relocatable kernel loaded lower does not run where it was
// loaded but at LOAD_PHYSICAL_ADDR (== pref_address): arch/x86/boot/compressed/head_64.S
// computes max(align_up(load address, kernel_alignment), LOAD_PHYSICAL_ADDR) as the address it
// decompresses to. Loading at or above it makes the loaded image, the runtime start and the
// init_size window one range the layout controls.
Status<LayoutError> place_kernel(const BzImage& kernel, const mm::RangeSet<kMaxRamRanges>& ram, BootLayout& out)
{
    uint64_t footprint = mm::align_up(kernel.init_size, kPageSize); // >= kernel_size (parse_bzimage)
    uint64_t lowest = kernel.pref_address > kOneMiB ? kernel.pref_address : kOneMiB;
    uint64_t alignment = kernel.kernel_alignment;
    uint64_t largest = 0;
    for (const mm::PhysRange& r : ram) {
        if (r.end <= lowest)
            continue;
        uint64_t start = mm::align_up(r.base > lowest ? r.base : lowest, alignment);
        if (start >= r.end)
            continue;
        uint64_t room = r.end - start;
        if (room > largest)
            largest = room;
        if (room >= footprint) {
            out.kernel_load = start;
            out.kernel_end = start + footprint;
            return {};
        }
    }
    return refuse(LayoutErrorKind::KernelDoesNotFit, footprint, lowest, largest, alignment);
}

Status<LayoutError> choose_entries(const BzImage& kernel, BootLayout& out)
{
    out.entry32 = out.kernel_load + (kernel.code32_start - kDefaultLoadAddress);
    out.entry64 = out.kernel_load + kEntry64Offset;
    // The 32-bit entry runs with paging off, so it reaches only the first 4 GiB.
    out.entry32_available = out.kernel_end <= kFourGiB;
    out.entry64_available = kernel.has_entry64() && out.kernel_end <= kIdentityMapLimit;
    if (out.kernel_end > kFourGiB && !(kernel.has_entry64() && kernel.can_load_above_4g()))
        return refuse(LayoutErrorKind::KernelAbove4G, out.kernel_load);
    if (!out.entry32_available && !out.entry64_available)
        return refuse(LayoutErrorKind::KernelBeyondIdentityMap, out.kernel_end);
    out.page_tables = low_memory::kPageTables;
    out.page_table_pages = out.entry64_available ? identity_map_pages(out.kernel_load, out.kernel_end) : 0;
    return {};
}

// As high as possible, so the kernel's early allocations (which go bottom-up from its image) stay
// clear of it; page aligned; its last byte at or below initrd_addr_max (boot.rst
// "initrd_addr_max": "the address of the highest safe byte"); outside the kernel's window.
// XLF_CAN_BE_LOADED_ABOVE_4G would allow more, but initrd_addr_max is what every loader honours.
Status<LayoutError> place_initrd(const BzImage& kernel, const mm::RangeSet<kMaxRamRanges>& ram, uint64_t size,
                                 BootLayout& out)
{
    out.initrd = 0;
    out.initrd_size = size;
    if (size == 0)
        return {};
    uint64_t limit_end = mm::align_down(uint64_t{kernel.initrd_addr_max} + 1, kPageSize);
    // The free memory: RAM minus the kernel's window (at most one more range than RAM has).
    mm::RangeSet<kMaxRamRanges + 1> free;
    for (const mm::PhysRange& r : ram)
        (void)free.add(r); // cannot be full: ram has at most kMaxRamRanges ranges
    (void)free.remove(mm::PhysRange{out.kernel_load, out.kernel_end}); // splits at most one range

    uint64_t needed = size < kPhysicalLimit ? mm::align_up(size, kPageSize) : kPhysicalLimit;
    uint64_t largest = 0;
    bool found = false;
    uint64_t best = 0;
    for (const mm::PhysRange& r : free) {
        uint64_t end = r.end < limit_end ? r.end : limit_end;
        if (end <= r.base)
            continue;
        uint64_t room = end - r.base;
        if (room > largest)
            largest = room;
        if (room >= needed && end - needed >= best) {
            best = end - needed;
            found = true;
        }
    }
    if (!found)
        return refuse(LayoutErrorKind::InitrdDoesNotFit, size, kernel.initrd_addr_max, largest);
    out.initrd = best;
    return {};
}

} // namespace

const char* describe(LayoutErrorKind kind)
{
    switch (kind) {
    case LayoutErrorKind::None: return "no error";
    case LayoutErrorKind::NoRam: return "the Linux VM has no RAM";
    case LayoutErrorKind::TooManyRamRanges: return "the Linux VM's RAM comes in too many ranges";
    case LayoutErrorKind::BadRamRange: return "a RAM range of the Linux VM is empty, not 4 KiB aligned, or beyond the physical address limit";
    case LayoutErrorKind::RamInFirstMegabyte: return "a RAM range of the Linux VM lies in the first MiB, which is the guest's low memory";
    case LayoutErrorKind::RamRangesOverlap: return "two RAM ranges of the Linux VM overlap";
    case LayoutErrorKind::RamOverlapsApic: return "a RAM range of the Linux VM covers an APIC's registers";
    case LayoutErrorKind::TooManyReservedRanges: return "the Linux VM has too many reserved (shared) ranges";
    case LayoutErrorKind::BadReservedRange: return "a reserved (shared) range of the Linux VM is empty, not 4 KiB aligned, or beyond the physical address limit";
    case LayoutErrorKind::ReservedInFirstMegabyte: return "a reserved (shared) range of the Linux VM lies in the first MiB, which is the guest's low memory";
    case LayoutErrorKind::ReservedRangesOverlap: return "two reserved (shared) ranges of the Linux VM overlap";
    case LayoutErrorKind::ReservedOverlapsRam: return "a reserved (shared) range of the Linux VM overlaps its RAM";
    case LayoutErrorKind::ReservedOverlapsApic: return "a reserved (shared) range of the Linux VM covers an APIC's registers";
    case LayoutErrorKind::BadLowMemorySize: return "the guest's low memory must be a multiple of 4 KiB between 256 KiB and 640 KiB";
    case LayoutErrorKind::CommandLineTooLong: return "the Linux command line is too long";
    case LayoutErrorKind::KernelDoesNotFit: return "the kernel's init_size window does not fit in the partition's RAM at or above pref_address";
    case LayoutErrorKind::KernelAbove4G: return "the kernel would have to go above 4 GiB, and it cannot be loaded there";
    case LayoutErrorKind::KernelBeyondIdentityMap: return "the kernel would lie above 128 TiB, beyond what an identity map reaches";
    case LayoutErrorKind::InitrdDoesNotFit: return "the initrd does not fit below initrd_addr_max in the partition's RAM";
    case LayoutErrorKind::MpTable: return "the MP table configuration is invalid";
    case LayoutErrorKind::EntryUnavailable: return "the kernel cannot be entered that way";
    case LayoutErrorKind::BufferMismatch: return "a boot writer got a buffer or image that does not match the layout";
    case LayoutErrorKind::E820Overlap: return "two e820 ranges overlap";
    case LayoutErrorKind::E820Full: return "the e820 table is full";
    }
    return "unknown boot layout error";
}

size_t format_layout_error(char* buffer, size_t size, const LayoutError& e)
{
    switch (e.kind) {
    case LayoutErrorKind::TooManyRamRanges:
        return format(buffer, size, "the Linux VM's RAM comes in %llu ranges, at most %llu are supported",
                      ull(e.value), ull(kMaxRamRanges));
    case LayoutErrorKind::BadRamRange:
        return format(buffer, size,
                      "RAM range 0x%llx-0x%llx of the Linux VM is empty, not 4 KiB aligned, or beyond the 52-bit "
                      "physical address limit",
                      ull(e.value), ull(e.limit));
    case LayoutErrorKind::RamInFirstMegabyte:
        return format(buffer, size,
                      "RAM range 0x%llx-0x%llx of the Linux VM starts in the first MiB, which is the guest's low "
                      "memory and legacy hole",
                      ull(e.value), ull(e.limit));
    case LayoutErrorKind::RamRangesOverlap:
        return format(buffer, size, "RAM range 0x%llx-0x%llx of the Linux VM overlaps another one", ull(e.value),
                      ull(e.limit));
    case LayoutErrorKind::RamOverlapsApic:
        return format(buffer, size,
                      "RAM range 0x%llx-0x%llx of the Linux VM covers the APIC registers at 0x%llx", ull(e.value),
                      ull(e.limit), ull(e.largest));
    case LayoutErrorKind::TooManyReservedRanges:
        return format(buffer, size, "the Linux VM has %llu reserved (shared) ranges, at most %llu are supported",
                      ull(e.value), ull(kMaxReservedRanges));
    case LayoutErrorKind::BadReservedRange:
        return format(buffer, size,
                      "reserved (shared) range 0x%llx-0x%llx of the Linux VM is empty, not 4 KiB aligned, or beyond "
                      "the 52-bit physical address limit",
                      ull(e.value), ull(e.limit));
    case LayoutErrorKind::ReservedInFirstMegabyte:
        return format(buffer, size,
                      "reserved (shared) range 0x%llx-0x%llx of the Linux VM starts in the first MiB, which is the "
                      "guest's low memory and legacy hole",
                      ull(e.value), ull(e.limit));
    case LayoutErrorKind::ReservedRangesOverlap:
        return format(buffer, size, "reserved (shared) range 0x%llx-0x%llx of the Linux VM overlaps another one",
                      ull(e.value), ull(e.limit));
    case LayoutErrorKind::ReservedOverlapsRam:
        return format(buffer, size,
                      "reserved (shared) range 0x%llx-0x%llx of the Linux VM overlaps its RAM range 0x%llx-0x%llx",
                      ull(e.value), ull(e.limit), ull(e.largest), ull(e.alignment));
    case LayoutErrorKind::ReservedOverlapsApic:
        return format(buffer, size,
                      "reserved (shared) range 0x%llx-0x%llx of the Linux VM covers the APIC registers at 0x%llx",
                      ull(e.value), ull(e.limit), ull(e.largest));
    case LayoutErrorKind::BadLowMemorySize:
        return format(buffer, size,
                      "the guest's low memory is %llu bytes; it must be a multiple of 4 KiB between 256 KiB and "
                      "640 KiB",
                      ull(e.value));
    case LayoutErrorKind::CommandLineTooLong:
        return format(buffer, size,
                      "the Linux command line is %llu characters; this kernel and vlibos accept at most %llu",
                      ull(e.value), ull(e.limit));
    case LayoutErrorKind::KernelDoesNotFit:
        return format(buffer, size,
                      "the kernel needs %s (init_size) at a multiple of 0x%llx (kernel_alignment) at or above "
                      "0x%llx (pref_address), and the partition's RAM has no such block (largest: %s)",
                      config::size_text(e.value).text, ull(e.alignment), ull(e.limit),
                      config::size_text(e.largest).text);
    case LayoutErrorKind::KernelAbove4G:
        return format(buffer, size,
                      "the only place for the kernel is 0x%llx, above 4 GiB, and this kernel cannot be loaded there "
                      "(it needs XLF_KERNEL_64 and XLF_CAN_BE_LOADED_ABOVE_4G)",
                      ull(e.value));
    case LayoutErrorKind::KernelBeyondIdentityMap:
        return format(buffer, size,
                      "the kernel would end at 0x%llx, beyond the 128 TiB an identity map reaches with 4-level paging",
                      ull(e.value));
    case LayoutErrorKind::InitrdDoesNotFit:
        return format(buffer, size,
                      "initrd of %s does not fit below initrd_addr_max 0x%llx in the partition's RAM (largest free "
                      "block there: %s)",
                      config::size_text(e.value).text, ull(e.limit), config::size_text(e.largest).text);
    case LayoutErrorKind::MpTable: {
        char detail[160];
        format_mp_error(detail, sizeof detail, e.mp);
        return format(buffer, size, "MP table: %s", detail);
    }
    case LayoutErrorKind::EntryUnavailable:
        return e.value == 32 ? format(buffer, size,
                                      "the kernel cannot be entered through the 32-bit boot protocol: it lies above 4 GiB")
                             : format(buffer, size,
                                      "the kernel cannot be entered through the 64-bit boot protocol: it has no 64-bit "
                                      "entry (XLF_KERNEL_64) or lies beyond the identity map");
    case LayoutErrorKind::E820Overlap:
        return format(buffer, size, "e820 range 0x%llx-0x%llx overlaps another one", ull(e.value), ull(e.limit));
    case LayoutErrorKind::None:
    case LayoutErrorKind::NoRam:
    case LayoutErrorKind::BufferMismatch:
    case LayoutErrorKind::E820Full:
        break;
    }
    return format(buffer, size, "%s", describe(e.kind));
}

Result<BootLayout, LayoutError> plan_layout(const BzImage& kernel, const LayoutRequest& request)
{
    BootLayout out{};
    TRY(take_ram(request, out));
    TRY(take_reserved(request, out));

    Status<MpError> mp = check_mp_config(request.mp);
    if (!mp) {
        LayoutError e;
        e.kind = LayoutErrorKind::MpTable;
        e.mp = mp.error();
        return fail(e);
    }
    out.mp = request.mp;

    uint64_t low = request.low_memory_size;
    if (low % kPageSize != 0 || low < low_memory::kMinSize || low > low_memory::kMaxSize)
        return refuse(LayoutErrorKind::BadLowMemorySize, low);
    out.low_memory_size = low;
    out.ebda = low - low_memory::kEbdaSize;
    out.mp_floating_pointer = out.ebda + low_memory::kMpFloatingPointerOffset;

    // boot.rst "cmdline_size": the most characters, without the terminating zero.
    uint64_t longest = low_memory::kCommandLineCapacity - 1;
    if (kernel.cmdline_size < longest)
        longest = kernel.cmdline_size;
    if (request.cmdline_length > longest)
        return refuse(LayoutErrorKind::CommandLineTooLong, request.cmdline_length, longest);
    out.zero_page = low_memory::kZeroPage;
    out.cmdline = low_memory::kCommandLine;
    out.cmdline_length = request.cmdline_length;

    mm::RangeSet<kMaxRamRanges> ram;
    for (size_t i = 0; i < out.ram_count; ++i)
        (void)ram.add(out.ram[i]); // at most kMaxRamRanges disjoint ranges: never full
    TRY(place_kernel(kernel, ram, out));
    TRY(choose_entries(kernel, out));
    TRY(place_initrd(kernel, ram, request.initrd_size, out));
    return out;
}

} // namespace vlibos::vmm::linux_boot

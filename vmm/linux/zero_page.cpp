// Zero page and e820 map. See zero_page.hpp.
#include "vmm/linux/zero_page.hpp"

#include "lib/bytes.hpp"
#include "vmm/linux/store.hpp"

#include <string.h>

namespace vlibos::vmm::linux_boot {

namespace {

constexpr uint64_t kOneMiB = 1ull << 20;
constexpr uint64_t kFourGiB = 1ull << 32;

Failure<LayoutError> refuse(LayoutErrorKind kind, uint64_t value = 0, uint64_t limit = 0)
{
    LayoutError e;
    e.kind = kind;
    e.value = value;
    e.limit = limit;
    return fail(e);
}

constexpr uint32_t low32(uint64_t v) { return static_cast<uint32_t>(v); }
constexpr uint32_t high32(uint64_t v) { return static_cast<uint32_t>(v >> 32); }

constexpr uint64_t end_of(const E820Entry& e) { return e.base + e.size; }

} // namespace

Status<LayoutError> e820_add(E820Table& table, uint64_t base, uint64_t size, E820Type type)
{
    if (size == 0)
        return {};
    if (size > UINT64_MAX - base)
        return refuse(LayoutErrorKind::E820Overlap, base, UINT64_MAX);
    uint64_t end = base + size;
    size_t at = 0;
    while (at < table.count && table.entries[at].base < base)
        ++at;
    E820Entry* before = at > 0 ? &table.entries[at - 1] : nullptr;
    E820Entry* after = at < table.count ? &table.entries[at] : nullptr;
    if ((before != nullptr && end_of(*before) > base) || (after != nullptr && after->base < end))
        return refuse(LayoutErrorKind::E820Overlap, base, end);

    bool join_before = before != nullptr && end_of(*before) == base && before->type == type;
    bool join_after = after != nullptr && after->base == end && after->type == type;
    if (join_before && join_after) {
        before->size += size + after->size;
        for (size_t i = at; i + 1 < table.count; ++i)
            table.entries[i] = table.entries[i + 1];
        --table.count;
    } else if (join_before) {
        before->size += size;
    } else if (join_after) {
        after->base = base;
        after->size += size;
    } else {
        if (table.count == kMaxE820Entries)
            return refuse(LayoutErrorKind::E820Full);
        for (size_t i = table.count; i > at; --i)
            table.entries[i] = table.entries[i - 1];
        table.entries[at] = E820Entry{base, size, type};
        ++table.count;
    }
    return {};
}

Status<LayoutError> build_e820(const BootLayout& layout, E820Table& out)
{
    out.count = 0;
    // Low memory below the EBDA is RAM Linux may use once it has read its boot data (it keeps the
    // first 64 KiB, and from 5.13 the whole first MiB, to itself anyway). The EBDA and everything
    // up to 1 MiB is reserved, as a PC BIOS reports it (and Linux reserves it again from the BDA).
    TRY(e820_add(out, 0, layout.ebda, E820Type::Ram));
    TRY(e820_add(out, layout.ebda, kOneMiB - layout.ebda, E820Type::Reserved));
    for (size_t i = 0; i < layout.ram_count; ++i)
        TRY(e820_add(out, layout.ram[i].base, layout.ram[i].size(), E820Type::Ram));
    // Shared regions: mapped, but not RAM. Linux never allocates from them; a driver maps them.
    for (size_t i = 0; i < layout.reserved_count; ++i)
        TRY(e820_add(out, layout.reserved[i].base, layout.reserved[i].size(), E820Type::Reserved));
    // The interrupt controllers' register pages, so nothing is ever placed over them.
    TRY(e820_add(out, layout.mp.ioapic_address, kPageSize, E820Type::Reserved));
    TRY(e820_add(out, layout.mp.local_apic_address, kPageSize, E820Type::Reserved));
    return {};
}

Status<LayoutError> write_zero_page(uint8_t* page, size_t size, const uint8_t* image, size_t image_size,
                                    const BzImage& kernel, const BootLayout& layout)
{
    using namespace boot_params;
    namespace sh = setup_header;
    if (page == nullptr || size < kZeroPageSize || image == nullptr || image_size < kernel.header_end ||
        image_size != kernel.kernel_offset + kernel.kernel_size || kernel.header_end > sh::kMaxEnd ||
        read_u32(image + sh::kHeader) != sh::kHeaderMagic)
        return refuse(LayoutErrorKind::BufferMismatch);
    E820Table e820;
    TRY(build_e820(layout, e820));

    // boot.rst "32-bit Boot Protocol": allocate boot_params, zero it, copy the setup header in.
    memset(page, 0, kZeroPageSize);
    memcpy(page + kSetupHeader, image + kSetupHeader, kernel.header_end - kSetupHeader);

    // The loader's fields ("write" and "modify" in boot.rst's field list).
    store_u16(page, sh::kVidMode, kVidModeNormal);
    store_u8(page, sh::kTypeOfLoader, kTypeOfLoaderUndefined);
    store_u8(page, sh::kLoadflags, kLoadedHigh);
    store_u16(page, sh::kHeapEndPtr, 0);
    store_u8(page, sh::kExtLoaderVer, 0);
    store_u8(page, sh::kExtLoaderType, 0);
    // boot.rst "code32_start": a relocated kernel's loader must point it at the loaded code. Only
    // the 32-bit entry reads it, and that one exists only below 4 GiB.
    if (layout.entry32 < kFourGiB && layout.entry32_available)
        store_u32(page, sh::kCode32Start, low32(layout.entry32));
    store_u32(page, sh::kRamdiskImage, low32(layout.initrd));
    store_u32(page, sh::kRamdiskSize, low32(layout.initrd_size));
    store_u32(page, kExtRamdiskImage, high32(layout.initrd));
    store_u32(page, kExtRamdiskSize, high32(layout.initrd_size));
    store_u32(page, sh::kCmdLinePtr, low32(layout.cmdline));
    store_u32(page, kExtCmdLinePtr, high32(layout.cmdline));
    store_u32(page, sh::kHardwareSubarch, kHardwareSubarchPc);
    store_u64(page, sh::kHardwareSubarchData, 0);
    store_u64(page, sh::kSetupData, 0);
    store_u64(page, kAcpiRsdpAddr, 0);
    store_u8(page, kSentinel, 0);

    store_u8(page, kE820Entries, static_cast<uint8_t>(e820.count));
    for (size_t i = 0; i < e820.count; ++i) {
        size_t at = kE820Table + i * kE820EntrySize;
        store_u64(page, at, e820.entries[i].base);
        store_u64(page, at + 8, e820.entries[i].size);
        store_u32(page, at + 16, static_cast<uint32_t>(e820.entries[i].type));
    }
    return {};
}

} // namespace vlibos::vmm::linux_boot

// Writes the Linux guest's low memory. See low_memory.hpp.
#include "vmm/linux/low_memory.hpp"

#include "vmm/linux/entry.hpp"
#include "vmm/linux/mp_table.hpp"
#include "vmm/linux/store.hpp"
#include "vmm/linux/zero_page.hpp"

#include <string.h>

namespace vlibos::vmm::linux_boot {

namespace {

Failure<LayoutError> mismatch()
{
    LayoutError e;
    e.kind = LayoutErrorKind::BufferMismatch;
    return fail(e);
}

Failure<LayoutError> mp_failure(MpError error)
{
    LayoutError e;
    e.kind = LayoutErrorKind::MpTable;
    e.mp = error;
    return fail(e);
}

} // namespace

Status<LayoutError> write_low_memory(uint8_t* low, size_t low_size, const uint8_t* image, size_t image_size,
                                     const BzImage& kernel, const BootLayout& layout, const char* cmdline)
{
    namespace lm = low_memory;
    if (low == nullptr || low_size != layout.low_memory_size || layout.low_memory_size < lm::kMinSize ||
        layout.low_memory_size > lm::kMaxSize || layout.ebda + lm::kEbdaSize != layout.low_memory_size ||
        layout.cmdline_length >= lm::kCommandLineCapacity || (cmdline == nullptr && layout.cmdline_length != 0) ||
        layout.page_table_pages > lm::kMaxPageTablePages)
        return mismatch();

    // A clean slate: no stale "_MP_" for Linux's scan of the first KiB to find, a zero IVT.
    memset(low, 0, low_size);

    Status<MpError> bda = write_bda(low, low_size, layout.ebda);
    if (!bda)
        return mp_failure(bda.error());

    write_gdt(low + lm::kGdt32, EntryMode::Protected32);
    write_gdt(low + lm::kGdt64, EntryMode::Long64);

    TRY(write_zero_page(low + lm::kZeroPage, kZeroPageSize, image, image_size, kernel, layout));

    if (layout.cmdline_length != 0)
        memcpy(low + lm::kCommandLine, cmdline, layout.cmdline_length);
    low[lm::kCommandLine + layout.cmdline_length] = 0;

    if (layout.page_table_pages != 0) {
        if (identity_map_pages(layout.kernel_load, layout.kernel_end) != layout.page_table_pages)
            return mismatch();
        TRY(write_identity_map(low + lm::kPageTables, layout.page_table_pages * kPageSize, lm::kPageTables,
                               layout.kernel_load, layout.kernel_end));
    }

    // The EBDA's first byte is its size in KiB (the BIOS convention); the MP floating pointer
    // follows in the first KiB, where Linux's scan of the EBDA looks.
    uint8_t* ebda = low + layout.ebda;
    store_u8(ebda, 0, static_cast<uint8_t>(lm::kEbdaSize / 1024));
    Result<MpTableInfo, MpError> mp =
        write_mp_table(ebda + lm::kMpFloatingPointerOffset, lm::kEbdaSize - lm::kMpFloatingPointerOffset,
                       layout.mp_floating_pointer, layout.mp);
    if (!mp)
        return mp_failure(mp.error());
    return {};
}

} // namespace vlibos::vmm::linux_boot

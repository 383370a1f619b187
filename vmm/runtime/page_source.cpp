#include "vmm/runtime/page_source.hpp"

#include <string.h>

#include "core/boot.hpp"
#include "lib/spinlock.hpp"

namespace vlibos::vmm {

namespace {
Spinlock g_lock;
MonitorPageSource g_pages;
constexpr uint64_t kBelow4GiB = 1ull << 32;  // VMCS/VMCB and tables stay where the monitor maps them
} // namespace

Result<uint64_t, VmError> MonitorPageSource::allocate_zeroed(size_t pages, size_t align_pages)
{
    Result<uint64_t, mm::FrameError> frames = fail(mm::FrameError::OutOfMemory);
    {
        SpinlockGuard guard(g_lock);
        frames = g_machine.frames.allocate(pages, align_pages, kBelow4GiB);
    }
    if (!frames)
        return fail(VmError::OutOfMemory);
    memset(reinterpret_cast<void*>(frames.value()), 0, pages * mm::PAGE_SIZE);
    return frames.value();
}

MonitorPageSource& monitor_pages() { return g_pages; }

} // namespace vlibos::vmm

// The page-table environment for tables the monitor itself walks: the monitor's own map and
// each RT application's. Tables come from the monitor pool below 4 GiB (APs load CR3 in 32-bit
// mode), and with the identity map a table's physical address is its pointer.
#pragma once

#include <stdint.h>

#include "mm/frame_allocator.hpp"
#include "mm/page_table.hpp"

namespace vlibos {

class KernelTableEnv {
public:
    explicit KernelTableEnv(mm::FrameAllocator& frames) : frames_(frames) {}
    uint64_t* table(uint64_t phys) { return reinterpret_cast<uint64_t*>(phys); }
    Result<uint64_t, mm::PageTableError> allocate_table()
    {
        auto frame = frames_.allocate(1, 1, 1ull << 32);
        if (!frame)
            return fail(mm::PageTableError::OutOfMemory);
        __builtin_memset(reinterpret_cast<void*>(frame.value()), 0, mm::PAGE_SIZE);
        return frame.value();
    }
    void write_entry(uint64_t* entry, uint64_t value) { __atomic_store_n(entry, value, __ATOMIC_RELEASE); }

private:
    mm::FrameAllocator& frames_;
};

} // namespace vlibos

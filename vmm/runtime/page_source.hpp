// Host pages for the virtualisation backends (VMCS/VMCB, bitmaps, nested page tables), taken
// from the monitor pool. Several CPUs may set up VMs at once, so allocation is locked.
#pragma once

#include "vmm/backend.hpp"

namespace vlibos::vmm {

class MonitorPageSource final : public PageSource {
public:
    Result<uint64_t, VmError> allocate_zeroed(size_t pages, size_t align_pages = 1) override;
};

MonitorPageSource& monitor_pages();

} // namespace vlibos::vmm

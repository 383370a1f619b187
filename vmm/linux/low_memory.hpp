// Everything the VMM writes into the Linux guest's low memory before the first vCPU starts, in
// one call: the backend maps guest-physical [0, layout.low_memory_size) to frames of the Linux
// partition, hands their host view to write_low_memory(), copies the protected-mode kernel and
// the initrd to their guest-physical (== host-physical) addresses, and enters through one of the
// plans of entry.hpp.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "lib/result.hpp"
#include "vmm/linux/boot_layout.hpp"
#include "vmm/linux/bzimage.hpp"

namespace vlibos::vmm::linux_boot {

// Zeroes `low` (layout.low_memory_size bytes, the host view of guest-physical 0 onwards), then
// writes, at the offsets of namespace low_memory:
//   0x40e, 0x413   BDA: EBDA segment and base memory size (everything below the EBDA)
//   0x1000         GDT for the 32-bit entry; 0x1020 GDT for the 64-bit entry
//   0x4000         the zero page (struct boot_params with the e820 map)
//   0x5000         the command line, `cmdline` (layout.cmdline_length characters) and a NUL
//   0x6000         the identity page tables, if the 64-bit entry is available
//   ebda           EBDA size in KiB (byte 0), the MP floating pointer (+0x10), the MP table (+0x20)
// `image`/`image_size` is the bzImage `kernel` was parsed from. BufferMismatch if a buffer does
// not match the layout; nothing else can fail once plan_layout() succeeded.
Status<LayoutError> write_low_memory(uint8_t* low, size_t low_size, const uint8_t* image, size_t image_size,
                                     const BzImage& kernel, const BootLayout& layout, const char* cmdline);

} // namespace vlibos::vmm::linux_boot

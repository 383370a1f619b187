// Nested page tables (APM Vol. 2 §15.25): the guest-physical -> host-physical map. NPT uses
// the ordinary long-mode page-table format, so mm::PageTable builds it, with two SVM rules:
//   - every nested access counts as a user access (APM §15.25.5), so every leaf has U/S set
//     (the builder's intermediate entries already do);
//   - NPT cannot express "writable but not readable" or "executable but not readable": a
//     present entry is always readable.
// RAM is write-back (PAT index 0), device registers uncached, 2 MiB and 1 GiB leaves are used wherever guest and
// host addresses are aligned alike. Pure: the unit tests run it against fake memory.
#pragma once

#include <stdint.h>

#include "lib/result.hpp"
#include "mm/page_table.hpp"
#include "vmm/backend.hpp"
#include "vmm/guest_memory.hpp"

namespace vlibos::svm {

// Four-level nested paging translates 48-bit guest-physical addresses.
inline constexpr uint64_t kNptGuestPhysicalLimit = uint64_t{1} << 48;
// mm::PageTable speaks canonical linear addresses: guest-physical addresses at and above 2^47
// are handed to it sign-extended, so a range must not straddle 2^47.
inline constexpr uint64_t kNptUpperHalf = uint64_t{1} << 47;

// The leaf rights for a region, or BadGuestMemory for what NPT cannot express.
inline Result<mm::Permissions, vmm::VmError> npt_permissions(vmm::GuestAccess access)
{
    if (!access.read)
        return fail(vmm::VmError::BadGuestMemory);
    return mm::Permissions{access.write, access.execute, true};
}

// Maps every region of `memory` into the nested table rooted at `root` (an empty PML4).
// `allow_1gb_pages`: CPUID 8000_0001 EDX.Page1GB.
// Returns BadGuestMemory (a region NPT cannot express, or beyond 48 bits) or OutOfMemory.
template <class Env>
Status<vmm::VmError> build_npt(Env& env, uint64_t root, const vmm::GuestMemory& memory, bool allow_1gb_pages)
{
    mm::PageTable<Env> table(env, root);
    for (const vmm::GuestRegion& region : memory) {
        mm::Permissions perms = TRY(npt_permissions(region.access));
        if (region.guest_physical >= kNptGuestPhysicalLimit ||
            region.size > kNptGuestPhysicalLimit - region.guest_physical)
            return fail(vmm::VmError::BadGuestMemory);
        uint64_t gpa = region.guest_physical;
        uint64_t hpa = region.host_physical;
        uint64_t end = region.guest_physical + region.size;
        while (gpa < end) {
            uint64_t piece_end = end;
            if (gpa < kNptUpperHalf && piece_end > kNptUpperHalf)
                piece_end = kNptUpperHalf;
            uint64_t canonical = mm::paging_detail::sign_extend(gpa);
            // Device registers are UC (PCD = PWT = 1): the combined type is then UC whatever the
            // guest's own PAT says (APM Vol. 2 §15.25.8, Table 15-20).
            auto mapped = table.map(canonical, hpa, piece_end - gpa, perms,
                                    region.device ? mm::CacheType::Uncacheable : mm::CacheType::WriteBack, true,
                                    allow_1gb_pages);
            if (!mapped)
                return fail(mapped.error() == mm::PageTableError::OutOfMemory ? vmm::VmError::OutOfMemory
                                                                             : vmm::VmError::BadGuestMemory);
            hpa += piece_end - gpa;
            gpa = piece_end;
        }
    }
    return {};
}

} // namespace vlibos::svm

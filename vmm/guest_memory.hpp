// A VM's guest-physical memory map: which guest-physical ranges exist, which host-physical
// memory backs them, and what the guest may do there. It is built from the partition's own
// memory (and shared regions), validated, and then each backend turns it into EPT (vmx/) or
// NPT (svm/) tables. Nothing outside this map is reachable by the guest.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "lib/result.hpp"

namespace vlibos::vmm {

struct GuestAccess {
    bool read = true;
    bool write = true;
    bool execute = true;
    constexpr bool operator==(const GuestAccess&) const = default;
};

struct GuestRegion {
    uint64_t guest_physical;
    uint64_t host_physical;
    uint64_t size;
    GuestAccess access;
    // Device registers (a PCI BAR passed through), not RAM: mapped uncached, and the host range
    // is checked by the caller against the device, not against the RAM ownership ledger.
    bool device = false;
};

enum class GuestMemoryError : uint8_t {
    Empty,          // size 0
    Unaligned,      // guest, host or size not 4 KiB aligned
    Wraps,          // guest or host range passes 2^64 or the 52-bit physical limit
    Overlap,        // two regions share a guest-physical page
    NotOwned,       // the host memory is not the VM's (checked by the caller's predicate)
    Full,           // too many regions
    NotMapped,      // translate(): the address is in no region
    NoAccess,       // a region the guest may neither read, write nor execute
};

const char* describe(GuestMemoryError error);

class GuestMemory {
public:
    static constexpr size_t kMaxRegions = 16;
    static constexpr uint64_t kPhysicalLimit = 1ull << 52;

    // Adds a region. `host_is_allowed(hpa, size)` must say yes for the host range: the caller
    // passes a check against the ownership ledger so a VM can only ever map what its partition owns.
    template <class HostCheck>
    Status<GuestMemoryError> add(const GuestRegion& region, HostCheck&& host_is_allowed)
    {
        TRY(validate(region));
        if (!host_is_allowed(region.host_physical, region.size))
            return fail(GuestMemoryError::NotOwned);
        return insert(region);
    }

    struct Translation {
        uint64_t host_physical;
        GuestAccess access;
        uint64_t bytes_left_in_region;  // from guest_physical to the end of its region
    };
    Result<Translation, GuestMemoryError> translate(uint64_t guest_physical) const;

    size_t count() const { return count_; }
    const GuestRegion& operator[](size_t i) const { return regions_[i]; }
    const GuestRegion* begin() const { return regions_; }
    const GuestRegion* end() const { return regions_ + count_; }

private:
    Status<GuestMemoryError> validate(const GuestRegion& region) const;
    Status<GuestMemoryError> insert(const GuestRegion& region);

    GuestRegion regions_[kMaxRegions] = {};  // sorted by guest_physical
    size_t count_ = 0;
};

} // namespace vlibos::vmm

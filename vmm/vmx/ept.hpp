// Extended page tables: the guest-physical -> host-physical map of a VMX guest (SDM Vol. 3
// §29.3; Tables 29-1 to 29-6 for the entry formats, §25.6.11 for the EPT pointer). Pure and
// templated on an environment, like mm/page_table.hpp:
//
//   struct Env {
//       uint64_t* table(uint64_t phys);                  // the 512-entry table at `phys`
//       Result<uint64_t, EptError> allocate_table();     // phys of a zeroed 4 KiB table
//   };
//
// EPT entries are not x86 page-table entries: bits 0-2 are read/write/execute (no present bit,
// no user bit, no NX), leaves carry a memory type in bits 5:3, and "write without read" is a
// misconfiguration rather than a permission.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "lib/result.hpp"
#include "vmm/guest_memory.hpp"

namespace vlibos::vmm::vmx {

enum class EptError : uint8_t {
    Empty,                    // size 0
    Unaligned,                // guest, host or size not 4 KiB aligned
    TooHigh,                  // beyond the 48 bits a 4-level walk translates, or the 52-bit host limit
    WriteWithoutRead,         // EPT cannot express it (§29.3.3.1: an EPT misconfiguration)
    ExecuteOnlyUnsupported,   // execute-only needs IA32_VMX_EPT_VPID_CAP bit 0
    NoAccess,                 // neither read, write nor execute
    AlreadyMapped,
    OutOfMemory,
    NotMapped,                // translate(): nothing there
};

constexpr const char* describe(EptError error)
{
    switch (error) {
    case EptError::Empty: return "the EPT mapping is empty";
    case EptError::Unaligned: return "the EPT mapping is not 4 KiB aligned";
    case EptError::TooHigh: return "the EPT mapping lies beyond the 48-bit guest-physical or 52-bit host-physical limit";
    case EptError::WriteWithoutRead: return "EPT cannot map a page writable but not readable";
    case EptError::ExecuteOnlyUnsupported: return "this CPU's EPT cannot map execute-only pages";
    case EptError::NoAccess: return "the EPT mapping allows no access";
    case EptError::AlreadyMapped: return "a guest-physical page is mapped twice";
    case EptError::OutOfMemory: return "no memory for EPT tables";
    case EptError::NotMapped: return "the guest-physical address is not mapped";
    }
    return "unknown EPT error";
}

// EPT paging-structure entry bits (Tables 29-1 to 29-6).
namespace ept {
inline constexpr uint64_t READ = uint64_t{1} << 0;
inline constexpr uint64_t WRITE = uint64_t{1} << 1;
inline constexpr uint64_t EXECUTE = uint64_t{1} << 2;  // supervisor-mode execute
inline constexpr uint64_t RWX = READ | WRITE | EXECUTE;
inline constexpr unsigned MEMORY_TYPE_SHIFT = 3;         // leaves only, bits 5:3
inline constexpr uint64_t MEMORY_TYPE_MASK = uint64_t{7} << MEMORY_TYPE_SHIFT;
inline constexpr uint64_t IGNORE_PAT = uint64_t{1} << 6;
inline constexpr uint64_t LARGE = uint64_t{1} << 7;      // PDPTE maps 1 GiB, PDE maps 2 MiB
inline constexpr uint64_t ACCESSED = uint64_t{1} << 8;
inline constexpr uint64_t DIRTY = uint64_t{1} << 9;
inline constexpr uint64_t ADDRESS_MASK = 0x000F'FFFF'FFFF'F000;

// Memory types (SDM Vol. 3 §13.3 / §29.3.7).
inline constexpr uint64_t MEMORY_TYPE_UC = 0;
inline constexpr uint64_t MEMORY_TYPE_WB = 6;
} // namespace ept

// EPT pointer (§25.6.11, Table 25-9).
namespace eptp {
inline constexpr uint64_t MEMORY_TYPE_WB = 6;           // bits 2:0: type used to walk the tables
inline constexpr unsigned WALK_LENGTH_SHIFT = 3;        // bits 5:3: page-walk length minus 1
inline constexpr uint64_t WALK_LENGTH_4 = uint64_t{4 - 1} << WALK_LENGTH_SHIFT;
inline constexpr uint64_t ACCESSED_DIRTY = uint64_t{1} << 6;
} // namespace eptp

constexpr uint64_t make_eptp(uint64_t pml4_phys) { return pml4_phys | eptp::WALK_LENGTH_4 | eptp::MEMORY_TYPE_WB; }

// Which leaf sizes and rights this CPU supports (IA32_VMX_EPT_VPID_CAP, Appendix A.10).
struct EptCapabilities {
    bool page_2m = true;
    bool page_1g = true;
    bool execute_only = true;
};

inline constexpr size_t EPT_ENTRIES = 512;
inline constexpr unsigned EPT_TOP_LEVEL = 3;                 // PML4; 2 = PDPT, 1 = PD, 0 = PT
inline constexpr uint64_t EPT_GUEST_LIMIT = uint64_t{1} << 48;
inline constexpr uint64_t EPT_HOST_LIMIT = uint64_t{1} << 52;
inline constexpr uint64_t EPT_PAGE = 4096;

namespace ept_detail {
constexpr unsigned shift_of(unsigned level) { return 12 + 9 * level; }
constexpr uint64_t span_of(unsigned level) { return uint64_t{1} << shift_of(level); }
constexpr size_t index_of(uint64_t gpa, unsigned level) { return (gpa >> shift_of(level)) % EPT_ENTRIES; }
constexpr bool present(uint64_t entry) { return (entry & ept::RWX) != 0; }
constexpr bool is_leaf(uint64_t entry, unsigned level) { return level == 0 || (entry & ept::LARGE) != 0; }
} // namespace ept_detail

constexpr uint64_t ept_rights(GuestAccess access)
{
    return (access.read ? ept::READ : 0) | (access.write ? ept::WRITE : 0) | (access.execute ? ept::EXECUTE : 0);
}

// A leaf at `level` (0 = 4 KiB, 1 = 2 MiB, 2 = 1 GiB). RAM is write-back and the guest's PAT
// still refines it (IGNORE_PAT clear), as on bare metal. Device registers (`uncached`) are UC
// whatever the guest's PAT says (IGNORE_PAT set, §29.3.7.2): a cached BAR would lose writes.
constexpr uint64_t make_ept_leaf(uint64_t hpa, unsigned level, GuestAccess access, bool uncached = false)
{
    uint64_t type = uncached ? (ept::MEMORY_TYPE_UC << ept::MEMORY_TYPE_SHIFT) | ept::IGNORE_PAT
                             : ept::MEMORY_TYPE_WB << ept::MEMORY_TYPE_SHIFT;
    return hpa | ept_rights(access) | type | (level > 0 ? ept::LARGE : 0);
}

// Non-leaf entries allow everything; the leaf decides (the walk takes the intersection, §29.3.3.2).
constexpr uint64_t make_ept_link(uint64_t table_phys) { return table_phys | ept::RWX; }

// The largest leaf level usable at (gpa, hpa) with `remaining` bytes left: both addresses and the
// remaining size must cover the whole page, and the CPU must support the size.
constexpr unsigned ept_leaf_level(uint64_t gpa, uint64_t hpa, uint64_t remaining, EptCapabilities caps)
{
    for (unsigned level = 2; level > 0; --level) {
        uint64_t span = ept_detail::span_of(level);
        bool supported = level == 2 ? caps.page_1g : caps.page_2m;
        if (supported && ((gpa | hpa) & (span - 1)) == 0 && remaining >= span)
            return level;
    }
    return 0;
}

// Checks an access set against what EPT can express on this CPU.
constexpr Status<EptError> check_access(GuestAccess access, EptCapabilities caps)
{
    if (!access.read && !access.write && !access.execute)
        return fail(EptError::NoAccess);
    if (access.write && !access.read)
        return fail(EptError::WriteWithoutRead);
    if (access.execute && !access.read && !caps.execute_only)
        return fail(EptError::ExecuteOnlyUnsupported);
    return {};
}

template <class Env>
class Ept {
public:
    struct Translation {
        uint64_t hpa = 0;
        GuestAccess access{false, false, false};
        uint64_t page_size = 0;
        uint64_t entry = 0;
    };

    Ept(Env& env, uint64_t root_phys, EptCapabilities caps) : env_(env), root_(root_phys), caps_(caps) {}

    uint64_t root() const { return root_; }
    uint64_t eptp() const { return make_eptp(root_); }

    // Maps [gpa, gpa + size) to [hpa, hpa + size) with the largest pages alignment allows.
    // Returns Empty, Unaligned, TooHigh, NoAccess, WriteWithoutRead, ExecuteOnlyUnsupported,
    // AlreadyMapped (part of the range is mapped; leaves before it may have been written) or
    // OutOfMemory.
    Status<EptError> map(uint64_t gpa, uint64_t hpa, uint64_t size, GuestAccess access, bool uncached = false)
    {
        if (size == 0)
            return fail(EptError::Empty);
        if (((gpa | hpa | size) & (EPT_PAGE - 1)) != 0)
            return fail(EptError::Unaligned);
        if (gpa >= EPT_GUEST_LIMIT || size > EPT_GUEST_LIMIT - gpa || hpa >= EPT_HOST_LIMIT ||
            size > EPT_HOST_LIMIT - hpa)
            return fail(EptError::TooHigh);
        TRY(check_access(access, caps_));
        while (size > 0) {
            unsigned level = ept_leaf_level(gpa, hpa, size, caps_);
            TRY(map_leaf(gpa, hpa, level, access, uncached));
            uint64_t span = ept_detail::span_of(level);
            gpa += span;
            hpa += span;
            size -= span;
        }
        return {};
    }

    // Maps every region of a validated guest memory map.
    Status<EptError> map_all(const GuestMemory& memory)
    {
        for (const GuestRegion& region : memory)
            TRY(map(region.guest_physical, region.host_physical, region.size, region.access, region.device));
        return {};
    }

    Result<Translation, EptError> translate(uint64_t gpa) const
    {
        using namespace ept_detail;
        if (gpa >= EPT_GUEST_LIMIT)
            return fail(EptError::TooHigh);
        uint64_t table_phys = root_;
        for (unsigned level = EPT_TOP_LEVEL;; --level) {
            uint64_t entry = env_.table(table_phys)[index_of(gpa, level)];
            if (!present(entry))
                return fail(EptError::NotMapped);
            if (is_leaf(entry, level)) {
                uint64_t span = span_of(level);
                GuestAccess access{(entry & ept::READ) != 0, (entry & ept::WRITE) != 0, (entry & ept::EXECUTE) != 0};
                return Translation{(entry & ept::ADDRESS_MASK & ~(span - 1)) + (gpa & (span - 1)), access, span, entry};
            }
            table_phys = entry & ept::ADDRESS_MASK;
        }
    }

private:
    Status<EptError> map_leaf(uint64_t gpa, uint64_t hpa, unsigned leaf_level, GuestAccess access, bool uncached)
    {
        using namespace ept_detail;
        uint64_t table_phys = root_;
        for (unsigned level = EPT_TOP_LEVEL; level > leaf_level; --level) {
            uint64_t* slot = env_.table(table_phys) + index_of(gpa, level);
            uint64_t entry = *slot;
            if (!present(entry)) {
                uint64_t next = TRY(env_.allocate_table());
                store(slot, make_ept_link(next));
                table_phys = next;
            } else if (is_leaf(entry, level)) {
                return fail(EptError::AlreadyMapped);
            } else {
                table_phys = entry & ept::ADDRESS_MASK;
            }
        }
        uint64_t* slot = env_.table(table_phys) + index_of(gpa, leaf_level);
        if (present(*slot))
            return fail(EptError::AlreadyMapped);  // a leaf, or a table under a would-be large page
        store(slot, make_ept_leaf(hpa, leaf_level, access, uncached));
        return {};
    }

    // One 64-bit store per entry; release ordering keeps a new table's zeroing ahead of its link.
    static void store(uint64_t* slot, uint64_t value) { __atomic_store_n(slot, value, __ATOMIC_RELEASE); }

    Env& env_;
    uint64_t root_;
    EptCapabilities caps_;
};

} // namespace vlibos::vmm::vmx

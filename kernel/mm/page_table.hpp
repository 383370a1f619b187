// An x86-64 4-level page-table builder (SDM Vol. 3 §4.5, Tables 4-15 to 4-20).
//
// It is templated on an environment so the same code runs in the kernel and in host tests:
//
//   struct Env {
//       uint64_t* table(uint64_t phys);                          // a 512-entry table at `phys`
//       Result<uint64_t, PageTableError> allocate_table();       // phys of a zeroed 4 KiB table
//       void write_entry(uint64_t* entry, uint64_t value);       // optional: observe every store
//   };
//
// Leaves carry the permissions; intermediate entries allow everything (P|RW|US, no XD) because
// the effective rights are the most restrictive along the walk (SDM Vol. 3 §4.6).
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "lib/result.hpp"
#include "mm/phys_range.hpp"

namespace vlibos::mm {

enum class PageTableError : uint8_t {
    Empty,
    Unaligned,
    NonCanonical,
    PhysicalTooHigh,
    AlreadyMapped,
    OutOfMemory,
    NotMapped,
};

const char* describe(PageTableError error);

struct Permissions {
    bool write = false;
    bool execute = false;
    bool user = false;

    constexpr bool operator==(const Permissions&) const = default;
};

// The W^X rule the boot-time audit enforces: no page may be both writable and executable.
constexpr bool writable_and_executable(Permissions perms) { return perms.write && perms.execute; }

enum class CacheType : uint8_t {
    WriteBack,    // PCD = PWT = PAT = 0 selects PAT entry 0, WB after power-on.
    Uncacheable,  // PCD = PWT = 1, PAT = 0 selects PAT entry 3, UC after power-on
                  // (SDM Vol. 3 §11.12.4, Table 11-12; §13.12 in newer editions).
};

// Paging-structure entry bits, named as in SDM Vol. 3 Tables 4-15 to 4-20.
namespace pte {
inline constexpr uint64_t PRESENT = uint64_t{1} << 0;        // P: entry is valid.
inline constexpr uint64_t WRITABLE = uint64_t{1} << 1;       // R/W: writes allowed.
inline constexpr uint64_t USER = uint64_t{1} << 2;           // U/S: CPL 3 may access.
inline constexpr uint64_t WRITE_THROUGH = uint64_t{1} << 3;  // PWT: PAT index bit 0.
inline constexpr uint64_t CACHE_DISABLE = uint64_t{1} << 4;  // PCD: PAT index bit 1.
inline constexpr uint64_t ACCESSED = uint64_t{1} << 5;       // A: set by the CPU.
inline constexpr uint64_t DIRTY = uint64_t{1} << 6;          // D: set by the CPU in leaves.
inline constexpr uint64_t LARGE = uint64_t{1} << 7;          // PS: PDPTE maps 1 GiB, PDE maps 2 MiB
                                                             // (Tables 4-16, 4-18).
inline constexpr uint64_t PAT_4K = uint64_t{1} << 7;         // PAT index bit 2 in a PTE (Table 4-20).
inline constexpr uint64_t PAT_LARGE = uint64_t{1} << 12;     // PAT index bit 2 in a large leaf.
inline constexpr uint64_t NO_EXECUTE = uint64_t{1} << 63;    // XD: needs IA32_EFER.NXE = 1, which the
                                                             // kernel sets; reserved otherwise.
// Bits 51:12 hold the physical address; 52 is the architectural maximum MAXPHYADDR (§4.1.4).
inline constexpr uint64_t ADDRESS_MASK = 0x000F'FFFF'FFFF'F000;
} // namespace pte

inline constexpr uint64_t PHYS_LIMIT = uint64_t{1} << 52;
inline constexpr uint64_t LARGE_PAGE_SIZE = uint64_t{1} << 21;  // 2 MiB, a PDE leaf.
inline constexpr uint64_t HUGE_PAGE_SIZE = uint64_t{1} << 30;   // 1 GiB, a PDPTE leaf.
inline constexpr size_t ENTRIES_PER_TABLE = 512;

// 4-level paging translates 48-bit linear addresses; bits 63:47 must all be equal
// (SDM Vol. 1 §3.3.7.1, Vol. 3 §4.5).
constexpr bool is_canonical(uint64_t va)
{
    return static_cast<uint64_t>(static_cast<int64_t>(va << 16) >> 16) == va;
}

namespace paging_detail {

inline constexpr unsigned TOP_LEVEL = 3;                  // PML4; 2 = PDPT, 1 = PD, 0 = PT.
inline constexpr uint64_t VA_BITS_MASK = (uint64_t{1} << 48) - 1;

constexpr unsigned shift_of(unsigned level) { return 12 + 9 * level; }
constexpr uint64_t span_of(unsigned level) { return uint64_t{1} << shift_of(level); }
constexpr size_t index_of(uint64_t va, unsigned level) { return (va >> shift_of(level)) % ENTRIES_PER_TABLE; }
constexpr uint64_t sign_extend(uint64_t va48) { return static_cast<uint64_t>(static_cast<int64_t>(va48 << 16) >> 16); }
constexpr bool is_leaf(uint64_t entry, unsigned level) { return level == 0 || (entry & pte::LARGE) != 0; }

// The physical address a leaf maps; in large leaves bit 12 is PAT, not address.
constexpr uint64_t leaf_address(uint64_t entry, unsigned level) { return entry & pte::ADDRESS_MASK & ~(span_of(level) - 1); }

constexpr uint64_t make_leaf(uint64_t pa, unsigned level, Permissions perms, CacheType cache)
{
    uint64_t entry = pa | pte::PRESENT;
    if (perms.write)
        entry |= pte::WRITABLE;
    if (perms.user)
        entry |= pte::USER;
    if (!perms.execute)
        entry |= pte::NO_EXECUTE;
    if (cache == CacheType::Uncacheable)
        entry |= pte::CACHE_DISABLE | pte::WRITE_THROUGH;
    if (level > 0)
        entry |= pte::LARGE;
    return entry;
}

// Intermediate entries grant everything; the leaf decides.
constexpr uint64_t make_link(uint64_t table_phys) { return table_phys | pte::PRESENT | pte::WRITABLE | pte::USER; }

// The rights left after passing through `entry` (SDM Vol. 3 §4.6: the walk takes the minimum).
constexpr Permissions effective_after(Permissions perms, uint64_t entry)
{
    return {perms.write && (entry & pte::WRITABLE) != 0, perms.execute && (entry & pte::NO_EXECUTE) == 0,
            perms.user && (entry & pte::USER) != 0};
}

constexpr CacheType cache_of(uint64_t entry)
{
    // We only ever write the two encodings above; anything with PCD set is treated as uncached.
    return (entry & pte::CACHE_DISABLE) != 0 ? CacheType::Uncacheable : CacheType::WriteBack;
}

} // namespace paging_detail

template <class Env>
class PageTable {
public:
    struct Translation {
        uint64_t pa = 0;
        Permissions perms;
        CacheType cache = CacheType::WriteBack;
        uint64_t page_size = 0;
    };

    PageTable(Env& env, uint64_t root_phys) : env_(env), root_(root_phys) {}

    // Allocates an empty PML4 to pass to the constructor.
    static Result<uint64_t, PageTableError> create_root(Env& env) { return env.allocate_table(); }

    uint64_t root() const { return root_; }

    // Maps [va, va + size) to [pa, pa + size), using 1 GiB and 2 MiB pages wherever va, pa and the
    // remaining size allow it and `allow_large` is set, 4 KiB pages elsewhere. `allow_1gb` false
    // stops at 2 MiB pages, for CPUs without 1 GiB page support (CPUID 8000_0001 EDX.Page1GB).
    // Returns PageTableError::Empty (size 0), Unaligned (va, pa or size not 4 KiB aligned),
    // NonCanonical (the range leaves one canonical half), PhysicalTooHigh (beyond 2^52),
    // AlreadyMapped (any page of the range is mapped, also by a large page) or OutOfMemory.
    // On failure no leaf has been written: existing mappings are untouched and nothing of the
    // new range is mapped, though empty intermediate tables may have been linked in.
    Status<PageTableError> map(uint64_t va, uint64_t pa, uint64_t size, Permissions perms,
                               CacheType cache = CacheType::WriteBack, bool allow_large = true,
                               bool allow_1gb = true)
    {
        using namespace paging_detail;
        if (size == 0)
            return fail(PageTableError::Empty);
        if (!is_aligned(va | pa | size, PAGE_SIZE))
            return fail(PageTableError::Unaligned);
        if (size - 1 > UINT64_MAX - va)
            return fail(PageTableError::NonCanonical);
        uint64_t last = va + (size - 1);
        if (!is_canonical(va) || !is_canonical(last) || (va >> 63) != (last >> 63))
            return fail(PageTableError::NonCanonical);
        if (pa >= PHYS_LIMIT || size > PHYS_LIMIT - pa)
            return fail(PageTableError::PhysicalTooHigh);

        // Walk in the 48-bit index space so that the end of the upper half does not wrap to 0.
        uint64_t start = va & VA_BITS_MASK;
        uint64_t end = start + size;
        if (any_present(root_, TOP_LEVEL, start, end))
            return fail(PageTableError::AlreadyMapped);

        // Two passes so that running out of tables never leaves part of the range mapped: the
        // first makes every table the leaves need, the second (which cannot fail) writes them.
        Leaf leaf{perms, cache, allow_large, allow_1gb};
        TRY(populate(root_, TOP_LEVEL, start, end, pa, leaf, false));
        TRY(populate(root_, TOP_LEVEL, start, end, pa, leaf, true));
        return {};
    }

    // Returns where `va` maps to with the effective rights of the whole walk, or
    // PageTableError::NonCanonical or NotMapped.
    Result<Translation, PageTableError> translate(uint64_t va) const
    {
        using namespace paging_detail;
        if (!is_canonical(va))
            return fail(PageTableError::NonCanonical);
        Permissions perms{true, true, true};
        uint64_t table_phys = root_;
        for (unsigned level = TOP_LEVEL;; --level) {
            uint64_t entry = load(env_.table(table_phys) + index_of(va, level));
            if ((entry & pte::PRESENT) == 0)
                return fail(PageTableError::NotMapped);
            perms = effective_after(perms, entry);
            if (is_leaf(entry, level)) {
                uint64_t span = span_of(level);
                return Translation{leaf_address(entry, level) + (va & (span - 1)), perms, cache_of(entry), span};
            }
            table_phys = entry & pte::ADDRESS_MASK;
        }
    }

    // True if any page of [va, va + size) is mapped. Non-canonical parts are never mapped.
    bool is_mapped(uint64_t va, uint64_t size) const
    {
        using namespace paging_detail;
        if (size == 0 || !is_canonical(va))
            return false;
        uint64_t start = va & VA_BITS_MASK;
        uint64_t room = (uint64_t{1} << 48) - start;
        return any_present(root_, TOP_LEVEL, start, start + (size < room ? size : room));
    }

    // Calls f(va, pa, page_size, Permissions) for every present leaf in address order (lower half
    // first); va is canonical and the permissions are the effective ones.
    template <class F>
    void for_each_leaf(F&& f) const
    {
        walk(root_, paging_detail::TOP_LEVEL, 0, Permissions{true, true, true}, f);
    }

private:
    struct Leaf {
        Permissions perms;
        CacheType cache;
        bool allow_large;
        bool allow_1gb;
    };

    static uint64_t load(const uint64_t* entry) { return __atomic_load_n(entry, __ATOMIC_RELAXED); }

    // One 64-bit store per entry, so a concurrent hardware walk sees the old or the new entry,
    // never a mix; release ordering keeps a new table's zeroing ahead of the link to it.
    void store(uint64_t* entry, uint64_t value)
    {
        if constexpr (requires(Env& env, uint64_t* e, uint64_t v) { env.write_entry(e, v); })
            env_.write_entry(entry, value);
        else
            __atomic_store_n(entry, value, __ATOMIC_RELEASE);
    }

    bool any_present(uint64_t table_phys, unsigned level, uint64_t start, uint64_t end) const
    {
        using namespace paging_detail;
        const uint64_t* table = env_.table(table_phys);
        while (start < end) {
            uint64_t slot_end = align_down(start, span_of(level)) + span_of(level);
            uint64_t chunk_end = end < slot_end ? end : slot_end;
            uint64_t entry = load(table + index_of(start, level));
            if ((entry & pte::PRESENT) != 0) {
                if (is_leaf(entry, level))
                    return true;
                if (any_present(entry & pte::ADDRESS_MASK, level - 1, start, chunk_end))
                    return true;
            }
            start = chunk_end;
        }
        return false;
    }

    // Maps [start, end) (48-bit index space) to pa below the table at `table_phys`. With
    // write_leaves false it only creates missing tables; with it true it only writes leaves.
    // Both passes take the same decisions because the first writes no leaf and the range was
    // empty to begin with.
    Status<PageTableError> populate(uint64_t table_phys, unsigned level, uint64_t start, uint64_t end, uint64_t pa,
                                    const Leaf& leaf, bool write_leaves)
    {
        using namespace paging_detail;
        uint64_t* table = env_.table(table_phys);
        while (start < end) {
            uint64_t span = span_of(level);
            uint64_t slot_end = align_down(start, span) + span;
            uint64_t chunk_end = end < slot_end ? end : slot_end;
            uint64_t* slot = table + index_of(start, level);
            uint64_t entry = load(slot);

            // A leaf must cover its whole slot with a suitably aligned frame. A slot that already
            // points to a table (left empty by earlier mappings) is descended into instead.
            bool fills_slot = is_aligned(start, span) && chunk_end == slot_end && is_aligned(pa, span);
            bool level_allowed = level == 0 || (leaf.allow_large && (level == 1 || (level == 2 && leaf.allow_1gb)));
            if ((entry & pte::PRESENT) == 0 && fills_slot && level_allowed) {
                if (write_leaves)
                    store(slot, make_leaf(pa, level, leaf.perms, leaf.cache));
            } else {
                if (level == 0 || ((entry & pte::PRESENT) != 0 && is_leaf(entry, level)))
                    return fail(PageTableError::AlreadyMapped);  // Ruled out by the pre-check.
                uint64_t next = entry & pte::ADDRESS_MASK;
                if ((entry & pte::PRESENT) == 0) {
                    next = TRY(env_.allocate_table());
                    store(slot, make_link(next));
                }
                TRY(populate(next, level - 1, start, chunk_end, pa, leaf, write_leaves));
            }
            pa += chunk_end - start;
            start = chunk_end;
        }
        return {};
    }

    template <class F>
    void walk(uint64_t table_phys, unsigned level, uint64_t base, Permissions inherited, F& f) const
    {
        using namespace paging_detail;
        const uint64_t* table = env_.table(table_phys);
        for (size_t i = 0; i < ENTRIES_PER_TABLE; ++i) {
            uint64_t entry = load(table + i);
            if ((entry & pte::PRESENT) == 0)
                continue;
            uint64_t va = base + (uint64_t{i} << shift_of(level));
            Permissions perms = effective_after(inherited, entry);
            if (is_leaf(entry, level))
                f(sign_extend(va), leaf_address(entry, level), span_of(level), perms);
            else
                walk(entry & pte::ADDRESS_MASK, level - 1, va, perms, f);
        }
    }

    Env& env_;
    uint64_t root_;
};

} // namespace vlibos::mm

// Entry plans, boot GDTs and the 64-bit entry's identity map. See entry.hpp.
#include "vmm/linux/entry.hpp"

#include "vmm/linux/store.hpp"

#include <string.h>

namespace vlibos::vmm::linux_boot {

namespace {

constexpr uint64_t kGiB = 1ull << 30;
constexpr uint64_t kTwoMiB = 1ull << 21;
constexpr uint64_t kFirstGibsMapped = 4;    // [0, 4 GiB)
constexpr size_t kMaxGibs = 9;              // 4 + a window of < 4 GiB touching at most 5 more
constexpr size_t kMaxSlots = 3;             // 512-GiB slots (PDPTs): slot 0 + a window crossing one boundary
static_assert(1 + kMaxSlots + kMaxGibs == low_memory::kMaxPageTablePages, "page table area size");

// Paging-structure entry bits (SDM Vol. 3 §4.5, Tables 4-15 to 4-18).
constexpr uint64_t kPresent = 1ull << 0;
constexpr uint64_t kWritable = 1ull << 1;
constexpr uint64_t kLargePage = 1ull << 7;  // PS: a PDE maps a 2 MiB page

constexpr uint32_t kFlatLimit = 0xffffffff;

// Which GiBs and which 512-GiB slots the identity map covers, both ascending.
struct IdentityPlan {
    uint64_t gibs[kMaxGibs];
    size_t gib_count = 0;
    uint64_t slots[kMaxSlots];
    size_t slot_count = 0;
};

bool add_sorted(uint64_t* items, size_t& count, size_t capacity, uint64_t value)
{
    size_t at = 0;
    while (at < count && items[at] < value)
        ++at;
    if (at < count && items[at] == value)
        return true;
    if (count == capacity)
        return false;
    for (size_t i = count; i > at; --i)
        items[i] = items[i - 1];
    items[at] = value;
    ++count;
    return true;
}

bool plan_identity(uint64_t base, uint64_t end, IdentityPlan& plan)
{
    if (end <= base || end > kIdentityMapLimit)
        return false;
    for (uint64_t g = 0; g < kFirstGibsMapped; ++g)
        (void)add_sorted(plan.gibs, plan.gib_count, kMaxGibs, g);
    for (uint64_t g = base / kGiB; g <= (end - 1) / kGiB; ++g)
        if (!add_sorted(plan.gibs, plan.gib_count, kMaxGibs, g))
            return false;
    for (size_t i = 0; i < plan.gib_count; ++i)
        if (!add_sorted(plan.slots, plan.slot_count, kMaxSlots, plan.gibs[i] / 512))
            return false;
    return true;
}

Failure<LayoutError> mismatch()
{
    LayoutError e;
    e.kind = LayoutErrorKind::BufferMismatch;
    return fail(e);
}

} // namespace

size_t identity_map_pages(uint64_t window_base, uint64_t window_end)
{
    IdentityPlan plan;
    if (!plan_identity(window_base, window_end, plan))
        return 0;
    return 1 + plan.slot_count + plan.gib_count;
}

Status<LayoutError> write_identity_map(uint8_t* buffer, size_t size, uint64_t buffer_gpa, uint64_t window_base,
                                       uint64_t window_end)
{
    IdentityPlan plan;
    if (!plan_identity(window_base, window_end, plan))
        return mismatch();
    size_t pages = 1 + plan.slot_count + plan.gib_count;
    if (buffer == nullptr || size < pages * kPageSize || buffer_gpa % kPageSize != 0 ||
        buffer_gpa > kPhysicalLimit - pages * kPageSize)
        return mismatch();
    memset(buffer, 0, pages * kPageSize);

    uint8_t* pml4 = buffer;
    auto pdpt_index = [&](uint64_t slot) {
        size_t i = 0;
        while (plan.slots[i] != slot)
            ++i;
        return i;
    };
    for (size_t s = 0; s < plan.slot_count; ++s) {
        uint64_t pdpt_gpa = buffer_gpa + (1 + s) * kPageSize;
        store_u64(pml4, plan.slots[s] * 8, pdpt_gpa | kPresent | kWritable);
    }
    for (size_t g = 0; g < plan.gib_count; ++g) {
        uint64_t gib = plan.gibs[g];
        uint8_t* pdpt = buffer + (1 + pdpt_index(gib / 512)) * kPageSize;
        uint64_t pd_gpa = buffer_gpa + (1 + plan.slot_count + g) * kPageSize;
        store_u64(pdpt, (gib % 512) * 8, pd_gpa | kPresent | kWritable);
        uint8_t* pd = buffer + (1 + plan.slot_count + g) * kPageSize;
        for (uint64_t i = 0; i < 512; ++i)
            store_u64(pd, i * 8, (gib * kGiB + i * kTwoMiB) | kPresent | kWritable | kLargePage);
    }
    return {};
}

void write_gdt(uint8_t* out, EntryMode mode)
{
    store_u64(out, 0, 0);
    store_u64(out, 8, 0);
    store_u64(out, kBootCs, mode == EntryMode::Long64 ? kGdtCode64 : kGdtCode32);
    store_u64(out, kBootDs, kGdtData);
}

Result<EntryPlan, LayoutError> plan_entry(const BootLayout& layout, EntryMode mode)
{
    bool long_mode = mode == EntryMode::Long64;
    if (long_mode ? !layout.entry64_available : !layout.entry32_available) {
        LayoutError e;
        e.kind = LayoutErrorKind::EntryUnavailable;
        e.value = long_mode ? 64 : 32;
        return fail(e);
    }
    EntryPlan plan{};
    plan.mode = mode;
    plan.rip = long_mode ? layout.entry64 : layout.entry32;
    plan.rsi = layout.zero_page;
    plan.rsp = low_memory::kStackTop;
    plan.rflags = kRflagsReserved1;
    plan.cr0 = long_mode ? (kCr0Pe | kCr0Et | kCr0Pg) : (kCr0Pe | kCr0Et);
    plan.cr3 = long_mode ? layout.page_tables : 0;
    plan.cr4 = long_mode ? kCr4Pae : 0;
    plan.efer = long_mode ? (kEferLme | kEferLma) : 0;
    plan.gdtr_base = long_mode ? low_memory::kGdt64 : low_memory::kGdt32;
    plan.gdtr_limit = static_cast<uint16_t>(low_memory::kGdtSize - 1);
    plan.cs = SegmentState{kBootCs, 0, kFlatLimit, long_mode ? kAccessCode64 : kAccessCode32};
    plan.ds = SegmentState{kBootDs, 0, kFlatLimit, kAccessData};
    return plan;
}

} // namespace vlibos::vmm::linux_boot

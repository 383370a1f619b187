// The guest page walk and instruction fetch, over a fake guest-physical memory: every paging mode
// and page size, each error with its level, the rights along the walk, and fetches that cross
// a page boundary, wrap at 4 GiB, or run into a page that is missing or not executable.
#include <catch2/catch.hpp>

#include <stdint.h>
#include <string.h>

#include <map>
#include <vector>

#include "vmm/decode/guest_page_walk.hpp"
#include "vmm/decode/mmio_decode.hpp"

using namespace vlibos;
using namespace vlibos::vmm::decode;

namespace {

constexpr uint64_t P = 1, RW = 2, US = 4, PS = 0x80, PAT_LARGE = 0x1000, XD = uint64_t{1} << 63;
constexpr uint64_t kPage = 4096;

// Guest-physical memory made of 4 KiB pages that exist only once written; a read that touches
// any other byte fails, as a read of non-RAM does in the kernel's reader.
class FakeMemory final : public GuestPhysReader {
public:
    bool read(uint64_t gpa, void* out, size_t len) override
    {
        ++reads;
        auto* bytes = static_cast<uint8_t*>(out);
        for (size_t i = 0; i < len; ++i) {
            auto page = pages_.find((gpa + i) & ~(kPage - 1));
            if (page == pages_.end())
                return false;
            bytes[i] = page->second[(gpa + i) & (kPage - 1)];
        }
        return true;
    }

    void add_page(uint64_t gpa) { pages_[gpa & ~(kPage - 1)].resize(kPage); }

    void put(uint64_t gpa, const void* data, size_t len)
    {
        for (size_t i = 0; i < len; ++i) {
            add_page(gpa + i);
            pages_[(gpa + i) & ~(kPage - 1)][(gpa + i) & (kPage - 1)] = static_cast<const uint8_t*>(data)[i];
        }
    }
    void put64(uint64_t gpa, uint64_t v) { put(gpa, &v, 8); }
    void put32(uint64_t gpa, uint32_t v) { put(gpa, &v, 4); }
    uint64_t get64(uint64_t gpa)
    {
        uint64_t v = 0;
        REQUIRE(read(gpa, &v, 8));
        return v;
    }

    int reads = 0;

private:
    std::map<uint64_t, std::vector<uint8_t>> pages_;
};

// Builds PAE, 4-level or 5-level tables in a FakeMemory. Intermediate entries are P|RW|US
// (PAE PDPTEs only P, the rest is reserved there); tests then change single entries via slot().
struct Tables {
    FakeMemory& mem;
    unsigned levels;  // 3 (PAE), 4 or 5
    uint64_t root;
    uint64_t next_frame = 0x0100'0000;

    Tables(FakeMemory& memory, unsigned top, uint64_t root_gpa) : mem(memory), levels(top), root(root_gpa)
    {
        mem.add_page(root);
    }

    bool pae() const { return levels == 3; }
    static unsigned shift(unsigned level) { return 12 + 9 * (level - 1); }

    // The guest-physical address of the entry for `linear` at `level`, creating tables above it.
    uint64_t slot(uint64_t linear, unsigned level)
    {
        uint64_t table = root;
        for (unsigned l = levels; l > level; --l) {
            uint64_t at = table + ((linear >> shift(l)) & 0x1FF) * 8;
            uint64_t entry = mem.get64(at);
            if ((entry & P) == 0) {
                uint64_t frame = next_frame;
                next_frame += kPage;
                mem.add_page(frame);
                entry = frame | ((pae() && l == 3) ? P : P | RW | US);
                mem.put64(at, entry);
            }
            table = entry & 0x000F'FFFF'FFFF'F000;
        }
        return table + ((linear >> shift(level)) & 0x1FF) * 8;
    }

    void map(uint64_t linear, uint64_t gpa, unsigned level = 1, uint64_t flags = P | RW | US)
    {
        mem.put64(slot(linear, level), gpa | flags | (level > 1 ? PS : 0));
    }

    void set(uint64_t linear, unsigned level, uint64_t bits) { mem.put64(slot(linear, level), mem.get64(slot(linear, level)) | bits); }
    void clear(uint64_t linear, unsigned level, uint64_t bits) { mem.put64(slot(linear, level), mem.get64(slot(linear, level)) & ~bits); }
};

constexpr uint64_t CR0 = ctl::CR0_PE | ctl::CR0_PG;

PagingRegisters long_mode(uint64_t cr3, bool la57 = false)
{
    PagingRegisters r;
    r.cr0 = CR0;
    r.cr3 = cr3;
    r.cr4 = ctl::CR4_PAE | (la57 ? ctl::CR4_LA57 : 0);
    r.efer = ctl::EFER_LMA | ctl::EFER_NXE | (uint64_t{1} << 8);  // LME too, as a real guest has it
    return r;
}

PagingRegisters pae_mode(uint64_t cr3, bool nxe = true)
{
    PagingRegisters r;
    r.cr0 = CR0;
    r.cr3 = cr3;
    r.cr4 = ctl::CR4_PAE;
    r.efer = nxe ? ctl::EFER_NXE : 0;
    return r;
}

PagingRegisters mode_32(uint64_t cr3, bool pse = true)
{
    PagingRegisters r;
    r.cr0 = CR0;
    r.cr3 = cr3;
    r.cr4 = pse ? ctl::CR4_PSE : 0;
    return r;
}

GuestTranslation translate_ok(const PagingRegisters& paging, uint64_t linear, FakeMemory& mem)
{
    auto result = translate(paging, linear, mem);
    INFO("error: " << (result.ok() ? "none" : describe(result.error().error)) << " level "
                   << int(result.ok() ? 0 : result.error().level));
    REQUIRE(result.ok());
    return result.value();
}

WalkFault translate_error(const PagingRegisters& paging, uint64_t linear, FakeMemory& mem)
{
    auto result = translate(paging, linear, mem);
    REQUIRE_FALSE(result.ok());
    CHECK(result.error().linear == linear);
    CHECK(describe(result.error().error)[0] != '\0');
    return result.error();
}

void check_fault(const WalkFault& fault, WalkError error, unsigned level)
{
    CHECK(fault.error == error);
    CHECK(int(fault.level) == int(level));
}

void check_rights(const GuestTranslation& t, bool user, bool write, bool execute)
{
    CHECK(t.user == user);
    CHECK(t.write == write);
    CHECK(t.execute == execute);
}

} // namespace

TEST_CASE("page walk: paging modes from CR0, CR4 and EFER", "[decode]")
{
    PagingRegisters r;
    CHECK(paging_mode(r) == PagingMode::Off);
    r.cr0 = ctl::CR0_PE;
    CHECK(paging_mode(r) == PagingMode::Off);
    CHECK(paging_mode(mode_32(0)) == PagingMode::Bits32);
    CHECK(paging_mode(pae_mode(0)) == PagingMode::Pae);
    CHECK(paging_mode(long_mode(0)) == PagingMode::Level4);
    CHECK(paging_mode(long_mode(0, true)) == PagingMode::Level5);
    // LA57 means nothing outside IA-32e mode.
    PagingRegisters pae57 = pae_mode(0);
    pae57.cr4 |= ctl::CR4_LA57;
    CHECK(paging_mode(pae57) == PagingMode::Pae);
    for (PagingMode m : {PagingMode::Off, PagingMode::Bits32, PagingMode::Pae, PagingMode::Level4, PagingMode::Level5})
        CHECK(describe(m)[0] != '\0');
    for (WalkError e : {WalkError::NotPresent, WalkError::ReservedBit, WalkError::ReaderFailed, WalkError::NonCanonical,
                        WalkError::AccessDenied})
        CHECK(describe(e)[0] != '\0');
}

TEST_CASE("page walk: paging off is the identity below 4 GiB", "[decode]")
{
    FakeMemory mem;
    PagingRegisters off;
    off.cr0 = ctl::CR0_PE;
    GuestTranslation t = translate_ok(off, 0xFEE0'00B0, mem);
    CHECK(t.gpa == 0xFEE0'00B0);
    CHECK(t.page_size == kPage);
    check_rights(t, true, true, true);
    CHECK(mem.reads == 0);
    check_fault(translate_error(off, 0x1'0000'0000, mem), WalkError::NonCanonical, 0);
}

TEST_CASE("page walk: 32-bit paging with 4 KiB and 4 MiB pages", "[decode]")
{
    FakeMemory mem;
    const uint64_t pd = 0x1000, pt = 0x2000;
    mem.add_page(pd);
    mem.add_page(pt);
    // 0x00403123: PDE 1, PTE 3.
    mem.put32(pd + 1 * 4, pt | P | RW | US);
    mem.put32(pt + 3 * 4, 0x0ABC'D000 | P | US);
    GuestTranslation t = translate_ok(mode_32(pd), 0x0040'3123, mem);
    CHECK(t.gpa == 0x0ABC'D123);
    CHECK(t.page_size == kPage);
    check_rights(t, true, false, true);
    // The upper CR3 bits and its PCD/PWT are not the address.
    CHECK(translate_ok(mode_32(pd | 0x18), 0x0040'3123, mem).gpa == 0x0ABC'D123);

    // A supervisor PDE makes the whole range supervisor.
    mem.put32(pd + 1 * 4, pt | P | RW);
    check_rights(translate_ok(mode_32(pd), 0x0040'3123, mem), false, false, true);

    // 4 MiB page (CR4.PSE): PDE 2 maps 0x00800000-0x00BFFFFF.
    mem.put32(pd + 2 * 4, 0x00C0'0000 | P | RW | US | PS | PAT_LARGE);
    GuestTranslation big = translate_ok(mode_32(pd), 0x0081'2345, mem);
    CHECK(big.gpa == 0x00C1'2345);
    CHECK(big.page_size == 4 * 1024 * 1024);
    check_rights(big, true, true, true);

    // PSE-36: PDE bits 20:13 are physical bits 39:32.
    mem.put32(pd + 3 * 4, 0x0040'0000 | (0x85u << 13) | P | PS);
    PagingRegisters wide = mode_32(pd);
    wide.max_phys_bits = 40;
    CHECK(translate_ok(wide, 0x00C0'0042, mem).gpa == 0x85'0040'0042);
    // With MAXPHYADDR 36 only bits 16:13 are address; bit 20 (physical bit 39) is reserved.
    PagingRegisters narrow = mode_32(pd);
    narrow.max_phys_bits = 36;
    check_fault(translate_error(narrow, 0x00C0'0042, mem), WalkError::ReservedBit, 2);
    mem.put32(pd + 3 * 4, 0x0040'0000 | (0x5u << 13) | P | PS);
    CHECK(translate_ok(narrow, 0x00C0'0042, mem).gpa == 0x5'0040'0042);
    // Bit 21 is always reserved in a 4 MiB PDE.
    mem.put32(pd + 3 * 4, 0x0040'0000 | (1u << 21) | P | PS);
    check_fault(translate_error(wide, 0x00C0'0042, mem), WalkError::ReservedBit, 2);

    // Without CR4.PSE the PS bit is ignored: the PDE points to a page table.
    mem.put32(pd + 2 * 4, pt | P | RW | US | PS);
    mem.put32(pt + 0x12 * 4, 0x0055'5000 | P | RW | US);
    CHECK(translate_ok(mode_32(pd, false), 0x0081'2345, mem).gpa == 0x0055'5345);

    // Not present at each level, tables outside RAM, and addresses above 4 GiB.
    check_fault(translate_error(mode_32(pd), 0x0100'0000, mem), WalkError::NotPresent, 2);
    check_fault(translate_error(mode_32(pd), 0x0040'4000, mem), WalkError::NotPresent, 1);
    check_fault(translate_error(mode_32(0x7000'0000), 0x1000, mem), WalkError::ReaderFailed, 2);
    mem.put32(pd + 5 * 4, 0x7000'0000 | P);
    check_fault(translate_error(mode_32(pd), 0x0140'0000, mem), WalkError::ReaderFailed, 1);
    check_fault(translate_error(mode_32(pd), 0x1'0000'0000, mem), WalkError::NonCanonical, 0);
}

TEST_CASE("page walk: PAE paging with 4 KiB and 2 MiB pages", "[decode]")
{
    FakeMemory mem;
    Tables tables(mem, 3, 0x3020);  // the PDPT is only 32-byte aligned
    // Linux's PAE direct map: 0xC0000000 is PDPTE 3.
    tables.map(0xC012'3000, 0x0012'3000, 1, P | RW);
    GuestTranslation t = translate_ok(pae_mode(0x3020), 0xC012'3456, mem);
    CHECK(t.gpa == 0x0012'3456);
    CHECK(t.page_size == kPage);
    check_rights(t, false, true, true);

    tables.map(0xC040'0000, 0x2'0060'0000, 2, P | RW | US | PAT_LARGE);  // above 4 GiB: PAE allows it
    GuestTranslation big = translate_ok(pae_mode(0x3020), 0xC041'2345, mem);
    CHECK(big.gpa == 0x2'0061'2345);
    CHECK(big.page_size == 2 * 1024 * 1024);

    // XD with EFER.NXE: not executable; without NXE bit 63 is reserved.
    tables.set(0xC012'3000, 1, XD);
    check_rights(translate_ok(pae_mode(0x3020), 0xC012'3456, mem), false, true, false);
    check_fault(translate_error(pae_mode(0x3020, false), 0xC012'3456, mem), WalkError::ReservedBit, 1);
    tables.clear(0xC012'3000, 1, XD);

    // PDPTEs carry no rights: R/W, U/S and PS are reserved there, and so is XD (Table 4-8).
    for (uint64_t bit : {RW, US, PS, uint64_t{0x20}, XD}) {
        tables.set(0xC012'3000, 3, bit);
        check_fault(translate_error(pae_mode(0x3020), 0xC012'3456, mem), WalkError::ReservedBit, 3);
        tables.clear(0xC012'3000, 3, bit);
    }
    // Bits from MAXPHYADDR to 62 are reserved in PAE entries.
    tables.set(0xC012'3000, 1, uint64_t{1} << 52);
    check_fault(translate_error(pae_mode(0x3020), 0xC012'3456, mem), WalkError::ReservedBit, 1);
    tables.clear(0xC012'3000, 1, uint64_t{1} << 52);
    PagingRegisters narrow = pae_mode(0x3020);
    narrow.max_phys_bits = 36;
    CHECK(translate_ok(narrow, 0xC012'3456, mem).gpa == 0x0012'3456);
    CHECK(translate_ok(narrow, 0xC041'2345, mem).gpa == 0x2'0061'2345);  // bit 33 is below 36
    tables.map(0xC040'0000, 0x10'0060'0000, 2, P | RW);                 // bit 36 is not
    check_fault(translate_error(narrow, 0xC041'2345, mem), WalkError::ReservedBit, 2);
    CHECK(translate_ok(pae_mode(0x3020), 0xC041'2345, mem).gpa == 0x10'0061'2345);
    // Bits 20:13 of a 2 MiB leaf lie between PAT and the frame: reserved.
    tables.map(0xC040'0000, 0x0060'0000 | (uint64_t{1} << 13), 2, P | RW);
    check_fault(translate_error(pae_mode(0x3020), 0xC041'2345, mem), WalkError::ReservedBit, 2);

    check_fault(translate_error(pae_mode(0x3020), 0x4000'0000, mem), WalkError::NotPresent, 3);
    check_fault(translate_error(pae_mode(0x3020), 0xC080'0000, mem), WalkError::NotPresent, 2);
    check_fault(translate_error(pae_mode(0x3020), 0xC012'4000, mem), WalkError::NotPresent, 1);
    check_fault(translate_error(pae_mode(0x9000'0000), 0xC012'3456, mem), WalkError::ReaderFailed, 3);
    check_fault(translate_error(pae_mode(0x3020), 0x1'C012'3456, mem), WalkError::NonCanonical, 0);
}

TEST_CASE("page walk: 4-level paging with 4 KiB, 2 MiB and 1 GiB pages", "[decode]")
{
    FakeMemory mem;
    const uint64_t cr3 = 0x5000;
    Tables tables(mem, 4, cr3);
    const uint64_t text = 0xFFFF'FFFF'8123'4000;  // the kernel text mapping
    tables.map(text, 0x0123'4000, 1, P | RW);
    GuestTranslation t = translate_ok(long_mode(cr3), text + 0x567, mem);
    CHECK(t.gpa == 0x0123'4567);
    CHECK(t.page_size == kPage);
    check_rights(t, false, true, true);
    // CR3 bits 11:0 are PCD/PWT or a PCID, not address.
    CHECK(translate_ok(long_mode(cr3 | 0x7FF), text + 0x567, mem).gpa == 0x0123'4567);

    const uint64_t direct = 0xFFFF'8880'0000'0000;  // the direct map, 2 MiB and 1 GiB pages
    tables.map(direct + 0x4000'0000, 0x0040'0000, 2, P | RW | PAT_LARGE | XD);
    GuestTranslation two = translate_ok(long_mode(cr3), direct + 0x4001'2345, mem);
    CHECK(two.gpa == 0x0041'2345);
    CHECK(two.page_size == 2 * 1024 * 1024);
    check_rights(two, false, true, false);
    tables.map(direct + 0x8000'0000, 0x1'4000'0000, 3, P | RW | US);
    GuestTranslation one = translate_ok(long_mode(cr3), direct + 0xBFFF'FFFF, mem);
    CHECK(one.gpa == 0x1'7FFF'FFFF);
    CHECK(one.page_size == 1024 * 1024 * 1024);

    // The rights are the minimum along the walk.
    const uint64_t user = 0x0000'7FFF'F000'0000;
    tables.map(user, 0x0777'7000, 1, P | RW | US);
    check_rights(translate_ok(long_mode(cr3), user, mem), true, true, true);
    tables.set(user, 4, XD);
    check_rights(translate_ok(long_mode(cr3), user, mem), true, true, false);
    tables.clear(user, 3, RW);
    check_rights(translate_ok(long_mode(cr3), user, mem), true, false, false);
    tables.clear(user, 2, US);
    check_rights(translate_ok(long_mode(cr3), user, mem), false, false, false);
    // Without EFER.NXE the XD bit is reserved.
    PagingRegisters no_nx = long_mode(cr3);
    no_nx.efer &= ~ctl::EFER_NXE;
    check_fault(translate_error(no_nx, user, mem), WalkError::ReservedBit, 4);

    // Bits 62:52 are ignored (or protection keys) in IA-32e entries; bits 51:MAXPHYADDR are reserved.
    tables.set(text, 1, uint64_t{0x7FF} << 52);
    CHECK(translate_ok(long_mode(cr3), text, mem).gpa == 0x0123'4000);
    PagingRegisters narrow = long_mode(cr3);
    narrow.max_phys_bits = 39;
    CHECK(translate_ok(narrow, text, mem).gpa == 0x0123'4000);
    tables.set(text, 1, uint64_t{1} << 45);
    check_fault(translate_error(narrow, text, mem), WalkError::ReservedBit, 1);
    CHECK(translate_ok(long_mode(cr3), text, mem).gpa == 0x2000'0123'4000);

    // PS is reserved in a PML4E; large leaves have reserved bits between PAT and the frame.
    tables.set(direct, 4, PS);
    check_fault(translate_error(long_mode(cr3), direct + 0x4001'2345, mem), WalkError::ReservedBit, 4);
    tables.clear(direct, 4, PS);
    tables.set(direct + 0x4000'0000, 2, uint64_t{1} << 20);
    check_fault(translate_error(long_mode(cr3), direct + 0x4001'2345, mem), WalkError::ReservedBit, 2);
    tables.set(direct + 0x8000'0000, 3, uint64_t{1} << 29);
    check_fault(translate_error(long_mode(cr3), direct + 0x8000'0000, mem), WalkError::ReservedBit, 3);

    // Not present at each level.
    check_fault(translate_error(long_mode(cr3), 0x0000'1000'0000'0000, mem), WalkError::NotPresent, 4);
    check_fault(translate_error(long_mode(cr3), 0xFFFF'FFFF'4000'0000, mem), WalkError::NotPresent, 3);
    check_fault(translate_error(long_mode(cr3), text + 0x40'0000, mem), WalkError::NotPresent, 2);
    check_fault(translate_error(long_mode(cr3), text + 0x1000, mem), WalkError::NotPresent, 1);

    // A table outside guest RAM.
    check_fault(translate_error(long_mode(0x7654'3000), text, mem), WalkError::ReaderFailed, 4);
    mem.put64(tables.slot(0xFFFF'C900'0000'0000, 3), 0x7654'3000 | P | RW);
    check_fault(translate_error(long_mode(cr3), 0xFFFF'C900'0000'0000, mem), WalkError::ReaderFailed, 2);

    // Non-canonical addresses never reach the tables.
    int reads = mem.reads;
    for (uint64_t bad : {0x0000'8000'0000'0000ull, 0xFFFF'7FFF'FFFF'FFFFull, 0x0012'3456'7890'1000ull})
        check_fault(translate_error(long_mode(cr3), bad, mem), WalkError::NonCanonical, 0);
    CHECK(mem.reads == reads);
}

TEST_CASE("page walk: 5-level paging", "[decode]")
{
    FakeMemory mem;
    const uint64_t cr3 = 0x9000;
    Tables tables(mem, 5, cr3);
    const uint64_t high = 0x0012'3456'7890'1000;  // canonical with 57 bits, not with 48
    tables.map(high, 0x0000'4444'5000, 1, P | US);
    GuestTranslation t = translate_ok(long_mode(cr3, true), high + 0xABC, mem);
    CHECK(t.gpa == 0x4444'5ABC);
    check_rights(t, true, false, true);
    const uint64_t kernel = 0xFF11'0000'4000'0000;  // the 5-level direct map
    tables.map(kernel, 0x8000'0000, 3, P | RW);
    CHECK(translate_ok(long_mode(cr3, true), kernel + 0x123, mem).gpa == 0x8000'0123);

    tables.set(high, 5, PS);
    check_fault(translate_error(long_mode(cr3, true), high, mem), WalkError::ReservedBit, 5);
    check_fault(translate_error(long_mode(cr3, true), 0x00F0'0000'0000'0000, mem), WalkError::NotPresent, 5);
    check_fault(translate_error(long_mode(cr3, true), 0x0100'0000'0000'0000, mem), WalkError::NonCanonical, 0);
    check_fault(translate_error(long_mode(cr3, true), 0xFEFF'FFFF'FFFF'F000, mem), WalkError::NonCanonical, 0);
}

namespace {

FetchRequest fetch64(const PagingRegisters& paging, uint64_t rip)
{
    FetchRequest request;
    request.paging = paging;
    request.code_size = CodeSize::Bits64;
    request.rip = rip;
    return request;
}

FetchedInstruction fetch_ok(const FetchRequest& request, FakeMemory& mem)
{
    auto result = fetch_instruction(request, mem);
    INFO("error: " << (result.ok() ? "none" : describe(result.error().error)));
    REQUIRE(result.ok());
    return result.value();
}

WalkFault fetch_error(const FetchRequest& request, FakeMemory& mem)
{
    auto result = fetch_instruction(request, mem);
    REQUIRE_FALSE(result.ok());
    return result.error();
}

std::vector<uint8_t> fetched(const FetchedInstruction& f) { return std::vector<uint8_t>(f.bytes, f.bytes + f.length); }

std::vector<uint8_t> iota(uint8_t first, size_t count)
{
    std::vector<uint8_t> v(count);
    for (size_t i = 0; i < count; ++i)
        v[i] = static_cast<uint8_t>(first + i);
    return v;
}

} // namespace

TEST_CASE("fetch: 15 bytes at RIP, within a page and across a page boundary", "[decode]")
{
    FakeMemory mem;
    const uint64_t cr3 = 0x5000;
    Tables tables(mem, 4, cr3);
    const uint64_t text = 0xFFFF'FFFF'8100'0000;
    // Two consecutive linear pages on two guest-physical pages that are not neighbours.
    tables.map(text, 0x0020'0000, 1, P);
    tables.map(text + kPage, 0x0010'0000, 1, P);
    std::vector<uint8_t> first = iota(0x10, kPage), second = iota(0x80, kPage);
    mem.put(0x0020'0000, first.data(), kPage);
    mem.put(0x0010'0000, second.data(), kPage);

    FetchedInstruction middle = fetch_ok(fetch64(long_mode(cr3), text + 0x100), mem);
    CHECK(fetched(middle) == iota(0x10, 15));
    CHECK(middle.length == kMaxInstructionLength);

    // 8 bytes from the end of the first page, 7 from the start of the second.
    FetchedInstruction across = fetch_ok(fetch64(long_mode(cr3), text + kPage - 8), mem);
    std::vector<uint8_t> expected = iota(static_cast<uint8_t>(0x10 + kPage - 8), 8);
    for (uint8_t b : iota(0x80, 7))
        expected.push_back(b);
    CHECK(fetched(across) == expected);

    // The last byte of a page: 1 + 14.
    FetchedInstruction last = fetch_ok(fetch64(long_mode(cr3), text + kPage - 1), mem);
    CHECK(last.length == 15);
    CHECK(last.bytes[0] == static_cast<uint8_t>(0x10 + kPage - 1));
    CHECK(last.bytes[1] == 0x80);

    // In 64-bit mode the CS base is ignored.
    FetchRequest based = fetch64(long_mode(cr3), text + 0x100);
    based.cs_base = 0x1000;
    CHECK(fetched(fetch_ok(based, mem)) == iota(0x10, 15));
}

TEST_CASE("fetch: a short instruction before a missing page still decodes", "[decode]")
{
    FakeMemory mem;
    const uint64_t cr3 = 0x5000;
    Tables tables(mem, 4, cr3);
    const uint64_t text = 0xFFFF'FFFF'8100'0000;
    tables.map(text, 0x0020'0000, 1, P);
    // mov %eax,(%rdx) as the last two bytes of the page; the next page is not mapped.
    const uint8_t store[] = {0x89, 0x02};
    mem.put(0x0020'0000 + kPage - 2, store, 2);
    FetchedInstruction f = fetch_ok(fetch64(long_mode(cr3), text + kPage - 2), mem);
    CHECK(f.length == 2);
    CHECK(f.next_page_fault.error == WalkError::NotPresent);
    CHECK(f.next_page_fault.level == 1);
    CHECK(f.next_page_fault.linear == text + kPage);
    for (size_t i = f.length; i < kMaxInstructionLength; ++i)
        CHECK(f.bytes[i] == 0);
    auto insn = decode_mmio(f.bytes, f.length, CodeSize::Bits64);
    REQUIRE(insn.ok());
    CHECK(insn.value().length == 2);

    // mov 0x320(%rdx),%eax split by the missing page: the decoder says Truncated.
    const uint8_t load[] = {0x8b, 0x82, 0x20, 0x03};
    mem.put(0x0020'0000 + kPage - 4, load, 4);
    FetchedInstruction cut = fetch_ok(fetch64(long_mode(cr3), text + kPage - 4), mem);
    CHECK(cut.length == 4);
    auto truncated = decode_mmio(cut.bytes, cut.length, CodeSize::Bits64);
    REQUIRE_FALSE(truncated.ok());
    CHECK(truncated.error().error == DecodeError::Truncated);

    // The top of the lower canonical half: the next page is not canonical.
    const uint64_t top = 0x0000'7FFF'FFFF'F000;
    tables.map(top, 0x0030'0000, 1, P | US);
    mem.add_page(0x0030'0000);
    FetchedInstruction edge = fetch_ok(fetch64(long_mode(cr3), top + kPage - 3), mem);
    CHECK(edge.length == 3);
    CHECK(edge.next_page_fault.error == WalkError::NonCanonical);
}

TEST_CASE("fetch: errors on the first page", "[decode]")
{
    FakeMemory mem;
    const uint64_t cr3 = 0x5000;
    Tables tables(mem, 4, cr3);
    const uint64_t text = 0xFFFF'FFFF'8100'0000;

    check_fault(fetch_error(fetch64(long_mode(cr3), text), mem), WalkError::NotPresent, 4);
    check_fault(fetch_error(fetch64(long_mode(cr3), 0x0000'8000'0000'0000), mem), WalkError::NonCanonical, 0);

    // The PTE points outside guest RAM (e.g. at the device page itself).
    tables.map(text, 0xFEE0'0000, 1, P);
    check_fault(fetch_error(fetch64(long_mode(cr3), text), mem), WalkError::ReaderFailed, 0);

    // XD: the guest could not have executed from here.
    tables.map(text, 0x0020'0000, 1, P | XD);
    mem.add_page(0x0020'0000);
    WalkFault nx = fetch_error(fetch64(long_mode(cr3), text + 0x10), mem);
    check_fault(nx, WalkError::AccessDenied, 0);
    CHECK(nx.linear == text + 0x10);

    // CPL 3 needs a user page; CPL 0 with SMEP must not fetch from one.
    tables.map(text, 0x0020'0000, 1, P);
    FetchRequest user = fetch64(long_mode(cr3), text);
    user.user = true;
    check_fault(fetch_error(user, mem), WalkError::AccessDenied, 0);
    tables.map(text, 0x0020'0000, 1, P | US);
    CHECK(fetch_ok(user, mem).length == 15);
    CHECK(fetch_ok(fetch64(long_mode(cr3), text), mem).length == 15);
    PagingRegisters smep = long_mode(cr3);
    smep.cr4 |= ctl::CR4_SMEP;
    check_fault(fetch_error(fetch64(smep, text), mem), WalkError::AccessDenied, 0);

    // A second page that is not executable shortens the fetch.
    tables.map(text + kPage, 0x0021'0000, 1, P | US | XD);
    mem.add_page(0x0021'0000);
    FetchedInstruction cut = fetch_ok(fetch64(long_mode(cr3), text + kPage - 5), mem);
    CHECK(cut.length == 5);
    CHECK(cut.next_page_fault.error == WalkError::AccessDenied);
}

TEST_CASE("fetch: 32-bit and 16-bit code use CS.base and wrap at 4 GiB", "[decode]")
{
    FakeMemory mem;
    PagingRegisters off;
    off.cr0 = ctl::CR0_PE;
    std::vector<uint8_t> low = iota(0x00, 0x20), high = iota(0xA0, 8);
    mem.put(0x11234, low.data(), low.size());
    mem.put(0xFFFF'FFF8, high.data(), high.size());
    mem.put(0x0, low.data(), low.size());

    FetchRequest request;
    request.paging = off;
    request.code_size = CodeSize::Bits32;
    request.cs_base = 0x10000;
    request.rip = 0x1234;
    CHECK(fetched(fetch_ok(request, mem)) == iota(0x00, 15));

    // EIP only: the upper RIP bits are not part of a 32-bit address.
    request.rip = 0xFFFF'FFFF'0000'1234;
    CHECK(fetched(fetch_ok(request, mem)) == iota(0x00, 15));

    // CS.base + EIP wraps at 4 GiB: 8 bytes at the top, 7 at 0.
    request.cs_base = 0xFFFF'0000;
    request.rip = 0xFFF8;
    std::vector<uint8_t> expected = high;
    for (uint8_t b : iota(0x00, 7))
        expected.push_back(b);
    CHECK(fetched(fetch_ok(request, mem)) == expected);
    request.cs_base = 0xFFFF'FFF8;
    request.rip = 0x10;  // wraps before the first byte: linear 8
    CHECK(fetched(fetch_ok(request, mem)) == iota(0x08, 15));

    // Real mode: CS 0x1000 has base 0x10000.
    request.code_size = CodeSize::Bits16;
    request.paging = PagingRegisters{};
    request.cs_base = 0x1000 << 4;
    request.rip = 0x1234;
    CHECK(fetched(fetch_ok(request, mem)) == iota(0x00, 15));

    // 32-bit paging applies to CS.base + EIP.
    const uint64_t pd = 0x0040'0000, pt = 0x0040'1000;
    mem.put32(pd + 0x300 * 4, static_cast<uint32_t>(pt | P));
    mem.put32(pt + 0x011 * 4, 0x0001'1000 | P);
    request.code_size = CodeSize::Bits32;
    request.paging = mode_32(pd);
    request.cs_base = 0xC000'0000;
    request.rip = 0x0001'1234;
    CHECK(fetched(fetch_ok(request, mem)) == iota(0x00, 15));
    request.user = true;
    check_fault(fetch_error(request, mem), WalkError::AccessDenied, 0);
}

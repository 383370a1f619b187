#include "vmm/decode/guest_page_walk.hpp"

#include <string.h>

namespace vlibos::vmm::decode {

namespace {

// Paging-structure entry bits (SDM Vol. 3 Tables 4-4 to 4-20; AMD APM Vol. 2 §5.4).
constexpr uint64_t kPresent = uint64_t{1} << 0;
constexpr uint64_t kWritable = uint64_t{1} << 1;
constexpr uint64_t kUser = uint64_t{1} << 2;
constexpr uint64_t kPageSize = uint64_t{1} << 7;  // PS: this entry maps a large page
constexpr uint64_t kNoExecute = uint64_t{1} << 63;

constexpr uint64_t k4KiB = uint64_t{1} << 12;
constexpr uint64_t k4MiB = uint64_t{1} << 22;
constexpr uint64_t kLinear32Limit = uint64_t{1} << 32;

constexpr uint64_t bits(unsigned high, unsigned low)  // mask of bits high:low, inclusive
{
    return ((high >= 63 ? ~uint64_t{0} : (uint64_t{1} << (high + 1)) - 1)) & ~((uint64_t{1} << low) - 1);
}

Failure<WalkFault> walk_fail(WalkError error, unsigned level, uint64_t linear)
{
    return fail(WalkFault{error, static_cast<uint8_t>(level), linear});
}

// 4-level paging translates 48-bit linear addresses, 5-level 57-bit ones; the bits above must
// copy the top one (SDM Vol. 1 §3.3.7.1, Vol. 3 §4.5).
bool canonical(uint64_t linear, unsigned width)
{
    unsigned shift = 64 - width;
    return static_cast<uint64_t>(static_cast<int64_t>(linear << shift) >> shift) == linear;
}

unsigned phys_bits(const PagingRegisters& paging)
{
    // Below 32 no real CPU exists, above 52 the entry formats have no room.
    if (paging.max_phys_bits < 32)
        return 32;
    return paging.max_phys_bits > 52 ? 52 : paging.max_phys_bits;
}

struct Rights {
    bool user = true;
    bool write = true;
    bool execute = true;
};

// 32-bit paging: 4-byte entries, a 1024-entry page directory indexed by bits 31:22 and page
// tables indexed by bits 21:12 (SDM Vol. 3 §4.3, Tables 4-5 to 4-7). With CR4.PSE a PDE with
// PS = 1 maps a 4 MiB page; PSE-36 puts physical bits 39:32 in PDE bits 20:13, bit 21 is reserved,
// and so are those of bits 20:13 beyond MIN(MAXPHYADDR, 40).
Result<GuestTranslation, WalkFault> walk_32(const PagingRegisters& paging, uint64_t linear, GuestPhysReader& reader)
{
    Rights rights;
    uint64_t table = paging.cr3 & bits(31, 12);
    uint32_t pde = 0;
    if (!reader.read(table + ((linear >> 22) & 0x3FF) * 4, &pde, sizeof(pde)))
        return walk_fail(WalkError::ReaderFailed, 2, linear);
    if ((pde & kPresent) == 0)
        return walk_fail(WalkError::NotPresent, 2, linear);
    rights.user = (pde & kUser) != 0;
    rights.write = (pde & kWritable) != 0;

    if ((pde & kPageSize) != 0 && (paging.cr4 & ctl::CR4_PSE) != 0) {
        unsigned m = phys_bits(paging) < 40 ? phys_bits(paging) : 40;
        uint64_t reserved = uint64_t{1} << 21;
        if (m < 40)
            reserved |= bits(20, 13 + (m - 32));  // PDE bit 13 + k holds physical bit 32 + k
        if ((pde & reserved) != 0)
            return walk_fail(WalkError::ReservedBit, 2, linear);
        uint64_t base = (pde & bits(31, 22)) | (((uint64_t{pde} >> 13) & 0xFF) << 32);
        return GuestTranslation{base | (linear & (k4MiB - 1)), k4MiB, rights.user, rights.write, true};
    }

    uint32_t pte = 0;
    if (!reader.read((pde & bits(31, 12)) + ((linear >> 12) & 0x3FF) * 4, &pte, sizeof(pte)))
        return walk_fail(WalkError::ReaderFailed, 1, linear);
    if ((pte & kPresent) == 0)
        return walk_fail(WalkError::NotPresent, 1, linear);
    rights.user = rights.user && (pte & kUser) != 0;
    rights.write = rights.write && (pte & kWritable) != 0;
    return GuestTranslation{(pte & bits(31, 12)) | (linear & (k4KiB - 1)), k4KiB, rights.user, rights.write, true};
}

// PAE, 4-level and 5-level paging: 8-byte entries, 9 index bits per level (PAE's PDPT has only
// 4 entries, indexed by bits 31:30, which the generic index yields for a 32-bit address).
// Level L's index is linear bits 12 + 9L - 1 : 12 + 9(L - 1).
Result<GuestTranslation, WalkFault> walk_64bit_entries(const PagingRegisters& paging, uint64_t linear,
                                                       unsigned top_level, bool pae, GuestPhysReader& reader)
{
    const unsigned m = phys_bits(paging);
    const bool nxe = (paging.efer & ctl::EFER_NXE) != 0;
    const uint64_t address = bits(m - 1, 12);
    // Bits from MAXPHYADDR up are reserved: to 62 in PAE entries (SDM Vol. 3 Tables 4-8 to 4-11),
    // to 51 in IA-32e entries, whose bits 62:52 are ignored or protection keys (Tables 4-14 to 4-20).
    // Without EFER.NXE bit 63 is reserved too (§4.4.2, §4.5.4).
    uint64_t reserved = m < 52 ? bits(pae ? 62 : 51, m) : (pae ? bits(62, 52) : 0);
    if (!nxe)
        reserved |= kNoExecute;

    // CR3 holds the PDPT at bits 31:5 under PAE (Table 4-7), the top table at bits M-1:12
    // otherwise (Table 4-12; bits 11:0 are PCD/PWT or the PCID).
    uint64_t table = pae ? paging.cr3 & bits(31, 5) : paging.cr3 & address;
    Rights rights;
    for (unsigned level = top_level;; --level) {
        unsigned shift = 12 + 9 * (level - 1);
        uint64_t entry = 0;
        if (!reader.read(table + ((linear >> shift) & 0x1FF) * 8, &entry, sizeof(entry)))
            return walk_fail(WalkError::ReaderFailed, level, linear);
        if ((entry & kPresent) == 0)
            return walk_fail(WalkError::NotPresent, level, linear);

        uint64_t entry_reserved = reserved;
        bool pae_pdpte = pae && level == 3;
        if (pae_pdpte)
            entry_reserved |= bits(2, 1) | bits(8, 5) | kNoExecute;  // Table 4-8: no rights, no PS
        if (!pae && level >= 4)
            entry_reserved |= kPageSize;                             // Tables 4-14, 4-15: PS is reserved
        bool large = (entry & kPageSize) != 0 && (level == 2 || (level == 3 && !pae));
        if (large)
            entry_reserved |= bits(shift - 1, 13);                   // below the frame, above PAT (bit 12)
        if ((entry & entry_reserved) != 0)
            return walk_fail(WalkError::ReservedBit, level, linear);

        // The rights are the minimum over the walk (§4.6.1); PAE PDPTEs carry none.
        if (!pae_pdpte) {
            rights.user = rights.user && (entry & kUser) != 0;
            rights.write = rights.write && (entry & kWritable) != 0;
            rights.execute = rights.execute && !(nxe && (entry & kNoExecute) != 0);
        }

        if (level == 1 || large) {
            uint64_t span = uint64_t{1} << shift;
            uint64_t base = entry & address & ~(span - 1);
            return GuestTranslation{base | (linear & (span - 1)), span, rights.user, rights.write, rights.execute};
        }
        table = entry & address;
    }
}

} // namespace

PagingMode paging_mode(const PagingRegisters& regs)
{
    if ((regs.cr0 & ctl::CR0_PG) == 0)
        return PagingMode::Off;
    if ((regs.efer & ctl::EFER_LMA) != 0)
        return (regs.cr4 & ctl::CR4_LA57) != 0 ? PagingMode::Level5 : PagingMode::Level4;
    return (regs.cr4 & ctl::CR4_PAE) != 0 ? PagingMode::Pae : PagingMode::Bits32;
}

const char* describe(PagingMode mode)
{
    switch (mode) {
    case PagingMode::Off: return "no paging";
    case PagingMode::Bits32: return "32-bit paging";
    case PagingMode::Pae: return "PAE paging";
    case PagingMode::Level4: return "4-level paging";
    case PagingMode::Level5: return "5-level paging";
    }
    return "unknown paging mode";
}

const char* describe(WalkError error)
{
    switch (error) {
    case WalkError::NotPresent: return "a guest paging-structure entry is not present";
    case WalkError::ReservedBit: return "a guest paging-structure entry sets a reserved bit";
    case WalkError::ReaderFailed: return "guest page tables or instruction bytes are not in guest RAM";
    case WalkError::NonCanonical: return "the guest linear address is not canonical (or above 4 GiB outside long mode)";
    case WalkError::AccessDenied: return "the guest could not fetch instructions from this page (XD, U/S or SMEP)";
    }
    return "unknown guest page walk error";
}

Result<GuestTranslation, WalkFault> translate(const PagingRegisters& paging, uint64_t linear, GuestPhysReader& reader)
{
    PagingMode mode = paging_mode(paging);
    if (mode == PagingMode::Level4 || mode == PagingMode::Level5) {
        if (!canonical(linear, mode == PagingMode::Level5 ? 57 : 48))
            return walk_fail(WalkError::NonCanonical, 0, linear);
        return walk_64bit_entries(paging, linear, mode == PagingMode::Level5 ? 5 : 4, false, reader);
    }
    if (linear >= kLinear32Limit)
        return walk_fail(WalkError::NonCanonical, 0, linear);
    switch (mode) {
    case PagingMode::Off: return GuestTranslation{linear, k4KiB, true, true, true};
    case PagingMode::Bits32: return walk_32(paging, linear, reader);
    default: return walk_64bit_entries(paging, linear, 3, true, reader);
    }
}

namespace {

// Translates the page holding `linear` for an instruction fetch and checks that the guest at
// its CPL could fetch from it (SDM Vol. 3 §4.6.1: XD with NXE, U/S for CPL 3, SMEP for CPL < 3).
Result<uint64_t, WalkFault> translate_fetch(const FetchRequest& request, uint64_t linear, GuestPhysReader& reader)
{
    GuestTranslation t = TRY(translate(request.paging, linear, reader));
    if (paging_mode(request.paging) != PagingMode::Off) {
        bool smep = (request.paging.cr4 & ctl::CR4_SMEP) != 0;
        if (!t.execute || (request.user && !t.user) || (!request.user && smep && t.user))
            return walk_fail(WalkError::AccessDenied, 0, linear);
    }
    return t.gpa;
}

} // namespace

Result<FetchedInstruction, WalkFault> fetch_instruction(const FetchRequest& request, GuestPhysReader& reader)
{
    // Outside 64-bit mode the linear address is CS.base + EIP, and it wraps at 4 GiB.
    const bool flat64 = request.code_size == CodeSize::Bits64;
    const uint64_t wrap = flat64 ? ~uint64_t{0} : kLinear32Limit - 1;
    uint64_t linear = flat64 ? request.rip : (request.cs_base + (request.rip & 0xFFFF'FFFF)) & wrap;

    FetchedInstruction out;
    while (out.length < kMaxInstructionLength) {
        size_t room = static_cast<size_t>(k4KiB - (linear & (k4KiB - 1)));
        size_t chunk = kMaxInstructionLength - out.length;
        if (chunk > room)
            chunk = room;

        auto gpa = translate_fetch(request, linear, reader);
        if (gpa.ok() && !reader.read(gpa.value(), out.bytes + out.length, chunk))
            gpa = walk_fail(WalkError::ReaderFailed, 0, linear);
        if (!gpa.ok()) {
            if (out.length == 0)
                return fail(gpa.error());
            // The second page: keep what the first gave, the decoder needs no more if the
            // instruction ends there.
            memset(out.bytes + out.length, 0, kMaxInstructionLength - out.length);
            out.next_page_fault = gpa.error();
            return out;
        }
        out.length += chunk;
        linear = (linear + chunk) & wrap;
    }
    return out;
}

} // namespace vlibos::vmm::decode

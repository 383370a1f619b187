// The guest's own page walk: guest-virtual (linear) to guest-physical, done by the monitor in
// software, and the instruction fetch built on it.
//
// A nested page fault on an emulated device page (xAPIC, IOAPIC) reports the guest-physical
// address and read/write, but not the instruction; without decode assists (SVM under QEMU TCG)
// not even its length. The monitor then reads the instruction at the guest's RIP itself, which
// means translating RIP through the guest's page tables, exactly as the CPU did a moment before:
//
//   CR0.PG = 0                    no paging: linear == physical (32-bit)
//   CR4.PAE = 0                   32-bit paging, 4 KiB and (CR4.PSE) 4 MiB pages   SDM Vol. 3 §4.3
//   CR4.PAE = 1, EFER.LMA = 0     PAE paging, 4 KiB and 2 MiB pages                SDM Vol. 3 §4.4
//   EFER.LMA = 1                  4-level paging, 4 KiB, 2 MiB and 1 GiB pages     SDM Vol. 3 §4.5
//   EFER.LMA = 1, CR4.LA57 = 1    5-level paging, the same page sizes
//
// (AMD APM Vol. 2 §5.2-5.3 describes the same formats.) The tables are guest memory and untrusted:
// every entry is read through GuestPhysReader, checked for presence and reserved bits, and
// nothing is ever written (the CPU has already set the accessed bits on its own walk).
//
// Not modelled: protection keys, CR0.WP, SMAP (the caller gets the rights and decides), the PAE
// PDPTE registers (the PDPTEs are read from memory, not from the copy the CPU loaded at MOV CR3),
// 1 GiB pages being absent from CPUID, and segment limits.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "lib/result.hpp"
#include "vmm/decode/cpu_mode.hpp"

namespace vlibos::vmm::decode {

// Reads guest-physical memory. The kernel implements it over the VM's GuestMemory (RAM only:
// never a device page), tests over a fake memory. False if any byte of [gpa, gpa + len) is not
// readable guest RAM.
class GuestPhysReader {
public:
    virtual bool read(uint64_t gpa, void* out, size_t len) = 0;

protected:
    ~GuestPhysReader() = default;
};

// The guest's paging controls, as the VMCS/VMCB hold them.
struct PagingRegisters {
    uint64_t cr0 = 0;
    uint64_t cr3 = 0;
    uint64_t cr4 = 0;
    uint64_t efer = 0;
    // The guest's MAXPHYADDR (CPUID 8000_0008h EAX[7:0]): entry bits from here up to 51 are
    // reserved (SDM Vol. 3 §4.1.4). 52 is the architectural maximum.
    uint8_t max_phys_bits = 52;
};

// The bits of CR0, CR4 and EFER the walk looks at (SDM Vol. 3 §2.5, §2.2.1; AMD APM Vol. 2 §3.1).
namespace ctl {
inline constexpr uint64_t CR0_PE = uint64_t{1} << 0;     // protected mode
inline constexpr uint64_t CR0_PG = uint64_t{1} << 31;    // paging
inline constexpr uint64_t CR4_PSE = uint64_t{1} << 4;    // 4 MiB pages in 32-bit paging
inline constexpr uint64_t CR4_PAE = uint64_t{1} << 5;    // 64-bit entries
inline constexpr uint64_t CR4_LA57 = uint64_t{1} << 12;  // 5-level paging (with LMA)
inline constexpr uint64_t CR4_SMEP = uint64_t{1} << 20;  // no supervisor fetches from user pages
inline constexpr uint64_t EFER_LMA = uint64_t{1} << 10;  // IA-32e mode active
inline constexpr uint64_t EFER_NXE = uint64_t{1} << 11;  // the XD bit (63) is honoured
} // namespace ctl

enum class PagingMode : uint8_t {
    Off,
    Bits32,
    Pae,
    Level4,
    Level5,
};

PagingMode paging_mode(const PagingRegisters& regs);
const char* describe(PagingMode mode);

enum class WalkError : uint8_t {
    NotPresent,     // an entry on the walk has P = 0 (the guest would take #PF)
    ReservedBit,    // an entry on the walk sets a reserved bit (#PF with RSVD)
    ReaderFailed,   // a table, or the bytes fetched, are not readable guest RAM
    NonCanonical,   // not a canonical address (64-bit), or above 4 GiB outside IA-32e mode
    AccessDenied,   // fetch_instruction(): the guest could not have fetched from this page
                    // (XD set, a supervisor page at CPL 3, or a user page at CPL 0-2 with SMEP)
};

const char* describe(WalkError error);

// Why a walk failed, and where.
struct WalkFault {
    WalkError error = WalkError::NotPresent;
    // The paging-structure level whose entry failed (NotPresent, ReservedBit, ReaderFailed on a
    // table read): 1 = page table, 2 = page directory, 3 = PDPT, 4 = PML4, 5 = PML5; 0 when no
    // entry is involved (NonCanonical, AccessDenied, or the fetched bytes themselves).
    uint8_t level = 0;
    uint64_t linear = 0;  // the linear address being translated
};

// Where a linear address leads, and the rights the whole walk grants: the minimum along it
// (SDM Vol. 3 §4.6.1). With paging off everything is allowed.
struct GuestTranslation {
    uint64_t gpa = 0;
    uint64_t page_size = 0;  // 4 KiB, 2 MiB, 4 MiB or 1 GiB; 4 KiB with paging off
    bool user = false;       // U/S = 1 at every level: CPL 3 may access
    bool write = false;      // R/W = 1 at every level
    bool execute = false;    // no XD on the way (always true without EFER.NXE)
};

// Translates `linear` through the guest's page tables. Outside IA-32e mode linear addresses are
// 32 bits; a larger one is NonCanonical. Returns NotPresent, ReservedBit or ReaderFailed with the
// level of the entry concerned.
Result<GuestTranslation, WalkFault> translate(const PagingRegisters& paging, uint64_t linear,
                                              GuestPhysReader& reader);

// The instruction fetch the monitor redoes after an exit without instruction bytes.
struct FetchRequest {
    PagingRegisters paging;
    CodeSize code_size = CodeSize::Bits64;
    uint64_t rip = 0;
    uint64_t cs_base = 0;  // ignored in 64-bit mode (SDM Vol. 3 §3.4.4)
    bool user = false;     // CPL 3
};

struct FetchedInstruction {
    uint8_t bytes[kMaxInstructionLength] = {};
    size_t length = 0;   // bytes fetched: kMaxInstructionLength, or fewer if the next page failed
    // When length < kMaxInstructionLength: why the second page could not be read. The decoder
    // then reports Truncated if the instruction really extends there; the CPU would have faulted
    // on such a fetch, so that means the guest's tables changed since (another vCPU).
    WalkFault next_page_fault{};
};

// Reads up to 15 bytes at CS:RIP: linear = RIP in 64-bit mode, (CS.base + EIP) mod 2^32
// otherwise. A fetch that crosses into the next 4 KiB page translates both. Each page must be
// executable for the guest at its CPL (XD, U/S, SMEP), or the result is AccessDenied.
// Fails only if the first byte cannot be fetched; a failure on the second page shortens the
// result instead (see next_page_fault).
Result<FetchedInstruction, WalkFault> fetch_instruction(const FetchRequest& request, GuestPhysReader& reader);

} // namespace vlibos::vmm::decode

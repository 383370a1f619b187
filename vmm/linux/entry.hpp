// How the first vCPU enters Linux: the register and segment state for the 32-bit boot protocol
// entry (protected mode, paging off) and for the 64-bit one (long mode, identity-mapped), the
// GDTs both load, and the identity page tables the 64-bit entry needs. The backend picks a plan
// and loads it into the VMCS/VMCB; everything here is data.
//
// Linux's rules (Documentation/arch/x86/boot.rst, "32-bit Boot Protocol", "64-bit Boot Protocol"):
// - a GDT with 4 GiB flat descriptors at __BOOT_CS (0x10, execute/read) and __BOOT_DS (0x18,
//   read/write); CS = __BOOT_CS; DS = ES = SS = __BOOT_DS; interrupts disabled; ESI/RSI = the zero
//   page's address;
// - 32-bit: protected mode, paging off; EBP, EDI and EBX zero; jump to code32_start (relocated);
// - 64-bit: long mode with paging, the kernel's init_size window, the zero page and the command
//   line identity-mapped; jump to the load address + 0x200 (XLF_KERNEL_64).
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "lib/result.hpp"
#include "vmm/linux/boot_layout.hpp"

namespace vlibos::vmm::linux_boot {

enum class EntryMode : uint8_t { Protected32, Long64 };

// __BOOT_CS and __BOOT_DS (arch/x86/include/asm/segment.h: GDT entries 2 and 3).
constexpr uint16_t kBootCs = 0x10;
constexpr uint16_t kBootDs = 0x18;

// GDT descriptors (SDM Vol. 3 §3.4.5): base 0, limit 0xFFFFF in 4 KiB units (G = 1), present,
// DPL 0, S = 1, with the accessed bit already set so the CPU never writes to the GDT.
constexpr uint64_t kGdtCode32 = 0x00cf9b000000ffff;  // type 0xB execute/read, D = 1
constexpr uint64_t kGdtCode64 = 0x00af9b000000ffff;  // type 0xB execute/read, L = 1, D = 0
constexpr uint64_t kGdtData = 0x00cf93000000ffff;    // type 0x3 read/write, B = 1

// A segment register's visible and hidden parts. access_rights is in the VMX guest-state format
// (SDM Vol. 3 §25.4.1, Table 25-2: type | S << 4 | DPL << 5 | P << 7 | AVL << 12 | L << 13 |
// D/B << 14 | G << 15); the SVM VMCB attribute is (ar & 0xff) | ((ar >> 4) & 0xf00).
struct SegmentState {
    uint16_t selector;
    uint64_t base;
    uint32_t limit;          // in bytes
    uint16_t access_rights;
};

constexpr uint16_t kAccessCode32 = 0xc09b;
constexpr uint16_t kAccessCode64 = 0xa09b;
constexpr uint16_t kAccessData = 0xc093;

// Control register bits (SDM Vol. 3 §2.5, §2.2.1).
constexpr uint64_t kCr0Pe = 1ull << 0;
constexpr uint64_t kCr0Et = 1ull << 4;
constexpr uint64_t kCr0Pg = 1ull << 31;
constexpr uint64_t kCr4Pae = 1ull << 5;
constexpr uint64_t kEferLme = 1ull << 8;
constexpr uint64_t kEferLma = 1ull << 10;
constexpr uint64_t kRflagsReserved1 = 1ull << 1;   // bit 1 is always set; IF = 0

// The state of the boot vCPU at Linux's first instruction. Architectural values: the backend
// adds whatever its fixed CR0/CR4 bits require (e.g. CR0.NE under VMX) and sets TR/LDTR, which
// Linux does not use before loading its own. Every general register not named is zero.
struct EntryPlan {
    EntryMode mode;
    uint64_t rip;
    uint64_t rsi;            // the zero page
    uint64_t rsp;            // low_memory::kStackTop (Linux switches to its own stack at once)
    uint64_t rflags;
    uint64_t cr0;
    uint64_t cr3;            // 64-bit: the identity map's PML4; 32-bit: 0
    uint64_t cr4;
    uint64_t efer;
    uint64_t gdtr_base;
    uint16_t gdtr_limit;
    SegmentState cs;
    SegmentState ds;         // also ES, SS, FS and GS
};

// The plan for `mode`, or EntryUnavailable if the layout cannot be entered that way (32-bit: the
// kernel lies above 4 GiB; 64-bit: no XLF_KERNEL_64, or the kernel is beyond the identity map).
Result<EntryPlan, LayoutError> plan_entry(const BootLayout& layout, EntryMode mode);

// Writes the 4-descriptor GDT for `mode` (null, null, __BOOT_CS, __BOOT_DS) into out[0, 32).
void write_gdt(uint8_t* out, EntryMode mode);

// The identity map for the 64-bit entry covers, with 2 MiB pages, the first 4 GiB (low memory,
// the zero page, the command line, the decompressor's trampoline below the EBDA, and a kernel
// below 4 GiB) plus every GiB the kernel's window [window_base, window_end) touches. Pages: one
// PML4, one PDPT per 512 GiB slot used, one page directory per GiB mapped; at most
// kMaxPageTablePages for a window below kIdentityMapLimit and smaller than 4 GiB.
size_t identity_map_pages(uint64_t window_base, uint64_t window_end);

// Writes those tables into `buffer` (identity_map_pages() pages), which the guest sees at
// `buffer_gpa` (4 KiB aligned); the PML4 is the first page. BufferMismatch if the buffer is too
// small, misaligned, or the window is empty or beyond kIdentityMapLimit.
Status<LayoutError> write_identity_map(uint8_t* buffer, size_t size, uint64_t buffer_gpa, uint64_t window_base,
                                       uint64_t window_end);

} // namespace vlibos::vmm::linux_boot

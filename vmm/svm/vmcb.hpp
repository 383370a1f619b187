// The virtual machine control block (VMCB): the one page through which the monitor and the CPU
// exchange a guest's state under AMD SVM. Layout from AMD APM Vol. 2 (rev. 3.42) Appendix B,
// Tables B-1 (control area, offsets 000h-3FFh) and B-2 (state-save area, from 400h); exit codes
// from Appendix C. Pure: no hardware access, so the host unit tests check every offset too.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace vlibos::svm {

// ---------------------------------------------------------------------------------------------
// Intercepts (APM Vol. 2 Table B-1). Each is a (32-bit word, bit) pair in the control area's
// intercept vector, which starts at offset 000h.
// ---------------------------------------------------------------------------------------------

enum class Intercept : uint16_t {
    // Word 3, offset 00Ch.
    Intr = 3 * 32 + 0,        // physical maskable interrupt
    Nmi = 3 * 32 + 1,
    Smi = 3 * 32 + 2,
    Init = 3 * 32 + 3,
    Vintr = 3 * 32 + 4,       // the guest is about to take a virtual interrupt (V_IRQ)
    Cr0SelectiveWrite = 3 * 32 + 5,
    IdtrRead = 3 * 32 + 6,
    GdtrRead = 3 * 32 + 7,
    LdtrRead = 3 * 32 + 8,
    TrRead = 3 * 32 + 9,
    IdtrWrite = 3 * 32 + 10,
    GdtrWrite = 3 * 32 + 11,
    LdtrWrite = 3 * 32 + 12,
    TrWrite = 3 * 32 + 13,
    Rdtsc = 3 * 32 + 14,
    Rdpmc = 3 * 32 + 15,
    Pushf = 3 * 32 + 16,
    Popf = 3 * 32 + 17,
    Cpuid = 3 * 32 + 18,
    Rsm = 3 * 32 + 19,
    Iret = 3 * 32 + 20,
    Intn = 3 * 32 + 21,
    Invd = 3 * 32 + 22,
    Pause = 3 * 32 + 23,
    Hlt = 3 * 32 + 24,
    Invlpg = 3 * 32 + 25,
    Invlpga = 3 * 32 + 26,
    IoioProt = 3 * 32 + 27,   // port I/O, filtered by the I/O permission map
    MsrProt = 3 * 32 + 28,    // RDMSR/WRMSR, filtered by the MSR permission map
    TaskSwitch = 3 * 32 + 29,
    FerrFreeze = 3 * 32 + 30,
    Shutdown = 3 * 32 + 31,   // a triple fault would otherwise shut the physical CPU down
    // Word 4, offset 010h.
    Vmrun = 4 * 32 + 0,       // must be set, or VMRUN fails (APM §15.5.1)
    Vmmcall = 4 * 32 + 1,
    Vmload = 4 * 32 + 2,
    Vmsave = 4 * 32 + 3,
    Stgi = 4 * 32 + 4,
    Clgi = 4 * 32 + 5,
    Skinit = 4 * 32 + 6,
    Rdtscp = 4 * 32 + 7,
    Icebp = 4 * 32 + 8,
    Wbinvd = 4 * 32 + 9,
    Monitor = 4 * 32 + 10,
    MwaitUnconditional = 4 * 32 + 11,
    MwaitArmed = 4 * 32 + 12,
    Xsetbv = 4 * 32 + 13,
    Rdpru = 4 * 32 + 14,
    EferWriteTrap = 4 * 32 + 15,
};

constexpr unsigned intercept_word(Intercept i) { return static_cast<unsigned>(i) / 32; }
constexpr uint32_t intercept_mask(Intercept i) { return uint32_t{1} << (static_cast<unsigned>(i) % 32); }

// Exception intercepts (APM Vol. 2 §15.12, Table B-1): the 32-bit word at offset 008h, bit n for
// exception vector n. An intercepted exception exits with EXITCODE 40h + vector before the
// guest's IDT is used; EXITINFO1 holds its error code, if it has one.
constexpr unsigned kExceptionInterceptWord = 2;
constexpr unsigned kExceptionVectors = 32;

// Vectors the monitor names (APM Vol. 2 §8.2, Table 8-1).
namespace exception_vector {
constexpr uint8_t kDebug = 1;            // #DB
constexpr uint8_t kAlignmentCheck = 17;  // #AC (error code 0)
} // namespace exception_vector

// ---------------------------------------------------------------------------------------------
// Control-area fields (APM Vol. 2 Table B-1).
// ---------------------------------------------------------------------------------------------

// TLB_CONTROL, offset 05Ch (APM §15.16.1).
namespace tlb_control {
constexpr uint8_t kNothing = 0;
constexpr uint8_t kFlushAll = 1;        // every ASID; supported by every SVM CPU
constexpr uint8_t kFlushThisAsid = 3;   // needs CPUID 8000_000A EDX.FlushByAsid
} // namespace tlb_control

// Virtual interrupt control, offset 060h (APM §15.21.4).
namespace int_ctl {
constexpr uint64_t kVTprMask = 0xf;               // V_TPR, bits 3:0
constexpr uint64_t kVIrq = 1ull << 8;             // V_IRQ: a virtual interrupt is pending
constexpr unsigned kVIntrPrioShift = 16;          // V_INTR_PRIO, bits 19:16
constexpr uint64_t kVIntrPrioMask = 0xfull << kVIntrPrioShift;
constexpr uint64_t kVIgnTpr = 1ull << 20;         // V_IGN_TPR: ignore V_TPR for V_IRQ
constexpr uint64_t kVIntrMasking = 1ull << 24;    // V_INTR_MASKING: guest RFLAGS.IF masks only
                                                  // virtual interrupts; the host's IF masks physical ones
constexpr unsigned kVIntrVectorShift = 32;        // V_INTR_VECTOR, bits 39:32
} // namespace int_ctl

// Interrupt state, offset 068h (APM §15.21.5).
namespace int_state {
constexpr uint64_t kInterruptShadow = 1ull << 0;  // the guest is in an STI/MOV SS shadow
constexpr uint64_t kGuestInterruptMask = 1ull << 1;
} // namespace int_state

// Nested paging control, offset 090h (APM §15.25.3).
namespace nested_ctl {
constexpr uint64_t kNpEnable = 1ull << 0;
} // namespace nested_ctl

// EVENTINJ at offset 0A8h and EXITINTINFO at offset 088h share one format (APM §15.20, Figure 15-6).
namespace event {
constexpr uint64_t kVectorMask = 0xff;            // bits 7:0
constexpr unsigned kTypeShift = 8;                // bits 10:8
constexpr uint64_t kTypeMask = 7ull << kTypeShift;
constexpr uint64_t kTypeInterrupt = 0ull << kTypeShift;   // external or virtual interrupt (INTR)
constexpr uint64_t kTypeNmi = 2ull << kTypeShift;
constexpr uint64_t kTypeException = 3ull << kTypeShift;   // fault or trap
constexpr uint64_t kTypeSoftware = 4ull << kTypeShift;    // INTn
constexpr uint64_t kErrorCodeValid = 1ull << 11;  // EV: push ERRORCODE
constexpr uint64_t kValid = 1ull << 31;           // V
constexpr unsigned kErrorCodeShift = 32;          // ERRORCODE, bits 63:32
} // namespace event

// ---------------------------------------------------------------------------------------------
// EXITCODE values (APM Vol. 2 Appendix C, Table C-1).
// ---------------------------------------------------------------------------------------------

namespace exit_code {
constexpr uint64_t kCrReadFirst = 0x00;   // 0x00-0x0F: read of CR0-CR15
constexpr uint64_t kCrWriteFirst = 0x10;  // 0x10-0x1F: write of CR0-CR15
constexpr uint64_t kCrWriteLast = 0x1f;
constexpr uint64_t kDrReadFirst = 0x20;
constexpr uint64_t kExceptionFirst = 0x40;  // 0x40-0x5F: exception vector 0-31
constexpr uint64_t kExceptionLast = 0x5f;
constexpr uint64_t kIntr = 0x60;
constexpr uint64_t kNmi = 0x61;
constexpr uint64_t kSmi = 0x62;
constexpr uint64_t kInit = 0x63;
constexpr uint64_t kVintr = 0x64;
constexpr uint64_t kCr0SelectiveWrite = 0x65;
constexpr uint64_t kRdtsc = 0x6e;
constexpr uint64_t kPushf = 0x70;
constexpr uint64_t kPopf = 0x71;
constexpr uint64_t kCpuid = 0x72;
constexpr uint64_t kRsm = 0x73;
constexpr uint64_t kIret = 0x74;
constexpr uint64_t kSwint = 0x75;
constexpr uint64_t kInvd = 0x76;
constexpr uint64_t kPause = 0x77;
constexpr uint64_t kHlt = 0x78;
constexpr uint64_t kInvlpg = 0x79;
constexpr uint64_t kInvlpga = 0x7a;
constexpr uint64_t kIoio = 0x7b;
constexpr uint64_t kMsr = 0x7c;
constexpr uint64_t kTaskSwitch = 0x7d;
constexpr uint64_t kFerrFreeze = 0x7e;
constexpr uint64_t kShutdown = 0x7f;
constexpr uint64_t kVmrun = 0x80;
constexpr uint64_t kVmmcall = 0x81;
constexpr uint64_t kVmload = 0x82;
constexpr uint64_t kVmsave = 0x83;
constexpr uint64_t kStgi = 0x84;
constexpr uint64_t kClgi = 0x85;
constexpr uint64_t kSkinit = 0x86;
constexpr uint64_t kRdtscp = 0x87;
constexpr uint64_t kIcebp = 0x88;
constexpr uint64_t kWbinvd = 0x89;
constexpr uint64_t kMonitor = 0x8a;
constexpr uint64_t kMwait = 0x8b;
constexpr uint64_t kMwaitConditional = 0x8c;
constexpr uint64_t kXsetbv = 0x8d;
constexpr uint64_t kNpf = 0x400;          // nested page fault
constexpr uint64_t kInvalid = ~0ull;      // VMEXIT_INVALID (-1): VMRUN refused the VMCB

// QEMU 7.2 stores VMEXIT_INVALID as the 32-bit -1, zero-extended; hardware stores the 64-bit
// -1. No valid exit code has its low 32 bits all set, so both mean "invalid".
constexpr bool is_invalid(uint64_t code) { return static_cast<uint32_t>(code) == static_cast<uint32_t>(kInvalid); }
} // namespace exit_code

// EXITINFO1 of an IOIO intercept (APM §15.10.2, Figure 15-2).
namespace ioio {
constexpr uint64_t kIn = 1ull << 0;              // TYPE: 1 = IN, 0 = OUT
constexpr uint64_t kString = 1ull << 2;          // STR: INS/OUTS
constexpr uint64_t kRep = 1ull << 3;             // REP prefix
constexpr uint64_t kSize8 = 1ull << 4;           // SZ8
constexpr uint64_t kSize16 = 1ull << 5;          // SZ16
constexpr uint64_t kSize32 = 1ull << 6;          // SZ32
constexpr unsigned kPortShift = 16;              // PORT, bits 31:16
constexpr uint64_t kPortMask = 0xffffull << kPortShift;
} // namespace ioio

// EXITINFO1 of an MSR intercept (APM §15.11).
namespace msr_access {
constexpr uint64_t kRead = 0;
constexpr uint64_t kWrite = 1;
} // namespace msr_access

// EXITINFO1 of a nested page fault: a #PF-style error code (APM §15.25.6).
namespace npf {
constexpr uint64_t kPresent = 1ull << 0;       // P: the page was mapped; the access broke its rights
constexpr uint64_t kWrite = 1ull << 1;         // RW: the access was a write
constexpr uint64_t kUser = 1ull << 2;          // US: always set (nested walks are user accesses)
constexpr uint64_t kReserved = 1ull << 3;      // RSV: a reserved bit was set in a nested entry
constexpr uint64_t kFetch = 1ull << 4;         // ID: the access was an instruction fetch
constexpr uint64_t kFinalTranslation = 1ull << 32;  // faulted on the guest-physical address of the access
constexpr uint64_t kGuestTableWalk = 1ull << 33;    // faulted on a guest page-table access
} // namespace npf

// EXITINFO1 of a CR access intercept with decode assists (APM §15.8.1).
namespace cr_access {
constexpr uint64_t kMovCr = 1ull << 63;        // the access was MOV CRn (the GPR field is valid)
constexpr uint64_t kGprMask = 0xf;             // GPR number, bits 3:0
} // namespace cr_access

// ---------------------------------------------------------------------------------------------
// The VMCB itself.
// ---------------------------------------------------------------------------------------------

// Segment attribute bits as the VMCB packs them: descriptor bits 47:40 in 7:0 and 55:52 in
// 11:8 (APM §15.5.1, "Segment state in the VMCB").
namespace seg_attr {
constexpr uint16_t kTypeAccessed = 1u << 0;
constexpr uint16_t kTypeWritable = 1u << 1;    // data: writable; code: readable
constexpr uint16_t kTypeReadable = 1u << 1;
constexpr uint16_t kTypeCode = 1u << 3;
constexpr uint16_t kTypeLdt = 0x2;             // system segment types (APM Vol. 2 Table 4-6)
constexpr uint16_t kTypeBusyTss16 = 0x3;
constexpr uint16_t kCodeOrData = 1u << 4;      // S
constexpr unsigned kDplShift = 5;              // DPL, bits 6:5
constexpr uint16_t kPresent = 1u << 7;         // P
constexpr uint16_t kLong = 1u << 9;            // L
constexpr uint16_t kDefaultBig = 1u << 10;     // D/B
constexpr uint16_t kGranularity = 1u << 11;    // G
} // namespace seg_attr

struct [[gnu::packed]] Segment {
    uint16_t selector;
    uint16_t attrib;
    uint32_t limit;
    uint64_t base;
};
static_assert(sizeof(Segment) == 16);

struct [[gnu::packed]] ControlArea {
    uint32_t intercepts[6];             // 000h: CR reads/writes, DR reads/writes, exceptions, misc x3
    uint8_t reserved_018[0x03c - 0x018];
    uint16_t pause_filter_threshold;    // 03Ch
    uint16_t pause_filter_count;        // 03Eh
    uint64_t iopm_base_pa;              // 040h: 12 KiB I/O permission map, 4 KiB aligned
    uint64_t msrpm_base_pa;             // 048h: 8 KiB MSR permission map, 4 KiB aligned
    uint64_t tsc_offset;                // 050h
    uint32_t guest_asid;                // 058h
    uint8_t tlb_control;                // 05Ch
    uint8_t reserved_05d[3];
    uint64_t int_ctl;                   // 060h: V_TPR, V_IRQ, V_INTR_PRIO, V_IGN_TPR, V_INTR_MASKING, V_INTR_VECTOR
    uint64_t int_state;                 // 068h: interrupt shadow
    uint64_t exit_code;                 // 070h
    uint64_t exit_info1;                // 078h
    uint64_t exit_info2;                // 080h
    uint64_t exit_int_info;             // 088h: an event whose delivery the exit interrupted
    uint64_t nested_ctl;                // 090h: NP_ENABLE
    uint64_t avic_apic_bar;             // 098h
    uint64_t ghcb_pa;                   // 0A0h
    uint64_t event_inj;                 // 0A8h
    uint64_t nested_cr3;                // 0B0h: nCR3
    uint64_t virt_ext;                  // 0B8h: LBR virtualisation, virtual VMLOAD/VMSAVE
    uint32_t clean_bits;                // 0C0h: 0 = reload everything
    uint32_t reserved_0c4;
    uint64_t next_rip;                  // 0C8h: nRIP (with NRIP save)
    uint8_t instruction_bytes_fetched;  // 0D0h (with decode assists)
    uint8_t instruction_bytes[15];      // 0D1h
    uint64_t avic_backing_page;         // 0E0h
    uint64_t reserved_0e8;
    uint64_t avic_logical_table;        // 0F0h
    uint64_t avic_physical_table;       // 0F8h
    uint64_t reserved_100;
    uint64_t vmsa_pa;                   // 108h
    uint8_t reserved_110[0x3e0 - 0x110];
    uint8_t software_reserved[0x400 - 0x3e0];  // 3E0h: for the hypervisor's own use
};
static_assert(sizeof(ControlArea) == 0x400);

struct [[gnu::packed]] StateSaveArea {
    Segment es;                         // 400h
    Segment cs;                         // 410h
    Segment ss;                         // 420h
    Segment ds;                         // 430h
    Segment fs;                         // 440h
    Segment gs;                         // 450h
    Segment gdtr;                       // 460h: only limit and base are used
    Segment ldtr;                       // 470h
    Segment idtr;                       // 480h: only limit and base are used
    Segment tr;                         // 490h
    uint8_t reserved_0a0[0xcb - 0xa0];
    uint8_t cpl;                        // 4CBh
    uint32_t reserved_0cc;
    uint64_t efer;                      // 4D0h
    uint8_t reserved_0d8[0x148 - 0xd8];
    uint64_t cr4;                       // 548h
    uint64_t cr3;                       // 550h
    uint64_t cr0;                       // 558h
    uint64_t dr7;                       // 560h
    uint64_t dr6;                       // 568h
    uint64_t rflags;                    // 570h
    uint64_t rip;                       // 578h
    uint8_t reserved_180[0x1d8 - 0x180];
    uint64_t rsp;                       // 5D8h
    uint64_t s_cet;                     // 5E0h
    uint64_t ssp;                       // 5E8h
    uint64_t isst_addr;                 // 5F0h
    uint64_t rax;                       // 5F8h
    uint64_t star;                      // 600h
    uint64_t lstar;                     // 608h
    uint64_t cstar;                     // 610h
    uint64_t sfmask;                    // 618h
    uint64_t kernel_gs_base;            // 620h
    uint64_t sysenter_cs;               // 628h
    uint64_t sysenter_esp;              // 630h
    uint64_t sysenter_eip;              // 638h
    uint64_t cr2;                       // 640h
    uint8_t reserved_248[0x268 - 0x248];
    uint64_t g_pat;                     // 668h: the guest's PAT under nested paging
    uint64_t dbgctl;                    // 670h
    uint64_t br_from;                   // 678h
    uint64_t br_to;                     // 680h
    uint64_t last_exception_from;       // 688h
    uint64_t last_exception_to;         // 690h
    uint8_t reserved_298[0x2e0 - 0x298];
    uint64_t spec_ctrl;                 // 6E0h
};
static_assert(sizeof(StateSaveArea) == 0x2e8);

struct [[gnu::packed]] Vmcb {
    ControlArea control;
    StateSaveArea save;
    uint8_t reserved_tail[0x1000 - 0x400 - sizeof(StateSaveArea)];
};
static_assert(sizeof(Vmcb) == 0x1000, "a VMCB is one 4 KiB page (APM §15.5.1)");

// Offsets as listed in APM Vol. 2 Tables B-1 and B-2 (state-save offsets from the VMCB start).
#define VLIBOS_VMCB_AT(field, offset) static_assert(offsetof(Vmcb, field) == (offset), #field)
VLIBOS_VMCB_AT(control.intercepts, 0x000);
VLIBOS_VMCB_AT(control.pause_filter_threshold, 0x03c);
VLIBOS_VMCB_AT(control.pause_filter_count, 0x03e);
VLIBOS_VMCB_AT(control.iopm_base_pa, 0x040);
VLIBOS_VMCB_AT(control.msrpm_base_pa, 0x048);
VLIBOS_VMCB_AT(control.tsc_offset, 0x050);
VLIBOS_VMCB_AT(control.guest_asid, 0x058);
VLIBOS_VMCB_AT(control.tlb_control, 0x05c);
VLIBOS_VMCB_AT(control.int_ctl, 0x060);
VLIBOS_VMCB_AT(control.int_state, 0x068);
VLIBOS_VMCB_AT(control.exit_code, 0x070);
VLIBOS_VMCB_AT(control.exit_info1, 0x078);
VLIBOS_VMCB_AT(control.exit_info2, 0x080);
VLIBOS_VMCB_AT(control.exit_int_info, 0x088);
VLIBOS_VMCB_AT(control.nested_ctl, 0x090);
VLIBOS_VMCB_AT(control.event_inj, 0x0a8);
VLIBOS_VMCB_AT(control.nested_cr3, 0x0b0);
VLIBOS_VMCB_AT(control.virt_ext, 0x0b8);
VLIBOS_VMCB_AT(control.clean_bits, 0x0c0);
VLIBOS_VMCB_AT(control.next_rip, 0x0c8);
VLIBOS_VMCB_AT(control.instruction_bytes_fetched, 0x0d0);
VLIBOS_VMCB_AT(control.avic_backing_page, 0x0e0);
VLIBOS_VMCB_AT(control.vmsa_pa, 0x108);
VLIBOS_VMCB_AT(save.es, 0x400);
VLIBOS_VMCB_AT(save.cs, 0x410);
VLIBOS_VMCB_AT(save.ss, 0x420);
VLIBOS_VMCB_AT(save.ds, 0x430);
VLIBOS_VMCB_AT(save.fs, 0x440);
VLIBOS_VMCB_AT(save.gs, 0x450);
VLIBOS_VMCB_AT(save.gdtr, 0x460);
VLIBOS_VMCB_AT(save.ldtr, 0x470);
VLIBOS_VMCB_AT(save.idtr, 0x480);
VLIBOS_VMCB_AT(save.tr, 0x490);
VLIBOS_VMCB_AT(save.cpl, 0x4cb);
VLIBOS_VMCB_AT(save.efer, 0x4d0);
VLIBOS_VMCB_AT(save.cr4, 0x548);
VLIBOS_VMCB_AT(save.cr3, 0x550);
VLIBOS_VMCB_AT(save.cr0, 0x558);
VLIBOS_VMCB_AT(save.dr7, 0x560);
VLIBOS_VMCB_AT(save.dr6, 0x568);
VLIBOS_VMCB_AT(save.rflags, 0x570);
VLIBOS_VMCB_AT(save.rip, 0x578);
VLIBOS_VMCB_AT(save.rsp, 0x5d8);
VLIBOS_VMCB_AT(save.rax, 0x5f8);
VLIBOS_VMCB_AT(save.star, 0x600);
VLIBOS_VMCB_AT(save.kernel_gs_base, 0x620);
VLIBOS_VMCB_AT(save.sysenter_eip, 0x638);
VLIBOS_VMCB_AT(save.cr2, 0x640);
VLIBOS_VMCB_AT(save.g_pat, 0x668);
VLIBOS_VMCB_AT(save.dbgctl, 0x670);
VLIBOS_VMCB_AT(save.last_exception_to, 0x690);
VLIBOS_VMCB_AT(save.spec_ctrl, 0x6e0);
#undef VLIBOS_VMCB_AT

inline void set_intercept(Vmcb& vmcb, Intercept i, bool on)
{
    unsigned w = intercept_word(i);
    if (on)
        vmcb.control.intercepts[w] |= intercept_mask(i);
    else
        vmcb.control.intercepts[w] &= ~intercept_mask(i);
}

inline bool has_intercept(const Vmcb& vmcb, Intercept i)
{
    return (vmcb.control.intercepts[intercept_word(i)] & intercept_mask(i)) != 0;
}

inline void set_exception_intercept(Vmcb& vmcb, uint8_t vector, bool on)
{
    if (vector >= kExceptionVectors)
        return;
    uint32_t mask = uint32_t{1} << vector;
    if (on)
        vmcb.control.intercepts[kExceptionInterceptWord] |= mask;
    else
        vmcb.control.intercepts[kExceptionInterceptWord] &= ~mask;
}

inline bool has_exception_intercept(const Vmcb& vmcb, uint8_t vector)
{
    return vector < kExceptionVectors && (vmcb.control.intercepts[kExceptionInterceptWord] & (uint32_t{1} << vector)) != 0;
}

} // namespace vlibos::svm

// The one interface between generic VM code and a vendor's hardware virtualisation.
// Two implementations: vmx/ (Intel VMX with EPT, VPID, unrestricted guest, the VMX-preemption
// timer) and svm/ (AMD SVM with NPT and ASIDs). Generic code includes only this header; it
// never includes anything from vmx/ or svm/.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "lib/result.hpp"
#include "vmm/exit.hpp"
#include "vmm/guest_memory.hpp"
#include "vmm/guest_registers.hpp"

namespace vlibos::vmm {

enum class VmError : uint8_t {
    NotSupported,        // the CPU lacks the extension or a feature we require (EPT, NPT, ...)
    DisabledByFirmware,  // IA32_FEATURE_CONTROL locked without VMX, or VM_CR.SVMDIS set
    EnableFailed,        // VMXON failed / EFER.SVME could not be set
    OutOfMemory,
    BadGuestMemory,      // a region the nested page tables cannot express
    BadEntryState,
    HardwareError,       // VMCLEAR/VMPTRLD/VMWRITE failed, or similar
};

const char* describe(VmError error);

// Where and how a vCPU starts.
struct EntryState {
    enum class Mode : uint8_t {
        Real16,       // real mode, CS:IP = (rip >> 4):(rip & 0xf) style: cs_base = rip & ~0xffff, ip = rip & 0xffff
        Protected32,  // protected mode, paging off, flat 4 GiB segments (the Linux 32-bit boot protocol)
    };
    Mode mode = Mode::Real16;
    uint64_t rip = 0;   // linear start address (below 1 MiB for Real16, 4 GiB for Protected32)
    uint64_t rsp = 0;
    // Protected32: the selectors of the flat code (execute/read) and data (read/write) segments,
    // and the GDT that holds them (guest-physical; the guest reloads segments from it).
    uint16_t code_selector = 0;
    uint16_t data_selector = 0;
    uint64_t gdtr_base = 0;
    uint16_t gdtr_limit = 0;
};

// Whether `entry` is one the backends accept: an entry point the mode can address, and for
// Protected32 non-null, distinct selectors inside the GDT limit.
bool entry_state_valid(const EntryState& entry);

// Gives backends zeroed, page-aligned host memory for VMCS/VMCB, bitmaps and nested page
// tables. The kernel implements it over the monitor pool, under a lock.
class PageSource {
public:
    virtual Result<uint64_t, VmError> allocate_zeroed(size_t pages, size_t align_pages = 1) = 0;

protected:
    ~PageSource() = default;
};

// One virtual CPU's hardware state (a VMCS or a VMCB plus its nested page tables). All calls
// for one Vcpu are made on the physical CPU that created it.
class Vcpu {
public:
    // Loads the guest state for `entry`, builds the nested page tables for `memory`, and sets
    // the intercepts: CPUID, HLT, VMCALL/VMMCALL, INVD, WBINVD (VMX: "WBINVD exiting", without
    // which prepare() fails with NotSupported), XSETBV, the exceptions #DB and #AC, physical
    // interrupts and NMIs, triple fault/SHUTDOWN; on VMX the VMX instructions (which always exit)
    // and writes of the CR0/CR4 bits VMX operation fixes, on SVM the SVM instructions (VMRUN,
    // VMLOAD, VMSAVE, STGI, CLGI, SKINIT, INVLPGA). Every I/O port and every MSR is
    // intercepted through the I/O and MSR bitmaps, except IA32_EFER, which is passed through so
    // the guest can enter long mode on its own (on SVM the monitor re-asserts EFER.SVME before
    // every VMRUN). Every other exception goes straight to the guest's IDT.
    virtual Status<VmError> prepare(const GuestMemory& memory, const EntryState& entry, uint16_t tag) = 0;

    // Enters the guest and returns at the next exit with `exit` decoded. `regs` holds the guest's
    // general registers on entry and receives them on exit. A refused entry returns an exit with
    // reason EntryFailed and a description of the failed check (never a silent hang).
    virtual void run(GuestRegisters& regs, ExitInfo& exit) = 0;

    virtual uint64_t rip() const = 0;
    virtual void set_rip(uint64_t rip) = 0;
    virtual uint64_t rsp() const = 0;
    virtual uint64_t rflags() const = 0;
    // The guest's current privilege level (0-3): hypercalls are refused above 0.
    virtual uint8_t cpl() const = 0;

    // Event injection. can_inject_interrupt(): RFLAGS.IF set and no interrupt shadow.
    virtual bool can_inject_interrupt() const = 0;
    virtual void inject_interrupt(uint8_t vector) = 0;      // delivered at the next entry
    // An exception (e.g. #GP(0) for a refused MSR access), delivered at the next entry.
    virtual void inject_exception(uint8_t vector, bool has_error_code, uint32_t error_code) = 0;
    virtual void set_interrupt_window_exit(bool enabled) = 0;

    // Control comes back to the monitor (ExitReason::Timer) after at most `tsc_ticks` of guest time.
    // 0 disarms it.
    virtual void arm_timer(uint64_t tsc_ticks) = 0;

    struct ControlState {
        uint64_t cr0, cr3, cr4, efer;
    };
    virtual ControlState control_state() const = 0;

    // The code segment's hidden state, for re-fetching the instruction behind an exit (MMIO):
    // its base, and the L and D/B attributes that set the code size.
    struct CodeSegment {
        uint64_t base = 0;
        bool long_mode = false;    // L (64-bit code, with EFER.LMA)
        bool default_big = false;  // D/B (32-bit code)
    };
    virtual CodeSegment code_segment() const = 0;

protected:
    ~Vcpu() = default;
};

class Backend {
public:
    virtual const char* name() const = 0;  // "vmx" or "svm"
    // Turns virtualisation on for the calling physical CPU (VMXON / EFER.SVME + host save area).
    virtual Status<VmError> enable_on_this_cpu(PageSource& pages) = 0;
    // A new vCPU bound to the calling physical CPU; nullptr with `error` set on failure.
    virtual Vcpu* create_vcpu(PageSource& pages, VmError& error) = 0;

protected:
    ~Backend() = default;
};

// The backend for this CPU (Intel -> vmx, AMD -> svm), or nullptr with a reason.
Backend* detect_backend(const char** why_not);

} // namespace vlibos::vmm

// Where every interrupt and exception lands. Exceptions in the monitor are bugs or deliberate
// tests: the faulting CPU prints a full register dump naming itself and stops; the others go on.
#include "arch/x86_64/cpu.hpp"
#include "arch/x86_64/interrupts.hpp"
#include "arch/x86_64/lapic.hpp"
#include "arch/x86_64/user_mode.hpp"
#include "core/console.hpp"
#include "core/panic.hpp"
#include "core/percpu.hpp"
#include "core/rt_core.hpp"
#include "lib/format.hpp"

namespace vlibos::x86 {

const char* exception_mnemonic(uint64_t vector)
{
    static const char* const names[32] = {
        "#DE divide error", "#DB debug", "NMI", "#BP breakpoint", "#OF overflow", "#BR bound range",
        "#UD invalid opcode", "#NM device not available", "#DF double fault", "coprocessor overrun",
        "#TS invalid TSS", "#NP segment not present", "#SS stack fault", "#GP general protection",
        "#PF page fault", "reserved", "#MF x87 error", "#AC alignment check", "#MC machine check",
        "#XM SIMD error", "#VE virtualization", "#CP control protection", "reserved", "reserved",
        "reserved", "reserved", "reserved", "reserved", "#HV hypervisor injection",
        "#VC VMM communication", "#SX security", "reserved"};
    return vector < 32 ? names[vector] : "interrupt";
}

} // namespace vlibos::x86

namespace {

using vlibos::PerCpu;
using vlibos::x86::InterruptFrame;

[[noreturn]] void report_exception_and_stop(const InterruptFrame& f)
{
    PerCpu* cpu = vlibos::this_cpu();
    uint32_t index = cpu->index;
    // Formatted whole, then written under one lock hold, so no other CPU's line lands inside it.
    vlibos::FormatBuffer<1024> dump;
    dump.append(
        "vlibos: EXCEPTION #%llu %s on cpu %u (apic %u) error=%#llx\n"
        "  rip=%016llx cs=%04llx rflags=%016llx rsp=%016llx ss=%04llx\n"
        "  cr0=%016llx cr2=%016llx cr3=%016llx cr4=%016llx\n"
        "  rax=%016llx rbx=%016llx rcx=%016llx rdx=%016llx\n"
        "  rsi=%016llx rdi=%016llx rbp=%016llx r8=%016llx\n"
        "  r9=%016llx r10=%016llx r11=%016llx r12=%016llx\n"
        "  r13=%016llx r14=%016llx r15=%016llx\n",
        static_cast<unsigned long long>(f.vector), vlibos::x86::exception_mnemonic(f.vector), index, cpu->apic_id,
        static_cast<unsigned long long>(f.error_code), static_cast<unsigned long long>(f.rip),
        static_cast<unsigned long long>(f.cs), static_cast<unsigned long long>(f.rflags),
        static_cast<unsigned long long>(f.rsp), static_cast<unsigned long long>(f.ss),
        static_cast<unsigned long long>(vlibos::x86::read_cr0()), static_cast<unsigned long long>(vlibos::x86::read_cr2()),
        static_cast<unsigned long long>(vlibos::x86::read_cr3()), static_cast<unsigned long long>(vlibos::x86::read_cr4()),
        static_cast<unsigned long long>(f.rax), static_cast<unsigned long long>(f.rbx),
        static_cast<unsigned long long>(f.rcx), static_cast<unsigned long long>(f.rdx),
        static_cast<unsigned long long>(f.rsi), static_cast<unsigned long long>(f.rdi),
        static_cast<unsigned long long>(f.rbp), static_cast<unsigned long long>(f.r8),
        static_cast<unsigned long long>(f.r9), static_cast<unsigned long long>(f.r10),
        static_cast<unsigned long long>(f.r11), static_cast<unsigned long long>(f.r12),
        static_cast<unsigned long long>(f.r13), static_cast<unsigned long long>(f.r14),
        static_cast<unsigned long long>(f.r15));
    dump.append("vlibos: cpu %u stopped\n", index);
    vlibos::console::write(dump.c_str(), dump.length());
    vlibos::console::release_if_held_by_this_cpu();
    cpu->state = vlibos::CpuState::Stopped;
    // The boot CPU is the one that would report the end of the run; if it is the one that
    // stopped, end the run here so the failure is never a silent hang.
    if (index == 0)
        vlibos::halt_system(static_cast<int>(vlibos::ExitStatus::ExceptionBase) + static_cast<int>(f.vector));
    vlibos::x86::halt_forever();
}

} // namespace

namespace {
vlibos::x86::ForwardedHandler g_forwarded = nullptr;
} // namespace

void vlibos::x86::set_forwarded_handler(ForwardedHandler handler)
{
    __atomic_store_n(&g_forwarded, handler, __ATOMIC_RELEASE);
}

extern "C" void interrupt_dispatch(InterruptFrame* frame)
{
    using namespace vlibos::x86;
    // An NMI is not a fault of the code it interrupted (and with SVM a host NMI that arrived
    // while a guest ran is taken here after the exit): note it and carry on.
    if (frame->vector == kVectorNmi) {
        vlibos::console::print("vlibos: warning: NMI on cpu %u\n", vlibos::this_cpu()->index);
        return;
    }
    // Ring 3 is an RT application: its system calls, faults and the interrupts that stop it go
    // to the RT core, which may resume another thread by rewriting the frame.
    if ((frame->cs & 3) == 3 || frame->vector == kVectorSyscall) {
        vlibos::rt_core::handle_user_trap(*frame);
        return;
    }
    if (frame->vector < kFirstExternalVector)
        report_exception_and_stop(*frame);

    switch (frame->vector) {
    case kVectorLapicTimer:
        vlibos::this_cpu()->timer_fired = 1;
        Lapic::end_of_interrupt();
        return;
    case kVectorKick:
        Lapic::end_of_interrupt();
        return;
    case kVectorSpurious:
        return;
    case kVectorForwardedFirst ... kVectorForwardedFirst + kForwardedVectors - 1:
        if (ForwardedHandler handler = __atomic_load_n(&g_forwarded, __ATOMIC_ACQUIRE))
            handler(static_cast<unsigned>(frame->vector - kVectorForwardedFirst));
        Lapic::end_of_interrupt();
        return;  // spurious interrupts take no EOI (SDM Vol. 3 §11.9)
    default:
        vlibos::console::print("vlibos: warning: unexpected interrupt vector %llu on cpu %u\n",
                               static_cast<unsigned long long>(frame->vector), vlibos::this_cpu()->index);
        Lapic::end_of_interrupt();
        return;
    }
}

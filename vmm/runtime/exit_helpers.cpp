#include "vmm/runtime/exit_helpers.hpp"

#include "arch/x86_64/cpu.hpp"
#include "arch/x86_64/lapic_timer.hpp"
#include "core/percpu.hpp"

namespace vlibos::vmm {

void emulate_cpuid(GuestRegisters& regs, const GuestCpu& guest)
{
    auto leaf = static_cast<uint32_t>(regs.rax);
    auto subleaf = static_cast<uint32_t>(regs.rcx);
    x86::CpuidResult host = x86::cpuid(leaf, subleaf);
    CpuidResult seen = filter_cpuid(leaf, subleaf, CpuidResult{host.eax, host.ebx, host.ecx, host.edx}, guest);
    regs.rax = seen.eax;
    regs.rbx = seen.ebx;
    regs.rcx = seen.ecx;
    regs.rdx = seen.edx;
}

void take_pending_host_interrupt()
{
    x86::enable_interrupts();
    asm volatile("nop");
    x86::disable_interrupts();
}

bool reinject_guarded_exception(Vcpu& vcpu, const ExitInfo& exit)
{
    constexpr uint8_t kVectorDebug = 1;            // #DB
    constexpr uint8_t kVectorAlignmentCheck = 17;  // #AC
    if (exit.exception_vector != kVectorDebug && exit.exception_vector != kVectorAlignmentCheck)
        return false;
    vcpu.inject_exception(exit.exception_vector, exit.exception_has_error_code, exit.exception_error_code);
    return true;
}

void idle_until(uint64_t deadline)
{
    PerCpu* self = this_cpu();
    self->lapic_timer.arm_at(deadline);
    // STI's one-instruction shadow covers HLT: an interrupt that is already pending wakes the HLT
    // instead of being taken before it (SDM Vol. 2B, STI).
    asm volatile("sti; hlt; cli" ::: "memory");
    self->lapic_timer.stop();
}

} // namespace vlibos::vmm

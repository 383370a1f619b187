// Exit handling both VM runtimes (the test VMs in vm.cpp, the Linux VM in linux_vm.cpp) do the
// same way.
#pragma once

#include "vmm/backend.hpp"
#include "vmm/cpuid_policy.hpp"
#include "vmm/guest_registers.hpp"

namespace vlibos::vmm {

// CPUID with the guest's EAX/ECX: runs the instruction on this CPU and writes the policy's view
// (filter_cpuid) into the guest's registers.
void emulate_cpuid(GuestRegisters& regs, const GuestCpu& guest);

// After an external-interrupt exit the interrupt is still pending in this CPU's LAPIC: open a
// one-instruction window so the monitor's own handler takes it.
void take_pending_host_interrupt();

// #DB and #AC are intercepted only so that a guest cannot make their delivery loop forever inside
// the CPU (CVE-2015-5307, CVE-2015-8104): hands such an exit back to the guest and returns true;
// false for any other intercepted exception.
bool reinject_guarded_exception(Vcpu& vcpu, const ExitInfo& exit);

} // namespace vlibos::vmm

namespace vlibos::vmm {

// A halted vCPU's physical CPU sleeps (HLT) until TSC `deadline`, or until any host interrupt
// (a kick from another CPU) wakes it: the monitor's LAPIC timer is armed for the deadline.
void idle_until(uint64_t deadline);

} // namespace vlibos::vmm

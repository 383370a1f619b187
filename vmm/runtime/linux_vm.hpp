// The Linux VM: one vCPU on every CPU of the Linux partition. vCPU 0 loads Linux
// (linux_loader.hpp) and enters it at its 32-bit entry; the others wait, as application
// processors on a PC do, for INIT and STARTUP IPIs from Linux. The VM's platform is the monitor's
// virtual local APICs and I/O APIC (linux_board.hpp) and its console COM2 (ports 0x2f8-0x2ff);
// every other port is an empty bus, including the reset and power-off ports.
//
// Anything the VM does that the monitor does not emulate stops the whole VM (every vCPU) with a
// report naming the exit and the guest's RIP; the RT partition runs on undisturbed.
#pragma once

#include <stdint.h>

namespace vlibos {
struct Machine;
}

namespace vlibos::vmm {

// Whether the boot modules hold a Linux kernel and this configuration has a Linux partition.
bool linux_vm_configured(const Machine& machine);
// True for the CPUs that run one of the Linux VM's vCPUs (the Linux partition's CPUs).
bool runs_linux_vcpu(const Machine& machine, uint32_t cpu);
// Runs this CPU's vCPU of the Linux VM until the VM stops; then returns (the caller parks the CPU).
void linux_vm_main(Machine& machine, uint32_t cpu);

// The VM's life, for RT applications that depend on Linux's services (any CPU may ask).
enum class LinuxVmState : uint8_t {
    Absent = 0,    // no Linux partition or no kernel module
    Starting = 1,  // being loaded, or not yet entered
    Running = 2,   // its vCPUs run
    Stopped = 3,   // it stopped (halt, power-off, crash, or something the monitor refused)
};
LinuxVmState linux_vm_state();
// Called once at boot when the VM is configured, before any RT application runs: from then on
// the state is at least Starting.
void linux_vm_announce();

} // namespace vlibos::vmm

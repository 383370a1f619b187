// The Linux VM, first stage: the monitor loads the Linux kernel, initramfs and command line from
// GRUB modules (vlibos.linux:kernel, :initrd, :cmdline), lays them out in the Linux partition
// through the x86 boot protocol (vmm/linux/), and enters the kernel on the partition's first CPU
// at its 32-bit entry. Linux's console is the second serial port (COM2, ports 0x2f8-0x2ff, given
// to the Linux partition), so its early output reaches COM2.
//
// What the VM does not have yet (the local APIC, IOAPIC, PCI and the MSRs a 64-bit kernel
// needs: emulated in the next stage) stops it cleanly: the monitor reports the stop with the
// guest's RIP and the exit, and the RT partition runs on undisturbed.
#pragma once

#include <stdint.h>

namespace vlibos {
struct Machine;
}

namespace vlibos::vmm {

// Whether the boot modules hold a Linux kernel and this configuration has a Linux partition.
bool linux_vm_configured(const Machine& machine);
// True for the CPU that runs the Linux VM's boot vCPU (the Linux partition's first CPU).
bool runs_linux_boot_vcpu(const Machine& machine, uint32_t cpu);
// Runs the Linux VM on the calling CPU until it stops; then returns (the caller parks the CPU).
void linux_vm_main(Machine& machine, uint32_t cpu);

} // namespace vlibos::vmm

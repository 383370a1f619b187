// Loading Linux into its partition through the x86 boot protocol: the monitor takes the kernel,
// initramfs and command line from GRUB modules (vlibos.linux:kernel, :initrd, :cmdline), lays
// them out with vmm/linux/ (bzImage header, zero page and e820, MP table), copies them to their
// guest-physical addresses (which are their host addresses, GPA == HPA, except the guest's first
// MiB) and builds the guest memory map. It writes every refusal as one console line.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "vmm/backend.hpp"
#include "vmm/guest_memory.hpp"

namespace vlibos {
struct Machine;
}

namespace vlibos::vmm {

struct LinuxImage {
    GuestMemory memory;
    EntryState entry;    // the boot vCPU's 32-bit entry
    uint64_t rsi = 0;    // the zero page, for the entry
    size_t vcpus = 0;    // one per CPU of the partition (APIC IDs 0..vcpus-1, the MP table's)
    uint8_t ioapic_id = 0;
};

// The configuration's Linux partition, or -1.
int linux_partition_index(const Machine& machine);

class LinuxPci;

// Loads the modules into the Linux partition; false (with the reason printed) if they cannot be
// used. `pci`'s assigned functions go into the MP table and their BARs into the memory map.
bool load_linux(Machine& machine, LinuxImage& out, const LinuxPci& pci);

} // namespace vlibos::vmm

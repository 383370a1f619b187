// The VM test harness (kernel command line vlibos.vmtest=all or a comma list of scenarios).
// Every CPU of the Linux partition runs the test guest (tests/guests/vm_test_guest.S) through
// each scenario, one fresh VM per scenario, while the boot CPU keeps a heartbeat going to show
// that the rest of the machine runs on. Each outcome is checked against what the monitor's
// policy says must happen, and printed.
#pragma once

#include <stdint.h>

namespace vlibos {
struct Machine;
}

namespace vlibos::vmm {

// Parses vlibos.vmtest=...; panics on an unknown scenario name. False when not requested.
bool parse_vm_tests(const char* cmdline);
bool vm_tests_requested();

// On an application processor of the Linux partition, after it reported online.
void vm_test_cpu_main(Machine& machine, uint32_t cpu);

// On the boot CPU, after all CPUs are online: starts the VM CPUs, keeps a heartbeat, waits for
// them, prints the summary. Returns true if every scenario passed on every VM CPU.
bool supervise_vm_tests(Machine& machine);

} // namespace vlibos::vmm

#!/usr/bin/env python3
"""Boot with vlibos.vmtest=all: every CPU of the Linux partition runs the test guest through each
scenario on the emulator's backend (QEMU: SVM, Bochs: VMX), while CPU 0 keeps a heartbeat. Each
scenario must end as the monitor's policy says, and the monitor must report every stop."""
import os
import re
import sys

import serial_checks as sc

BACKEND = {"qemu": "svm", "bochs": "vmx", "kvm": "vmx"}
SCENARIOS = ["cpuid", "hypercall", "ports", "readonly", "outside", "timer", "longmode", "spin", "triplefault", "usermode"]
RESULT_RE = re.compile(r"^vlibos: vmtest cpu (\d+) (vm-[ab]) (\w+): (passed|FAILED)(.*)$")
BACKEND_RE = re.compile(r"^vlibos: vmtest cpu (\d+): (\w+) backend, (vm-[ab]) in host memory")
STOPPED_RE = re.compile(r"^vlibos: vm (vm-[ab]) stopped: (.+?) at guest rip (0x[0-9a-f]+|0), gpa (0x[0-9a-f]+|0); exit (\S+)")
EXITS_RE = re.compile(r"^vlibos: vm (vm-[ab]) exits on cpu (\d+):(.*)$")
HYPERCALL_RE = re.compile(r"^vlibos: vm (vm-[ab]) hypercall: (\d+) calls, round trip min (\d+) cycles, "
                          r"handling avg (\d+) cycles \(tsc (\d+) kHz\)")
HEARTBEAT_RE = re.compile(r"^vlibos: cpu 0 heartbeat: (\d+) beats every (\d+) us while VMs ran, longest gap (\d+) us")
SUMMARY_RE = re.compile(r"^vlibos: vm tests \((\w+)\): (\d+) scenarios passed, (\d+) failed")


def main():
    args = sc.parse_args(__doc__)
    c = sc.Checker("vmtest_%s_smp%d" % (args.emulator, args.smp))
    b = sc.boot(args, cmdline="vlibos.vmtest=all")
    sc.check_halted(c, b, status=0)
    sc.check_no_faults(c, b)

    expected = sc.expected_partitions(os.path.join(args.configs, "%dcpu.cfg" % args.smp))
    vm_cpus = sorted(cpu for cpu, (_, kind) in expected.items() if kind == "linux")[:2]
    backends = {int(m.group(1)): m.group(2) for _, m in b.matching(BACKEND_RE)}
    for cpu in vm_cpus:
        c.check(backends.get(cpu) == BACKEND[args.emulator],
                "cpu %d ran backend %s, expected %s" % (cpu, backends.get(cpu), BACKEND[args.emulator]))

    results = {(int(m.group(1)), m.group(3)): m.group(4) for _, m in b.matching(RESULT_RE)}
    for cpu in vm_cpus:
        for name in SCENARIOS:
            c.check(results.get((cpu, name)) == "passed",
                    "scenario %s on cpu %d: %s" % (name, cpu, results.get((cpu, name), "no result line")))

    # What the guest printed through the hypercall and the debug port reached the console.
    c.check(any("says: hello from the guest" in line for line in b.lines), "no 'hello from the guest' console line")
    c.check(any("port 0xe9: port io ok" in line for line in b.lines), "no 'port io ok' debug-port line")

    # The two memory stops are reported with the guest RIP and the faulting address.
    stops = [(m.group(2), int(m.group(4), 16), int(m.group(3), 16)) for _, m in b.matching(STOPPED_RE)]
    c.check(any(kind.startswith("access the guest memory map does not allow") and gpa == 0x200000 and rip != 0
                for kind, gpa, rip in stops), "no stop report for the write to the read-only page at 0x200000")
    c.check(any(kind.startswith("access outside the VM's memory") and gpa == 0x40000000 and rip != 0
                for kind, gpa, rip in stops), "no stop report for the access outside the VM at 0x40000000")
    c.check(any(kind == "triple fault" for kind, _, _ in stops), "no stop report for the guest's triple fault")

    # Exit accounting is printed per VM, with the hypercall round trip.
    c.check(len(b.matching(EXITS_RE)) == len(vm_cpus), "expected one exit-count line per VM")
    for _, m in b.matching(HYPERCALL_RE):
        print("test: %s hypercalls %s, round trip min %s cycles, handling avg %s cycles, tsc %s kHz"
              % m.groups())
        c.check(int(m.group(2)) >= 1000, "%s made %s hypercalls, expected at least the 1000 of 'spin'"
                % (m.group(1), m.group(2)))

    beat = b.matching(HEARTBEAT_RE)
    if c.check(bool(beat), "no cpu 0 heartbeat summary"):
        print("test: cpu 0 heartbeat: %s beats, longest gap %s us" % (beat[0][1].group(1), beat[0][1].group(3)))
        c.check(int(beat[0][1].group(1)) > 0, "cpu 0 did not beat while the VMs ran")
    summary = b.matching(SUMMARY_RE)
    if c.check(bool(summary), "no VM test summary"):
        c.check(summary[0][1].group(3) == "0", "the summary reports failures")
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())

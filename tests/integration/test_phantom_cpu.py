#!/usr/bin/env python3
"""Boot with vlibos.selftest=phantom-cpu: after the real CPUs, the monitor tries to start a CPU at
an APIC ID no CPU has. It must name the CPU that did not start and halt with status 2, in order."""
import os
import re
import sys

import serial_checks as sc

CPU_DID_NOT_START = 2
PANIC_RE = re.compile(r"^vlibos: PANIC: cpu (\d+) \(apic (\d+)\) did not start after INIT-SIPI-SIPI")


def main():
    args = sc.parse_args(__doc__)
    c = sc.Checker("phantom_cpu_%s_smp%d" % (args.emulator, args.smp))
    b = sc.boot(args, cmdline="vlibos.selftest=phantom-cpu")
    sc.check_halted(c, b, status=CPU_DID_NOT_START)
    sc.check_no_faults(c, b, allow_panic=True)
    sc.check_cpus_online(c, b, args.smp, os.path.join(args.configs, "%dcpu.cfg" % args.smp))
    panic = b.matching(PANIC_RE)
    if c.check(bool(panic), "no PANIC line naming the CPU that did not start"):
        c.check(int(panic[0][1].group(1)) == args.smp, "the phantom is cpu %s, expected %d"
                % (panic[0][1].group(1), args.smp))
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())

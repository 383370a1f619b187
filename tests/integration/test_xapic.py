#!/usr/bin/env python3
"""Boot with vlibos.xapic on a CPU that has x2APIC (Bochs' Skylake-X): every CPU must come up,
take its timer interrupt and report itself in xAPIC (MMIO) mode, so both LAPIC modes are tested
on the same CPU model."""
import os
import re
import sys

import serial_checks as sc

LAPIC_RE = re.compile(r"^vlibos: cpu (\d+) lapic (xapic|x2apic), timer (\S+) fired after (\d+) us")
FEATURES_RE = re.compile(r"^vlibos: cpu .* x2apic (yes|no),")


def main():
    args = sc.parse_args(__doc__)
    c = sc.Checker("xapic_%s_smp%d" % (args.emulator, args.smp))
    b = sc.boot(args, cmdline="vlibos.xapic")
    sc.check_halted(c, b, status=0)
    sc.check_no_faults(c, b)
    sc.check_cpus_online(c, b, args.smp, os.path.join(args.configs, "%dcpu.cfg" % args.smp))
    features = b.matching(FEATURES_RE)
    c.check(bool(features) and features[0][1].group(1) == "yes",
            "the CPU should offer x2APIC, so that forcing xAPIC means something")
    modes = {int(m.group(1)): m.group(2) for _, m in b.matching(LAPIC_RE)}
    c.check(modes == {cpu: "xapic" for cpu in range(args.smp)}, "LAPIC modes %s, expected xapic on every cpu" % modes)
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())

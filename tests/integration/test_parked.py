#!/usr/bin/env python3
"""Boot the 2-CPU default configuration on a 4-CPU machine (vlibos.config=2cpu): CPUs 0 and 1 come
online in their partitions, CPUs 2 and 3 are named as not started because no partition assigns
them, the configuration warns about them, and the boot still succeeds."""
import os
import re
import sys

import serial_checks as sc

NOT_STARTED_RE = re.compile(r"^vlibos: cpu (\d+) apic (\d+) not started: no partition assigns it\s*$")
SUMMARY_RE = re.compile(r"^vlibos: all (\d+) assigned cpus online; (\d+) cpus not started\s*$")
WARNING_RE = re.compile(r"^vlibos: warning: (.*)$")


def main():
    args = sc.parse_args(__doc__)
    c = sc.Checker("parked_%s_smp%d" % (args.emulator, args.smp))
    b = sc.boot(args, cmdline="vlibos.config=2cpu")
    sc.check_halted(c, b, status=0)
    sc.check_no_faults(c, b)
    expected = sc.expected_partitions(os.path.join(args.configs, "2cpu.cfg"))
    online = {int(m.group(1)): (m.group(3), m.group(4)) for _, m in b.matching(sc.ONLINE_RE)}
    c.check(online == expected, "online cpus %s, expected %s" % (online, expected))
    parked = sorted(int(m.group(1)) for _, m in b.matching(NOT_STARTED_RE))
    c.check(parked == [2, 3], "cpus named as not started: %s, expected [2, 3]" % parked)
    summary = b.matching(SUMMARY_RE)
    c.check(bool(summary) and summary[0][1].groups() == ("2", "2"),
            "no 'all 2 assigned cpus online; 2 cpus not started' line")
    warned = [m.group(1) for _, m in b.matching(WARNING_RE)]
    c.check(any("cpu 2" in w or "cpus 2-3" in w for w in warned),
            "no configuration warning about the unassigned cpus (warnings: %s)" % warned)
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())

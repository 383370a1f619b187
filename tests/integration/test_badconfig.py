#!/usr/bin/env python3
"""Boot a configuration that names CPUs the machine lacks: a clear error and a clean failure status."""
import os
import re
import sys

import serial_checks as sc

CONFIG = os.path.join(sc.HERE, "configs", "linux_cpus_2_3.cfg")
MISSING_CPU = 2


def main():
    args = sc.parse_args(__doc__)
    c = sc.Checker("badconfig_%s_smp%d" % (args.emulator, args.smp))
    b = sc.boot(args, config=CONFIG)
    sc.check_halted(c, b, nonzero=True)
    sc.check_no_faults(c, b, allow_errors=True, allow_panic=True)
    named = False
    for _, m in b.matching(sc.ERROR_RE):
        text = m.group(1)
        cpus = re.search(r"\bcpus? ([0-9][0-9,\-]*)", text)
        if "not present" in text and cpus and MISSING_CPU in sc.parse_cpus(cpus.group(1).strip("-,")):
            named = True
    c.check(named, "no 'vlibos: error:' line saying cpu %d is not present" % MISSING_CPU)
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())

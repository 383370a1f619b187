#!/usr/bin/env python3
"""Boot the default system: status 0, every CPU online in the partition its default config gives it."""
import os
import sys

import serial_checks as sc


def main():
    args = sc.parse_args(__doc__)
    c = sc.Checker("boot_%s_smp%d" % (args.emulator, args.smp))
    b = sc.boot(args)
    sc.check_halted(c, b, status=0)
    sc.check_cpus_online(c, b, args.smp, os.path.join(args.configs, "%dcpu.cfg" % args.smp))
    sc.check_no_faults(c, b)
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())

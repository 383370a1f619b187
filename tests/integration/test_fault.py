#!/usr/bin/env python3
"""Boot with vlibos.selftest=fault: a core faults and the kernel dumps its registers and stops it."""
import sys

import serial_checks as sc


def main():
    args = sc.parse_args(__doc__)
    c = sc.Checker("fault_%s_smp%d" % (args.emulator, args.smp))
    b = sc.boot(args, cmdline="vlibos.selftest=fault")
    # Whatever status the kernel reports is accepted, but it must report one.
    sc.check_halted(c, b)
    sc.check_exception_dump(c, b, args.smp)
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())

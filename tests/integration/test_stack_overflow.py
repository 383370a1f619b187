#!/usr/bin/env python3
"""Boot with vlibos.selftest=stack-overflow: the last CPU recurses off its stack. The unmapped guard
page below the stack must stop it with a double fault (taken on the IST stack) naming that CPU,
with the faulting address right below the stack pointer; only that CPU stops."""
import re
import sys

import serial_checks as sc

DOUBLE_FAULT = 8
CARRIES_ON_RE = re.compile(r"^vlibos: selftest stack-overflow: cpu (\d+) stopped after its fault; cpu 0 carries on")


def main():
    args = sc.parse_args(__doc__)
    c = sc.Checker("stack_overflow_%s_smp%d" % (args.emulator, args.smp))
    b = sc.boot(args, cmdline="vlibos.selftest=stack-overflow")
    sc.check_halted(c, b, status=0)
    sc.check_no_faults(c, b, allow_exception=True)
    found = sc.check_exception_dump(c, b, args.smp)
    if found:
        vector, cpu, regs = found
        c.check(vector == DOUBLE_FAULT, "exception vector %d, expected #DF (8)" % vector)
        c.check(cpu == args.smp - 1, "the dump names cpu %d, expected the last cpu %d" % (cpu, args.smp - 1))
        cr2, rsp = int(regs.get("cr2", "0"), 16), int(regs.get("rsp", "0"), 16)
        c.check(cr2 != 0 and cr2 < rsp and rsp - cr2 <= 64,
                "cr2=%#x should lie just below rsp=%#x (a push into the guard page)" % (cr2, rsp))
    c.check(bool(b.matching(CARRIES_ON_RE)), "the boot cpu did not report that it carried on")
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())

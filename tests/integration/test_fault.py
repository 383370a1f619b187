#!/usr/bin/env python3
"""Boot with vlibos.selftest=fault: the last CPU writes to the monitor's read-only text. The page
fault must be dumped with that CPU named, only that CPU stops, and the boot CPU finishes the run."""
import re
import sys

import serial_checks as sc

PAGE_FAULT = 14
WRITE_TO_PRESENT_PAGE = 0x3  # #PF error code: P=1 (protection), W/R=1 (write); SDM Vol. 3 §4.7
SELFTEST_RE = re.compile(r"^vlibos: selftest: cpu (\d+) writes to the monitor's read-only text at 0x([0-9a-f]+)")
CARRIES_ON_RE = re.compile(r"^vlibos: selftest fault: cpu (\d+) stopped after its fault; cpu 0 carries on")
ERROR_CODE_RE = re.compile(r"error=(0x[0-9a-f]+|0)")


def main():
    args = sc.parse_args(__doc__)
    c = sc.Checker("fault_%s_smp%d" % (args.emulator, args.smp))
    b = sc.boot(args, cmdline="vlibos.selftest=fault")
    sc.check_halted(c, b, status=0)
    sc.check_no_faults(c, b, allow_exception=True)
    found = sc.check_exception_dump(c, b, args.smp)
    target = b.matching(SELFTEST_RE)
    if c.check(bool(target), "no selftest line naming the faulting cpu and address") and found:
        vector, cpu, regs = found
        expected_cpu, address = int(target[0][1].group(1)), int(target[0][1].group(2), 16)
        c.check(expected_cpu == args.smp - 1, "the fault ran on cpu %d, expected the last cpu %d"
                % (expected_cpu, args.smp - 1))
        c.check(vector == PAGE_FAULT, "exception vector %d, expected #PF (14)" % vector)
        c.check(cpu == expected_cpu, "the dump names cpu %d, the fault ran on cpu %d" % (cpu, expected_cpu))
        c.check(int(regs.get("cr2", "0"), 16) == address,
                "cr2=%s, expected the text address %#x" % (regs.get("cr2"), address))
        exc_line = b.matching(sc.EXCEPTION_RE)[0][1].string
        code = ERROR_CODE_RE.search(exc_line)
        c.check(code is not None and int(code.group(1), 16) == WRITE_TO_PRESENT_PAGE,
                "error code %s, expected 0x3 (write to a present read-only page)" % (code and code.group(1)))
    c.check(bool(b.matching(CARRIES_ON_RE)) or args.smp == 1,
            "the boot cpu did not report that the faulting cpu stopped while it carried on")
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())

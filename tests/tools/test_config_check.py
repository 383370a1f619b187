#!/usr/bin/env python3
"""vlibos-config-check, the host-side configuration checker: the defaults pass on the CPU count
they are named after and show their app admitted; a configuration naming absent CPUs fails with
the CPU named; RT apps whose VCPUs the scheduler cannot admit fail with the monitor's refusal
message, in the monitor's order (rate-monotonic bound, explicit-priority response time); app errors from the parser are
reported; a file that cannot be read is a usage error."""
import os
import subprocess
import sys
import tempfile

HEADER = """version = 1
[monitor]
memory = 32M
[partition rt]
kind = rt
cpus = 0-1
memory = 64M
"""

# Two Main VCPUs on one rate-monotonic core: 3/5 + 4/10 = 1.0 > 2(2^(1/2)-1) = 0.828427.
OVERLOADED = HEADER + """
[app hog]
module = periodic
cpu = 0
vcpu = a 3ms 5ms
vcpu = b 4ms 10ms
vcpu = c 1ms 100ms
[app light]
module = periodic
cpu = 1
vcpu = main 1ms 10ms
[app greedy]
module = periodic
cpu = 0
vcpu = main 1ms 2ms
vcpu = other 1ms 100ms
"""

# Explicit priorities admit a harmonic set up to utilisation 1.0 (2/4 + 4/8), which the
# rate-monotonic bound (0.828427 for 2) would refuse.
EXPLICIT_OK = HEADER.replace("memory = 64M", "memory = 64M\nscheduling = explicit") + """
[app pri]
module = periodic
cpu = 1
vcpu = main 4ms 8ms priority 1
vcpu = fast 2ms 4ms priority 0
"""

# The same partition, priorities against the periods: 3/5 at priority 1 misses behind 3/10 at 0.
EXPLICIT_MISS = HEADER.replace("memory = 64M", "memory = 64M\nscheduling = explicit") + """
[app pri]
module = periodic
cpu = 1
vcpu = main 3ms 5ms priority 1
vcpu = slow 3ms 10ms priority 0
"""

PARSE_ERRORS = HEADER + """
[app bad]
module = periodic
cpu = 3
vcpu = main 30ms 20ms
"""


def run(checker, *args):
    p = subprocess.run([checker, *args], capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout + p.stderr


def main():
    checker, defaults, bad_config = sys.argv[1:4]
    failures = []
    checks = []

    def expect(ok, what, out=None):
        print(("ok: " if ok else "FAIL: ") + what)
        checks.append(what)
        if not ok:
            failures.append(what)
            if out is not None:
                print("  output was:\n" + "\n".join("    " + line for line in out.splitlines()))

    for cpus in (1, 2, 4):
        rc, out = run(checker, "%s/%dcpu.cfg" % (defaults, cpus), "--cpus", str(cpus))
        expect(rc == 0, "%dcpu.cfg on %d cpus exits 0 (got %d)" % (cpus, cpus, rc), out)
        expect("rt" in out and "monitor pool" in out, "%dcpu.cfg output shows the plan" % cpus, out)
        app_cpu = 1 if cpus == 4 else 0
        expect("periodic         periodic         %d    2 MiB      64 KiB     periods=100" % app_cpu in out,
               "%dcpu.cfg shows the app periodic on cpu %d" % (cpus, app_cpu), out)
        expect("  fast           1 ms       5 ms       0.200000     -         admitted" in out,
               "%dcpu.cfg shows each vcpu with C, T and its utilisation" % cpus, out)
        expect("cpu %d (partition rt, rate-monotonic): 4 vcpus admitted, utilisation 0.550000, bound 0.756828"
               % app_cpu in out, "%dcpu.cfg shows the core's load against the bound" % cpus, out)

    rc, out = run(checker, bad_config, "--cpus", "2")
    expect(rc == 1, "a config with absent cpus exits 1 (got %d)" % rc, out)
    expect("cpus 2-3 are not present (the machine has 2 CPUs)" in out, "the error names the absent cpus", out)

    with tempfile.TemporaryDirectory() as tmp:
        def write(name, text):
            path = os.path.join(tmp, name)
            with open(path, "w") as f:
                f.write(text)
            return path

        path = write("overloaded.cfg", OVERLOADED)
        rc, out = run(checker, path, "--cpus", "2")
        expect(rc == 1, "an over-utilised rate-monotonic core exits 1 (got %d)" % rc, out)
        expect("%s: error: app 'hog' vcpu 'b' on cpu 0: admission refused: utilisation 1.000000 (before 0.600000) "
               "would exceed the rate-monotonic bound n(2^(1/n)-1) = 0.828427 for n = 2 Main VCPUs" % path in out,
               "the refusal is the monitor's message, naming app, vcpu and cpu", out)
        expect("  b              4 ms       10 ms      0.400000     -         REFUSED" in out,
               "the table marks the refused vcpu", out)
        expect("  c              1 ms       100 ms     0.010000     -         admitted" in out,
               "later vcpus of the app are still tried", out)
        expect("cpu 1 (partition rt, rate-monotonic): 1 vcpu admitted" in out, "other cores are unaffected", out)
        expect("error: app 'greedy' vcpu 'main' on cpu 0: admission refused: utilisation 1.110000 (before "
               "0.610000)" in out, "a second app on the core is refused against what was admitted", out)
        expect("  other          1 ms       100 ms     0.010000     -         not tried" in out,
               "an app whose first vcpu is refused does not try the others", out)
        expect("note: app 'greedy' not started: its first VCPU was refused" in out,
               "the app that cannot start is named", out)
        expect("%s: 2 errors" % path in out, "exactly two refusals are counted", out)

        path = write("explicit_ok.cfg", EXPLICIT_OK)
        rc, out = run(checker, path, "--cpus", "2")
        expect(rc == 0, "an explicit-priority core at utilisation 1.0 exits 0 (got %d)" % rc, out)
        expect("  main           4 ms       8 ms       0.500000     1         admitted" in out,
               "the table shows explicit priorities", out)
        expect("cpu 1 (partition rt, explicit priorities): 2 vcpus admitted, utilisation 1.000000" in out,
               "the explicit core is summarised", out)

        path = write("explicit_miss.cfg", EXPLICIT_MISS)
        rc, out = run(checker, path, "--cpus", "2")
        expect(rc == 1, "an explicit-priority core with a deadline miss exits 1 (got %d)" % rc, out)
        expect("error: app 'pri' vcpu 'slow' on cpu 1: admission refused: with explicit priorities VCPU 0 would "
               "have a worst-case response time above" in out, "the refusal names the response-time test", out)

        path = write("parse_errors.cfg", PARSE_ERRORS)
        rc, out = run(checker, path, "--cpus", "4")
        expect(rc == 1, "app errors exit 1 (got %d)" % rc, out)
        expect("error: line 11: app 'bad': cpu 3 is in no partition; an app needs a cpu of the rt partition "
               "(rt cpus: 0-1)" in out, "a cpu outside the rt partition is named", out)
        expect("error: line 12: app 'bad': vcpu 'main': budget 30 ms is longer than its period 20 ms" in out,
               "a budget above the period is named", out)

    rc, out = run(checker, "/nonexistent/vlibos.cfg")
    expect(rc == 2, "an unreadable file exits 2 (got %d)" % rc, out)
    expect("cannot read" in out, "an unreadable file is named", out)

    print("%d passed, %d failed" % (len(checks) - len(failures), len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

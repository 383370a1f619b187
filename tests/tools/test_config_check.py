#!/usr/bin/env python3
"""vlibos-config-check, the host-side configuration checker: the defaults pass on the CPU count
they are named after, a configuration naming absent CPUs fails with the CPU named, and a file
that cannot be read is a usage error."""
import subprocess
import sys


def run(checker, *args):
    p = subprocess.run([checker, *args], capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout + p.stderr


def main():
    checker, defaults, bad_config = sys.argv[1:4]
    failures = []
    checks = []

    def expect(ok, what):
        print(("ok: " if ok else "FAIL: ") + what)
        checks.append(what)
        if not ok:
            failures.append(what)

    for cpus in (1, 2, 4):
        rc, out = run(checker, "%s/%dcpu.cfg" % (defaults, cpus), "--cpus", str(cpus))
        expect(rc == 0, "%dcpu.cfg on %d cpus exits 0 (got %d)" % (cpus, cpus, rc))
        expect("rt" in out and "monitor pool" in out, "%dcpu.cfg output shows the plan" % cpus)

    rc, out = run(checker, bad_config, "--cpus", "2")
    expect(rc == 1, "a config with absent cpus exits 1 (got %d)" % rc)
    expect("cpus 2-3 are not present (the machine has 2 CPUs)" in out, "the error names the absent cpus")

    rc, out = run(checker, "/nonexistent/vlibos.cfg")
    expect(rc == 2, "an unreadable file exits 2 (got %d)" % rc)
    expect("cannot read" in out, "an unreadable file is named")

    print("%d passed, %d failed" % (len(checks) - len(failures), len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

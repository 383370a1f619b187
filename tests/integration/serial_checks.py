"""Shared code of the integration tests: boot through tools/runner.py, read the serial log, check it.

Each test script builds a Checker, calls boot(), and runs checks on the Boot it returns; the
script exits 0 when every check passed. The expected partitions come from an independent
reading of the default configuration files with configparser, not from the kernel's parser.
"""

import argparse
import configparser
import json
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
RUNNER = os.path.join(ROOT, "tools", "runner.py")
DEFAULT_CONFIGS = os.path.join(ROOT, "kernel", "config", "defaults")

STATUS_RE = re.compile(r"^vlibos: system halted, status=(-?\d+)\s*$")
ONLINE_RE = re.compile(r"^vlibos: cpu (\d+) apic (\d+) online: partition (\S+) \(([^)]*)\)\s*$")
ALL_ONLINE_RE = re.compile(r"^vlibos: all (\d+) cpus online\s*$")
EXCEPTION_RE = re.compile(r"^vlibos: EXCEPTION #(\d+) (.+?) on cpu (\d+) \(apic (\d+)\) error=(\S+)")
PANIC_RE = re.compile(r"^vlibos: PANIC: ")
ERROR_RE = re.compile(r"^vlibos: error: (.*)$")
REGISTER_RE = re.compile(r"\b([a-z][a-z0-9]*)=((?:0x)?[0-9a-fA-F]+)\b")

DUMP_REGISTERS = ["rip", "rsp", "rflags", "cr2", "cr3", "rax", "rbx", "rcx", "rdx", "rsi", "rdi",
                  "rbp"] + ["r%d" % i for i in range(8, 16)]


def parse_args(description):
    """Options every test takes (CTest passes them from tests/integration/CMakeLists.txt)."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--emulator", default="qemu", choices=["qemu", "bochs", "kvm"])
    ap.add_argument("--smp", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=60, help="runner timeout, seconds")
    ap.add_argument("--run-dir", required=True, help="this test's own folder for logs and ISOs")
    ap.add_argument("--iso", help="prebuilt ISO with the default configurations")
    ap.add_argument("--kernel", help="kernel ELF, for tests that need a per-run ISO")
    ap.add_argument("--configs", default=DEFAULT_CONFIGS,
                    help="default configurations: put in the ISO, and the oracle's source")
    ap.add_argument("--memory", type=int, default=512)
    ap.add_argument("--apps-dir", help="built RT applications (*.elf), for per-run ISOs")
    ap.add_argument("--icount", type=int, help="QEMU: deterministic virtual time (2^N ns per instruction)")
    ap.add_argument("--scenario", help="for tests that run several scenarios")
    ap.add_argument("--linux-dir", help="the guest kernel and initramfs (tools/vlibos linux)")
    return ap.parse_args()


class Boot:
    """The outcome of one boot: runner exit code and the serial lines.

    COM2 (the Linux VM's console): `com2` is its whole transcript (text, \\r removed),
    `com2_lines` the same split into lines, `com2_log` the file. With a COM2 script, `script` is
    the runner's report (None otherwise): {"ok": bool, "failure": text or None, "connected": bool,
    "total": N, "steps": [{"step": i, "action": "expect"|"send", "status": "matched"|"sent"|
    "timeout"|"not reached", "at": seconds since the emulator started, "waited": seconds,
    "expect"/"send": ..., "match": text, "last_seen": text (timeout)}, ...]}."""

    def __init__(self, rc, lines, log, seconds):
        self.rc = rc
        self.lines = lines
        self.log = log
        self.seconds = seconds
        self.com2_log = os.path.splitext(log)[0] + ".com2.log"
        try:
            with open(self.com2_log, "rb") as f:
                self.com2 = f.read().decode("utf-8", "replace").replace("\r", "")
        except OSError:
            self.com2 = ""
        self.com2_lines = self.com2.split("\n")
        self.script = None

    def step(self, n):
        """The report of COM2 script step n (1-based), or None."""
        if self.script is None:
            return None
        return next((r for r in self.script["steps"] if r["step"] == n), None)

    def matches(self):
        """The text each expect step matched, in order (None for steps that did not match)."""
        if self.script is None:
            return []
        return [r.get("match") for r in self.script["steps"] if r["action"] == "expect"]

    def status(self):
        """The kernel's status from the last non-empty line, or None."""
        for line in reversed(self.lines):
            if line.strip():
                m = STATUS_RE.match(line)
                return int(m.group(1)) if m else None
        return None

    def matching(self, regex):
        return [(i, m) for i, m in ((i, regex.match(l)) for i, l in enumerate(self.lines)) if m]


def com2_script_steps(script):
    """A COM2 script for the runner, as JSON steps, from a list of
    ("expect", REGEX) / ("expect", REGEX, TIMEOUT) / ("send", LINE) / ("sendraw", TEXT) tuples or
    of dicts in the runner's JSON format ({"expect": R, "timeout": S}, {"send": L}, ...)."""
    steps = []
    for item in script:
        if isinstance(item, dict):
            steps.append(dict(item))
            continue
        kind = item[0]
        if kind == "expect" and len(item) in (2, 3):
            step = {"expect": item[1]}
            if len(item) == 3:
                step["timeout"] = item[2]
            steps.append(step)
        elif kind in ("send", "sendraw") and len(item) == 2:
            steps.append({kind: item[1]})
        else:
            raise ValueError("bad COM2 script step %r" % (item,))
    return steps


def boot(args, cmdline=None, config=None, com2_script=None, runner_args=()):
    """Boot through the runner, which echoes the console to our stdout (CTest keeps it).

    com2_script: steps typed into COM2, the Linux VM's console (see com2_script_steps(), or a
    path to a script file in the runner's formats). The runner waits for each expect's regex
    (searched after the previous match, MULTILINE, so `^hello$` skips the echoed command line),
    types each send line, ends the run with status 126 when a step times out, and reports every
    step: Boot.script. The COM2 transcript is in Boot.com2 with or without a script."""
    os.makedirs(args.run_dir, exist_ok=True)
    log = os.path.join(args.run_dir, "serial.log")
    results = os.path.splitext(log)[0] + ".com2.json"
    if os.path.exists(results):
        os.unlink(results)
    cmd = [sys.executable, RUNNER, "run", "--emulator", args.emulator, "--smp", str(args.smp),
           "--memory", str(args.memory), "--timeout", str(args.timeout), "--log", log,
           "--run-dir", args.run_dir]
    linux = getattr(args, "linux", None)
    if cmdline or config or linux:
        if not args.kernel:
            raise SystemExit("this test needs --kernel")
        cmd += ["--kernel", args.kernel, "--configs", args.configs]
        if args.apps_dir:
            cmd += ["--apps-dir", args.apps_dir]
        if cmdline:
            cmd += ["--cmdline", cmdline]
        if config:
            cmd += ["--config", config]
        if linux:
            cmd += ["--linux-kernel", linux[0], "--linux-initrd", linux[1], "--linux-cmdline", linux[2]]
    else:
        if not args.iso:
            raise SystemExit("this test needs --iso")
        cmd += ["--iso", args.iso]
    if args.icount is not None and args.emulator == "qemu":
        cmd += ["--icount", str(args.icount)]
    if com2_script is not None:
        if isinstance(com2_script, str):
            script_path = com2_script
        else:
            script_path = os.path.join(args.run_dir, "com2-script.json")
            with open(script_path, "w") as f:
                json.dump(com2_script_steps(com2_script), f, indent=1)
        cmd += ["--com2-script", script_path]
    cmd += list(runner_args)
    print("test: " + " ".join(cmd))
    sys.stdout.flush()
    t0 = time.monotonic()
    rc = subprocess.call(cmd, stdin=subprocess.DEVNULL)
    seconds = time.monotonic() - t0
    try:
        with open(log, "rb") as f:
            text = f.read().decode("utf-8", "replace")
    except OSError:
        text = ""
    lines = text.replace("\r", "").split("\n")
    print("test: runner exit status %d after %.1f s" % (rc, seconds))
    b = Boot(rc, lines, log, seconds)
    if com2_script is not None:
        try:
            with open(results) as f:
                b.script = json.load(f)
        except (OSError, ValueError):
            b.script = None
    return b


class Checker:
    def __init__(self, name):
        self.name = name
        self.failures = []
        self.passes = 0

    def check(self, ok, what):
        if ok:
            self.passes += 1
        else:
            self.failures.append(what)
        return ok

    def finish(self):
        for f in self.failures:
            print("FAIL: " + f)
        print("%s: %s (%d checks passed, %d failed)" % (
            self.name, "PASSED" if not self.failures else "FAILED", self.passes,
            len(self.failures)))
        return 0 if not self.failures else 1


# --------------------------------------------------------------------------------------------
# The configuration oracle


def parse_cpus(text):
    """'0-1,3' -> {0, 1, 3}."""
    cpus = set()
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        if "-" in part:
            lo, hi = part.split("-", 1)
            cpus.update(range(int(lo), int(hi) + 1))
        else:
            cpus.add(int(part))
    return cpus


def expected_partitions(cfg_path):
    """{cpu: (partition name, kind)} from a configuration file, read with configparser."""
    # strict=False: repeatable keys (an app's `vcpu =` lines) are fine; the oracle reads partitions only.
    parser = configparser.ConfigParser(inline_comment_prefixes=("#", ";"), strict=False,
                                       comment_prefixes=("#", ";"), interpolation=None)
    with open(cfg_path) as f:
        # Keys before the first section (e.g. `version = 1`) go into a section of their own.
        parser.read_string("[vlibos-top]\n" + f.read(), source=cfg_path)
    owners = {}
    for section in parser.sections():
        words = section.split()
        if len(words) != 2 or words[0] != "partition":
            continue
        name = words[1]
        kind = parser.get(section, "kind", fallback=name).strip()
        for cpu in parse_cpus(parser.get(section, "cpus", fallback="")):
            if cpu in owners:
                raise ValueError("%s: cpu %d is in two partitions" % (cfg_path, cpu))
            owners[cpu] = (name, kind)
    return owners


# --------------------------------------------------------------------------------------------
# Checks on a boot


def check_halted(c, b, status=None, nonzero=False):
    """The last line is the status line; the runner exited with that status (capped at 123)."""
    st = b.status()
    if not c.check(st is not None, "the last line is not 'vlibos: system halted, status=N' "
                   "(runner exit status %d; 124 = timeout, 125 = emulator failure)" % b.rc):
        return None
    c.check(b.rc == min(max(st, 0), 123) if st >= 0 else b.rc == 1,
            "runner exit status %d does not match the kernel's status %d" % (b.rc, st))
    if status is not None:
        c.check(st == status, "status is %d, expected %d" % (st, status))
    if nonzero:
        c.check(st != 0, "status is 0, expected a failure status")
    return st


def check_no_faults(c, b, allow_exception=False, allow_panic=False, allow_errors=False):
    if not allow_exception:
        for i, _ in b.matching(EXCEPTION_RE):
            c.check(False, "unexpected exception at line %d: %s" % (i + 1, b.lines[i]))
    if not allow_panic:
        for i, _ in b.matching(PANIC_RE):
            c.check(False, "unexpected panic at line %d: %s" % (i + 1, b.lines[i]))
    if not allow_errors:
        for i, _ in b.matching(ERROR_RE):
            c.check(False, "unexpected error at line %d: %s" % (i + 1, b.lines[i]))


def linux_state_settles(states):
    """The heartbeat's view of Linux ('running', 'stopped', ...) per beat, in print order: the last
    beat sees 'stopped' and none goes back after the first that did. (RT output reaches COM1 in
    batches, and QEMU TCG can starve CPU 0 for seconds, so a beat taken while Linux ran can be
    printed after the monitor's stop line: the order of lines alone proves nothing.)"""
    first = states.index("stopped") if "stopped" in states else len(states)
    return bool(states) and states[-1] == "stopped" and all(x == "stopped" for x in states[first:])


def check_com2_script(c, b):
    """Every step of the boot's COM2 script was done; a failed step is named with what COM2 showed
    last. Returns True when the whole script ran."""
    if not c.check(b.script is not None, "no COM2 script report (runner exit status %d)" % b.rc):
        return False
    if not c.check(b.script.get("connected", True), "the emulator never connected to COM2"):
        return False
    for r in b.script["steps"]:
        what = r.get("expect") if r["action"] == "expect" else r.get("send")
        print("test: com2 step %d %s %r: %s after %.2f s (at %.2f s)%s" % (
            r["step"], r["action"], what, r["status"], r["waited"], r["at"],
            ", matched %r" % r["match"] if "match" in r else ""))
        if r["status"] in ("timeout", "not reached"):
            c.check(False, "COM2 script step %d (%s %r) %s; COM2 showed last: %r" % (
                r["step"], r["action"], what,
                "timed out after %g s" % r["timeout"] if r["status"] == "timeout"
                else "was not reached (%s)" % r.get("why", "?"), r.get("last_seen", "")[-200:]))
            return False
    return c.check(b.script["ok"], "COM2 script failed: %s" % b.script.get("failure"))


def check_cpus_online(c, b, ncpus, cfg_path):
    """Each CPU 0..ncpus-1 comes online once, in the partition the configuration gives it."""
    try:
        expected = expected_partitions(cfg_path)
    except (OSError, ValueError, configparser.Error) as e:
        c.check(False, "cannot read the oracle configuration %s: %s" % (cfg_path, e))
        return
    for cpu in sorted(expected):
        c.check(cpu < ncpus, "%s gives cpu %d to partition %s, but the machine has %d cpus"
                % (cfg_path, cpu, expected[cpu][0], ncpus))
    seen = {}
    apics = {}
    for i, m in b.matching(ONLINE_RE):
        cpu, apic, name, kind = int(m.group(1)), int(m.group(2)), m.group(3), m.group(4)
        if not c.check(cpu not in seen, "cpu %d came online twice (lines %d and %d)"
                       % (cpu, seen.get(cpu, -1) + 1, i + 1)):
            continue
        seen[cpu] = i
        c.check(cpu < ncpus, "cpu %d online, but the machine has %d cpus" % (cpu, ncpus))
        c.check(apic not in apics, "apic id %d used by cpus %s and %d"
                % (apic, apics.get(apic), cpu))
        apics[apic] = cpu
        want = expected.get(cpu)
        if c.check(want is not None, "cpu %d online in partition %s (%s), but %s assigns it "
                   "to no partition" % (cpu, name, kind, os.path.basename(cfg_path))):
            c.check((name, kind) == want, "cpu %d online in partition %s (%s), expected %s (%s) "
                    "from %s" % (cpu, name, kind, want[0], want[1], os.path.basename(cfg_path)))
    for cpu in range(ncpus):
        c.check(cpu in seen, "no 'vlibos: cpu %d apic N online: partition ...' line" % cpu)
    alls = b.matching(ALL_ONLINE_RE)
    if c.check(bool(alls), "no 'vlibos: all %d cpus online' line" % ncpus):
        n = int(alls[0][1].group(1))
        c.check(n == ncpus, "'all %d cpus online', expected %d" % (n, ncpus))
        c.check(all(i < alls[0][0] for i in seen.values()),
                "a cpu came online after the 'all cpus online' line")


def check_exception_dump(c, b, ncpus):
    """An EXCEPTION line naming a vector and a cpu, the register dump, then 'cpu <idx> stopped'."""
    exc = b.matching(EXCEPTION_RE)
    if not c.check(bool(exc), "no 'vlibos: EXCEPTION #<vec> <mnemonic> on cpu <idx> "
                   "(apic <id>) error=<hex>' line"):
        return None
    i, m = exc[0]
    vector, cpu = int(m.group(1)), int(m.group(3))
    print("test: exception #%d (%s) on cpu %d" % (vector, m.group(2), cpu))
    c.check(0 <= vector < 256, "exception vector %d out of range" % vector)
    c.check(0 <= cpu < ncpus, "exception on cpu %d, the machine has %d cpus" % (cpu, ncpus))
    stopped_re = re.compile(r"^vlibos: cpu %d stopped\s*$" % cpu)
    end = next((j for j in range(i + 1, len(b.lines)) if stopped_re.match(b.lines[j])), None)
    c.check(end is not None, "no 'vlibos: cpu %d stopped' line after the exception" % cpu)
    dump = b.lines[i + 1:end if end is not None else len(b.lines)]
    regs = {}
    for line in dump:
        if line.startswith("vlibos: "):
            if end is None:
                break
            continue
        for name, value in REGISTER_RE.findall(line):
            regs.setdefault(name, value)
    missing = [r for r in DUMP_REGISTERS if r not in regs]
    c.check(not missing, "register dump lacks %s" % ", ".join(missing))
    return vector, cpu, regs

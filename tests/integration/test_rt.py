#!/usr/bin/env python3
"""The RT sandbox: applications in ring 3 under the budgeted VCPU scheduler.

Scenarios (--scenario):
  periodic   the default system: the periodic task set runs 100 periods with zero deadline
             misses; its statistics (kernel's and its own) are checked and its figures printed.
  misbehave  the same set shares CPU 0 with hostile apps (bad pointers, an admission request
             beyond the bound, a budget overrun, writes to monitor memory and to its own text,
             #UD, #DE, #GP): each hostile app ends alone with a report; the set keeps zero misses.
  overload   an over-utilised VCPU set is refused at admission with the documented message.
Run under QEMU with -icount (deterministic virtual time) and under Bochs."""
import os
import re
import sys

import serial_checks as sc

KSTATS_RE = re.compile(r"^vlibos: rt: app '([\w.-]+)' vcpu '([\w.-]+)' cpu (\d+) \(([^)]*)\): C=(\d+)us T=(\d+)us "
                       r"jobs=(\d+) misses=(\d+) worst_response=(\d+)us budget_used=(\d+)us replenishments=(\d+)")
TASK_RE = re.compile(r"^\[periodic\] periodic: task (\w+) periods=(\d+) jitter_max_ns=(\d+) jitter_avg_ns=(\d+) "
                     r"response_max_ns=(\d+) misses=(\d+)")
FAULT_RE = re.compile(r"^vlibos: rt: app '([\w.-]+)' thread \d+ \(cpu \d+\) fault: (#\w+) [^(]*\([^)]*\) at rip (0x[0-9a-f]+)"
                      r"(?:, address (0x[0-9a-f]+), error (0x[0-9a-f]+) \((\w+), ([\w ]+)\))?")
ENDED_RE = re.compile(r"^vlibos: rt: app '([\w.-]+)' ended \((.*)\)$")
TASKS = ["main", "fast", "mid", "slow"]
PERIODS = 100
RM_REFUSAL = ("vlibos: rt: app 'hello' vcpu 'extra' on cpu 0: admission refused: utilisation 1.000000 "
              "(before 0.600000) would exceed the rate-monotonic bound n(2^(1/n)-1) = 0.828427 for n = 2 Main VCPUs")


def check_periodic_set(c, b, emulator, deadlines=True):
    """Zero misses and full statistics for the periodic set, from the kernel and from the app.
    With deadlines=False only that every job ran and the set finished (see test_linux_vm.py)."""
    kstats = {m.group(2): m for _, m in b.matching(KSTATS_RE) if m.group(1) == "periodic"}
    for task in TASKS:
        m = kstats.get(task)
        if not c.check(m is not None, "no kernel statistics line for periodic vcpu '%s'" % task):
            continue
        jobs, misses, worst, period = int(m.group(7)), int(m.group(8)), int(m.group(9)), int(m.group(6))
        c.check(jobs >= PERIODS, "periodic vcpu '%s': %d jobs completed, expected >= %d" % (task, jobs, PERIODS))
        if not deadlines:
            print("test: figure %s vcpu %-4s misses %d, worst response %d us (deadlines not checked here)"
                  % (emulator, task, misses, worst))
            continue
        c.check(misses == 0, "periodic vcpu '%s': %d deadline misses (kernel)" % (task, misses))
        c.check(0 < worst <= period, "periodic vcpu '%s': worst response %d us outside (0, T=%d us]" % (task, worst, period))
        c.check(int(m.group(11)) >= PERIODS - 1, "periodic vcpu '%s': only %s replenishments" % (task, m.group(11)))
    own = {m.group(1): m for _, m in b.matching(TASK_RE)}
    for task in TASKS:
        m = own.get(task)
        if not c.check(m is not None, "no self-measurement line for task '%s'" % task):
            continue
        c.check(int(m.group(2)) == PERIODS, "task %s ran %s periods" % (task, m.group(2)))
        if deadlines:
            c.check(int(m.group(6)) == 0, "task %s reports %s misses" % (task, m.group(6)))
        print("test: figure %s task %-4s jitter max %7.1f us avg %7.1f us, response max %8.1f us" % (
            emulator, task, int(m.group(3)) / 1e3, int(m.group(4)) / 1e3, int(m.group(5)) / 1e3))
    c.check(any(l.startswith("[periodic] periodic: done") for l in b.lines), "no 'periodic: done' line")


def scenario_periodic(c, args):
    b = sc.boot(args)
    sc.check_halted(c, b, status=0)
    sc.check_no_faults(c, b)
    check_periodic_set(c, b, args.emulator)
    c.check(not b.matching(FAULT_RE), "a fault was reported in the default system")


def scenario_misbehave(c, args):
    b = sc.boot(args, config=os.path.join(sc.HERE, "configs", "rt_misbehave.cfg"))
    sc.check_halted(c, b, status=0)
    sc.check_no_faults(c, b)
    check_periodic_set(c, b, args.emulator)
    text = "\n".join(b.lines)
    c.check("[hostile] misbehave: badptr all ok" in text, "bad-pointer cases did not all get the right error")
    for line in b.lines:
        if "FAILED" in line or "NOT STOPPED" in line:
            c.check(False, "hostile app: " + line)
    c.check("[hostile] misbehave: spawn-overload -> EADMISSION ok" in text, "over-bound thread not refused")
    c.check("vlibos: rt: app 'hostile' new thread (C=9000000ns T=10000000ns) on cpu 0: admission refused" in text,
            "no admission refusal message for the hostile thread")
    c.check("[hostile] misbehave: overrun done" in text, "the overrun phase did not finish")
    faults = {m.group(1): m for _, m in b.matching(FAULT_RE)}
    expect = {"hostile": "#PF", "crash-text": "#PF", "crash-ud": "#UD", "crash-div": "#DE", "crash-gp": "#GP"}
    for app, vector in expect.items():
        m = faults.get(app)
        if c.check(m is not None, "no fault report for app '%s'" % app):
            c.check(m.group(2) == vector, "app '%s' fault %s, expected %s" % (app, m.group(2), vector))
    if "hostile" in faults and faults["hostile"].group(4):
        m = faults["hostile"]
        c.check(int(m.group(4), 16) == 0x200000 and m.group(6) == "write",
                "hostile write fault at %s (%s), expected a write to 0x200000" % (m.group(4), m.group(6)))
    if "crash-text" in faults and faults["crash-text"].group(4):
        m = faults["crash-text"]
        c.check(m.group(6) == "write" and m.group(7) == "protection" and int(m.group(4), 16) >= 0x400000000000,
                "crash-text: expected a write-protection fault in its own text, got %s" % m.group(0))
    ended = {m.group(1): m.group(2) for _, m in b.matching(ENDED_RE)}
    for app in expect:
        c.check(ended.get(app) == "killed by a fault", "app '%s' ended as %r" % (app, ended.get(app)))
    c.check(ended.get("periodic") == "exit status 0", "periodic ended as %r" % ended.get("periodic"))


def scenario_overload(c, args):
    b = sc.boot(args, config=os.path.join(sc.HERE, "configs", "rt_overload.cfg"))
    sc.check_halted(c, b, status=0)
    sc.check_no_faults(c, b)
    c.check(any(l.startswith(RM_REFUSAL) for l in b.lines), "no refusal line starting %r" % RM_REFUSAL)
    c.check(any(l.startswith("vlibos: rt: app 'greedy' vcpu 'main' on cpu 0: admission refused: utilisation 1.100000")
                for l in b.lines), "no refusal of greedy's only VCPU")
    c.check("vlibos: rt: app 'greedy' not started: its first VCPU was refused" in b.lines,
            "greedy was not reported as not started")
    c.check(any(l.startswith("[hello] hello:") for l in b.lines), "hello did not run on its admitted VCPU")
    c.check(not any(l.startswith("[greedy]") for l in b.lines), "greedy printed although it was refused")


def main():
    args = sc.parse_args(__doc__)
    scenario = args.scenario or "periodic"
    c = sc.Checker("rt_%s_%s%s" % (scenario, args.emulator, "_icount" if args.icount is not None else ""))
    {"periodic": scenario_periodic, "misbehave": scenario_misbehave, "overload": scenario_overload}[scenario](c, args)
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())

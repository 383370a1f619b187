#!/usr/bin/env python3
"""A hostile Linux: the guest loads linux-guest/modules/hostile (/lib/modules/hostile.ko in the
initramfs) and attacks the monitor from its kernel, while the RT heartbeat beats on CPU 0.

Two boots of configs/linux_hostile.cfg (the 2-CPU partitions plus the heartbeat app):
  1. the harness types into Linux's shell (COM2): insmod attack=ipi, attack=ioapic, attack=ports,
     each followed by `echo alive-N` (Linux survived and is answering), then attack=triplefault.
     Checked from the monitor's report: every IPI to an APIC ID outside the guest is blocked (SMI
     refused), nothing reached a CPU (INIT, SIPI, NMI 0), every write to a pin the VM does not own
     is counted and reads back unchanged, the port writes are counted as ignored and COM1 (the RT
     console) carries none of them, the VM stopped with "triple fault" and only it stopped;
  2. insmod readrt=<the RT partition's base, from boot 1's COM1 partition table>: the VM stops
     with "an access outside its memory" at exactly that guest-physical address.
Both boots: the heartbeat's sequence has no gap and it goes on after the VM stopped; the system
ends with 'vlibos: system halted, status=0'.
"""
import os
import re
import sys

import serial_checks as sc

CMDLINE = "earlyprintk=serial,0x2f8,115200 console=ttyS1,115200"
CONFIG = os.path.join(sc.HERE, "configs", "linux_hostile.cfg")
MODULE = "/lib/modules/hostile.ko"
PROMPT = r"vlibos-linux# $"
COM1_MARK = "VLIBOS-HOSTILE"

RT_RANGE_RE = re.compile(r"^vlibos:\s+rt\s+rt\s+\S+\s+(0x[0-9a-f]+)-(0x[0-9a-f]+)\s")
STOP_RE = re.compile(r"^vlibos: linux: vcpu (\d+) stopped after (\d+) ms: (.+?) at guest rip (0x[0-9a-f]+); exit ([\w-]+) "
                     r"\(raw (0x[0-9a-f]+|0), qualification (0x[0-9a-f]+|0), info (0x[0-9a-f]+|0)\)")
IOAPIC_RE = re.compile(r"^vlibos: linux: ioapic: writes (\d+) \(to pins not the VM's (\d+)\), deliveries (\d+); "
                       r"messages delivered (\d+), blocked (\d+), refused (\d+); INIT (\d+), SIPI (\d+), NMI (\d+)"
                       r"(?:; last dropped: (.*))?$")
PORTS_RE = re.compile(r"^vlibos: linux: COM2 accesses \d+ .*other port writes ignored (\d+); "
                      r"empty-bus ports most used:(.*)$")
BEAT_RE = re.compile(r"^\[heartbeat\] heartbeat (\d+) t_ms=(\d+) linux=(\w+)")
DONE_RE = re.compile(r"^\[heartbeat\] heartbeat done beats=(\d+) late=(\d+)")
IPI_DONE_RE = re.compile(r"vlibos-hostile: ipi: done: outside=(\d+) refused=(\d+) shorthand=(\d+)")
IOAPIC_DONE_RE = re.compile(r"vlibos-hostile: ioapic: done: writes=(\d+) changed=(\d+)")
PORTS_DONE_RE = re.compile(r"vlibos-hostile: ports: done: writes=(\d+)")


def insmod(params, done, alive):
    """insmod with `params`, wait for the module's `done` line, unload it, then Linux must still
    answer."""
    return [
        ("send", "insmod %s %s" % (MODULE, params)),
        ("expect", done, 120),
        ("expect", PROMPT, 60),
        ("send", "rmmod hostile; echo alive-$((%d+0))" % alive),
        ("expect", r"^alive-%d\n" % alive, 60),
    ]


def shell_start():
    return [
        ("expect", r"vlibos-linux: user space up", 400),
        ("expect", PROMPT, 60),
        ("send", "echo alive-$((0+1))"),
        ("expect", r"^alive-1\n", 60),
    ]


def script_attacks():
    return (shell_start()
            + insmod("attack=ipi", IPI_DONE_RE.pattern, 2)
            + insmod("attack=ioapic", IOAPIC_DONE_RE.pattern, 3)
            + insmod("attack=ports", PORTS_DONE_RE.pattern, 4)
            + [("send", "insmod %s attack=triplefault" % MODULE),
               ("expect", r"vlibos-hostile: triplefault: attempted", 60)])


def script_readrt(base):
    return shell_start() + [
        ("send", "insmod %s readrt=%#x" % (MODULE, base)),
        ("expect", r"vlibos-hostile: readrt: attempted read of physical %#x" % base, 60),
    ]


def first(regex, text):
    return regex.search(text)


def check_common(c, b, name):
    """Halted with status 0, the script ran, the VM (only it) stopped once; the heartbeat has no
    gap and beat on after the stop. Returns the stop line's match, or None."""
    sc.check_halted(c, b, status=0)
    sc.check_no_faults(c, b)
    sc.check_com2_script(c, b)
    stops = b.matching(STOP_RE)
    stop = None
    if c.check(len(stops) == 1, "%s: expected one 'linux: vcpu N stopped' report, got %d" % (name, len(stops))):
        stop_line, stop = stops[0]
        print("test: %s: %s" % (name, b.lines[stop_line]))
    beats = b.matching(BEAT_RE)
    numbers = [int(m.group(1)) for _, m in beats]
    if c.check(len(numbers) > 0, "%s: no heartbeat lines" % name):
        c.check(numbers == list(range(1, len(numbers) + 1)),
                "%s: the heartbeat sequence has a gap or repeats: %s" % (name, numbers))
        times = [int(m.group(2)) for _, m in beats]
        worst = max((b2 - a for a, b2 in zip(times, times[1:])), default=0)
        print("test: figure %s %s: %d beats, largest interval between beats %d ms" % (c.name, name, len(numbers), worst))
        if stop is not None:
            after = [m for i, m in beats if i > stops[0][0]]
            c.check(len(after) >= 1, "%s: no heartbeat after the VM stopped" % name)
            states = [m.group(3) for _, m in beats]
            c.check(sc.linux_state_settles(states),
                    "%s: the heartbeat's view of Linux is not 'stopped' at the end, or goes back: %s" % (name, states))
            print("test: %s: %d beat(s) after the VM stopped (beats %s)" % (name, len(after), [int(m.group(1)) for m in after]))
    done = b.matching(DONE_RE)
    if c.check(len(done) == 1, "%s: no 'heartbeat done' line" % name):
        m = done[0][1]
        c.check(int(m.group(1)) == len(numbers), "%s: heartbeat done beats=%s, printed %d" % (name, m.group(1), len(numbers)))
        print("test: figure %s %s: heartbeat late=%s" % (c.name, name, m.group(2)))
        if c.name.endswith("bochs"):
            # Bochs emulates the CPUs in lock-step: a lost beat period is a real isolation failure.
            # QEMU TCG does not isolate its vCPUs in time (docs/linux-guest.md): printed only.
            c.check(int(m.group(2)) == 0, "%s: the heartbeat lost %s period(s)" % (name, m.group(2)))
    c.check(not any(COM1_MARK in line for line in b.lines), "%s: the guest's COM1 bytes reached COM1" % name)
    return stop


def main():
    args = sc.parse_args(__doc__)
    c = sc.Checker("linux_hostile_%s" % args.emulator)
    kernel = os.path.join(args.linux_dir or "", "bzImage")
    initrd = os.path.join(args.linux_dir or "", "initramfs.cpio.gz")
    if not (os.path.isfile(kernel) and os.path.isfile(initrd)):
        c.check(False, "no guest kernel/initramfs in %s: run tools/vlibos linux first" % args.linux_dir)
        return c.finish()
    args.linux = (kernel, initrd, CMDLINE)
    base_dir = args.run_dir

    # --- Boot 1: ipi, ioapic, ports, then a triple fault.
    args.run_dir = os.path.join(base_dir, "attacks")
    b = sc.boot(args, config=CONFIG, com2_script=script_attacks())
    stop = check_common(c, b, "attacks")
    com2 = b.com2
    if stop is not None:
        c.check(stop.group(3).startswith("triple fault"), "the VM stopped for another reason: %s" % stop.group(0))
    ipi = first(IPI_DONE_RE, com2)
    ioapic = first(IOAPIC_DONE_RE, com2)
    ports = first(PORTS_DONE_RE, com2)
    io = b.matching(IOAPIC_RE)
    if c.check(len(io) == 1, "no 'linux: ioapic' report") and ipi and ioapic:
        m = io[0][1]
        print("test: %s" % b.lines[io[0][0]])
        outside, refused = int(ipi.group(1)), int(ipi.group(2))
        c.check(outside > 0, "the module sent no IPI outside the guest")
        c.check(int(m.group(5)) >= outside, "blocked %s < the %d IPIs sent outside the guest" % (m.group(5), outside))
        c.check(int(m.group(6)) >= refused, "refused %s < the %d SMIs sent" % (m.group(6), refused))
        c.check((m.group(7), m.group(8), m.group(9)) == ("0", "0", "0"),
                "an INIT, SIPI or NMI was delivered (one-vCPU guest: none may be): %s" % m.group(0))
        dropped = m.group(10) or ""
        c.check("blocked" in dropped or "refused" in dropped, "no 'last dropped' message in the report")
        writes, changed = int(ioapic.group(1)), int(ioapic.group(2))
        c.check(writes > 0, "the module wrote no I/O APIC entry")
        c.check(int(m.group(2)) >= writes, "writes to pins not the VM's %s < the %d the module made" % (m.group(2), writes))
        c.check(changed == 0, "%d I/O APIC entries of pins the VM does not own changed" % changed)
    else:
        c.check(ipi is not None, "no 'vlibos-hostile: ipi: done' line on COM2")
        c.check(ioapic is not None, "no 'vlibos-hostile: ioapic: done' line on COM2")
    pl = b.matching(PORTS_RE)
    if c.check(len(pl) == 1, "no 'linux: COM2 accesses ... other port writes ignored' report") and \
            c.check(ports is not None, "no 'vlibos-hostile: ports: done' line on COM2"):
        m = pl[0][1]
        print("test: %s" % b.lines[pl[0][0]])
        c.check(int(m.group(1)) >= int(ports.group(1)),
                "port writes ignored %s < the %s the module made" % (m.group(1), ports.group(1)))
        busiest = dict((int(p, 16), int(n)) for p, n in re.findall(r"(0x[0-9a-f]+):(\d+)", m.group(2)))
        if 0x3f8 in busiest:
            c.check(busiest[0x3f8] >= len(COM1_MARK), "0x3f8 counted %d times" % busiest[0x3f8])
    c.check("vlibos-hostile: triplefault: BREACH" not in com2, "Linux ran on after the triple fault")
    for name in ("ipi", "ioapic", "ports"):
        print("test: %s: %d attempt line(s)" % (name, com2.count("vlibos-hostile: %s: attempted" % name)))
        # Each insmod runs the attack once (the counts above are per run).
        c.check(com2.count("vlibos-hostile: %s: done" % name) == 1,
                "the %s attack ran %d times" % (name, com2.count("vlibos-hostile: %s: done" % name)))

    ranges = [m for _, m in b.matching(RT_RANGE_RE)]
    if not c.check(len(ranges) == 1, "no rt partition line in COM1's partition table"):
        return c.finish()
    rt_base, rt_end = int(ranges[0].group(1), 16), int(ranges[0].group(2), 16)
    print("test: the RT partition is %#x-%#x (COM1's partition table)" % (rt_base, rt_end))

    # --- Boot 2: read the RT partition's first byte.
    args.run_dir = os.path.join(base_dir, "readrt")
    b = sc.boot(args, config=CONFIG, com2_script=script_readrt(rt_base))
    stop = check_common(c, b, "readrt")
    ranges = [m for _, m in b.matching(RT_RANGE_RE)]
    c.check(len(ranges) == 1 and int(ranges[0].group(1), 16) == rt_base,
            "the RT partition moved between the two boots")
    if stop is not None:
        c.check(stop.group(3) == "an access outside its memory",
                "the VM stopped for another reason: %s" % stop.group(0))
        c.check(stop.group(5) == "nested-page-fault", "the stop's exit is %s, not nested-page-fault" % stop.group(5))
        c.check(int(stop.group(8), 16) == rt_base, "the stop's GPA is %s, not the RT base %#x" % (stop.group(8), rt_base))
    c.check("vlibos-hostile: readrt: BREACH" not in b.com2, "Linux read the RT partition")
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())

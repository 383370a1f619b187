#!/usr/bin/env python3
"""The Linux VM on the emulator's backend (QEMU: SVM, Bochs: VMX), booted to user space.

The monitor loads the guest kernel (built by tools/vlibos linux), its initramfs and command line
from GRUB modules and enters Linux through the 32-bit boot protocol on the Linux partition's CPU,
with the monitor's virtual local APIC (TSC-deadline timer), I/O APIC and 16550 (COM2, IRQ 3).
Checked:
  - Linux boots to user space in its VM: its banner, the e820 map the monitor built (low memory,
    the reserved hole, the partition's RAM at GPA == HPA), the MP table the monitor wrote, then
    the initramfs' marker line;
  - the shared region the configuration gives Linux (2cpu.cfg/4cpu.cfg: `[shared rpc]`, between
    rt and linux) is mapped at GPA == HPA as e820 reserved: the monitor's 'shared ... mapped' line,
    the same bounds as "reserved" in the e820 map Linux prints, and never System RAM in its
    /proc/iomem. (/proc/iomem lists e820-reserved ranges above 1 MiB only once
    e820__reserve_resources_late() ran, which pcibios_resource_survey() calls: not in this guest,
    which has no PCI config space ("PCI: Fatal: No config space access function found"). If it is
    listed there, it must be as Reserved with the same bounds);
  - the harness types into Linux's console (COM2) and checks the answers: shell arithmetic,
    `uname -r`; then `exit` makes /init power off, which halts Linux: the monitor stops the VM
    (HLT with interrupts disabled) and nothing else stops;
  - Linux's interrupts (timer, COM2) go through the virtual LAPIC and IOAPIC; no message left
    the guest's own vCPUs;
  - meanwhile the periodic RT task set on CPU 0 keeps every deadline under Bochs, which emulates
    each CPU in lock-step. Under QEMU only that it runs to the end is checked: TCG does not isolate
    its vCPUs in time (with -icount one thread round-robins all vCPUs on one virtual clock, so a
    busy CPU 1 delays CPU 0). The misses it causes are printed as figures, not asserted;
  - the run ends on its own (status 0) once both partitions are done.
Figures: Linux's boot time to user space, wall clock (from the emulator's start) and in the
guest's own uptime.
"""
import os
import re
import sys

import serial_checks as sc
import test_rt

BACKEND = {"qemu": "svm", "bochs": "vmx"}
START_RE = re.compile(r"^vlibos: linux: vcpu 0 starting on cpu (\d+) \((\w+)\), 32-bit entry at (0x[0-9a-f]+)")
LOADED_RE = re.compile(r"^vlibos: linux: bzImage protocol (\d+)\.(\d+), \d+ KiB kernel at (0x[0-9a-f]+) .* "
                       r"RAM (0x[0-9a-f]+)-(0x[0-9a-f]+) \(GPA == HPA\)")
STOP_RE = re.compile(r"^vlibos: linux: vcpu (\d+) stopped after (\d+) ms: (.+?) at guest rip (0x[0-9a-f]+); exit ([\w-]+) "
                     r"\(raw (0x[0-9a-f]+|0), qualification (0x[0-9a-f]+|0), info (0x[0-9a-f]+|0)\)")
E820_RE = re.compile(r"BIOS-e820: \[mem (0x[0-9a-f]+)-(0x[0-9a-f]+)\] (\w+)")
IOAPIC_RE = re.compile(r"^vlibos: linux: ioapic: .* messages delivered (\d+), blocked (\d+), refused (\d+)")
LAPIC_RE = re.compile(r"^vlibos: linux: vcpu 0 lapic: .* timer interrupts (\d+)")
MARKER_RE = re.compile(r"vlibos-linux: user space up, uptime ([0-9.]+)")
CMDLINE = "earlyprintk=serial,0x2f8,115200 console=ttyS1,115200"
AP_START_RE = re.compile(r"^vlibos: linux: vcpu (\d+) starting on cpu (\d+) \((\w+)\), real-mode entry at (0x[0-9a-f]+)")
STARTS_RE = re.compile(r"INIT (\d+), SIPI (\d+)")
SHARED_RE = re.compile(r"^vlibos: linux: shared '(\w+)' (0x[0-9a-f]+)-(0x[0-9a-f]+) \((.+?)\) mapped at GPA == HPA, "
                       r"e820 reserved")
IOMEM_RE = re.compile(r"^\s*([0-9a-f]+)-([0-9a-f]+) : (.+?)\s*$", re.MULTILINE)


def shell_script(vcpus):
    return [
        ("expect", r"vlibos-linux: user space up", 400),
        ("expect", r"vlibos-linux# $", 60),
        ("send", "echo hello-$((6*7))"),
        ("expect", r"^hello-42\n", 60),
        ("send", "uname -r"),
        ("expect", r"^6\.1\.\S+\n", 60),
        # The date comes from the real clock, read through the monitor (not 1970: no RTC).
        ("send", "date +%Y-%m-%d"),
        ("expect", r"^(?!1970)\d{4}-\d\d-\d\d\n", 60),
        # Linux's CPUs are the partition's: 1 vCPU on 2 CPUs, 2 on 4 (the AP started by INIT/SIPI).
        ("send", "grep -c ^processor /proc/cpuinfo"),
        ("expect", r"^%d\n" % vcpus, 60),
        # Linux's resource map (the shared region must not be System RAM in it); the marker line
        # ends the listing (the echoed command line does not start with it).
        ("send", "cat /proc/iomem; echo iomem-$((40+2))"),
        ("expect", r"^iomem-42\n", 60),
        ("send", "exit"),
        ("expect", r"vlibos-linux: shell exited, powering off", 60),
    ]


def main():
    args = sc.parse_args(__doc__)
    c = sc.Checker("linux_vm_%s" % args.emulator)
    linux_dir = args.linux_dir
    kernel = os.path.join(linux_dir, "bzImage")
    initrd = os.path.join(linux_dir, "initramfs.cpio.gz")
    if not (os.path.isfile(kernel) and os.path.isfile(initrd)):
        c.check(False, "no guest kernel/initramfs in %s: run tools/vlibos linux first" % linux_dir)
        return c.finish()
    args.linux = (kernel, initrd, CMDLINE)
    vcpus = 2 if args.smp >= 4 else 1  # the default configurations: 2cpu.cfg, 4cpu.cfg
    b = sc.boot(args, com2_script=shell_script(vcpus))
    sc.check_halted(c, b, status=0)
    sc.check_no_faults(c, b)
    sc.check_com2_script(c, b)
    test_rt.check_periodic_set(c, b, args.emulator, deadlines=args.emulator == "bochs")

    starts = b.matching(START_RE)
    if c.check(len(starts) == 1, "expected one 'linux: starting' line, got %d" % len(starts)):
        m = starts[0][1]
        c.check(m.group(2) == BACKEND[args.emulator], "Linux ran on %s, expected %s" % (m.group(2), BACKEND[args.emulator]))
        c.check(int(m.group(1)) != 0, "Linux ran on cpu 0, an RT cpu")
    loaded = b.matching(LOADED_RE)
    ram = None
    if c.check(len(loaded) == 1, "no 'linux: bzImage protocol ...' load line"):
        m = loaded[0][1]
        c.check((int(m.group(1)), int(m.group(2))) >= (2, 12), "boot protocol %s.%s" % (m.group(1), m.group(2)))
        ram = (int(m.group(4), 16), int(m.group(5), 16))

    com2_path = os.path.splitext(b.log)[0] + ".com2.log"
    try:
        with open(com2_path, "rb") as f:
            com2 = f.read().decode("utf-8", "replace").replace("\r", "").split("\n")
    except OSError:
        com2 = []
    print("test: COM2 (%s): %d lines" % (com2_path, len(com2)))
    text = "\n".join(com2)
    c.check("Linux version 6.1" in text, "no Linux banner on COM2")
    c.check("Command line: earlyprintk=serial,0x2f8,115200 console=ttyS1,115200" in text,
            "Linux did not get the command line")
    e820 = [(int(a, 16), int(z, 16), kind) for a, z, kind in E820_RE.findall(text)]
    c.check((0, 0x9efff, "usable") in e820, "e820 lacks low memory 0-0x9efff: %s" % e820)
    if ram:
        c.check((ram[0], ram[1] - 1, "usable") in e820, "e820 lacks the partition RAM %#x-%#x: %s" % (ram[0], ram[1], e820))
    usable = [(a, z) for a, z, kind in e820 if kind == "usable"]
    c.check(len(usable) == 2, "Linux sees %d usable ranges, expected low memory and its partition" % len(usable))
    shared = b.matching(SHARED_RE)
    if c.check(len(shared) == 1, "expected one 'linux: shared ... mapped' line (the rpc region), got %d" % len(shared)):
        m = shared[0][1]
        base, end = int(m.group(2), 16), int(m.group(3), 16)
        print("test: %s" % m.group(0))
        c.check(m.group(1) == "rpc" and m.group(4) == "4 MiB" and end - base == 4 << 20,
                "the shared region is not the configuration's 4 MiB 'rpc': %s" % m.group(0))
        c.check((base, end - 1, "reserved") in e820, "e820 lacks the shared region %#x-%#x as reserved: %s" % (base, end, e820))
        if ram:
            c.check(end <= ram[0] or base >= ram[1], "the shared region %#x-%#x overlaps Linux's RAM" % (base, end))
        iomem = [(int(a, 16), int(z, 16), name) for a, z, name in IOMEM_RE.findall(text)]
        c.check(any(name == "System RAM" for _, _, name in iomem), "no /proc/iomem listing on COM2")
        touching = [(a, z, name) for a, z, name in iomem if a < end and z >= base]
        for a, z, name in touching:
            print("test: /proc/iomem: %08x-%08x : %s" % (a, z, name))
        c.check(all(name.lower() == "reserved" and (a, z) == (base, end - 1) for a, z, name in touching),
                "/proc/iomem has the shared region %08x-%08x as something other than exactly Reserved: %s"
                % (base, end - 1, ["%08x-%08x : %s" % r for r in touching]))
        if not touching:
            print("test: /proc/iomem does not list %08x-%08x (no PCI: e820__reserve_resources_late() did not run)"
                  % (base, end - 1))
    c.check("found SMP MP-table" in text and "MPTABLE: OEM ID: VLIBOS" in text, "Linux did not find the MP table")

    stops = [(line, m) for line, m in b.matching(STOP_RE) if m.group(1) == "0"]
    if c.check(len(stops) == 1, "expected one 'linux: vcpu 0 stopped' report, got %d" % len(stops)):
        m = stops[0][1]
        c.check(m.group(3).startswith("every vCPU halted with interrupts disabled"), "Linux did not halt as asked: %s" % m.group(0))
        print("test: figure %s: Linux ran %s ms in its VM" % (args.emulator, m.group(2)))
    c.check("reboot: System halted" in text, "Linux did not report its halt")
    aps = b.matching(AP_START_RE)
    c.check(len(aps) == vcpus - 1, "expected %d application processor(s) started, got %d" % (vcpus - 1, len(aps)))
    for _, m in aps:
        c.check(int(m.group(2)) >= 2, "vcpu %s ran on cpu %s, an RT cpu" % (m.group(1), m.group(2)))
    io = b.matching(IOAPIC_RE)
    if c.check(len(io) == 1, "no 'linux: ioapic' report"):
        m = io[0][1]
        c.check(int(m.group(1)) > 0, "no interrupt reached Linux through the I/O APIC (COM2)")
        c.check(int(m.group(2)) == 0 and int(m.group(3)) == 0, "messages left the guest: %s" % m.group(0))
        starts = STARTS_RE.search(b.lines[io[0][0]])
        if vcpus > 1:
            c.check(starts and int(starts.group(1)) >= 1 and int(starts.group(2)) >= 1,
                    "no INIT/SIPI reached the AP: %s" % m.group(0))
    lapic = b.matching(LAPIC_RE)
    if c.check(len(lapic) == 1, "no 'linux: vcpu 0 lapic' report"):
        c.check(int(lapic[0][1].group(1)) > 0, "the virtual LAPIC timer never fired")
    marker = MARKER_RE.search(text)
    if c.check(marker is not None, "no user-space marker on COM2"):
        up = b.step(1) if b.script else None
        wall = up.get("at") if up else None
        print("test: figure %s: Linux boot to user space: guest uptime %s s, wall %s s from the emulator's start"
              % (args.emulator, marker.group(1), "%.1f" % wall if wall is not None else "?"))
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""COM2 typed into, end to end, on a real Linux without vlibos: the guest kernel and initramfs
(tools/vlibos linux) go into a GRUB ISO of their own with `console=ttyS1`, so Linux's console is
COM2 exactly as in the Linux VM. The emulator boots it through tools/runner.py (QEMU: COM2 on a
unix socket; Bochs: on a 127.0.0.1 TCP socket), and the COM2 script of serial_checks.boot():
  - waits for the busybox prompt, types `echo hello` and `uname -r` and checks the answers
    (`^hello\\n`, `^6\\.1\\S*\\n`: the echoed command lines do not match, and a `\\n` rather than
    `$` waits for the whole line, which Bochs delivers byte by byte);
  - then types a line that writes `vlibos: system halted, status=0` to /dev/ttyS0 (COM1), which
    ends the run the way the runner always ends one (exit status 0);
  - the runner's COM2 log holds the whole console (banner, prompt, answers).
A second run checks a step that cannot match: the runner ends the run at the step's timeout
with status 126 and the report names the step and what COM2 showed last.

    test_com2_native.py --emulator qemu|bochs --run-dir DIR --linux-dir build/linux [--timeout S]
"""
import argparse
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import serial_checks as sc  # noqa: E402

GRUB_CFG = """set timeout=0
set default=0
menuentry "linux on COM2" {
    linux /boot/bzImage console=ttyS1,115200 panic=-1
    initrd /boot/initramfs.cpio.gz
}
"""

HALT = 'echo "vlibos: system halted, status=0" > /dev/ttyS0'


def make_iso(linux_dir, run_dir):
    iso_dir = os.path.join(run_dir, "iso")
    os.makedirs(os.path.join(iso_dir, "boot", "grub"), exist_ok=True)
    for name in ("bzImage", "initramfs.cpio.gz"):
        dst = os.path.join(iso_dir, "boot", name)
        if os.path.lexists(dst):
            os.unlink(dst)
        shutil.copyfile(os.path.join(linux_dir, name), dst)
    with open(os.path.join(iso_dir, "boot", "grub", "grub.cfg"), "w") as f:
        f.write(GRUB_CFG)
    iso = os.path.join(run_dir, "linux-com2.iso")
    r = subprocess.run(["grub-mkrescue", "-o", iso, iso_dir],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        print(r.stdout.decode(errors="replace"))
        return None
    return iso


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--emulator", default="qemu", choices=["qemu", "bochs"])
    ap.add_argument("--run-dir", required=True)
    ap.add_argument("--linux-dir", required=True)
    ap.add_argument("--timeout", type=float, default=None)
    ap.add_argument("--smp", type=int, default=2)
    args = ap.parse_args()
    c = sc.Checker("com2_native_%s" % args.emulator)
    for name in ("bzImage", "initramfs.cpio.gz"):
        if not os.path.isfile(os.path.join(args.linux_dir, name)):
            c.check(False, "no %s in %s: run tools/vlibos linux first" % (name, args.linux_dir))
            return c.finish()
    os.makedirs(args.run_dir, exist_ok=True)
    iso = make_iso(args.linux_dir, args.run_dir)
    if not c.check(iso is not None, "grub-mkrescue failed"):
        return c.finish()
    # Bochs: about 20 s to the prompt alone, and busybox answers a typed line in seconds.
    slow = args.emulator == "bochs"
    step = 120 if slow else 30
    boot_args = argparse.Namespace(emulator=args.emulator, smp=args.smp, memory=512,
                                   timeout=args.timeout or (300 if slow else 60), iso=iso,
                                   icount=None, kernel=None, configs=sc.DEFAULT_CONFIGS,
                                   apps_dir=None, run_dir=os.path.join(args.run_dir, "shell"))
    b = sc.boot(boot_args, com2_script=[
        ("expect", r"vlibos-linux# $", step),
        ("send", "echo hello"),
        ("expect", r"^hello\n", step),
        ("expect", r"vlibos-linux# $", step),
        ("send", "uname -r"),
        ("expect", r"^6\.1\S*\n", step),
        ("expect", r"vlibos-linux# $", step),
        ("send", HALT),
    ])
    print("test: COM2 transcript: %d lines in %s" % (len(b.com2_lines), b.com2_log))
    if sc.check_com2_script(c, b):
        m = b.matches()
        c.check(m[1] == "hello\n", "echo hello answered %r" % m[1])
        c.check(m[3].startswith("6.1"), "uname -r answered %r" % m[3])
    sc.check_halted(c, b, status=0)
    c.check("Linux version 6.1" in b.com2, "no Linux banner in the COM2 log")
    c.check(any(l.startswith("vlibos-linux: user space up") for l in b.com2_lines),
            "no user-space marker in the COM2 log")
    c.check(any(l.rstrip("\r").endswith("echo hello") for l in b.com2_lines),
            "the typed command's echo is not in the COM2 log")

    # A step that never matches: the run ends at its timeout, 126, and the report says where.
    if not slow:
        boot_args.run_dir = os.path.join(args.run_dir, "timeout")
        b = sc.boot(boot_args, com2_script=[
            ("expect", r"vlibos-linux# $", step),
            ("send", "echo nothing"),
            ("expect", r"^this never comes$", 2),
            ("send", HALT),
        ])
        c.check(b.rc == 126, "a timed-out step: runner exit status %d, expected 126" % b.rc)
        s = b.script or {"steps": []}
        st = [r["status"] for r in s["steps"]]
        c.check(st == ["matched", "sent", "timeout"], "step statuses %r" % st)
        if st[-1:] == ["timeout"]:
            last = s["steps"][-1]
            c.check(last["step"] == 3 and "nothing" in last["last_seen"],
                    "the timeout report names step 3 and what COM2 showed: %r" % last)
            c.check(1.9 < last["waited"] < 10, "waited %.2f s for a 2 s timeout" % last["waited"])
        c.check(b.seconds < 30, "the run ended %.1f s after it started: the step's timeout "
                "should end it" % b.seconds)
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Boot the Linux guest natively in QEMU (TCG, no vlibos) and check it.

    linux-guest/boot-native.py --kernel bzImage --initrd initramfs.cpio.gz [--smp 2] [--memory 256]
                               [--append TEXT] [--timeout 300] [--log FILE] [--quiet]

Checks, on the serial console (QEMU's stdio, through pipes):
  1. the marker line "vlibos-linux: user space up, uptime <s>" of linux-guest/rootfs/init;
  2. the shell prompt, then a typed command answers: arithmetic and the CPU count (= --smp);
  3. 'exit' ends the shell and /init powers off ("reboot: Power down", or "reboot: System
     halted" when the machine has no power-off method, as without ACPI).
Prints the wall-clock time to the marker, the guest's uptime at the marker and the command's
round trip. QEMU is always killed with SIGKILL by its own process id. Exit status: 0 pass,
1 fail, 124 timeout, 2 usage. Python 3 standard library only.
"""
import argparse
import ctypes
import os
import re
import select
import signal
import subprocess
import sys
import time

MARKER = re.compile(rb"vlibos-linux: user space up, uptime ([0-9]+\.[0-9]+)")
PROMPT = b"vlibos-linux# "
PANIC = re.compile(rb"Kernel panic - not syncing[^\r\n]*")
# Without ACPI there is no power-off method: the kernel halts instead ("System halted").
POWER_DOWN = re.compile(rb"reboot: (Power down|System halted)")


def pdeathsig():
    # Die with the parent, even if the parent is killed with SIGKILL.
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kernel", required=True)
    ap.add_argument("--initrd", required=True)
    ap.add_argument("--smp", type=int, default=2)
    ap.add_argument("--memory", type=int, default=256, help="MiB")
    ap.add_argument("--append", default="", help="extra kernel command line words")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds for the whole check")
    ap.add_argument("--log", default=None, help="serial log (default: next to the kernel)")
    ap.add_argument("--qemu", default="qemu-system-x86_64")
    ap.add_argument("--quiet", action="store_true", help="do not echo the console")
    args = ap.parse_args()
    for f in (args.kernel, args.initrd):
        if not os.path.isfile(f):
            ap.error("file not found: %s" % f)
    log_path = args.log or os.path.join(os.path.dirname(os.path.abspath(args.kernel)), "boot-native.log")

    cmdline = "console=ttyS0 earlyprintk=serial,ttyS0 panic=-1"
    if args.append:
        cmdline += " " + args.append
    cmd = [args.qemu, "-accel", "tcg", "-cpu", "max", "-smp", "%d,sockets=%d,cores=1,threads=1" % (args.smp, args.smp), "-m", str(args.memory),
           "-display", "none", "-monitor", "none", "-serial", "stdio", "-no-reboot",
           "-kernel", args.kernel, "-initrd", args.initrd, "-append", cmdline]
    print("boot-native: %s" % " ".join(cmd if " " not in cmdline else cmd[:-1] + ['"%s"' % cmdline]))

    log = open(log_path, "wb")
    start = time.monotonic()
    qemu = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True, preexec_fn=pdeathsig)
    buf = b""
    result = {"status": 1, "reason": "QEMU exited"}
    t_marker = uptime = t_sent = t_answer = None
    state = "marker"  # -> prompt -> answer -> poweroff -> done
    token = b"vlibos-check: 42"
    try:
        os.set_blocking(qemu.stdout.fileno(), False)
        while True:
            now = time.monotonic()
            if now - start > args.timeout:
                result = {"status": 124, "reason": "timeout after %.0f s waiting for %s" % (args.timeout, state)}
                break
            r, _, _ = select.select([qemu.stdout], [], [], 0.2)
            if not r:
                if qemu.poll() is not None:
                    break
                continue
            chunk = os.read(qemu.stdout.fileno(), 65536)
            if not chunk:
                break
            log.write(chunk)
            log.flush()
            if not args.quiet:
                sys.stdout.buffer.write(chunk)
                sys.stdout.buffer.flush()
            buf += chunk
            m = PANIC.search(buf)
            if m:
                result = {"status": 1, "reason": m.group(0).decode(errors="replace")}
                break
            if state == "marker":
                m = MARKER.search(buf)
                if m:
                    t_marker = time.monotonic() - start
                    uptime = float(m.group(1))
                    buf = buf[m.end():]
                    state = "prompt"
            if state == "prompt" and PROMPT in buf:
                buf = b""
                # The echo of the typed line shows "$((6*7))", only the answer shows "42".
                qemu.stdin.write(b'echo "vlibos-check: $((6*7))"; echo "cpus=$(grep -c ^processor /proc/cpuinfo)"\n')
                qemu.stdin.flush()
                t_sent = time.monotonic()
                state = "answer"
            if state == "answer":
                m = re.search(rb"(?m)^cpus=([0-9]+)\s*$", buf)
                if token in buf and m:
                    t_answer = time.monotonic() - t_sent
                    cpus = int(m.group(1))
                    if cpus != args.smp:
                        result = {"status": 1, "reason": "guest sees %d CPUs, expected %d" % (cpus, args.smp)}
                        break
                    buf = b""
                    qemu.stdin.write(b"exit\n")
                    qemu.stdin.flush()
                    state = "poweroff"
            if state == "poweroff" and POWER_DOWN.search(buf):
                result = {"status": 0, "reason": "ok"}
                break
    finally:
        if qemu.poll() is None:
            os.kill(qemu.pid, signal.SIGKILL)
        qemu.wait()
        log.close()
    wall = time.monotonic() - start
    if not args.quiet:
        print()
    if t_marker is not None:
        print("boot-native: user space up after %.2f s wall clock, guest uptime %.2f s" % (t_marker, uptime))
    if t_answer is not None:
        print("boot-native: command answered in %.2f s (%d CPUs)" % (t_answer, args.smp))
    if result["status"] == 0:
        print("boot-native: PASS (shell exited, guest powered off or halted; %.2f s in all; log %s)" % (wall, log_path))
    else:
        print("boot-native: FAIL: %s (QEMU status %s; log %s)" % (result["reason"], qemu.returncode, log_path))
        if args.quiet:
            with open(log_path, "rb") as f:
                tail = f.read().decode(errors="replace").splitlines()[-30:]
            print("\n".join(tail))
    return result["status"]


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""PCI passthrough to the Linux VM (QEMU only): an e1000 NIC and a virtio-blk disk, driven by Linux.

The runner gives QEMU's machine an e1000 at 00:03.0 on QEMU's user-mode network (--nic) and a
virtio-blk disk at 00:04.0 (--disk IMG); configs/linux_devices.cfg (the 2-CPU partitions plus the
heartbeat app) assigns both to the Linux partition (`pci = 00:03.0, 00:04.0`). Linux drives them
with INTx interrupts only (the monitor adds pci=nomsi) and DMA at GPA == HPA. The test:
  - makes a fresh 32 MiB raw ext4 image in the run folder (mkfs.ext4 -q -F, e2fsprogs);
  - serves ~200 KiB of random bytes over HTTP on 127.0.0.1 (an ephemeral port), recording every
    request; in the guest that is http://10.0.2.2:PORT/blob (QEMU's user network maps 10.0.2.2 to
    the host's loopback);
  - types into Linux's shell (COM2): lists the PCI functions, brings eth0 up with a static address
    (10.0.2.15/24, gateway 10.0.2.2), waits for the carrier, `wget`s the blob and checks its
    SHA-256, mounts /dev/vda (ext4), writes a file with a fresh token, syncs and unmounts, shows
    the eth0 and virtio interrupt lines of /proc/interrupts, then `exit` powers Linux off;
  - after QEMU is gone: `debugfs -R 'cat /from-linux.txt'` reads the token back out of the image
    and `e2fsck -fn` finds the file system clean; the HTTP server saw exactly one GET /blob;
    Linux's interrupts for both devices went through the (virtual) I/O APIC and were counted;
  - the heartbeat on CPU 0 has no gap and beats on after the VM stopped; the VM stopped as asked
    (every vCPU halted); the system ends with `vlibos: system halted, status=0`.

--native boots the same guest kernel without vlibos (its own GRUB ISO, console on COM2, pci=nomsi),
with the same devices and the same COM2 script through tools/runner.py, so a failure of the
vlibos run can be told apart from a problem on the Linux side; the run ends by writing the status
line to COM1 instead of `exit` (no monitor to report the halt). Not registered in CTest:

    test_linux_devices.py --native --run-dir DIR --linux-dir build/linux [--timeout 300]
"""
import argparse
import hashlib
import http.server
import os
import re
import secrets
import shutil
import subprocess
import sys
import threading

import serial_checks as sc

CMDLINE = "earlyprintk=serial,0x2f8,115200 console=ttyS1,115200"
NATIVE_CMDLINE = "console=ttyS1,115200 panic=-1 pci=nomsi"
CONFIG = os.path.join(sc.HERE, "configs", "linux_devices.cfg")
PROMPT = r"vlibos-linux# $"
IMAGE_MIB = 32
BLOB_BYTES = 200 * 1024
HALT = 'echo "vlibos: system halted, status=0" > /dev/ttyS0'

START_RE = re.compile(r"^vlibos: linux: vcpu 0 starting on cpu (\d+) \((\w+)\)")
STOP_RE = re.compile(r"^vlibos: linux: vcpu (\d+) stopped after (\d+) ms: (.+?) at guest rip (0x[0-9a-f]+); exit ([\w-]+)")
BEAT_RE = re.compile(r"^\[heartbeat\] heartbeat (\d+) t_ms=(\d+) linux=(\w+)")
DONE_RE = re.compile(r"^\[heartbeat\] heartbeat done beats=(\d+) late=(\d+)")
# The monitor's report on the assigned functions (linux_pci.cpp).
PCI_REPORT_RE = re.compile(r"^vlibos: linux: pci\b.*$")
# Linux's own lines on COM2: the drivers bound to the functions at the slots the runner uses.
E1000_RE = re.compile(r"e1000 0000:00:03\.0 eth0: \(PCI:")
VIRTIO_BLK_RE = re.compile(r"virtio_blk virtio\d+: (?:\[\w+\] )?\[vda\] (\d+) 512-byte logical blocks")
SHA_RE = re.compile(r"^([0-9a-f]{64})  /tmp/f$", re.M)
IRQ_LINE_RE = re.compile(r"^\s*(\d+):\s+(.*)$")


# --------------------------------------------------------------------------------------------
# The host side: a disk image and an HTTP server on the loopback


def tool(name):
    """e2fsprogs lives in /sbin and /usr/sbin, which a non-root PATH may lack."""
    path = os.environ.get("PATH", "") + os.pathsep + "/usr/sbin:/sbin"
    return shutil.which(name, path=path)


def make_image(path):
    """A fresh raw ext4 image of IMAGE_MIB MiB; returns an error message or None."""
    mkfs = tool("mkfs.ext4")
    if mkfs is None:
        return "mkfs.ext4 not found (install the Debian package e2fsprogs)"
    if os.path.exists(path):
        os.unlink(path)
    with open(path, "wb") as f:
        f.truncate(IMAGE_MIB * 1024 * 1024)
    r = subprocess.run([mkfs, "-q", "-F", "-L", "vlibos-dev", path],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        return "mkfs.ext4 failed (%d): %s" % (r.returncode, r.stdout.decode(errors="replace"))
    return None


class BlobServer:
    """http.server in a thread on 127.0.0.1, an ephemeral port: GET /blob answers `blob`, anything
    else 404. Every request line is recorded in `requests` as (method, path, client)."""

    def __init__(self, blob):
        self.blob = blob
        self.requests = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def parse_request(self):
                ok = super().parse_request()
                outer.requests.append((getattr(self, "command", None), getattr(self, "path", None),
                                       self.client_address[0]))
                return ok

            def do_GET(self):
                if self.path != "/blob":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(outer.blob)))
                self.end_headers()
                self.wfile.write(outer.blob)

            def log_message(self, fmt, *args):
                print("test: http: %s %s" % (self.client_address[0], fmt % args))
                sys.stdout.flush()

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


# --------------------------------------------------------------------------------------------
# The guest side: the COM2 script


def bracket(name, command):
    """`echo NAME-begin-1; COMMAND; echo NAME-end-2`: the answers, not the echoed command line,
    match ^NAME-begin-1$ / ^NAME-end-2$ (the shell computes $((...)))."""
    return "echo %s-begin-$((0+1)); %s; echo %s-end-$((1+1))" % (name, command, name)


def parse_interrupts(text):
    """/proc/interrupts lines `  11:   12   0   IO-APIC  11-fasteoi   eth0, virtio0` ->
    [(irq, total count, chip, the rest: trigger and handler names)]."""
    out = []
    for line in text.split("\n"):
        m = IRQ_LINE_RE.match(line)
        if not m:
            continue
        words = m.group(2).split()
        counts = []
        while words and words[0].isdigit():
            counts.append(int(words.pop(0)))
        if words:
            out.append((m.group(1), sum(counts), words[0], " ".join(words[1:])))
    return out


def section(text, name):
    m = re.search(r"^%s-begin-1\n(.*?)^%s-end-2$" % (name, name), text, re.M | re.S)
    return m.group(1) if m else None


def shell_script(port, token, native):
    step = 60
    s = [
        ("expect", r"vlibos-linux: user space up", 400),
        ("expect", PROMPT, step),
        # What Linux sees: the PCI functions (the monitor's host bridge, then the assigned ones),
        # the disk's size in sectors, the NIC's MAC address.
        ("send", bracket("info", "ls /sys/bus/pci/devices; cat /sys/block/vda/size; "
                         "cat /sys/class/net/eth0/address")),
        ("expect", r"^info-end-2\n", step),
        ("expect", PROMPT, step),
        ("send", "ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 && "
                 "ip route add default via 10.0.2.2 && echo net-ok-$((1+1)) || echo net-FAIL"),
        ("expect", r"^net-(?:ok-2|FAIL)\n", step),
        ("expect", PROMPT, step),
        # e1000 reports the link up a moment after `ip link set up`; wait for the carrier (10 s).
        ("send", "for i in $(seq 100); do [ \"$(cat /sys/class/net/eth0/carrier)\" = 1 ] && break; "
                 "sleep 0.1; done; echo carrier-$(cat /sys/class/net/eth0/carrier)-$((0+1))"),
        ("expect", r"^carrier-\d*-1\n", step),
        ("expect", PROMPT, step),
        ("send", "wget -q -O /tmp/f http://10.0.2.2:%d/blob && sha256sum /tmp/f || echo wget-FAIL" % port),
        ("expect", r"^(?:[0-9a-f]{64}  /tmp/f|wget-FAIL)\n", 120),
        ("expect", PROMPT, step),
        ("send", "mkdir -p /mnt && mount -t ext4 /dev/vda /mnt && echo %s > /mnt/from-linux.txt && "
                 "sync && umount /mnt && echo disk-ok-$((2+3)) || echo disk-FAIL" % token),
        ("expect", r"^disk-(?:ok-5|FAIL)\n", 120),
        ("expect", PROMPT, step),
        ("send", bracket("irq", "grep -E 'eth0|virtio' /proc/interrupts")),
        ("expect", r"^irq-end-2\n", step),
        ("expect", PROMPT, step),
    ]
    if native:
        # No monitor to report Linux's halt: end the run on COM1 as test_com2_native does.
        s.append(("send", "sync; " + HALT))
    else:
        s += [("send", "exit"),
              ("expect", r"vlibos-linux: shell exited, powering off", step)]
    return s


# --------------------------------------------------------------------------------------------
# Checks


def check_guest(c, b, blob, token, image, server):
    """The Linux side: drivers bound, answers on COM2, the HTTP request, the token in the image."""
    text = b.com2
    c.check(E1000_RE.search(text) is not None, "no 'e1000 0000:00:03.0 eth0: (PCI:...' line on COM2")
    m = VIRTIO_BLK_RE.search(text)
    if c.check(m is not None, "no 'virtio_blk virtioN: [vda] N 512-byte logical blocks' line on COM2"):
        c.check(int(m.group(1)) == IMAGE_MIB * 2048, "vda has %s sectors, expected %d" % (m.group(1), IMAGE_MIB * 2048))
    info = section(text, "info")
    if c.check(info is not None, "no answer to the info command"):
        print("test: guest info:\n  " + "\n  ".join(info.strip().split("\n")))
        c.check("0000:00:03.0" in info and "0000:00:04.0" in info,
                "Linux does not list 00:03.0 and 00:04.0 in /sys/bus/pci/devices")
    c.check(re.search(r"^net-ok-2$", text, re.M) is not None, "setting up eth0 failed (net-FAIL or no answer)")
    carrier = re.search(r"^carrier-(\d*)-1$", text, re.M)
    c.check(carrier is not None and carrier.group(1) == "1", "eth0 has no carrier: %s" % (carrier and carrier.group(0)))
    want = hashlib.sha256(blob).hexdigest()
    got = SHA_RE.search(text)
    if c.check(got is not None, "wget failed: no sha256sum of /tmp/f on COM2"):
        c.check(got.group(1) == want, "the downloaded blob's SHA-256 is %s, expected %s" % (got.group(1), want))
    gets = list(server.requests)
    print("test: HTTP requests: %s" % gets)
    c.check([(m_, p) for m_, p, _ in gets] == [("GET", "/blob")],
            "the HTTP server saw %s, expected exactly one GET /blob" % gets)
    c.check(all(client == "127.0.0.1" for _, _, client in gets), "a request came from outside the loopback: %s" % gets)
    c.check(re.search(r"^disk-ok-5$", text, re.M) is not None, "mount/write/umount of /dev/vda failed (disk-FAIL or no answer)")
    irq = section(text, "irq")
    if c.check(irq is not None, "no answer to the /proc/interrupts command"):
        lines = parse_interrupts(irq)
        for n, total, chip, rest in lines:
            print("test: figure: interrupt %s: %d on %s %s" % (n, total, chip, rest))
        for want_name in ("eth0", "virtio"):
            mine = [l for l in lines if want_name in l[3]]
            if c.check(mine, "no %s line in /proc/interrupts: %r" % (want_name, irq)):
                # INTx only (pci=nomsi): the interrupts come through the (virtual) I/O APIC.
                c.check(all(l[2] == "IO-APIC" for l in mine), "%s interrupts not through the I/O APIC: %s" % (want_name, mine))
                c.check(any(l[1] > 0 for l in mine), "no %s interrupt counted" % want_name)

    # The image, after QEMU is gone.
    debugfs = tool("debugfs")
    if c.check(debugfs is not None, "debugfs not found (install e2fsprogs)"):
        r = subprocess.run([debugfs, "-R", "cat /from-linux.txt", image],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out = r.stdout.decode(errors="replace").strip()
        print("test: debugfs cat /from-linux.txt: %r (status %d)" % (out, r.returncode))
        c.check(out == token, "the image's /from-linux.txt holds %r, expected %r" % (out, token))
    fsck = tool("e2fsck")
    if c.check(fsck is not None, "e2fsck not found (install e2fsprogs)"):
        r = subprocess.run([fsck, "-fn", image], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        c.check(r.returncode == 0, "e2fsck -fn: the file system is not clean (status %d): %s"
                % (r.returncode, r.stdout.decode(errors="replace")[-500:]))


def check_monitor(c, b):
    """The vlibos side: Linux ran on CPU 1 and stopped as asked; the heartbeat kept beating."""
    sc.check_no_faults(c, b)
    starts = b.matching(START_RE)
    if c.check(len(starts) == 1, "expected one 'linux: vcpu 0 starting' line, got %d" % len(starts)):
        c.check(starts[0][1].group(1) != "0", "Linux ran on cpu 0, an RT cpu")
    stops = [(i, m) for i, m in b.matching(STOP_RE) if m.group(1) == "0"]
    if c.check(len(stops) == 1, "expected one 'linux: vcpu 0 stopped' report, got %d" % len(stops)):
        m = stops[0][1]
        c.check(m.group(3).startswith("every vCPU halted with interrupts disabled"),
                "Linux did not halt as asked: %s" % m.group(0))
        print("test: figure: Linux ran %s ms in its VM" % m.group(2))
    beats = b.matching(BEAT_RE)
    numbers = [int(m.group(1)) for _, m in beats]
    if c.check(numbers, "no heartbeat lines"):
        c.check(numbers == list(range(1, len(numbers) + 1)), "the heartbeat sequence has a gap or repeats: %s" % numbers)
        times = [int(m.group(2)) for _, m in beats]
        worst = max((y - x for x, y in zip(times, times[1:])), default=0)
        print("test: figure: %d beats, largest interval between beats %d ms" % (len(numbers), worst))
        if stops:
            after = [m for i, m in beats if i > stops[0][0]]
            c.check(after, "no heartbeat after the VM stopped")
            states = [m.group(3) for _, m in beats]
            c.check(sc.linux_state_settles(states),
                    "the heartbeat's view of Linux is not 'stopped' at the end, or goes back: %s" % states)
    done = b.matching(DONE_RE)
    if c.check(len(done) == 1, "no 'heartbeat done' line"):
        m = done[0][1]
        c.check(int(m.group(1)) == len(numbers), "heartbeat done beats=%s, printed %d" % (m.group(1), len(numbers)))
        # QEMU TCG does not isolate its vCPUs in time (docs/linux-guest.md): late is a figure only.
        print("test: figure: heartbeat late=%s" % m.group(2))

    # Isolation: Linux sees the assigned functions and the monitor's host bridge at 00:00.0, none
    # of the machine's others (00:01.x PIIX3 ISA/IDE/ACPI, 00:02.0 VGA).
    info = section(b.com2, "info")
    if info is not None:
        seen = set(re.findall(r"\b0000:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]\b", info))
        c.check(seen - {"0000:00:00.0"} == {"0000:00:03.0", "0000:00:04.0"},
                "Linux sees the PCI functions %s, expected 00:03.0 and 00:04.0 (and the host "
                "bridge 00:00.0) only" % sorted(seen))

    # The monitor's report: each function passed with its BARs and INTx line; the forwarded line
    # fired and was resampled at the guest's EOIs; nothing reached a hidden MSI capability.
    report = [b.lines[i] for i, _ in b.matching(PCI_REPORT_RE)]
    print("test: monitor's PCI report:\n  " + "\n  ".join(report))
    for bdf, ident in (("00:03.0", "8086:100e"), ("00:04.0", "1af4:1001")):
        c.check(any(re.search(r"pci %s \[%s\] passed to the VM: .*BAR\d mem 0x[0-9a-f]+.*INTA# -> GSI \d+" %
                              (re.escape(bdf), ident), l) for l in report),
                "no 'pci %s [%s] passed to the VM' line with a memory BAR and an INTA# line" % (bdf, ident))
    lines = [re.search(r"GSI (\d+) interrupts forwarded (\d+), resampled at EOI (\d+)", l) for l in report]
    lines = [m for m in lines if m]
    if c.check(lines, "no 'GSI N interrupts forwarded' line"):
        for m in lines:
            fired, resampled = int(m.group(2)), int(m.group(3))
            c.check(fired > 0, "GSI %s: no interrupt forwarded" % m.group(1))
            # Every forwarded interrupt is resampled at Linux's EOI, except one still in flight
            # when Linux powered off.
            c.check(resampled <= fired <= resampled + 1,
                    "GSI %s: forwarded %d but resampled %d" % (m.group(1), fired, resampled))
    stats = [re.search(r"hidden capabilities (\d+)\)", l) for l in report]
    stats = [m for m in stats if m]
    if c.check(stats, "no 'pci: config reads' line"):
        c.check(int(stats[0].group(1)) == 0, "Linux wrote to a hidden MSI/MSI-X capability")
    cmd = re.search(r"\] Command line: (.*)$", b.com2, re.M)
    c.check(cmd and "pci=nomsi" in cmd.group(1).split(),
            "Linux's command line lacks pci=nomsi: %s" % (cmd and cmd.group(1)))

def figures(b):
    s = b.script or {"steps": []}
    steps = s["steps"]

    def step_of(pattern):
        return next((r for r in steps if r.get("expect", "").startswith(pattern)), None)

    up = step_of("vlibos-linux: user space up")
    if up and up["status"] == "matched":
        print("test: figure: Linux user space up %.1f s after the emulator started" % up["at"])
    for name, pat in (("carrier", "^carrier"), ("wget + sha256sum", "^(?:[0-9a-f]"), ("mount/write/umount", "^disk")):
        r = step_of(pat)
        if r and r["status"] == "matched":
            print("test: figure: %s answered in %.2f s" % (name, r["waited"]))


# --------------------------------------------------------------------------------------------


def make_native_iso(linux_dir, run_dir):
    """The guest kernel and initramfs alone in a GRUB ISO (as tests/tools/test_com2_native.py)."""
    iso_dir = os.path.join(run_dir, "iso")
    os.makedirs(os.path.join(iso_dir, "boot", "grub"), exist_ok=True)
    for name in ("bzImage", "initramfs.cpio.gz"):
        shutil.copyfile(os.path.join(linux_dir, name), os.path.join(iso_dir, "boot", name))
    with open(os.path.join(iso_dir, "boot", "grub", "grub.cfg"), "w") as f:
        f.write("set timeout=0\nset default=0\nmenuentry \"linux\" {\n"
                "    linux /boot/bzImage %s\n    initrd /boot/initramfs.cpio.gz\n}\n" % NATIVE_CMDLINE)
    iso = os.path.join(run_dir, "linux-native.iso")
    r = subprocess.run(["grub-mkrescue", "-o", iso, iso_dir], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        print(r.stdout.decode(errors="replace"))
        return None
    return iso


def main():
    native = "--native" in sys.argv[1:]
    if native:
        sys.argv.remove("--native")
    args = sc.parse_args(__doc__)
    c = sc.Checker("linux_devices_%s%s" % ("native_" if native else "", args.emulator))
    if not c.check(args.emulator in ("qemu", "kvm"), "QEMU only: the runner's --nic/--disk are QEMU options"):
        return c.finish()
    kernel = os.path.join(args.linux_dir or "", "bzImage")
    initrd = os.path.join(args.linux_dir or "", "initramfs.cpio.gz")
    if not (os.path.isfile(kernel) and os.path.isfile(initrd)):
        c.check(False, "no guest kernel/initramfs in %s: run tools/vlibos linux first" % args.linux_dir)
        return c.finish()
    os.makedirs(args.run_dir, exist_ok=True)

    image = os.path.join(args.run_dir, "disk.img")
    err = make_image(image)
    if not c.check(err is None, err or ""):
        return c.finish()
    blob = os.urandom(BLOB_BYTES)
    with open(os.path.join(args.run_dir, "blob"), "wb") as f:
        f.write(blob)
    token = "vlibos-devices-" + secrets.token_hex(8)
    print("test: image %s (%d MiB ext4), blob %d bytes sha256 %s, token %s"
          % (image, IMAGE_MIB, len(blob), hashlib.sha256(blob).hexdigest(), token))

    with BlobServer(blob) as server:
        print("test: HTTP server on 127.0.0.1:%d (the guest's http://10.0.2.2:%d/blob)" % (server.port, server.port))
        script = shell_script(server.port, token, native)
        runner_args = ["--nic", "--disk", image]
        if native:
            iso = make_native_iso(args.linux_dir, args.run_dir)
            if not c.check(iso is not None, "grub-mkrescue failed"):
                return c.finish()
            boot_args = argparse.Namespace(emulator=args.emulator, smp=args.smp, memory=args.memory,
                                           timeout=max(args.timeout, 180), iso=iso, icount=None,
                                           kernel=None, configs=sc.DEFAULT_CONFIGS, apps_dir=None,
                                           run_dir=args.run_dir)
            b = sc.boot(boot_args, com2_script=script, runner_args=runner_args)
        else:
            args.linux = (kernel, initrd, CMDLINE)
            b = sc.boot(args, config=CONFIG, com2_script=script, runner_args=runner_args)
    print("test: COM2 transcript: %d lines in %s" % (len(b.com2_lines), b.com2_log))
    sc.check_halted(c, b, status=0)
    sc.check_com2_script(c, b)
    up = b.step(1)
    if c.check(up is not None and up["status"] == "matched", "Linux did not reach user space: "
               "the device checks are skipped (runner exit status %d)" % b.rc):
        check_guest(c, b, blob, token, image, server)
    if not native:
        check_monitor(c, b)
    figures(b)
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())

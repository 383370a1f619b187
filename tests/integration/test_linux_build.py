#!/usr/bin/env python3
"""The Linux guest build (linux-guest/): config check, reproducible initramfs, ISO modules, native boot.

    tests/integration/test_linux_build.py --run-dir DIR [--require-cached] [--no-boot]

1. build-initramfs.sh twice with empty caches: byte-identical archives holding /init,
   /dev/console and busybox with its applet links;
2. build-kernel.sh with a fragment asking for an impossible option fails and names it;
3. build-kernel.sh with linux-guest/guest.config (normally a cache hit); the bzImage's embedded
   configuration (scripts/extract-ikconfig, needs lz4) matches the fragment;
4. tools/mkiso --linux-kernel/--linux-initrd/--linux-cmdline writes the three vlibos.linux:*
   modules, and refuses a file that is not a bzImage;
5. linux-guest/boot-native.py: the guest boots natively in QEMU (TCG, 2 CPUs) to its shell.
With --require-cached, a cold kernel cache skips the whole test (exit 77, for CTest's
SKIP_RETURN_CODE) instead of a kernel build of several minutes.
Other options (--emulator, --smp, --iso, ... from the CTest helper) are accepted and ignored.
"""
import argparse
import gzip
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
LG = os.path.join(ROOT, "linux-guest")
SKIP = 77

failures = []


def check(ok, what):
    print("%s: %s" % ("ok" if ok else "FAIL", what))
    if not ok:
        failures.append(what)
    return ok


def run(cmd, env=None, timeout=None):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, timeout=timeout)
    out = p.stdout.decode(errors="replace")
    return p.returncode, out


def newc_entries(data):
    """name -> (mode, payload) of a newc cpio archive."""
    entries, off = {}, 0
    while True:
        hdr = data[off:off + 110]
        if hdr[:6] != b"070701":
            raise ValueError("bad newc magic at %d" % off)
        f = [int(hdr[6 + 8 * i:14 + 8 * i], 16) for i in range(13)]
        mode, size, namesize = f[1], f[6], f[11]
        name = data[off + 110:off + 110 + namesize - 1].decode()
        off = (off + 110 + namesize + 3) & ~3
        payload = data[off:off + size]
        off = (off + size + 3) & ~3
        if name == "TRAILER!!!":
            return entries
        entries[name] = (mode, payload)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run-dir", required=True)
    ap.add_argument("--require-cached", action="store_true")
    ap.add_argument("--no-boot", action="store_true")
    args, _ = ap.parse_known_args()
    os.makedirs(args.run_dir, exist_ok=True)
    out = os.path.join(args.run_dir, "linux")
    kernel_cmd = [os.path.join(LG, "build-kernel.sh"), "--out", out]
    if args.require_cached and run(kernel_cmd + ["--check-cache"])[0] != 0:
        print("skipped: the guest kernel is not in the cache (build it with tools/vlibos linux)")
        return SKIP

    # 1. Reproducible initramfs.
    archives = []
    for i in range(2):
        with tempfile.TemporaryDirectory() as cache:
            env = dict(os.environ, VLIBOS_CACHE=cache)
            d = os.path.join(args.run_dir, "initramfs-%d" % i)
            rc, text = run([os.path.join(LG, "build-initramfs.sh"), "--out", d], env=env)
            if not check(rc == 0, "build-initramfs.sh run %d (status %d)" % (i, rc)):
                print(text)
                return 1
            with open(os.path.join(d, "initramfs.cpio.gz"), "rb") as f:
                archives.append(f.read())
    check(archives[0] == archives[1], "two initramfs builds are byte-identical")
    ents = newc_entries(gzip.decompress(archives[0]))
    check("init" in ents and ents["init"][0] & 0o111, "initramfs has an executable /init")
    check(ents.get("dev/console", (0,))[0] == 0o20600, "initramfs has /dev/console (char device)")
    check("bin/busybox" in ents and ents.get("bin/sh", (0, b""))[1] == b"/bin/busybox",
          "initramfs has busybox and the /bin/sh applet link")

    # 2. A fragment option that cannot be met fails the build and is named.
    with tempfile.NamedTemporaryFile("w", suffix=".config", delete=False) as frag:
        frag.write(open(os.path.join(LG, "guest.config")).read())
        frag.write("# test_linux_build: x2APIC needs IRQ remapping or hypervisor-guest support\n")
        frag.write("CONFIG_X86_X2APIC=y\n")
    try:
        rc, text = run([os.path.join(LG, "build-kernel.sh"), "--fragment", frag.name,
                        "--out", os.path.join(args.run_dir, "bad")], timeout=900)
        check(rc != 0 and re.search(r"error: CONFIG_X86_X2APIC: fragment asks for y", text),
              "an unmet fragment option fails the build and is named (status %d)" % rc)
        m = re.search(r"in (\S+-[0-9a-f]{12})\n", text)
        if m and os.path.isdir(m.group(1)) and not os.path.exists(os.path.join(m.group(1), "done")):
            subprocess.run(["rm", "-rf", m.group(1)])
            lock = os.path.join(os.path.dirname(m.group(1)), ".lock-" + os.path.basename(m.group(1)))
            if os.path.exists(lock):
                os.unlink(lock)
    finally:
        os.unlink(frag.name)

    # 3. The guest kernel.
    rc, text = run(kernel_cmd)
    if not check(rc == 0, "build-kernel.sh (status %d)" % rc):
        print(text[-4000:])
        return 1
    rc, text = run([os.path.join(LG, "build-initramfs.sh"), "--out", out])
    check(rc == 0, "build-initramfs.sh into %s" % out)
    bz, initrd = os.path.join(out, "bzImage"), os.path.join(out, "initramfs.cpio.gz")
    rc, text = run(kernel_cmd + ["--check-cache"])
    cache_dir = text.strip().splitlines()[-1] if rc == 0 else ""
    ikconfig = ""
    srcdir = os.path.join(os.path.dirname(cache_dir), "src") if cache_dir else ""
    if srcdir and os.path.isdir(srcdir) and subprocess.run(["which", "lz4"], capture_output=True).returncode == 0:
        for ver in os.listdir(srcdir):
            tool = os.path.join(srcdir, ver, "scripts", "extract-ikconfig")
            if os.path.exists(tool) and os.path.basename(cache_dir).startswith(ver + "-"):
                rc, ikconfig = run([tool, bz])
    if ikconfig:
        final = set(ikconfig.splitlines())
        missing = [l for l in open(os.path.join(LG, "guest.config")).read().splitlines()
                   if re.match(r"^CONFIG_\w+=", l) and l not in final]
        check(not missing, "the bzImage's embedded config has every fragment option %s" % (missing or ""))
    else:
        print("note: embedded config not checked (no lz4 tool or no unpacked source)")

    # 4. ISO modules.
    mkiso = os.path.join(ROOT, "tools", "mkiso")
    iso = os.path.join(args.run_dir, "linux.iso")
    rc, text = run([mkiso, "--out", iso, "--kernel", "/bin/true", "--linux-kernel", bz,
                    "--linux-initrd", initrd, "--linux-cmdline", "console=ttyS0 quiet"])
    if check(rc == 0, "mkiso with the Linux options (status %d)" % rc):
        cfg = os.path.join(args.run_dir, "grub.cfg")
        run(["xorriso", "-osirrox", "on", "-indev", iso, "-extract", "/boot/grub/grub.cfg", cfg])
        text = open(cfg).read() if os.path.exists(cfg) else ""
        for line in ("module2 /boot/linux/bzImage vlibos.linux:kernel",
                     "module2 /boot/linux/initrd vlibos.linux:initrd",
                     "module2 /boot/linux/cmdline vlibos.linux:cmdline"):
            check(line in text, "grub.cfg has '%s'" % line)
    rc, text = run([mkiso, "--out", iso, "--kernel", "/bin/true", "--linux-kernel", "/bin/true"])
    check(rc != 0 and "not a Linux bzImage" in text, "mkiso refuses a non-bzImage --linux-kernel")

    # 5. Native boot.
    if not args.no_boot:
        rc, text = run([sys.executable, os.path.join(LG, "boot-native.py"), "--kernel", bz, "--initrd", initrd,
                        "--smp", "2", "--quiet", "--timeout", "240",
                        "--log", os.path.join(args.run_dir, "boot-native.log")])
        print(text.strip())
        check(rc == 0, "native QEMU boot to the shell (status %d)" % rc)

    if failures:
        print("FAILED: %d check(s)" % len(failures))
        return 1
    print("PASSED")
    return 0


if __name__ == "__main__":
    sys.exit(main())

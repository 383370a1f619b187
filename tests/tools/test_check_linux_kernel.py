#!/usr/bin/env python3
"""tools/check_linux_kernel.py, the check a user-supplied Linux kernel gets before it boots in the
Linux VM: configurations missing one required option fail, each with its own message; a missing
recommended option only warns; the initrd's compression and the command line's console are
checked; the project's own bzImage passes (skipped with a message when it has not been built:
tools/vlibos linux); bzImages rebuilt with another compression pass, one without its embedded
configuration warns and passes, one that is not relocatable, too old a protocol or too old a
Linux fails; a file that is not a bzImage fails clearly.

usage: test_check_linux_kernel.py TOOL [BZIMAGE]"""
import gzip
import importlib.util
import lzma
import os
import struct
import subprocess
import sys
import tempfile

TOOL = sys.argv[1]
BZIMAGE = sys.argv[2] if len(sys.argv) > 2 else None
failures = []

# What the Linux VM needs, written out independently of the tool's own table: option, a word of
# the message that explains what breaks.
REQUIRED = {
    "CONFIG_64BIT": "x86-64",
    "CONFIG_RELOCATABLE": "fixed address",
    "CONFIG_X86_LOCAL_APIC": "local APIC",
    "CONFIG_X86_IO_APIC": "I/O APIC",
    "CONFIG_X86_MPPARSE": "MP table",
    "CONFIG_X86_TSC": "tsc_early_khz",
    "CONFIG_TTY": "/dev/console",
    "CONFIG_SERIAL_8250": "COM2",
    "CONFIG_SERIAL_8250_CONSOLE": "console=ttyS1",
    "CONFIG_BLK_DEV_INITRD": "initramfs",
    "CONFIG_BINFMT_ELF": "init",
}
RECOMMENDED = ["CONFIG_SMP", "CONFIG_PRINTK", "CONFIG_EARLY_PRINTK", "CONFIG_IKCONFIG",
               "CONFIG_DEVTMPFS"]
GOOD = "\n".join(["#", "# Linux/x86_64 6.1 Kernel Configuration", "#"] +
                 ["%s=y" % o for o in list(REQUIRED) + RECOMMENDED] +
                 ["CONFIG_RD_GZIP=y", "# CONFIG_RD_XZ is not set", "CONFIG_NR_CPUS=8",
                  "# CONFIG_ACPI is not set", ""])


def check(cond, what):
    print("%s: %s" % ("ok" if cond else "FAIL", what))
    if not cond:
        failures.append(what)


def run(*args):
    r = subprocess.run([sys.executable, TOOL] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, universal_newlines=True)
    return r.returncode, r.stdout


def lines(out, kind):
    return [l for l in out.splitlines() if l.startswith("check_linux_kernel: %s: " % kind)]


tmp = tempfile.mkdtemp(prefix="check-linux-kernel-")


def write(name, data):
    path = os.path.join(tmp, name)
    with open(path, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)
    return path


# --- .config files ---------------------------------------------------------------------------
rc, out = run("--config", write("good.config", GOOD))
check(rc == 0 and not lines(out, "error") and not lines(out, "warning")
      and "every option" in out, "a complete .config passes without warnings")

for option, word in REQUIRED.items():
    for style, text in (("removed", GOOD.replace("%s=y\n" % option, "")),
                        ("not set", GOOD.replace("%s=y\n" % option, "# %s is not set\n" % option))):
        rc, out = run("--config", write("missing.config", text))
        errs = lines(out, "error")
        check(rc == 1 and len(errs) == 1 and errs[0].startswith(
            "check_linux_kernel: error: %s is not set: " % option) and word in errs[0]
              and "Bring your own kernel" in out,
              "%s %s: exit 1, one error naming it and what breaks ('%s')" % (option, style, word))

rc, out = run("--config", write("m.config", GOOD.replace("CONFIG_SERIAL_8250=y",
                                                         "CONFIG_SERIAL_8250=m")))
errs = lines(out, "error")
check(rc == 1 and len(errs) == 1 and "CONFIG_SERIAL_8250 is a module" in errs[0],
      "CONFIG_SERIAL_8250=m fails: the console must be built in")

for option in RECOMMENDED:
    rc, out = run("--config", write("rec.config", GOOD.replace("%s=y\n" % option, "")))
    warns = lines(out, "warning")
    check(rc == 0 and not lines(out, "error") and len(warns) == 1 and option in warns[0],
          "%s missing: a warning, exit 0" % option)

gz_initrd = write("initrd.gz", gzip.compress(b"070701" + b"0" * 200))
xz_initrd = write("initrd.xz", lzma.compress(b"070701" + b"0" * 200))
cpio_initrd = write("initrd.cpio", b"070701" + b"0" * 200)
rc, out = run("--config", write("good.config", GOOD), "--initrd", gz_initrd)
check(rc == 0 and not lines(out, "error"), "a gzip initrd with CONFIG_RD_GZIP passes")
rc, out = run("--config", write("good.config", GOOD), "--initrd", cpio_initrd)
check(rc == 0 and not lines(out, "error"), "an uncompressed cpio initrd passes")
rc, out = run("--config", write("good.config", GOOD), "--initrd", xz_initrd)
errs = lines(out, "error")
check(rc == 1 and len(errs) == 1 and "xz-compressed" in errs[0] and "CONFIG_RD_XZ is not set"
      in errs[0], "an xz initrd without CONFIG_RD_XZ fails, naming the option")

rc, out = run("--config", write("good.config", GOOD), "--cmdline", "console=ttyS0 quiet")
warns = lines(out, "warning")
check(rc == 0 and len(warns) == 1 and "console=ttyS1" in warns[0],
      "a command line without console=ttyS1 warns")
rc, out = run("--config", write("good.config", GOOD),
              "--cmdline=earlyprintk=serial,0x2f8,115200 console=ttyS1,115200")
check(rc == 0 and not lines(out, "warning"), "console=ttyS1,115200 is accepted")

rc, out = run("--config", write("empty.config", "hello\n"))
check(rc == 1 and "not a kernel .config" in out, "a file with no CONFIG_ lines fails")
rc, out = run("--config", os.path.join(tmp, "absent.config"))
check(rc == 2 and "cannot read" in out, "an absent file is a usage error (exit 2)")

# --- files that are not bzImages -------------------------------------------------------------
rc, out = run(write("text", "not a kernel\n" * 100))
errs = lines(out, "error")
check(rc == 1 and len(errs) == 1 and "is not a Linux bzImage: no boot flag" in errs[0],
      "a text file fails: not a Linux bzImage")
rc, out = run(write("tiny", b"\0" * 100))
check(rc == 1 and "too small" in out, "a 100-byte file fails: too small")
rc, out = run(sys.executable if os.path.isfile(sys.executable) else "/bin/sh")
check(rc == 1 and "not a Linux bzImage" in out, "an ELF executable fails: not a Linux bzImage")

# --- bzImages ---------------------------------------------------------------------------------
if not BZIMAGE or not os.path.isfile(BZIMAGE):
    print("skip: no bzImage at %s (build it with tools/vlibos linux): the bzImage cases are not run"
          % BZIMAGE)
else:
    spec = importlib.util.spec_from_file_location("check_linux_kernel", TOOL)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    with open(BZIMAGE, "rb") as f:
        image = f.read()

    rc, out = run(BZIMAGE)
    check(rc == 0 and not lines(out, "error") and "embedded configuration found" in out
          and "every option" in out, "the project's bzImage passes (%s)" % BZIMAGE)

    h = tool.parse_header(image)
    start = h["setup_sects"] * 512 + 512 + h["payload_offset"]
    end = start + h["payload_length"]
    method, vmlinux, why = tool.decompress_payload(image[start:end])
    check(vmlinux is not None and b"IKCFG_ST" in vmlinux, "its %s payload decompresses" % method)

    if vmlinux is not None and method == "LZ4":
        check(tool.lz4_legacy_decode(image[start:end]) == vmlinux,
              "the built-in LZ4 decoder (used without the lz4 tool) gives the same vmlinux")

    def repack(payload, name):
        """The image with another payload (the fields the check reads are patched)."""
        data = bytearray(image[:start] + payload + struct.pack("<I", len(vmlinux)) + image[end:])
        struct.pack_into("<I", data, 0x24c, len(payload))
        return write(name, bytes(data))

    if vmlinux is not None:
        rc, out = run(repack(gzip.compress(vmlinux, 6), "bz-gzip"))
        check(rc == 0 and "gzip-compressed payload" in out and "every option" in out,
              "the same kernel gzip-compressed passes")
        rc, out = run(repack(lzma.compress(vmlinux, lzma.FORMAT_XZ, check=lzma.CHECK_CRC32,
                                           preset=0), "bz-xz"))
        check(rc == 0 and "xz-compressed payload" in out and "every option" in out,
              "the same kernel xz-compressed passes")
        rc, out = run(repack(gzip.compress(vmlinux.replace(b"IKCFG_ST", b"IKCFG_XX"), 1),
                             "bz-noikconfig"))
        warns = lines(out, "warning")
        check(rc == 0 and not lines(out, "error") and len(warns) == 1
              and "no embedded configuration (CONFIG_IKCONFIG)" in warns[0]
              and "Bring your own kernel" in warns[0],
              "a bzImage without IKCONFIG warns that its options cannot be checked, and passes")

    data = bytearray(image)
    data[0x234] = 0
    rc, out = run(write("bz-fixed", bytes(data)))
    check(rc == 1 and "not relocatable" in out, "a non-relocatable bzImage fails")

    data = bytearray(image)
    struct.pack_into("<H", data, 0x206, 0x20a)
    rc, out = run(write("bz-old-protocol", bytes(data)))
    check(rc == 1 and "boot protocol 2.10 is too old" in out, "boot protocol 2.10 fails")

    data = bytearray(image)
    struct.pack_into("<H", data, 0x236, struct.unpack_from("<H", data, 0x236)[0] & ~1)
    rc, out = run(write("bz-32", bytes(data)))
    check(rc == 1 and "not an x86-64 kernel" in out, "a bzImage without XLF_KERNEL_64 fails")

    vptr = struct.unpack_from("<H", image, 0x20e)[0] + 0x200
    version = image[vptr:image.index(b"\0", vptr)]
    major_minor = version.split(b" ")[0]
    old = b"5.4." + b"9" * max(1, len(major_minor) - 4)
    data = bytearray(image)
    data[vptr:vptr + len(old)] = old
    rc, out = run(write("bz-old-linux", bytes(data)))
    check(rc == 1 and "no tsc_early_khz" in out, "Linux 5.4 fails: no tsc_early_khz")

if failures:
    print("%d check(s) failed" % len(failures))
    sys.exit(1)
print("all checks passed")

#!/usr/bin/env python3
"""Check that a Linux kernel can boot in the vlibos Linux VM.

    tools/check_linux_kernel.py [--initrd FILE] [--cmdline TEXT] BZIMAGE
    tools/check_linux_kernel.py --config .config [--initrd FILE] [--cmdline TEXT]

For a bzImage: checks its boot-protocol header (what the monitor's loader refuses: protocol
2.12+, bzImage, relocatable, x86-64), its version (tsc_early_khz= needs Linux 5.8+), then
decompresses its payload (gzip, xz, lzma, bzip2 with Python; LZ4 with the `lz4` tool or a
built-in decoder; zstd, lzo with the `zstd`/`lzop` tools) and reads the configuration built into
it (CONFIG_IKCONFIG) and checks the options the VM needs. With --config: checks a .config file.
With --initrd: the initrd's compression must be one the kernel can unpack (CONFIG_RD_*).
With --cmdline: the command line should put the console on ttyS1 (COM2).

Prints one line per problem with what breaks; exit status 0 = bootable (warnings allowed),
1 = a required option or header property is missing, 2 = usage error or unreadable file.
The options are listed in docs/linux-guest.md, section "Bring your own kernel".
"""
import argparse
import bz2
import gzip
import lzma
import os
import re
import shutil
import struct
import subprocess
import sys
import zlib

PROG = "check_linux_kernel"
DOC = 'docs/linux-guest.md, section "Bring your own kernel"'

# (option, why it is needed: what breaks without it). Each must be =y (built in).
REQUIRED = [
    ("CONFIG_64BIT", "the Linux VM runs x86-64 kernels only"),
    ("CONFIG_RELOCATABLE", "the monitor loads the kernel wherever the Linux partition's RAM is and "
     "refuses a kernel that must run at a fixed address"),
    ("CONFIG_X86_LOCAL_APIC", "the local APIC (xAPIC, TSC-deadline timer) is the VM's only timer "
     "and interrupt controller (no PIT, no HPET, no PIC)"),
    ("CONFIG_X86_IO_APIC", "device interrupts reach Linux only through the I/O APIC the MP table "
     "names"),
    ("CONFIG_X86_MPPARSE", "the VM has no ACPI tables: CPUs, the I/O APIC and interrupt routing "
     "come only from the MP table; without it Linux sees one CPU and no I/O APIC, and device "
     "interrupts (COM2's among them) never arrive"),
    ("CONFIG_X86_TSC", "timekeeping runs on the TSC, whose rate the monitor passes as "
     "tsc_early_khz= (there is no PIT to calibrate it against)"),
    ("CONFIG_TTY", "no terminals at all: no serial console, user space has no /dev/console"),
    ("CONFIG_SERIAL_8250", "the console is COM2, a 16550 UART: without the 8250 driver built in "
     "Linux prints nothing after early boot"),
    ("CONFIG_SERIAL_8250_CONSOLE", "the 8250 driver cannot be the console: console=ttyS1 is "
     "ignored, nothing is printed after early printk and user space gets no /dev/console "
     "(\"unable to open an initial console\")"),
    ("CONFIG_BLK_DEV_INITRD", "no initramfs: the VM has no disk of its own, so Linux panics with "
     "\"VFS: Unable to mount root fs\""),
    ("CONFIG_BINFMT_ELF", "Linux cannot start /init or any ELF program (\"No working init found\")"),
]

# Boot without them, but lose something.
RECOMMENDED = [
    ("CONFIG_SMP", "Linux uses one vCPU only, however many CPUs the Linux partition has"),
    ("CONFIG_PRINTK", "the kernel prints no messages at all (panics and oopses are invisible)"),
    ("CONFIG_EARLY_PRINTK", "the default command line's earlyprintk=serial,0x2f8 does nothing: "
     "a kernel that dies before its console driver starts dies silently"),
    ("CONFIG_IKCONFIG", "this check cannot read the options of the next build of this kernel"),
    ("CONFIG_DEVTMPFS", "/dev is empty unless the initramfs creates the device nodes itself"),
]

# Initrd compression: (magic, name, option).
INITRD_FORMATS = [
    (b"070701", "uncompressed cpio", None),
    (b"070702", "uncompressed cpio", None),
    (b"\x1f\x8b", "gzip", "CONFIG_RD_GZIP"),
    (b"\x1f\x9e", "gzip", "CONFIG_RD_GZIP"),
    (b"BZh", "bzip2", "CONFIG_RD_BZIP2"),
    (b"\x5d\x00\x00", "lzma", "CONFIG_RD_LZMA"),
    (b"\xfd7zXZ\x00", "xz", "CONFIG_RD_XZ"),
    (b"\x89LZO", "lzo", "CONFIG_RD_LZO"),
    (b"\x02\x21\x4c\x18", "lz4", "CONFIG_RD_LZ4"),
    (b"\x28\xb5\x2f\xfd", "zstd", "CONFIG_RD_ZSTD"),
]

MIN_VERSION = (5, 8)  # tsc_early_khz= (the monitor passes the TSC rate with it)


class Report:
    def __init__(self):
        self.errors = 0
        self.warnings = 0

    def error(self, text):
        self.errors += 1
        print("%s: error: %s" % (PROG, text))

    def warn(self, text):
        self.warnings += 1
        print("%s: warning: %s" % (PROG, text))

    def info(self, text):
        print("%s: %s" % (PROG, text))


class NotBzImage(Exception):
    pass


# --------------------------------------------------------------------------------------------
# The boot-protocol header (Documentation/arch/x86/boot.rst), as vmm/linux/bzimage.cpp reads it.


def parse_header(data):
    if len(data) < 0x268:
        raise NotBzImage("%d bytes, too small to hold a Linux setup header" % len(data))
    if struct.unpack_from("<H", data, 0x1fe)[0] != 0xAA55:
        raise NotBzImage("no boot flag 0xAA55 at offset 0x1fe")
    if data[0x202:0x206] != b"HdrS":
        raise NotBzImage("no 'HdrS' signature at offset 0x202")
    h = {}
    h["protocol"] = struct.unpack_from("<H", data, 0x206)[0]
    h["loadflags"] = data[0x211]
    h["relocatable"] = data[0x234] != 0
    h["xloadflags"] = struct.unpack_from("<H", data, 0x236)[0] if h["protocol"] >= 0x20c else 0
    h["setup_sects"] = data[0x1f1] or 4
    h["payload_offset"], h["payload_length"] = struct.unpack_from("<II", data, 0x248)
    h["version"] = ""
    vptr = struct.unpack_from("<H", data, 0x20e)[0]
    if vptr:
        start = vptr + 0x200
        end = data.find(b"\0", start, start + 256)
        if end > start:
            h["version"] = data[start:end].decode("ascii", "replace")
    return h


def check_header(h, rep):
    p = h["protocol"]
    if p < 0x20c:
        rep.error("boot protocol %d.%02d is too old: vlibos needs 2.12 or later (Linux 3.8+)"
                  % (p >> 8, p & 0xff))
        return
    if not h["loadflags"] & 0x01:
        rep.error("the kernel is a zImage (LOADED_HIGH clear): only bzImage kernels boot")
    if not h["relocatable"]:
        rep.error("the kernel is not relocatable (CONFIG_RELOCATABLE=n): the monitor loads it "
                  "wherever the Linux partition's RAM is")
    if not h["xloadflags"] & 0x01:
        rep.error("not an x86-64 kernel (no XLF_KERNEL_64 in xloadflags): the Linux VM runs "
                  "x86-64 kernels only (CONFIG_64BIT)")
    m = re.match(r"(\d+)\.(\d+)", h["version"])
    if m and (int(m.group(1)), int(m.group(2))) < MIN_VERSION:
        rep.error("Linux %s.%s has no tsc_early_khz= parameter (5.8+): with no PIT or HPET to "
                  "calibrate against, it cannot learn the TSC's rate" % m.groups())


# --------------------------------------------------------------------------------------------
# The compressed payload and the configuration inside it.


def lz4_legacy_decode(src):
    """Decode the LZ4 legacy frame format the kernel uses (lz4 -l): magic, then blocks of
    [u32 compressed size][LZ4 block]; stops at a block size that cannot be one (the kernel
    appends the decompressed size)."""
    out = bytearray()
    pos = 4
    n = len(src)
    while pos + 4 <= n:
        size = struct.unpack_from("<I", src, pos)[0]
        if size == 0x184C2102:  # another frame
            pos += 4
            continue
        if size == 0 or size > 8 << 20 or pos + 4 + size > n:
            break
        pos += 4
        end = pos + size
        i = pos
        while i < end:
            token = src[i]
            i += 1
            lit = token >> 4
            if lit == 15:
                while True:
                    b = src[i]
                    i += 1
                    lit += b
                    if b != 255:
                        break
            out += src[i:i + lit]
            i += lit
            if i >= end:
                break
            offset = src[i] | (src[i + 1] << 8)
            i += 2
            mlen = token & 15
            if mlen == 15:
                while True:
                    b = src[i]
                    i += 1
                    mlen += b
                    if b != 255:
                        break
            mlen += 4
            if offset == 0 or offset > len(out):
                raise ValueError("corrupt LZ4 block")
            start = len(out) - offset
            if offset >= mlen:
                out += out[start:start + mlen]
            else:
                while mlen > 0:
                    chunk = out[start:start + min(offset, mlen)]
                    out += chunk
                    mlen -= len(chunk)
        pos = end
    return bytes(out)


def run_tool(argv, payload):
    """Decompress with a command-line tool; the kernel appends the decompressed size, which the
    tools may complain about after writing everything, so their exit status is not trusted."""
    try:
        r = subprocess.run(argv, input=payload, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return r.stdout or None


def decompress_payload(payload):
    """Returns (method, data or None, why-not)."""
    if payload[:2] in (b"\x1f\x8b", b"\x1f\x9e"):
        return "gzip", zlib.decompressobj(31).decompress(payload), None
    if payload[:6] == b"\xfd7zXZ\x00":
        return "xz", lzma.LZMADecompressor(lzma.FORMAT_XZ).decompress(payload), None
    if payload[:3] == b"\x5d\x00\x00":
        return "lzma", lzma.LZMADecompressor(lzma.FORMAT_ALONE).decompress(payload), None
    if payload[:3] == b"BZh":
        return "bzip2", bz2.BZ2Decompressor().decompress(payload), None
    if payload[:4] == b"\x02\x21\x4c\x18":
        if shutil.which("lz4"):
            data = run_tool(["lz4", "-dc"], payload)
            if data:
                return "LZ4", data, None
        return "LZ4", lz4_legacy_decode(payload), None
    if payload[:4] == b"\x28\xb5\x2f\xfd":
        if not shutil.which("zstd"):
            return "zstd", None, "the 'zstd' tool is not installed (apt-get install zstd)"
        return "zstd", run_tool(["zstd", "-dc"], payload), None
    if payload[:4] == b"\x89LZO":
        if not shutil.which("lzop"):
            return "lzo", None, "the 'lzop' tool is not installed (apt-get install lzop)"
        return "lzo", run_tool(["lzop", "-dc"], payload), None
    return "unknown", None, "unknown compression (magic %s)" % payload[:6].hex()


def find_ikconfig(vmlinux):
    """The text of the configuration between the IKCFG_ST and IKCFG_ED markers
    (kernel/configs.c), or None."""
    start = vmlinux.find(b"IKCFG_ST\x1f\x8b\x08")
    if start < 0:
        return None
    try:
        return zlib.decompressobj(31).decompress(vmlinux[start + 8:]).decode("utf-8", "replace")
    except zlib.error:
        return None


def read_kernel_config(path, rep):
    """Checks the header; returns the embedded configuration text, or None."""
    with open(path, "rb") as f:
        data = f.read()
    h = parse_header(data)
    rep.info("%s: Linux %s, boot protocol %d.%02d" % (
        path, h["version"] or "(version unknown)", h["protocol"] >> 8, h["protocol"] & 0xff))
    check_header(h, rep)
    if h["protocol"] < 0x208 or not h["payload_length"]:
        rep.warn("the header has no payload fields (boot protocol < 2.08): the kernel's options "
                 "cannot be checked; see %s" % DOC)
        return None
    start = h["setup_sects"] * 512 + 512 + h["payload_offset"]
    payload = data[start:start + h["payload_length"]]
    try:
        method, vmlinux, why = decompress_payload(payload)
    except (zlib.error, lzma.LZMAError, OSError, ValueError, EOFError, IndexError) as e:
        method, vmlinux, why = "?", None, "decompression failed: %s" % e
    if vmlinux is None:
        rep.warn("cannot decompress the kernel (%s): its options cannot be checked; see %s"
                 % (why or "decompression failed", DOC))
        return None
    if vmlinux[:4] == b"\x7fELF" and len(vmlinux) > 20:
        machine = struct.unpack_from("<H", vmlinux, 18)[0]
        if machine != 62:
            rep.error("the kernel is an ELF for machine %d, not x86-64 (62)" % machine)
    config = find_ikconfig(vmlinux)
    if config is None:
        rep.warn("the kernel has no embedded configuration (CONFIG_IKCONFIG): its options cannot "
                 "be checked, make sure it has those listed in %s" % DOC)
        return None
    rep.info("%s-compressed payload, embedded configuration found" % method)
    return config


# --------------------------------------------------------------------------------------------
# The options.


def parse_config(text):
    values = {}
    for line in text.splitlines():
        line = line.strip()
        m = re.match(r"^(CONFIG_\w+)=(.*)$", line)
        if m:
            values[m.group(1)] = m.group(2).strip('"')
            continue
        m = re.match(r"^# (CONFIG_\w+) is not set$", line)
        if m:
            values[m.group(1)] = "n"
    return values


def describe(values, name):
    v = values.get(name, "n")
    if v == "n":
        return "is not set"
    if v == "m":
        return "is a module (=m), it must be built in (=y)"
    return "is %s" % v


def check_options(values, rep):
    for name, why in REQUIRED:
        if values.get(name) != "y":
            rep.error("%s %s: %s" % (name, describe(values, name), why))
    for name, why in RECOMMENDED:
        if values.get(name) != "y":
            rep.warn("%s %s (recommended): %s" % (name, describe(values, name), why))


def check_initrd(path, values, rep):
    with open(path, "rb") as f:
        head = f.read(8)
    for magic, name, option in INITRD_FORMATS:
        if head.startswith(magic):
            if option is None or values is None:
                return
            if values.get("CONFIG_BLK_DEV_INITRD") != "y":
                return  # already an error
            if values.get(option) != "y":
                rep.error("the initrd %s is %s-compressed but %s %s: the kernel cannot unpack it "
                          "(\"Initramfs unpacking failed\") and panics with no root file system"
                          % (path, name, option, describe(values, option)))
            return
    rep.warn("the initrd %s is neither a cpio archive nor compressed in a format Linux knows "
             "(starts with %s)" % (path, head.hex()))


def check_cmdline(cmdline, rep):
    consoles = re.findall(r"(?:^|\s)console=(\S+)", cmdline)
    if not any(c == "ttyS1" or c.startswith("ttyS1,") for c in consoles):
        rep.warn("the command line has no console=ttyS1: the Linux VM's console is COM2 (ttyS1), "
                 "and a --linux-cmdline replaces the default one, so Linux's console output goes "
                 "nowhere (add \"console=ttyS1,115200\")")


def main(argv):
    ap = argparse.ArgumentParser(prog="check_linux_kernel.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bzimage", nargs="?", help="the kernel (bzImage)")
    ap.add_argument("--config", metavar="FILE", help="check this .config instead of a bzImage")
    ap.add_argument("--initrd", metavar="FILE", help="also check the initrd's compression")
    ap.add_argument("--cmdline", metavar="TEXT", help="also check the kernel command line")
    args = ap.parse_args(argv)
    if (args.bzimage is None) == (args.config is None):
        ap.error("give either a bzImage or --config FILE")

    rep = Report()
    values = None
    try:
        if args.config:
            with open(args.config, encoding="utf-8", errors="replace") as f:
                values = parse_config(f.read())
            if not values:
                rep.error("%s has no CONFIG_ lines: not a kernel .config" % args.config)
        else:
            try:
                text = read_kernel_config(args.bzimage, rep)
            except NotBzImage as e:
                rep.error("%s is not a Linux bzImage: %s" % (args.bzimage, e))
                text = None
            if text is not None:
                values = parse_config(text)
        if values:
            check_options(values, rep)
        if args.initrd:
            check_initrd(args.initrd, values, rep)
    except OSError as e:
        print("%s: cannot read %s: %s" % (PROG, e.filename, e.strerror), file=sys.stderr)
        return 2
    if args.cmdline is not None:
        check_cmdline(args.cmdline, rep)

    what = args.config or args.bzimage
    if rep.errors:
        rep.info("%s cannot boot in the Linux VM: %d problem(s) above; the options are listed in %s"
                 % (what, rep.errors, DOC))
        return 1
    if values:
        rep.info("%s has every option the Linux VM needs%s" % (
            what, " (%d warning(s) above)" % rep.warnings if rep.warnings else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

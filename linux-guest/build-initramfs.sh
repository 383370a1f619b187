#!/usr/bin/env bash
# Build the vlibos Linux guest initramfs: a gzip'd newc cpio archive holding busybox (static,
# Debian busybox-static) with one symlink per applet, a skeleton (/dev/console, mount points) and
# the overlay linux-guest/rootfs/ (its /init is PID 1), and the guest modules DIR/modules/*.ko
# (built by build-kernel.sh) as /lib/modules/*.ko.
#
#   linux-guest/build-initramfs.sh [--out DIR] [--busybox FILE] [--overlay DIR] [--modules MDIR]
#
# The archive is reproducible: entries sorted by path, owner root, mtime 0, normalised modes
# (0755 for directories and executables, 0644 otherwise), gzip without name or time. It is
# cached in ${VLIBOS_CACHE:-$HOME/.cache/vlibos}/initramfs/<hash>/ (hash of every input: this
# script, busybox, the overlay); DIR/initramfs.cpio.gz is only rewritten when it changes.
# Written without root: device nodes go straight into the archive, nothing is mknod'ed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")

die() { printf 'initramfs: error: %s\n' "$*" >&2; exit 1; }
usage() {
    cat <<EOF
usage: linux-guest/build-initramfs.sh [--out DIR] [--busybox FILE] [--overlay DIR]

  --out DIR       where initramfs.cpio.gz goes (default: \$VLIBOS_BUILD_DIR/linux or build/linux)
  --busybox FILE  static busybox binary (default: /bin/busybox from busybox-static)
  --overlay DIR   files copied over the skeleton (default: linux-guest/rootfs)
  --modules MDIR  kernel modules put in /lib/modules/ (default: DIR/modules, if it exists)
EOF
}

out="${VLIBOS_BUILD_DIR:-$root/build}/linux"
busybox=/bin/busybox
overlay="$here/rootfs"
modules=
while [ $# -gt 0 ]; do
    case "$1" in
        --out) [ $# -ge 2 ] || die "--out needs a directory"; out=$2; shift 2 ;;
        --busybox) [ $# -ge 2 ] || die "--busybox needs a file"; busybox=$2; shift 2 ;;
        --overlay) [ $# -ge 2 ] || die "--overlay needs a directory"; overlay=$2; shift 2 ;;
        --modules) [ $# -ge 2 ] || die "--modules needs a directory"; modules=$2; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument '$1'" ;;
    esac
done
[ -x "$busybox" ] || die "$busybox not found or not executable (install the Debian package busybox-static)"
[ -d "$overlay" ] || die "overlay folder $overlay not found"
[ -f "$overlay/init" ] && [ -x "$overlay/init" ] || die "$overlay/init is missing or not executable"
applets=$("$busybox" --list-full 2>/dev/null) || die "$busybox --list-full failed"
[ -n "$modules" ] || modules="$out/modules"

exec python3 - "$busybox" "$overlay" "$out" "${VLIBOS_CACHE:-$HOME/.cache/vlibos}/initramfs" \
    "${BASH_SOURCE[0]}" "$applets" "$modules" <<'PY'
import gzip, hashlib, os, stat, sys, time

busybox, overlay, out, cache, script, applets, modules = sys.argv[1:8]
t0 = time.time()

# path (no leading /) -> (kind, mode, payload): kind 'dir', 'file' (payload bytes),
# 'link' (payload target), 'chr' (payload (major, minor)).
entries = {}
def add(path, kind, mode, payload=None):
    path = path.strip("/")
    parts = path.split("/")
    for i in range(1, len(parts)):
        d = "/".join(parts[:i])
        if d not in entries:
            entries[d] = ("dir", 0o755, None)
    entries[path] = (kind, mode, payload)

for d in ("bin", "sbin", "usr/bin", "usr/sbin", "dev", "proc", "sys", "tmp", "run", "root",
          "etc", "var", "mnt"):
    add(d, "dir", 0o755)
add("tmp", "dir", 0o1777)
# The kernel opens /dev/console for PID 1 before anything is mounted.
add("dev/console", "chr", 0o600, (5, 1))
add("dev/null", "chr", 0o666, (1, 3))
with open(busybox, "rb") as f:
    bb = f.read()
# The initramfs has no dynamic loader: refuse an ELF with a PT_INTERP program header.
if bb[:4] != b"\x7fELF" or bb[4] != 2:
    sys.exit("initramfs: error: %s is not a 64-bit ELF executable" % busybox)
phoff = int.from_bytes(bb[32:40], "little")
phentsize = int.from_bytes(bb[54:56], "little")
phnum = int.from_bytes(bb[56:58], "little")
for i in range(phnum):
    if int.from_bytes(bb[phoff + i * phentsize:phoff + i * phentsize + 4], "little") == 3:
        sys.exit("initramfs: error: %s is dynamically linked (install busybox-static, not busybox)" % busybox)
add("bin/busybox", "file", 0o755, bb)
for a in applets.split():
    a = a.strip("/")
    if a in ("linuxrc", "bin/busybox") or "/" not in a:
        continue
    add(a, "link", 0o777, "/bin/busybox")

# The overlay: regular files, folders and symlinks; modes normalised for reproducibility.
for dirpath, dirnames, filenames in os.walk(overlay):
    dirnames.sort()
    rel_dir = os.path.relpath(dirpath, overlay)
    for name in sorted(dirnames + filenames):
        full = os.path.join(dirpath, name)
        rel = os.path.normpath(os.path.join(rel_dir, name))
        st = os.lstat(full)
        if stat.S_ISLNK(st.st_mode):
            add(rel, "link", 0o777, os.readlink(full))
        elif stat.S_ISDIR(st.st_mode):
            add(rel, "dir", 0o1777 if rel == "tmp" else 0o755)
        elif stat.S_ISREG(st.st_mode):
            with open(full, "rb") as f:
                data = f.read()
            add(rel, "file", 0o755 if st.st_mode & 0o111 else 0o644, data)
        else:
            sys.exit("initramfs: error: %s: only files, folders and symlinks are allowed in the overlay" % full)

# The guest modules (build-kernel.sh: DIR/modules/*.ko), if any.
if os.path.isdir(modules):
    for name in sorted(os.listdir(modules)):
        if name.endswith(".ko"):
            with open(os.path.join(modules, name), "rb") as f:
                add("lib/modules/" + name, "file", 0o644, f.read())

# Cache key: this script (the format) plus every entry.
h = hashlib.sha256()
with open(script, "rb") as f:
    h.update(f.read())
for path in sorted(entries):
    kind, mode, payload = entries[path]
    h.update(("%s\0%s\0%o\0" % (path, kind, mode)).encode())
    if isinstance(payload, bytes):
        h.update(hashlib.sha256(payload).digest())
    else:
        h.update(repr(payload).encode())
key = h.hexdigest()[:12]
cdir = os.path.join(cache, key)
cached = os.path.join(cdir, "initramfs.cpio.gz")

def publish(note):
    os.makedirs(out, exist_ok=True)
    dst = os.path.join(out, "initramfs.cpio.gz")
    with open(cached, "rb") as f:
        data = f.read()
    same = False
    try:
        with open(dst, "rb") as f:
            same = f.read() == data
    except OSError:
        pass
    if not same:
        tmp = "%s.tmp.%d" % (dst, os.getpid())
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, dst)
    print("initramfs: %s: %s (%d bytes, %d entries, %.1f s)" % (note, dst, len(data), len(entries), time.time() - t0))

if os.path.isfile(cached):
    publish("cache hit " + key)
    sys.exit(0)

# newc: "070701", 13 fields of 8 hex digits, name + NUL padded to 4, data padded to 4.
archive = bytearray()
def pad4():
    archive.extend(b"\0" * (-len(archive) % 4))
def entry(ino, name, mode, nlink, data=b"", rdev=(0, 0)):
    nb = name.encode() + b"\0"
    fields = (ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdev[0], rdev[1], len(nb), 0)
    archive.extend(b"070701" + b"".join(b"%08X" % v for v in fields))
    archive.extend(nb); pad4()
    archive.extend(data); pad4()
kinds = {"dir": stat.S_IFDIR, "file": stat.S_IFREG, "link": stat.S_IFLNK, "chr": stat.S_IFCHR}
for ino, path in enumerate(sorted(entries), start=1):
    kind, mode, payload = entries[path]
    m = kinds[kind] | mode
    if kind == "dir":
        entry(ino, path, m, 2)
    elif kind == "file":
        entry(ino, path, m, 1, payload)
    elif kind == "link":
        entry(ino, path, m, 1, payload.encode())
    else:
        entry(ino, path, m, 1, rdev=payload)
entry(0, "TRAILER!!!", 0, 1)
data = gzip.compress(bytes(archive), compresslevel=9, mtime=0)

os.makedirs(cdir, exist_ok=True)
tmp = "%s.tmp.%d" % (cached, os.getpid())
with open(tmp, "wb") as f:
    f.write(data)
with open(os.path.join(cdir, "manifest"), "w") as f:
    for path in sorted(entries):
        kind, mode, payload = entries[path]
        extra = payload if kind == "link" else ("%d bytes" % len(payload) if kind == "file" else payload or "")
        f.write("%-5s %04o /%s %s\n" % (kind, mode, path, extra))
os.replace(tmp, cached)
publish("built " + key)
PY

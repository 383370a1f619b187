#!/usr/bin/env bash
# Build the out-of-tree guest modules (every folder of linux-guest/modules/ with a Kbuild file)
# against a cached guest kernel build tree, and copy the .ko files into OUT.
#
#   linux-guest/modules/build-modules.sh --kernel-dir CACHEDIR --out OUT
#
# CACHEDIR is the kernel's cache folder (${VLIBOS_CACHE:-~/.cache/vlibos}/linux/<key>/, made by
# linux-guest/build-kernel.sh, which calls this script), holding build/ (the kernel build tree).
# The result is cached in CACHEDIR/modules/<hash>/ (hash of this script and every file of the
# module folders), built at a fixed path so the .ko is the same on every machine.
# The kernel has no in-tree modules, so there is no Module.symvers: vmlinux.symvers gives
# modpost the kernel's exported symbols (KBUILD_EXTRA_SYMBOLS).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
say() { printf 'modules: %s\n' "$*"; }
die() { printf 'modules: error: %s\n' "$*" >&2; exit 1; }

kdir= out=
while [ $# -gt 0 ]; do
    case "$1" in
        --kernel-dir) [ $# -ge 2 ] || die "--kernel-dir needs a folder"; kdir=$2; shift 2 ;;
        --out) [ $# -ge 2 ] || die "--out needs a folder"; out=$2; shift 2 ;;
        *) die "unknown argument '$1'" ;;
    esac
done
[ -n "$kdir" ] && [ -n "$out" ] || die "usage: build-modules.sh --kernel-dir CACHEDIR --out OUT"

mods=()
for d in "$here"/*/; do
    [ -f "$d/Kbuild" ] && mods+=("$(basename "$d")")
done
[ ${#mods[@]} -gt 0 ] || { say "no modules"; exit 0; }

# Cache key: this script plus every file of the module folders (path and content).
hash=$( (sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1
         cd "$here" && for m in "${mods[@]}"; do
             find "$m" -type f ! -name '*.o' ! -name '*.ko' ! -name '*.mod*' ! -name '.*' \
                 ! -name 'Module.symvers' ! -name 'modules.order' -print0
         done | LC_ALL=C sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-12)
cdir="$kdir/modules/$hash"

publish() {
    mkdir -p "$out"
    local m
    for m in "${mods[@]}"; do
        if ! cmp -s "$cdir/$m.ko" "$out/$m.ko"; then
            cp -f "$cdir/$m.ko" "$out/$m.ko.tmp.$$" && mv -f "$out/$m.ko.tmp.$$" "$out/$m.ko"
        fi
        say "$m.ko: $out/$m.ko ($(stat -c %s "$out/$m.ko") bytes)"
    done
}

if [ -f "$cdir/done" ]; then
    say "cache hit: $cdir"
    publish
    exit 0
fi
kbuild="$kdir/build"
[ -f "$kbuild/vmlinux.symvers" ] && [ -x "$kbuild/scripts/mod/modpost" ] ||
    die "no kernel build tree in $kbuild (pruned?): remove $kdir and run tools/vlibos linux again"

mkdir -p "$kdir/modules"
exec 9>"$kdir/modules/.lock"
flock 9
if [ ! -f "$cdir/done" ]; then
    # A fixed build path (paths end up in the objects), rebuilt from a clean copy each time.
    work="$kdir/modules/work"
    rm -rf "$work" "$cdir"
    mkdir -p "$work" "$cdir.tmp"
    log="$cdir.tmp/build.log"
    : >"$log"
    # The kernel was built with `make bzImage` only: the module linker script and the rest of
    # modules_prepare are made once in its build tree.
    if [ ! -f "$kbuild/scripts/module.lds" ]; then
        say "make modules_prepare in $kbuild (once)"
        make -C "$kbuild" ARCH=x86_64 modules_prepare >>"$log" 2>&1 || {
            tail -n 30 "$log" >&2; die "make modules_prepare failed (log: $log)"; }
    fi
    for m in "${mods[@]}"; do
        cp -r "$here/$m" "$work/$m"
        say "building $m.ko against $kbuild"
        if ! make -C "$kbuild" M="$work/$m" ARCH=x86_64 KBUILD_EXTRA_SYMBOLS="$kbuild/vmlinux.symvers" \
                KBUILD_BUILD_USER=vlibos KBUILD_BUILD_HOST=vlibos modules >>"$log" 2>&1; then
            tail -n 30 "$log" >&2
            die "building $m.ko failed (log: $log)"
        fi
        # Module.symvers is missing by design (see above): modpost only warns then, so an
        # undefined symbol is made an error here.
        if grep -E "undefined!" "$log" >&2; then
            die "$m.ko uses symbols the kernel does not export (log: $log)"
        fi
        grep -E "warning|WARNING|error" "$log" | grep -vE "Module.symvers is missing|Modules may not|unresolved symbol warnings" >&2 || true
        cp "$work/$m/$m.ko" "$cdir.tmp/$m.ko"
    done
    rm -rf "$work"
    date -u +%s >"$cdir.tmp/done"
    mv "$cdir.tmp" "$cdir"
    say "built: $cdir"
fi
exec 9>&-
publish

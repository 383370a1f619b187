#!/usr/bin/env bash
# Build the vlibos Linux guest kernel (bzImage) from Debian's linux-source-6.1 tarball.
#
#   linux-guest/build-kernel.sh [--out DIR] [--source TARBALL] [--fragment FILE] [--jobs N]
#                               [--check-cache]
#
# The configuration is `make tinyconfig` + linux-guest/guest.config (merge_config.sh) +
# `make olddefconfig`; every option of the fragment is then checked in the final .config.
# Results are cached in ${VLIBOS_CACHE:-$HOME/.cache/vlibos}/linux/<source-version>-<hash>/
# (hash: first 12 hex digits of the fragment's sha256): bzImage, config, build.log, and the
# kernel build tree build/ (kept for out-of-tree modules). A second run with the same key is a
# cache hit and only copies the result to --out DIR (default: build/linux). Either way the
# modules of linux-guest/modules/ are then built against it (cached too) into DIR/modules/.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")

say() { printf 'linux: %s\n' "$*"; }
die() { printf 'linux: error: %s\n' "$*" >&2; exit 1; }

usage() {
    cat <<EOF
usage: linux-guest/build-kernel.sh [--out DIR] [--source TARBALL] [--fragment FILE] [--jobs N]
                                   [--check-cache]

Builds bzImage from the Debian linux-source-6.1 tarball with linux-guest/guest.config, cached in
\${VLIBOS_CACHE:-\$HOME/.cache/vlibos}/linux/. Copies bzImage and config into DIR.

  --out DIR         where bzImage and config go (default: \$VLIBOS_BUILD_DIR/linux or build/linux)
  --source TARBALL  kernel source tarball (default: /usr/src/linux-source-6.1.tar.xz)
  --fragment FILE   Kconfig fragment (default: linux-guest/guest.config)
  --jobs N          parallel make jobs (default: nproc)
  --check-cache     build nothing: print the cache folder, exit 0 if it holds a finished
                    build, 3 if not
EOF
}

out="${VLIBOS_BUILD_DIR:-$root/build}/linux"
tarball=/usr/src/linux-source-6.1.tar.xz
fragment="$here/guest.config"
jobs=$(nproc)
check_cache=0
while [ $# -gt 0 ]; do
    case "$1" in
        --out) [ $# -ge 2 ] || die "--out needs a directory"; out=$2; shift 2 ;;
        --source) [ $# -ge 2 ] || die "--source needs a file"; tarball=$2; shift 2 ;;
        --fragment) [ $# -ge 2 ] || die "--fragment needs a file"; fragment=$2; shift 2 ;;
        --jobs) [ $# -ge 2 ] || die "--jobs needs a number"; jobs=$2; shift 2 ;;
        --check-cache) check_cache=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument '$1'" ;;
    esac
done
[[ "$jobs" =~ ^[1-9][0-9]*$ ]] || die "--jobs: '$jobs' is not a positive number"
[ -f "$tarball" ] || die "kernel source tarball $tarball not found (install the Debian package linux-source-6.1)"
[ -f "$fragment" ] || die "config fragment $fragment not found"
tarball=$(readlink -f "$tarball")
fragment=$(readlink -f "$fragment")

cache="${VLIBOS_CACHE:-$HOME/.cache/vlibos}/linux"

# Source version: the Debian package version when the tarball is the packaged one, otherwise
# the tarball's own sha256 (so a different tarball never reuses a cached build).
srcver=
if [ "$tarball" = /usr/src/linux-source-6.1.tar.xz ] && command -v dpkg-query >/dev/null 2>&1; then
    srcver=$(dpkg-query -W -f='${Version}' linux-source-6.1 2>/dev/null || true)
    [ -n "$srcver" ] && srcver="6.1-deb${srcver//:/_}"
fi
if [ -z "$srcver" ]; then
    srcver="tar$(sha256sum "$tarball" | cut -c1-12)"
fi
fraghash=$(sha256sum "$fragment" | cut -c1-12)
key="$srcver-$fraghash"
dir="$cache/$key"

publish() {
    mkdir -p "$out"
    local f
    for f in bzImage config; do
        # Leave an identical file alone, so its mtime does not trigger needless rebuilds.
        if ! cmp -s "$dir/$f" "$out/$f"; then
            cp -f "$dir/$f" "$out/$f.tmp.$$" && mv -f "$out/$f.tmp.$$" "$out/$f"
        fi
    done
    say "bzImage: $out/bzImage ($(stat -c %s "$out/bzImage") bytes), config: $out/config"
    # The out-of-tree guest modules (linux-guest/modules/, cached per kernel): DIR/modules/*.ko,
    # which build-initramfs.sh puts in /lib/modules/.
    "$here/modules/build-modules.sh" --kernel-dir "$dir" --out "$out/modules"
}

if [ "$check_cache" = 1 ]; then
    echo "$dir"
    [ -f "$dir/done" ] && [ -f "$dir/bzImage" ] && [ -f "$dir/config" ] && exit 0
    exit 3
fi
if [ -f "$dir/done" ] && [ -f "$dir/bzImage" ] && [ -f "$dir/config" ]; then
    say "cache hit: $dir"
    publish
    exit 0
fi

mkdir -p "$cache"
# One build per key at a time; a second concurrent run waits, then finds the cache hit.
exec 9>"$cache/.lock-$key"
if ! flock -n 9; then
    say "another build of $key is running, waiting for it"
    flock 9
fi
if [ -f "$dir/done" ] && [ -f "$dir/bzImage" ]; then
    say "cache hit: $dir"
    publish
    exit 0
fi

# --- Unpack the source once per source version (shared by every fragment).
src="$cache/src/$srcver"
if [ ! -f "$src/.unpacked" ]; then
    exec 8>"$cache/.lock-src-$srcver"
    flock 8
    if [ ! -f "$src/.unpacked" ]; then
        say "unpacking $tarball into $src (once)"
        rm -rf "$src" "$src.tmp"
        mkdir -p "$src.tmp"
        tar -xJf "$tarball" -C "$src.tmp" --strip-components=1
        [ -f "$src.tmp/Makefile" ] || die "$tarball does not look like a kernel source tarball"
        touch "$src.tmp/.unpacked"
        mv "$src.tmp" "$src"
    fi
    exec 8>&-
fi
kver=$(make -s -C "$src" kernelversion 2>/dev/null || echo unknown)

say "building Linux $kver (source $srcver, fragment $fraghash) in $dir"
rm -rf "$dir"
mkdir -p "$dir/build"
log="$dir/build.log"
: >"$log"
start=$(date +%s)

# Reproducible: fixed build user/host/timestamp (uname -v, /proc/version).
kmake=(make -C "$src" O="$dir/build" ARCH=x86_64
       KBUILD_BUILD_USER=vlibos KBUILD_BUILD_HOST=vlibos KBUILD_BUILD_VERSION=1
       "KBUILD_BUILD_TIMESTAMP=Thu Jan  1 00:00:00 UTC 1970")

fail() {
    printf 'linux: error: %s; last 30 lines of %s:\n' "$1" "$log" >&2
    tail -n 30 "$log" >&2
    exit 1
}

# --- Configure.
"${kmake[@]}" tinyconfig >>"$log" 2>&1 || fail "make tinyconfig failed"
(cd "$dir/build" && "$src/scripts/kconfig/merge_config.sh" -m -O "$dir/build" \
    "$dir/build/.config" "$fragment") >>"$log" 2>&1 || fail "merge_config.sh failed"
"${kmake[@]}" olddefconfig >>"$log" 2>&1 || fail "make olddefconfig failed"

# --- Check every option of the fragment in the final .config.
bad=0
while IFS= read -r line; do
    if [[ "$line" =~ ^(CONFIG_[A-Za-z0-9_]+)=(.*)$ ]]; then
        opt=${BASH_REMATCH[1]}; want=${BASH_REMATCH[2]}
        got=$(grep -E "^$opt=" "$dir/build/.config" | head -n1 | cut -d= -f2- || true)
        if [ "$got" != "$want" ]; then
            printf 'linux: error: %s: fragment asks for %s, final .config has %s\n' \
                "$opt" "$want" "${got:-"not set"}" >&2
            bad=1
        fi
    elif [[ "$line" =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set ]]; then
        opt=${BASH_REMATCH[1]}
        got=$(grep -E "^$opt=" "$dir/build/.config" | head -n1 | cut -d= -f2- || true)
        if [ -n "$got" ]; then
            printf 'linux: error: %s: fragment asks for "not set", final .config has %s\n' \
                "$opt" "$got" >&2
            bad=1
        fi
    fi
done <"$fragment"
[ "$bad" = 0 ] || die "the final .config does not match $fragment (see the options above; a dependency is probably missing)"
say "configuration checked: every option of $(basename "$fragment") is as requested"

# --- Build, with a progress line every few seconds. The estimate of compile/link steps is the
# count of the previous build (any key), else a fixed guess.
estimate=1400
if [ -f "$cache/steps" ]; then
    e=$(cat "$cache/steps" 2>/dev/null || true)
    [[ "$e" =~ ^[1-9][0-9]*$ ]] && estimate=$e
fi
count_steps() { grep -cE '^ +(CC|LD|AS|AR) ' "$log" 2>/dev/null || true; }

# make runs in its own session, so an interrupted build is stopped as a whole (by its id).
setsid "${kmake[@]}" -j"$jobs" bzImage >>"$log" 2>&1 &
make_pid=$!
trap 'kill -TERM -- -"$make_pid" 2>/dev/null || true' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# On a terminal the progress line is rewritten in place every 2 s; otherwise (CI logs) a new
# line every 15 s.
last=0 every=15 eol='\n'
if [ -t 1 ]; then every=2 eol='\r'; fi
while kill -0 "$make_pid" 2>/dev/null; do
    sleep 1
    now=$(date +%s)
    if [ $((now - last)) -ge "$every" ]; then
        last=$now
        n=$(count_steps)
        pct=$((n * 100 / estimate)); [ "$pct" -gt 99 ] && pct=99
        printf "linux: building bzImage: %3d%% (%d/~%d steps, %ds)$eol" "$pct" "$n" "$estimate" $((now - start))
    fi
done
[ "$eol" = '\r' ] && echo
status=0
wait "$make_pid" || status=$?
trap - EXIT INT TERM
[ "$status" = 0 ] || fail "make bzImage failed (status $status)"

n=$(count_steps)
echo "$n" >"$cache/steps"
cp "$dir/build/arch/x86/boot/bzImage" "$dir/bzImage"
cp "$dir/build/.config" "$dir/config"
elapsed=$(( $(date +%s) - start ))
printf 'source=%s\nkernel=%s\nfragment=%s\nsteps=%s\nseconds=%s\n' \
    "$srcver" "$kver" "$fraghash" "$n" "$elapsed" >"$dir/done"
say "built bzImage in ${elapsed}s ($n steps), log: $log"

# Keep the build trees (~200 MB each, needed only for out-of-tree modules) of the 3 newest
# builds; older keys keep bzImage, config and log, so they stay cache hits.
for old in $(ls -1t "$cache"/*/done 2>/dev/null | tail -n +4); do
    old=$(dirname "$old")
    [ -d "$old/build" ] && rm -rf "$old/build" && say "pruned the build tree of $(basename "$old")"
done
publish

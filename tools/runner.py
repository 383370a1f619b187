#!/usr/bin/env python3
"""Boot vlibos in an emulator and follow its serial console (stdlib only).

    runner.py run   [options]   boot once, stream the serial log, exit with the system's status
    runner.py bench [options]   boot-time table for QEMU (smp 1, 2, 4) and Bochs (smp 2)

Exit statuses of `run`:
    N    the kernel's own `vlibos: system halted, status=N` (N > 123 is reported as 123)
    124  --timeout expired before the status line
    125  the emulator could not start, exited, crashed or panicked without the status line
    2    bad usage;  130 / 143 interrupted by SIGINT / SIGTERM

The emulator is always stopped with SIGKILL by its own process id (Bochs ignores SIGTERM), and it
also gets SIGKILL from the kernel if this runner dies (PR_SET_PDEATHSIG).
"""

import argparse
import codecs
import ctypes
import fcntl
import glob
import os
import pty
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import termios
import time

TOOLS_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT_DIR = os.path.dirname(TOOLS_DIR)

STATUS_RE = re.compile(r"^vlibos: system halted, status=(-?\d+)\s*$")
ONLINE_RE = re.compile(r"^vlibos: all (\d+) cpus online\s*$")

EXIT_TIMEOUT = 124
EXIT_EMULATOR = 125
EXIT_MAX_STATUS = 123

POLL_SECONDS = 0.01


class Interrupted(Exception):
    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


def _raise_interrupted(signum, _frame):
    raise Interrupted(signum)


def _pdeathsig():
    """Child side: get SIGKILL if the runner dies, so no emulator outlives it."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def log(msg):
    sys.stderr.write("vlibos run: %s\n" % msg)
    sys.stderr.flush()


def tail_lines(path, n=15):
    try:
        with open(path, "rb") as f:
            data = f.read()[-16384:]
    except OSError:
        return []
    text = data.decode("utf-8", "replace").replace("\r", "")
    return [l for l in text.split("\n") if l.strip()][-n:]


# --------------------------------------------------------------------------------------------
# Emulators


class Emulator:
    """One emulator process writing the guest's COM1 to `serial_log`."""

    name = "?"

    def __init__(self, args, iso, serial_log):
        self.args = args
        self.iso = iso
        self.serial_log = serial_log
        stem = os.path.splitext(serial_log)[0]
        self.stem = stem
        self.output_log = stem + "." + self.name + ".out"  # the emulator's own stdout/stderr
        self.com2_log = stem + ".com2.log"  # COM2: the Linux VM's console
        self.proc = None

    def check(self):
        """Return an error message if this emulator cannot run here."""
        return None

    def start(self):
        raise NotImplementedError

    def poll_extra(self):
        """Called every poll: return a reason string if the emulator has failed."""
        return None

    def why_exited(self, code):
        return ["exit status %s" % code]

    def kill(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            log("emulator pid %d did not die after SIGKILL" % self.proc.pid)
        self.close()

    def close(self):
        pass


class Qemu(Emulator):
    name = "qemu"
    binary = "qemu-system-x86_64"

    def accel(self):
        accel = ["-accel", "tcg", "-cpu", "max"]
        if getattr(self.args, "icount", None) is not None:
            # Deterministic virtual time: each instruction advances the clock by 2^shift ns, and
            # the guest's TSC follows the virtual clock (QEMU docs, -icount).
            accel += ["-icount", "shift=%d,sleep=off" % self.args.icount]
        return accel

    def check(self):
        if not shutil.which(self.binary):
            return "%s not found (install qemu-system-x86)" % self.binary
        return None

    def command(self):
        self.debug_log = self.stem + "." + self.name + ".debug.log"
        return [self.binary] + self.accel() + [
            "-smp", str(self.args.smp), "-m", str(self.args.memory),
            "-display", "none", "-no-reboot", "-monitor", "none",
            "-cdrom", self.iso, "-boot", "d",
            "-serial", "file:" + self.serial_log,
            "-serial", "file:" + self.com2_log,
            "-d", "cpu_reset,guest_errors", "-D", self.debug_log,
        ]

    def start(self):
        cmd = self.command()
        with open(self.output_log, "wb") as out:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                         start_new_session=True, preexec_fn=_pdeathsig)

    def why_exited(self, code):
        why = []
        if code == 0:
            why.append("QEMU exited normally: the guest reset or powered off (with -no-reboot a "
                       "triple fault or reset ends QEMU)")
        elif code < 0:
            why.append("QEMU was killed by signal %d" % -code)
        else:
            why.append("QEMU exited with status %d" % code)
        debug = tail_lines(getattr(self, "debug_log", ""), 400)
        if any("Triple fault" in l for l in debug):
            why.append("QEMU log: triple fault (see %s)" % self.debug_log)
        out = tail_lines(self.output_log)
        if out:
            why.append("QEMU output (%s):" % self.output_log)
            why.extend("  " + l for l in out)
        return why


class Kvm(Qemu):
    name = "kvm"

    def accel(self):
        return ["-accel", "kvm", "-cpu", os.environ.get("VLIBOS_KVM_CPU", "host")]

    def check(self):
        err = super().check()
        if err:
            return err
        if not os.path.exists("/dev/kvm"):
            return "/dev/kvm does not exist: use --emulator qemu (pure emulation) on this host"
        if not os.access("/dev/kvm", os.R_OK | os.W_OK):
            return "/dev/kvm is not readable and writable by this user (join group kvm)"
        return None


class Bochs(Emulator):
    name = "bochs"
    binary = "bochs"
    bios = "/usr/share/bochs/BIOS-bochs-latest"
    vgabios = "/usr/share/vgabios/vgabios.bin"
    term_plugin_dirs = ["/usr/lib/x86_64-linux-gnu/bochs/plugins", "/usr/lib/bochs/plugins"]

    def __init__(self, args, iso, serial_log):
        super().__init__(args, iso, serial_log)
        self.bochsrc = self.stem + ".bochsrc"
        self.bochs_log = self.stem + ".bochs.log"
        self.master = None
        self.term_tail = b""
        self.log_pos = 0
        self.log_rest = b""

    def check(self):
        if not shutil.which(self.binary):
            return "bochs not found (install bochs bochs-term bochsbios vgabios)"
        for f in (self.bios, self.vgabios):
            if not os.path.exists(f):
                return "%s not found (install bochsbios vgabios)" % f
        if not any(os.path.exists(os.path.join(d, "libbx_term_gui.so"))
                   for d in self.term_plugin_dirs):
            return "the Bochs 'term' display library is missing (install bochs-term)"
        return None

    def write_bochsrc(self):
        ips = os.environ.get("VLIBOS_BOCHS_IPS", "80000000")
        lines = [
            "# generated by tools/runner.py",
            "megs: %d" % self.args.memory,
            "cpu: count=%d, ips=%s, model=corei7_skylake_x, reset_on_triple_fault=0"
            % (self.args.smp, ips),
            "romimage: file=%s, options=fastboot" % self.bios,  # no 3 s F12 boot-menu wait
            "vgaromimage: file=%s" % self.vgabios,
            "ata0-master: type=cdrom, path=\"%s\", status=inserted" % os.path.abspath(self.iso),
            "boot: cdrom",
            "com1: enabled=1, mode=file, dev=\"%s\"" % os.path.abspath(self.serial_log),
            "com2: enabled=1, mode=file, dev=\"%s\"" % os.path.abspath(self.com2_log),
            "display_library: term",
            "mouse: enabled=0",
            "speaker: enabled=0",  # its ALSA back end crashes Bochs when there is no sound card
            "sound: driver=dummy",
            "clock: sync=none, time0=local",
            "log: \"%s\"" % os.path.abspath(self.bochs_log),
            "panic: action=fatal",
            "error: action=report",
            "info: action=report",
            "debug: action=ignore",
        ]
        with open(self.bochsrc, "w") as f:
            f.write("\n".join(lines) + "\n")

    def start(self):
        self.write_bochsrc()
        for f in (self.bochs_log, self.output_log):
            if os.path.exists(f):
                os.unlink(f)
        # display_library: term wants a terminal, and the built-in debugger waits for `c` on stdin:
        # give Bochs a pseudo-terminal of its own (so it runs with no tty, </dev/null, in the
        # background or under CTest), type `c` into it, and drain the screen output it draws.
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 132, 0, 0))
        env = dict(os.environ)
        if env.get("TERM", "dumb") in ("", "dumb", "unknown"):
            env["TERM"] = "xterm"
        env.pop("DISPLAY", None)
        try:
            self.proc = subprocess.Popen([self.binary, "-q", "-f", self.bochsrc],
                                         stdin=slave, stdout=slave, stderr=slave, env=env,
                                         start_new_session=True, preexec_fn=_pdeathsig)
        finally:
            os.close(slave)
        self.master = master
        os.set_blocking(master, False)
        os.write(master, b"c\n")

    def drain(self):
        if self.master is None:
            return
        while True:
            try:
                data = os.read(self.master, 65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # EIO once Bochs has gone
                return
            if not data:
                return
            self.term_tail = (self.term_tail + data)[-16384:]

    def poll_extra(self):
        self.drain()
        # In the debugger build a panic drops back to the debugger prompt instead of exiting,
        # so watch Bochs's own log for it.
        try:
            with open(self.bochs_log, "rb") as f:
                f.seek(self.log_pos)
                data = f.read()
        except OSError:
            return None
        self.log_pos += len(data)
        data = self.log_rest + data
        lines = data.split(b"\n")
        self.log_rest = lines.pop()
        for raw in lines:
            line = raw.decode("utf-8", "replace").strip()
            if ">>PANIC<<" in line and "soft power off" in line:
                # Bochs reports an ACPI S5 power-off as a panic, then waits in its debugger.
                return "the guest powered Bochs off (ACPI S5) without the status line"
            if ">>PANIC<<" in line:
                return "Bochs panicked: %s (log: %s)" % (line, self.bochs_log)
        return None

    def why_exited(self, code):
        self.drain()
        why = ["Bochs exited with status %s" % code if code >= 0
               else "Bochs was killed by signal %d" % -code]
        panics = [l for l in tail_lines(self.bochs_log, 400) if ">>PANIC<<" in l]
        why.extend("  " + l for l in panics[-5:])
        text = self.term_tail.decode("utf-8", "replace")
        text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\r", "", text)
        term = [l for l in text.split("\n") if l.strip()][-12:]
        if term:
            why.append("Bochs console:")
            why.extend("  " + l for l in term)
        return why

    def close(self):
        self.drain()
        if self.master is not None:
            os.close(self.master)
            self.master = None
        if self.term_tail:
            with open(self.output_log, "wb") as f:
                f.write(self.term_tail)


EMULATORS = {"qemu": Qemu, "kvm": Kvm, "bochs": Bochs}


# --------------------------------------------------------------------------------------------
# One boot


class Result:
    def __init__(self):
        self.status = None          # the kernel's status, from its last line
        self.exit_code = None       # what `run` exits with
        self.reason = ""            # why it ended, in words
        self.t_first = None         # seconds from emulator start to the first serial byte
        self.t_online = None        # ... to `vlibos: all N cpus online`
        self.t_halted = None        # ... to `vlibos: system halted, status=N`
        self.lines = []


def boot(args, iso, serial_log, echo=True):
    """Boot once; return a Result. The emulator is dead when this returns."""
    res = Result()
    emu = EMULATORS[args.emulator](args, iso, serial_log)
    err = emu.check()
    if err:
        res.exit_code, res.reason = EXIT_EMULATOR, err
        return res
    if not os.path.isfile(iso):
        res.exit_code, res.reason = EXIT_EMULATOR, "ISO not found: %s" % iso
        return res
    os.makedirs(os.path.dirname(os.path.abspath(serial_log)), exist_ok=True)
    if os.path.exists(serial_log):
        os.unlink(serial_log)

    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    partial = ""
    pos = 0
    last_data = None
    out = sys.stdout

    def feed(data, now):
        nonlocal partial, echo
        text = decoder.decode(data).replace("\r", "")
        if echo and text:
            try:
                out.write(text)
                out.flush()
            except BrokenPipeError:
                # e.g. `tools/vlibos run | head`: keep running, stop echoing.
                echo = False
                os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
        partial += text
        *complete, partial = partial.split("\n")
        for line in complete:
            res.lines.append(line)
            if res.t_first is None:
                res.t_first = now
            if res.t_online is None and ONLINE_RE.match(line):
                res.t_online = now
            m = STATUS_RE.match(line)
            if m and res.status is None:
                res.status = int(m.group(1))
                res.t_halted = now
        if partial and res.t_first is None:
            res.t_first = now

    def read_serial(now):
        nonlocal pos, last_data
        try:
            with open(serial_log, "rb") as f:
                f.seek(pos)
                data = f.read()
        except FileNotFoundError:
            return
        if data:
            pos += len(data)
            last_data = now
            feed(data, now)

    def accept_partial_status():
        # An emulator that powers off at once may drop the last line's end (Bochs models the
        # UART's transmit time), so a complete-looking status line without its newline counts.
        if partial and STATUS_RE.match(partial):
            feed(b"\n", last_data)
            return True
        return False

    old = {s: signal.signal(s, _raise_interrupted)
           for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    t0 = time.monotonic()
    try:
        try:
            emu.start()
        except OSError as e:
            res.exit_code, res.reason = EXIT_EMULATOR, "cannot start %s: %s" % (emu.name, e)
            return res
        while True:
            now = time.monotonic() - t0
            read_serial(now)
            if res.status is not None:
                res.reason = "system halted, status=%d" % res.status
                break
            # The status line without its newline, and nothing more for half a second.
            if last_data is not None and now - last_data > 0.5 and accept_partial_status():
                continue
            code = emu.proc.poll()
            if code is not None:
                read_serial(time.monotonic() - t0)
                if res.status is not None or accept_partial_status():
                    continue
                res.exit_code = EXIT_EMULATOR
                why = emu.why_exited(code)
                res.reason = "emulator stopped without the status line: " + "\n  ".join(why)
                break
            failure = emu.poll_extra()
            if failure:
                read_serial(time.monotonic() - t0)
                if res.status is not None or accept_partial_status():
                    continue
                res.exit_code = EXIT_EMULATOR
                res.reason = failure
                break
            if args.timeout and now > args.timeout:
                res.exit_code = EXIT_TIMEOUT
                res.reason = ("timed out after %g s without the status line "
                              "(emulator killed)" % args.timeout)
                break
            time.sleep(POLL_SECONDS)
    except Interrupted as e:
        res.exit_code = 128 + e.signum
        res.reason = "interrupted by signal %d (emulator killed)" % e.signum
    finally:
        emu.kill()
        for s, h in old.items():
            signal.signal(s, h)
    if partial:
        res.lines.append(partial)
        if echo:
            out.write("\n")
            out.flush()
    if res.exit_code is None:
        res.exit_code = min(max(res.status, 0), EXIT_MAX_STATUS) if res.status >= 0 else 1
    return res


# --------------------------------------------------------------------------------------------
# Command line


def default_build_dir():
    return os.environ.get("VLIBOS_BUILD_DIR", os.path.join(ROOT_DIR, "build"))


def make_iso(args, iso):
    cmd = [os.path.join(TOOLS_DIR, "mkiso"), "--out", iso, "--kernel", args.kernel]
    if args.configs:
        cmd += ["--configs", args.configs]
    if args.config:
        cmd += ["--config", args.config]
    if args.cmdline:
        cmd += ["--cmdline", args.cmdline]
    if getattr(args, "linux_kernel", None):
        cmd += ["--linux-kernel", args.linux_kernel]
        if args.linux_initrd:
            cmd += ["--linux-initrd", args.linux_initrd]
        if args.linux_cmdline:
            cmd += ["--linux-cmdline", args.linux_cmdline]
    # Every RT application of the build, as in the default ISO.
    for elf in sorted(glob.glob(os.path.join(args.apps_dir, "*.elf"))):
        cmd += ["--app", "%s=%s" % (os.path.splitext(os.path.basename(elf))[0], elf)]
    return subprocess.call(cmd) == 0


def add_common(p):
    p.add_argument("--iso", help="bootable ISO (default: BUILD/vlibos.iso)")
    p.add_argument("--kernel", help="kernel ELF for a per-run ISO (default: BUILD/kernel/vlibos.elf)")
    p.add_argument("--configs", help="folder of *.cfg for a per-run ISO "
                   "(default: kernel/config/defaults)")
    p.add_argument("--run-dir", help="folder for logs, bochsrc, per-run ISOs (default: BUILD/run)")
    p.add_argument("--memory", type=int, default=512, help="guest memory in MiB (default 512)")
    p.add_argument("--apps-dir", help="RT applications (*.elf) for a per-run ISO (default: BUILD/rt-apps)")
    p.add_argument("--icount", type=int, metavar="SHIFT",
                   help="QEMU only: deterministic virtual time, 2^SHIFT ns per instruction")


def resolve_paths(args):
    build = default_build_dir()
    args.run_dir = os.path.abspath(args.run_dir or os.path.join(build, "run"))
    args.kernel = args.kernel or os.path.join(build, "kernel", "vlibos.elf")
    args.configs = args.configs or os.path.join(ROOT_DIR, "kernel", "config", "defaults")
    args.apps_dir = args.apps_dir or os.path.join(build, "rt-apps")
    args.default_iso = os.path.join(build, "vlibos.iso")
    os.makedirs(args.run_dir, exist_ok=True)


def cmd_run(args):
    resolve_paths(args)
    if args.smp < 1:
        log("--smp must be at least 1")
        return 2
    log_path = os.path.abspath(args.log or os.path.join(args.run_dir,
                                                        "serial-%s.log" % args.emulator))
    if args.config or args.cmdline or args.linux_kernel:
        if args.iso:
            log("--iso cannot be combined with --config/--cmdline (they need a per-run ISO)")
            return 2
        iso = os.path.splitext(log_path)[0] + ".iso"
        if not make_iso(args, iso):
            log("could not make the per-run ISO %s" % iso)
            return EXIT_EMULATOR
    else:
        iso = args.iso or args.default_iso
    log("booting %s with %s, smp %d, %d MiB%s; serial log %s" % (
        iso, args.emulator, args.smp, args.memory,
        ", timeout %g s" % args.timeout if args.timeout else "", log_path))
    res = boot(args, iso, log_path, echo=not args.quiet)
    if res.status is not None and res.exit_code == res.status:
        log("%s (after %.1f s)" % (res.reason, res.t_halted))
    elif res.status is not None:
        log("%s (after %.1f s); exit status %d" % (res.reason, res.t_halted, res.exit_code))
    else:
        log(res.reason)
    return res.exit_code


BENCH_CASES = [("qemu", 1, 60), ("qemu", 2, 60), ("qemu", 4, 60), ("bochs", 2, 120)]


def cmd_bench(args):
    resolve_paths(args)
    iso = args.iso or args.default_iso
    rows = []
    cases = BENCH_CASES
    if args.emulators:
        cases = [c for c in cases if c[0] in args.emulators.split(",")]
    print("boot-time benchmark: %s, %d MiB, wall seconds from emulator start "
          "(%d boot%s each)" % (iso, args.memory, args.repeat, "s" if args.repeat > 1 else ""))
    sys.stdout.flush()
    for emulator, smp, timeout in cases:
        for i in range(args.repeat):
            ns = argparse.Namespace(**vars(args))
            ns.emulator, ns.smp, ns.timeout = emulator, smp, timeout
            log_path = os.path.join(args.run_dir, "bench-%s-smp%d.log" % (emulator, smp))
            res = boot(ns, iso, log_path, echo=False)
            rows.append((emulator, smp, i + 1, res))
            sys.stderr.write("  %s smp %d run %d: %s\n" % (emulator, smp, i + 1,
                                                         res.reason.split("\n")[0]))
            sys.stderr.flush()

    def fmt(t):
        return "%8.2f" % t if t is not None else "%8s" % "-"

    print("%-8s %4s %4s %9s %9s %9s  %s" % ("emulator", "smp", "run", "1st line", "all-online",
                                            "halted", "result"))
    for emulator, smp, run, res in rows:
        print("%-8s %4d %4d %9s %9s %9s  %s" % (emulator, smp, run, fmt(res.t_first),
                                                fmt(res.t_online), fmt(res.t_halted),
                                                res.reason.split("\n")[0][:60]))
    return 0


def main(argv):
    ap = argparse.ArgumentParser(prog="runner.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="boot once and follow the serial console")
    r.add_argument("--emulator", choices=sorted(EMULATORS), default="qemu")
    r.add_argument("--smp", type=int, default=2, help="number of CPUs (default 2)")
    r.add_argument("--timeout", type=float, default=0,
                   help="seconds before giving up with status 124 (default: none)")
    r.add_argument("--config", help="config file, booted as vlibos.config=custom (per-run ISO)")
    r.add_argument("--cmdline", help="kernel command line (per-run ISO)")
    r.add_argument("--log", help="serial log (default RUN_DIR/serial-EMULATOR.log); COM2 (the Linux VM's "
                   "console) goes to the same name with .com2.log")
    r.add_argument("--linux-kernel", help="Linux bzImage for the Linux VM (per-run ISO)")
    r.add_argument("--linux-initrd", help="its initramfs")
    r.add_argument("--linux-cmdline", help="its command line")
    r.add_argument("--quiet", action="store_true", help="do not echo the serial console")
    add_common(r)

    b = sub.add_parser("bench", help="boot-time table")
    b.add_argument("--emulators", help="comma-separated subset of qemu,bochs")
    b.add_argument("--repeat", type=int, default=1, help="boots per configuration (default 1)")
    add_common(b)

    args = ap.parse_args(argv)
    if args.command == "run":
        return cmd_run(args)
    return cmd_bench(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/env python3
"""Boot vlibos in an emulator and follow its serial console (stdlib only).

    runner.py run   [options]   boot once, stream the serial log, exit with the system's status
    runner.py bench [options]   boot-time table for QEMU (smp 1, 2, 4) and Bochs (smp 2)

Exit statuses of `run`:
    N    the kernel's own `vlibos: system halted, status=N` (N > 123 is reported as 123)
    124  --timeout expired before the status line
    125  the emulator could not start, exited, crashed or panicked without the status line
    126  the COM2 script (--com2-script) failed: a step timed out, or the run ended, with kernel
         status 0, before its last step
    2    bad usage;  130 / 143 interrupted by SIGINT / SIGTERM

COM2 (the Linux VM's console) is a socket between the emulator and this runner: everything the
guest writes is logged to LOG.com2.log, and the runner can type into it (--com2-script,
--com2-stdin). See Com2 below and docs/tooling.md.

The emulator is always stopped with SIGKILL by its own process id (Bochs ignores SIGTERM), and it
also gets SIGKILL from the kernel if this runner dies (PR_SET_PDEATHSIG).
"""

import argparse
import codecs
import ctypes
import fcntl
import glob
import json
import os
import pty
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import termios
import time

TOOLS_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT_DIR = os.path.dirname(TOOLS_DIR)

STATUS_RE = re.compile(r"^vlibos: system halted, status=(-?\d+)\s*$")
ONLINE_RE = re.compile(r"^vlibos: all (\d+) cpus online\s*$")

EXIT_TIMEOUT = 124
EXIT_EMULATOR = 125
EXIT_MAX_STATUS = 123
EXIT_SCRIPT = 126

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
# COM2 scripts: wait for a regular expression on COM2, type a line, repeat


DEFAULT_STEP_TIMEOUT = 60.0


class ScriptError(ValueError):
    """A COM2 script that cannot be parsed; the message names the file and line."""


class Action:
    """One step of a COM2 script: `expect` (a compiled regex, with a timeout) or `send` (bytes)."""

    def __init__(self, kind, arg, timeout=None, where=""):
        self.kind = kind
        self.arg = arg
        self.timeout = timeout
        self.where = where
        if kind == "expect":
            try:
                self.regex = re.compile(arg, re.MULTILINE)
            except re.error as e:
                raise ScriptError("%s: bad regular expression %r: %s" % (where, arg, e))
        elif kind == "send":
            self.data = arg.encode("utf-8") if isinstance(arg, str) else bytes(arg)
        else:
            raise ScriptError("%s: unknown action %r" % (where, kind))

    def describe(self):
        if self.kind == "expect":
            return "expect /%s/ (timeout %g s)" % (self.arg, self.timeout)
        return "send %r" % self.data.decode("utf-8", "replace")


def _unescape(text, where):
    try:
        return codecs.decode(text.encode("utf-8"), "unicode_escape").encode("latin-1")
    except (UnicodeDecodeError, UnicodeEncodeError) as e:
        raise ScriptError("%s: bad escape in %r: %s" % (where, text, e))


def parse_script_lines(text, source="script"):
    """The line format: one command per line.

        # comment (a line whose first non-blank character is #), blank lines are ignored
        timeout SECONDS    timeout of the following `expect` lines (default 60)
        expect REGEX       wait for REGEX (Python re, MULTILINE) in COM2's output
        send TEXT          type TEXT and a newline
        sendraw TEXT       type TEXT with Python escapes (\\r, \\x03 for Ctrl-C, \\n), no newline
    The argument is the rest of the line after one space; trailing blanks are kept for sendraw and
    expect only when escaped (\\x20)."""
    actions = []
    timeout = DEFAULT_STEP_TIMEOUT
    for n, raw in enumerate(text.split("\n"), 1):
        line = raw.rstrip("\r\n")
        stripped = line.strip()
        where = "%s:%d" % (source, n)
        if not stripped or stripped.startswith("#"):
            continue
        word, _, arg = stripped.partition(" ")
        if word == "timeout":
            try:
                timeout = float(arg)
            except ValueError:
                raise ScriptError("%s: timeout wants seconds, got %r" % (where, arg))
            if timeout <= 0:
                raise ScriptError("%s: timeout must be positive" % where)
        elif word == "expect":
            if not arg:
                raise ScriptError("%s: expect needs a regular expression" % where)
            actions.append(Action("expect", arg, timeout, where))
        elif word == "send":
            actions.append(Action("send", arg + "\n", where=where))
        elif word == "sendraw":
            actions.append(Action("send", _unescape(arg, where), where=where))
        else:
            raise ScriptError("%s: unknown command %r (expect, send, sendraw, timeout)" % (where, word))
    return actions


def parse_script_json(data, source="script"):
    """The JSON format: a list of steps, or {"timeout": default, "steps": [...]}. A step is
    {"expect": REGEX, "timeout": S} or {"send": LINE} (a newline is added) or {"sendraw": TEXT};
    {"expect": R, "send": L} is both, in that order. A two-element list ["expect", R] or
    ["send", L] works too."""
    timeout = DEFAULT_STEP_TIMEOUT
    if isinstance(data, dict):
        timeout = float(data.get("timeout", timeout))
        data = data.get("steps")
    if not isinstance(data, list):
        raise ScriptError("%s: a COM2 script is a list of steps" % source)
    actions = []
    for n, step in enumerate(data, 1):
        where = "%s: step %d" % (source, n)
        if isinstance(step, (list, tuple)) and len(step) == 2:
            step = {step[0]: step[1]}
        if not isinstance(step, dict):
            raise ScriptError("%s: a step is an object, got %r" % (where, step))
        unknown = set(step) - {"expect", "timeout", "send", "sendraw"}
        if unknown or not set(step) & {"expect", "send", "sendraw"}:
            raise ScriptError("%s: a step has expect (and timeout), send or sendraw, got %r"
                              % (where, step))
        if "send" in step and "sendraw" in step:
            raise ScriptError("%s: send and sendraw in one step" % where)
        if "expect" in step:
            t = step.get("timeout", timeout)
            if not isinstance(t, (int, float)) or t <= 0:
                raise ScriptError("%s: timeout must be a positive number" % where)
            actions.append(Action("expect", str(step["expect"]), float(t), where))
        elif "timeout" in step:
            raise ScriptError("%s: timeout without expect" % where)
        if "send" in step:
            actions.append(Action("send", str(step["send"]) + "\n", where=where))
        if "sendraw" in step:
            actions.append(Action("send", str(step["sendraw"]), where=where))
    return actions


def load_script(path):
    """A COM2 script file: JSON when it starts with [ or {, the line format otherwise."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ScriptError("cannot read the COM2 script %s: %s" % (path, e.strerror))
    name = os.path.basename(path)
    if text.lstrip()[:1] in ("[", "{"):
        try:
            data = json.loads(text)
        except ValueError as e:
            raise ScriptError("%s: not valid JSON: %s" % (name, e))
        return parse_script_json(data, name)
    return parse_script_lines(text, name)


# Terminal control sequences (CSI ... final byte, or ESC + one character): busybox's shell asks
# the terminal for the cursor position (ESC [ 6 n) after each prompt, for example.
ESCAPE_RE = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|[@-Z\\-_])")
PARTIAL_ESCAPE_RE = re.compile(r"\x1b(\[[0-?]*[ -/]*)?$")


def _tail(text, n=300):
    text = text[-n:]
    return text


class ScriptStepper:
    """Runs a list of Actions against COM2's output; no I/O of its own (tests drive it directly).
    The output is matched with carriage returns and terminal escape sequences removed.

    feed(text) appends what the guest wrote; advance(now) does every step it can and returns the
    bytes to type. An expect searches the output after the previous expect's match (its clock
    starts when the step before it ended); a send completes at once. `failure` is set when an
    expect times out; finish(why) marks the steps never reached when the run ends."""

    def __init__(self, actions):
        self.actions = list(actions)
        self.index = 0
        self.held = ""          # an escape sequence cut at the end of the last chunk
        self.text = ""          # COM2 output, \\r and terminal escape sequences removed
        self.cursor = 0         # where the next expect starts searching
        self.step_start = None
        self.failure = None
        self.results = []

    def start(self, now):
        if self.step_start is None:
            self.step_start = now

    @property
    def done(self):
        return self.index >= len(self.actions)

    @property
    def ok(self):
        return self.done and self.failure is None

    def feed(self, text):
        text = self.held + text.replace("\r", "")
        m = PARTIAL_ESCAPE_RE.search(text)
        self.held = text[m.start():] if m else ""
        if m:
            text = text[:m.start()]
        self.text += ESCAPE_RE.sub("", text)

    def _result(self, action, status, now, **extra):
        r = {"step": self.index + 1, "action": action.kind, "where": action.where,
             "status": status, "at": round(now, 3), "waited": round(now - self.step_start, 3)}
        if action.kind == "expect":
            r["expect"] = action.arg
            r["timeout"] = action.timeout
        else:
            r["send"] = action.data.decode("utf-8", "replace")
        r.update(extra)
        self.results.append(r)
        return r

    def advance(self, now):
        self.start(now)
        out = b""
        while self.failure is None and not self.done:
            a = self.actions[self.index]
            if a.kind == "send":
                out += a.data
                self._result(a, "sent", now)
            else:
                m = a.regex.search(self.text, self.cursor)
                if m:
                    self._result(a, "matched", now, match=m.group(0))
                    self.cursor = m.end()
                elif now - self.step_start > a.timeout:
                    seen = self.text[self.cursor:]
                    r = self._result(a, "timeout", now, last_seen=_tail(seen))
                    self.failure = ("COM2 script step %d (%s, %s) timed out after %g s; "
                                    "COM2 output since the previous step (%d chars), last part: %r"
                                    % (r["step"], a.describe(), a.where, a.timeout, len(seen),
                                       _tail(seen, 200)))
                    break
                else:
                    break
            self.index += 1
            self.step_start = now
        return out

    def finish(self, now, why):
        """The run ended: record every step not done as not reached."""
        if self.failure is not None:
            return
        first = True
        while not self.done:
            a = self.actions[self.index]
            extra = {"why": why}
            if first and a.kind == "expect":
                extra["last_seen"] = _tail(self.text[self.cursor:])
            self._result(a, "not reached", now, **extra)
            if first:
                self.failure = ("COM2 script step %d (%s, %s) not done when the run ended (%s); "
                                "COM2 output since the previous step, last part: %r"
                                % (self.index + 1, a.describe(), a.where, why,
                                   _tail(self.text[self.cursor:], 200)))
            first = False
            self.index += 1

    def report(self):
        return {"ok": self.ok, "failure": self.failure, "steps": self.results,
                "total": len(self.actions)}


# --------------------------------------------------------------------------------------------
# COM2: the runner's end of the emulator's serial port


class Com2:
    """The guest's COM2 as a stream socket: the runner listens, the emulator connects as a client
    when it starts (QEMU: a unix socket in a private temporary folder; Bochs, whose serial
    sockets are TCP only: 127.0.0.1 on a port the kernel picks). Nothing waits for anything: the
    listener exists before the emulator starts, so its connect() succeeds at once and the
    connection waits in the backlog until poll() accepts it.

    Everything received is appended to `log_path` (the same bytes file mode wrote). A
    ScriptStepper, --com2-stdin and --com2-echo hang off poll()."""

    def __init__(self, log_path, stepper=None, stdin_fd=None, echo=None, on_typed=None):
        self.log_path = log_path
        self.on_typed = on_typed    # callable(bytes) for what came from stdin
        self.stepper = stepper
        self.stdin_fd = stdin_fd
        self.echo = echo            # callable(text) or None
        self.listener = None
        self.conn = None
        self.tmpdir = None
        self.address = None
        self.connected_at = None
        self.closed_by_peer = False
        self.received = 0
        self.sent = 0
        self.pending = b""          # typed before the connection came, or not yet written
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        if os.path.exists(log_path):
            os.unlink(log_path)
        self.log = open(log_path, "ab")

    def listen_unix(self):
        self.tmpdir = tempfile.mkdtemp(prefix="vlibos-com2-")  # mode 0700: ours only
        path = os.path.join(self.tmpdir, "com2.sock")
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(1)
        self.listener.setblocking(False)
        self.address = path
        return path

    def listen_tcp(self):
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.listener.setblocking(False)
        self.address = "127.0.0.1:%d" % self.listener.getsockname()[1]
        return self.address

    def accept(self, now):
        if self.conn is not None or self.listener is None:
            return
        try:
            conn, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        conn.setblocking(False)
        self.conn = conn
        self.connected_at = now
        # One connection only: nobody else can attach once the emulator has.
        self.listener.close()
        self.listener = None

    def _receive(self):
        got = b""
        while self.conn is not None:
            try:
                data = self.conn.recv(65536)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                data = b""
            if not data:
                self.closed_by_peer = True
                self.conn.close()
                self.conn = None
                break
            got += data
        if got:
            self.received += len(got)
            self.log.write(got)
            self.log.flush()
            text = self.decoder.decode(got)
            if self.stepper is not None:
                self.stepper.feed(text)
            if self.echo is not None:
                self.echo(text)
        return got

    def _flush_pending(self):
        while self.pending and self.conn is not None:
            try:
                n = self.conn.send(self.pending)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            self.sent += n
            self.pending = self.pending[n:]

    def _read_stdin(self):
        if self.stdin_fd is None:
            return
        r, _, _ = select.select([self.stdin_fd], [], [], 0)
        if not r:
            return
        try:
            data = os.read(self.stdin_fd, 4096)
        except OSError:
            data = b""
        if not data:  # end of input (Ctrl-D): stop reading it, the run goes on
            self.stdin_fd = None
            return
        self.pending += data
        if self.on_typed is not None:
            self.on_typed(data)

    def poll(self, now):
        """Accept, receive, log, step the script, type. Returns the script's failure or None."""
        self.accept(now)
        self._receive()
        self._read_stdin()
        if self.stepper is not None:
            self.pending += self.stepper.advance(now)
        self._flush_pending()
        return self.stepper.failure if self.stepper is not None else None

    def wait_fds(self):
        """File descriptors worth waking up for."""
        fds = [s for s in (self.conn, self.listener) if s is not None]
        if self.stdin_fd is not None:
            fds.append(self.stdin_fd)
        return fds

    def close(self, now=None):
        """After the emulator is dead: read what is left in the socket, then close everything."""
        self.accept(now or 0)
        self._receive()
        for s in (self.conn, self.listener):
            if s is not None:
                s.close()
        self.conn = self.listener = None
        rest = self.decoder.decode(b"", final=True)
        if rest and self.echo is not None:
            self.echo(rest)
        self.log.close()
        if self.tmpdir:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None


class ConsoleOut:
    """Our stdout, shared by COM1 and (with --com2-echo) COM2. COM2's lines start with `[com2] `,
    and a line one port leaves unfinished is ended before the other port writes."""

    PREFIX = {1: "", 2: "[com2] "}

    def __init__(self, out):
        self.out = out
        self.enabled = True
        self.last = 1
        self.at_line_start = {1: True, 2: True}

    def write(self, port, text):
        if not self.enabled or not text:
            return
        pieces = []
        if self.last != port and not self.at_line_start[self.last]:
            pieces.append("\n")
            self.at_line_start[self.last] = True
        self.last = port
        prefix = self.PREFIX[port]
        if prefix:
            for part in text.splitlines(True):
                if self.at_line_start[port]:
                    pieces.append(prefix)
                pieces.append(part)
                self.at_line_start[port] = part.endswith("\n")
        else:
            pieces.append(text)
            self.at_line_start[port] = text.endswith("\n")
        try:
            self.out.write("".join(pieces))
            self.out.flush()
        except BrokenPipeError:
            # e.g. `tools/vlibos run | head`: keep running, stop echoing.
            self.enabled = False
            os.dup2(os.open(os.devnull, os.O_WRONLY), self.out.fileno())

    def typed(self, data):
        """A terminal in line mode has echoed the typed line and its Enter: column 0 again."""
        if data.endswith(b"\n"):
            for port in self.at_line_start:
                self.at_line_start[port] = True

    def end_lines(self):
        if self.enabled and any(not v for v in self.at_line_start.values()):
            try:
                self.out.write("\n")
                self.out.flush()
            except BrokenPipeError:
                pass


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
        self.com2 = None                     # its Com2, once listen_com2() made it
        self.proc = None

    def check(self):
        """Return an error message if this emulator cannot run here."""
        return None

    def listen_com2(self, com2):
        """Open COM2's listening socket, the one the emulator will connect to."""
        self.com2 = com2
        com2.listen_unix()

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
            "-display", "none", "-no-reboot", "-monitor", os.environ.get("VLIBOS_QEMU_MONITOR", "none"),
            "-cdrom", self.iso, "-boot", "d",
            "-serial", "file:" + self.serial_log,
        ] + self.com2_args() + self.device_args() + [
            "-d", "cpu_reset,guest_errors", "-D", self.debug_log,
        ]

    def device_args(self):
        """PCI devices for the Linux VM to be given (docs/linux-guest.md, Devices). Without --nic
        the machine has no NIC at all (QEMU would otherwise add its default e1000 at 00:03.0).
        Fixed slots: 00:03.0 the e1000 (user-mode network: the host is 10.0.2.2, its loopback
        included), 00:04.0 the virtio-blk disk (raw image). romfile= empty: no option ROM."""
        nic = getattr(self.args, "nic", False)
        disk = getattr(self.args, "disk", None)
        args = []
        if nic:
            args += ["-netdev", "user,id=n0", "-device", "e1000,netdev=n0,addr=0x3,romfile="]
        else:
            args += ["-nic", "none"]
        if disk:
            args += ["-drive", "file=%s,if=none,format=raw,id=d0" % os.path.abspath(disk).replace(",", ",,"),
                     "-device", "virtio-blk-pci,drive=d0,addr=0x4"]
        return args

    def com2_args(self):
        if self.com2 is None:
            return ["-serial", "file:" + self.com2_log]
        # A client socket: QEMU connects while it starts, before the guest runs (and exits with
        # an error if it cannot), so no byte is lost and nothing waits.
        return ["-chardev", "socket,id=com2,path=%s" % self.com2.address.replace(",", ",,"),
                "-serial", "chardev:com2"]

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
            self.com2_line(),
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

    def listen_com2(self, com2):
        # Bochs' serial sockets are TCP only (socket-client: it connects while it starts; if
        # that fails the port is just not connected, it never waits).
        self.com2 = com2
        com2.listen_tcp()

    def com2_line(self):
        if self.com2 is None:
            return "com2: enabled=1, mode=file, dev=\"%s\"" % os.path.abspath(self.com2_log)
        return "com2: enabled=1, mode=socket-client, dev=%s" % self.com2.address

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
        self.com2 = None            # the Com2 of the run (closed)
        self.script = None          # the COM2 script's report (ScriptStepper.report()), if any


def boot(args, iso, serial_log, echo=True, script=None):
    """Boot once; return a Result. The emulator is dead when this returns.

    COM2 is logged to the serial log's stem + .com2.log. `script` (a list of Actions) is typed
    into COM2 (Result.script holds the ScriptStepper's report); args.com2_stdin forwards our
    standard input to COM2 and args.com2_echo prints COM2 on our stdout (`[com2] ` lines)."""
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
    console = ConsoleOut(sys.stdout)
    com2_echo = getattr(args, "com2_echo", False) or getattr(args, "com2_stdin", False)
    stepper = ScriptStepper(script) if script else None
    stdin_fd = sys.stdin.fileno() if getattr(args, "com2_stdin", False) else None
    com2 = Com2(emu.com2_log, stepper=stepper, stdin_fd=stdin_fd,
                echo=(lambda text: console.write(2, text.replace("\r", "").replace("\x1b[6n", "")))
                if com2_echo else None,
                on_typed=console.typed if stdin_fd is not None and os.isatty(stdin_fd) else None)
    res.com2 = com2
    res.script = None

    def feed(data, now):
        nonlocal partial
        text = decoder.decode(data).replace("\r", "")
        if echo:
            console.write(1, text)
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
            emu.listen_com2(com2)
            if com2_echo or stdin_fd is not None or stepper is not None:
                log("COM2 (the Linux VM's console) is connected to this runner through %s; "
                    "it is logged to %s" % (com2.address, com2.log_path))
            emu.start()
        except OSError as e:
            res.exit_code, res.reason = EXIT_EMULATOR, "cannot start %s: %s" % (emu.name, e)
            return res
        while True:
            now = time.monotonic() - t0
            read_serial(now)
            script_failure = com2.poll(now)
            if res.status is not None:
                res.reason = "system halted, status=%d" % res.status
                break
            if script_failure:
                res.exit_code = EXIT_SCRIPT
                res.reason = script_failure + " (emulator killed)"
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
            # Sleep until the next poll, or until COM2 or our stdin has something.
            try:
                select.select(com2.wait_fds(), [], [], POLL_SECONDS)
            except (OSError, ValueError):
                time.sleep(POLL_SECONDS)
    except Interrupted as e:
        res.exit_code = 128 + e.signum
        res.reason = "interrupted by signal %d (emulator killed)" % e.signum
    finally:
        emu.kill()
        com2.close(time.monotonic() - t0)
        for s, h in old.items():
            signal.signal(s, h)
    if partial:
        res.lines.append(partial)
    if echo or com2_echo:
        console.end_lines()
    if stepper is not None:
        if not stepper.done:
            stepper.finish(time.monotonic() - t0, res.reason.split("\n")[0])
        res.script = stepper.report()
        res.script["connected"] = com2.connected_at is not None
        res.script["com2_log"] = com2.log_path
    if res.exit_code is None:
        res.exit_code = min(max(res.status, 0), EXIT_MAX_STATUS) if res.status >= 0 else 1
        if res.script is not None and not res.script["ok"] and res.exit_code == 0:
            res.exit_code = EXIT_SCRIPT
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


def script_results_path(log_path):
    return os.path.splitext(log_path)[0] + ".com2.json"


def report_script(script, path, failure_told=False):
    """Print the COM2 script's outcome and write its report as JSON."""
    with open(path, "w") as f:
        json.dump(script, f, indent=1)
        f.write("\n")
    done = sum(1 for r in script["steps"] if r["status"] in ("matched", "sent"))
    if script["ok"]:
        log("COM2 script: all %d steps done (report %s)" % (script["total"], path))
        return
    log("COM2 script FAILED: %d of %d steps done (report %s)" % (done, script["total"], path))
    if not script.get("connected"):
        log("COM2 script: the emulator never connected to COM2")
    if not failure_told:
        log(script["failure"])


def cmd_run(args):
    resolve_paths(args)
    if args.smp < 1:
        log("--smp must be at least 1")
        return 2
    if args.nic or args.disk:
        if args.emulator == "bochs":
            log("--nic/--disk are QEMU-only (--emulator qemu or kvm); Bochs gets no PCI devices")
            return 2
        if args.disk and not os.path.isfile(args.disk):
            log("--disk: no such file: %s (a raw disk image)" % args.disk)
            return 2
    script = None
    if args.com2_script:
        try:
            script = load_script(args.com2_script)
        except ScriptError as e:
            log("bad COM2 script: %s" % e)
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
    if os.path.exists(script_results_path(log_path)):
        os.unlink(script_results_path(log_path))
    res = boot(args, iso, log_path, echo=not args.quiet, script=script)
    if res.script is not None:
        report_script(res.script, script_results_path(log_path), res.exit_code == EXIT_SCRIPT
                      and res.script["failure"] and res.script["failure"] in res.reason)
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
    r.add_argument("--quiet", action="store_true", help="do not echo the serial console (COM1)")
    r.add_argument("--com2-script", metavar="FILE",
                   help="type into COM2 (the Linux VM's console): lines 'expect REGEX', 'send TEXT', "
                   "'sendraw TEXT', 'timeout SECONDS', or JSON; a step that times out ends the run "
                   "with status 126; the report goes to LOG stem + .com2.json")
    r.add_argument("--com2-stdin", action="store_true",
                   help="forward our standard input to COM2 line by line (implies --com2-echo)")
    r.add_argument("--com2-echo", action="store_true",
                   help="also print COM2's output here, each line starting with '[com2] '")
    r.add_argument("--nic", action="store_true",
                   help="QEMU only: an e1000 NIC at PCI 00:03.0 on QEMU's user-mode network "
                   "(-netdev user; the host is 10.0.2.2). Without it the machine has no NIC")
    r.add_argument("--disk", metavar="FILE",
                   help="QEMU only: FILE (a raw image) as a virtio-blk disk at PCI 00:04.0")
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

#!/usr/bin/env python3
"""COM2 scripts of tools/runner.py, without an emulator: the line and JSON formats and their
errors, the stepper (an expect searches after the previous match, a send completes at once, a
timeout names the step and what COM2 showed last, steps never reached are reported), and the
Com2 socket end to end against a fake guest shell on a unix socket (what is received is logged
byte for byte, what the script types arrives, the runner connects only one client).
Exit status 0 when every check passed. Python 3 standard library only."""
import json
import os
import socket
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import runner  # noqa: E402

failures = []
passes = 0


def check(ok, what):
    global passes
    if ok:
        passes += 1
    else:
        failures.append(what)
    return ok


def raises(fn, *args, contains=""):
    try:
        fn(*args)
    except runner.ScriptError as e:
        return contains in str(e) or str(e)
    return False


def test_line_format():
    acts = runner.parse_script_lines(
        "# a comment\n\n  timeout 5\nexpect prompt# $\nsend echo hello\n"
        "sendraw \\x03ab\\r\ntimeout 2.5\nexpect ^hello$\n", "s.txt")
    check([a.kind for a in acts] == ["expect", "send", "send", "expect"], "line format kinds")
    check(acts[0].timeout == 5 and acts[3].timeout == 2.5, "timeout applies to later expects")
    check(acts[1].data == b"echo hello\n", "send adds a newline: %r" % acts[1].data)
    check(acts[2].data == b"\x03ab\r", "sendraw escapes: %r" % acts[2].data)
    check(acts[0].where == "s.txt:4", "where names file and line: %s" % acts[0].where)
    check(runner.parse_script_lines("expect x\n")[0].timeout == runner.DEFAULT_STEP_TIMEOUT,
          "default timeout")
    for text, msg in [("expect\n", "needs a regular expression"), ("wait 3\n", "unknown command"),
                      ("timeout x\n", "wants seconds"), ("timeout 0\n", "positive"),
                      ("expect (\n", "bad regular expression")]:
        r = raises(runner.parse_script_lines, text, "f")
        check(r is True, "line format %r: expected an error with %r, got %r" % (text, msg, r)
              if r is not True else "")
        check(raises(runner.parse_script_lines, text, "f", contains="f:1") is True,
              "error for %r names the line" % text)


def test_json_format():
    acts = runner.parse_script_json([{"expect": "a", "timeout": 3}, {"send": "x"},
                                     {"expect": "b", "send": "y"}, ["sendraw", "z"],
                                     ["expect", "c"]], "j")
    check([(a.kind, a.arg) for a in acts] == [("expect", "a"), ("send", "x\n"), ("expect", "b"),
                                              ("send", "y\n"), ("send", "z"), ("expect", "c")],
          "JSON steps: %r" % [(a.kind, a.arg) for a in acts])
    check(acts[0].timeout == 3 and acts[2].timeout == runner.DEFAULT_STEP_TIMEOUT, "JSON timeouts")
    acts = runner.parse_script_json({"timeout": 7, "steps": [{"expect": "a"}]}, "j")
    check(acts[0].timeout == 7, "JSON default timeout")
    for bad in [{"x": 1}, [{"wait": "a"}], [{"timeout": 3}], [{"expect": "a", "timeout": -1}],
                [{"send": "a", "sendraw": "b"}], ["nope"], [{"expect": "("}]]:
        check(raises(runner.parse_script_json, bad, "j") is True, "JSON %r is refused" % (bad,))
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "s.json")
        with open(p, "w") as f:
            json.dump([{"expect": "a"}], f)
        check(runner.load_script(p)[0].arg == "a", "load_script reads JSON")
        p2 = os.path.join(d, "s.txt")
        with open(p2, "w") as f:
            f.write("send hi\n")
        check(runner.load_script(p2)[0].data == b"hi\n", "load_script reads the line format")
        with open(p, "w") as f:
            f.write("[{")
        check(raises(runner.load_script, p, contains="not valid JSON") is True, "bad JSON")
        check(raises(runner.load_script, os.path.join(d, "none"), contains="cannot read") is True,
              "missing file")


def test_stepper():
    acts = runner.parse_script_lines("timeout 10\nexpect prompt# $\nsend echo hello\n"
                                     "expect ^hello$\nsend exit\n")
    st = runner.ScriptStepper(acts)
    check(st.advance(0.0) == b"", "nothing typed before the prompt")
    st.feed("booting\r\nprompt")
    check(st.advance(1.0) == b"", "a partial prompt does not match")
    st.feed("# ")
    check(st.advance(2.0) == b"echo hello\n", "the prompt makes the first send")
    st.feed("echo hello\r\n")  # the shell's echo of the line
    check(st.advance(2.5) == b"", "the echoed command line does not match ^hello$")
    st.feed("hello\r\nprompt# ")
    check(st.advance(3.0) == b"exit\n", "the answer makes the next send")
    check(st.ok and st.done, "the script is done")
    rep = st.report()
    check([r["status"] for r in rep["steps"]] == ["matched", "sent", "matched", "sent"],
          "statuses: %r" % [r["status"] for r in rep["steps"]])
    check(rep["steps"][0]["waited"] == 2.0 and rep["steps"][2]["waited"] == 1.0,
          "waited counts from the previous step: %r" % [r["waited"] for r in rep["steps"]])
    check(rep["steps"][2]["match"] == "hello", "match text")

    # An expect searches after the previous match only.
    st = runner.ScriptStepper(runner.parse_script_lines("expect a\nexpect a\n"))
    st.feed("a")
    st.advance(0)
    check(not st.done, "one 'a' satisfies one expect only")
    st.feed("..a")
    st.advance(1)
    check(st.ok, "the second 'a' the second")

    # A timeout names the step and what was seen last, and stops the script.
    st = runner.ScriptStepper(runner.parse_script_lines("timeout 5\nexpect ready\nsend x\n", "t.txt"))
    st.feed("still booting")
    st.advance(0.0)
    st.advance(4.9)
    check(st.failure is None, "no failure before the timeout")
    check(st.advance(5.1) == b"", "nothing typed after a timeout")
    check(st.failure is not None and "step 1" in st.failure and "t.txt:2" in st.failure
          and "still booting" in st.failure and "timed out after 5 s" in st.failure,
          "timeout message: %s" % st.failure)
    rep = st.report()
    check(not rep["ok"] and rep["steps"][-1]["status"] == "timeout"
          and rep["steps"][-1]["last_seen"] == "still booting", "timeout report: %r" % rep)
    st.finish(6, "whatever")
    check(len(st.report()["steps"]) == 1, "finish() after a failure adds nothing")

    # The run ends first: the remaining steps are not reached.
    st = runner.ScriptStepper(runner.parse_script_lines("expect a\nsend b\nexpect c\n"))
    st.feed("a")
    st.advance(0)
    st.finish(3.0, "system halted, status=0")
    rep = st.report()
    check([r["status"] for r in rep["steps"]] == ["matched", "sent", "not reached"]
          and not rep["ok"] and "step 3" in rep["failure"] and "system halted" in rep["failure"],
          "not reached: %r" % rep)

    # Terminal escape sequences are not matched, even cut between two chunks (busybox asks for
    # the cursor position after its prompt).
    st = runner.ScriptStepper(runner.parse_script_lines("expect prompt# $\nexpect ^ok$\n"))
    st.feed("prompt# \x1b[")
    st.advance(0)
    check(st.index == 1, "the prompt matches before the rest of its escape sequence comes")
    st.feed("6nls\r\n\x1b[1;31mok\x1b[0m\r\n")
    st.advance(0)
    check(st.ok and st.text == "prompt# ls\nok\n", "escape sequences removed: %r" % st.text)

    # A long last_seen is cut to its end.
    st = runner.ScriptStepper(runner.parse_script_lines("timeout 1\nexpect never\n"))
    st.feed("x" * 1000 + "THE END")
    st.advance(0)
    st.advance(2)
    check(st.report()["steps"][0]["last_seen"].endswith("THE END")
          and len(st.report()["steps"][0]["last_seen"]) <= 300, "last_seen is the tail")


def fake_guest(sock_path, ready, log):
    """A tiny shell on the other end of COM2: prints a prompt, echoes each line, answers
    `echo X` with X, and exits on `exit`."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock_path)
    ready.set()
    s.sendall(b"Linux version 6.1 (fake)\r\nfake# ")
    buf = b""
    while True:
        data = s.recv(4096)
        if not data:
            break
        buf += data
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            log.append(line)
            s.sendall(line + b"\r\n")
            if line.startswith(b"echo "):
                s.sendall(line[5:] + b"\r\n")
            if line == b"exit":
                s.sendall(b"bye\r\n")
                s.close()
                return
            s.sendall(b"fake# ")


def test_com2_socket():
    with tempfile.TemporaryDirectory() as d:
        log_path = os.path.join(d, "serial.com2.log")
        acts = runner.parse_script_lines("timeout 5\nexpect fake# $\nsend echo hello\n"
                                         "expect ^hello$\nexpect fake# $\nsend exit\nexpect ^bye$\n")
        st = runner.ScriptStepper(acts)
        echoed = []
        com2 = runner.Com2(log_path, stepper=st, echo=echoed.append)
        path = com2.listen_unix()
        check(os.stat(os.path.dirname(path)).st_mode & 0o077 == 0,
              "the socket's folder is private to us")
        ready, typed = threading.Event(), []
        t = threading.Thread(target=fake_guest, args=(path, ready, typed), daemon=True)
        t.start()
        ready.wait(5)
        # A second client cannot attach once the first is accepted.
        t0 = time.monotonic()
        while com2.conn is None and time.monotonic() - t0 < 5:
            com2.poll(time.monotonic() - t0)
        check(com2.conn is not None and com2.listener is None,
              "the runner accepted the guest and closed its listener")
        intruder = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            intruder.connect(path)
            check(False, "a second client could connect to COM2")
        except OSError:
            pass
        finally:
            intruder.close()
        while not st.done and time.monotonic() - t0 < 10:
            com2.poll(time.monotonic() - t0)
            time.sleep(0.01)
        t.join(5)
        com2.close(time.monotonic() - t0)
        check(st.ok, "script over the socket: %s" % st.failure)
        check(typed == [b"echo hello", b"exit"], "the guest got the typed lines: %r" % typed)
        with open(log_path, "rb") as f:
            logged = f.read()
        check(logged == (b"Linux version 6.1 (fake)\r\nfake# echo hello\r\nhello\r\nfake# "
                         b"exit\r\nbye\r\n"), "COM2 log holds the bytes received: %r" % logged)
        check("".join(echoed).replace("\r", "") == logged.decode().replace("\r", ""),
              "the echo callback saw the same text")
        check(com2.closed_by_peer and not os.path.exists(os.path.dirname(path)),
              "the guest's close is seen and the socket folder removed")

    # TCP (Bochs): loopback only, and nothing is lost when the client sends before accept().
    with tempfile.TemporaryDirectory() as d:
        com2 = runner.Com2(os.path.join(d, "c.log"))
        addr = com2.listen_tcp()
        check(addr.startswith("127.0.0.1:"), "TCP listener on loopback: %s" % addr)
        c = socket.create_connection(("127.0.0.1", int(addr.split(":")[1])))
        c.sendall(b"early bytes")
        c.close()
        com2.close(1.0)
        with open(os.path.join(d, "c.log"), "rb") as f:
            check(f.read() == b"early bytes", "bytes sent before accept() are logged")


def test_console_out():
    class Buf:
        def __init__(self):
            self.text = ""

        def write(self, t):
            self.text += t

        def flush(self):
            pass

    b = Buf()
    out = runner.ConsoleOut(b)
    out.write(1, "vlibos: boot\nvlibos: half")
    out.write(2, "Linux\nprompt# ")
    out.write(1, " line\n")
    out.write(2, "ls\n")
    out.end_lines()
    check(b.text == "vlibos: boot\nvlibos: half\n[com2] Linux\n[com2] prompt# \n line\n[com2] ls\n",
          "COM1 and COM2 interleave by lines: %r" % b.text)


def main():
    for t in (test_line_format, test_json_format, test_stepper, test_com2_socket, test_console_out):
        try:
            t()
        except Exception as e:  # report and go on with the other tests
            import traceback
            traceback.print_exc()
            check(False, "%s raised %s: %s" % (t.__name__, type(e).__name__, e))
    for f in failures:
        print("FAIL: " + f)
    print("com2_script: %s (%d checks passed, %d failed)" % (
        "PASSED" if not failures else "FAILED", passes, len(failures)))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())

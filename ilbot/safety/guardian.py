"""The guardian: a dead-man's switch in its own process, for every live run.

Everything else that releases keys lives inside the agent's process, so none of it runs while
that process is stopped (SIGSTOP — which no process can catch —, a debugger) or hung, and none of
it survives a SIGKILL. The guardian is a separate, small process (`python -m
ilbot.safety.guardian`: `ilbot.safety` and what it needs, python-xlib and pynput — no torch, no
Qt) with its *own* X connection:

- **heartbeats** come on its stdin, a pipe from the agent: one byte per beat (`Guardian.beat()`,
  which the safety clock calls every period). The guardian is armed by the first beat.
- **beats late** by `timeout_ms` (300 ms by default): it releases every key and mouse button its
  own connection sees as down (`XQueryKeymap`, the pointer's button mask; released through XTest —
  it cannot know who pressed them, so a person's held keys are released too), and keeps doing so
  every `poll_ms` while the beats stay missing, so a half-alive agent cannot press anything for
  long. When the beats come back it stands down (the agent's safety clock sees the gap and pauses).
- **the kill hotkey while beats are late** (F12 by default; watched on its own connection by a
  pynput listener, and by the keymap as a fallback): it releases everything and kills the frozen
  agent with SIGKILL, then exits. SIGKILL because it is the one signal that ends a stopped or hung
  process at once without letting it run again: a SIGTERM to a stopped process waits until it is
  continued, and then its threads — the scheduler with its queue — would run before any handler,
  and a hung process may never run its handler at all.
- **the pipe closes** (the agent exited or died, even by SIGKILL): it releases everything and exits.
- **"bye"** (`Guardian.close()`, the agent's clean end): it exits without touching anything.

It runs in its own session (`start_new_session`), so the terminal's Ctrl+Z and Ctrl+C, which go
to the agent's whole process group, never stop or end it. Limitation: a process forked from the
agent without exec (multiprocessing's fork) inherits the pipe's write end and keeps it open after
the agent dies, so the guardian then only acts on the missing beats, not on the closed pipe.

`Guardian.start(display, kill_hotkey, timeout_ms)` starts it and waits until it is ready (its
listener running), or raises `UserError` with its one-line reason.
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from ..errors import UserError

BEAT = b"."
BYE = b"q"
ROOT = Path(__file__).resolve().parents[2]  # the folder holding the ilbot package


class Guardian:
    """The agent's side: start it, beat it, close it."""

    def __init__(self, proc: subprocess.Popen, timeout_ms: float) -> None:
        self.proc = proc
        self.timeout_ms = float(timeout_ms)
        self._fd = proc.stdin.fileno()
        self._lock = threading.Lock()
        self._closed = False
        self.beats = 0
        self.dropped_beats = 0  # the pipe was full (the guardian itself is not reading)

    @classmethod
    def start(cls, display: str | None = None, kill_hotkey: str = "f12", timeout_ms: float = 300.0, *,
              agent_pid: int | None = None, poll_ms: float = 20.0, ready_timeout_s: float = 20.0) -> "Guardian":
        """Start the guardian on `display` (default: $DISPLAY) watching this process (or
        `agent_pid`); returns once it is ready. UserError when it cannot start."""
        from .killswitch import parse_hotkey

        hotkey = parse_hotkey(kill_hotkey)
        display = display or os.environ.get("DISPLAY")
        if not display:
            raise UserError("guardian: no X display (set DISPLAY); live mode needs one")
        if not (timeout_ms > 0 and poll_ms > 0):
            raise UserError(f"guardian: timeout_ms and poll_ms must be > 0, got {timeout_ms} and {poll_ms}")
        pid = os.getpid() if agent_pid is None else int(agent_pid)
        env = dict(os.environ, DISPLAY=display)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
        cmd = [sys.executable, "-m", "ilbot.safety.guardian", "--display", display, "--hotkey", hotkey,
               "--timeout-ms", str(timeout_ms), "--poll-ms", str(poll_ms), "--pid", str(pid)]
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
                                    start_new_session=True, close_fds=True)
        except OSError as e:
            raise UserError(f"guardian: cannot start {sys.executable}: {e.strerror}") from None
        line = _read_line(proc.stdout.fileno(), ready_timeout_s)
        proc.stdout.close()
        if line != "ready":
            proc.kill()
            proc.wait()
            why = line.removeprefix("error: ") if line else f"no answer in {ready_timeout_s:g} s"
            raise UserError(f"guardian: could not start on display {display}: {why}")
        os.set_blocking(proc.stdin.fileno(), False)
        return cls(proc, timeout_ms)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def beat(self) -> bool:
        """One heartbeat; never blocks or raises. False when the guardian is gone or closed."""
        with self._lock:
            if self._closed:
                return False
            try:
                os.write(self._fd, BEAT)
            except BlockingIOError:  # a full pipe: it has beats enough to read
                self.dropped_beats += 1
                return True
            except OSError:  # BrokenPipeError: the guardian died
                return False
            self.beats += 1
            return True

    def close(self, timeout: float = 2.0) -> int | None:
        """Clean end: tell it "bye" (it exits touching nothing) and wait; idempotent. Its exit code."""
        with self._lock:
            if not self._closed:
                self._closed = True
                try:
                    os.set_blocking(self._fd, True)
                    os.write(self._fd, BYE)
                except OSError:
                    pass
                try:
                    self.proc.stdin.close()
                except OSError:
                    pass
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def __enter__(self) -> "Guardian":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _read_line(fd: int, timeout_s: float) -> str:
    """One line from fd within timeout_s ('' on timeout or EOF)."""
    deadline = time.monotonic() + timeout_s
    buf = b""
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return ""
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        buf += chunk
    return buf.split(b"\n", 1)[0].decode(errors="replace").strip()


# -- the guardian process ---------------------------------------------------------------------

def _say(msg: str) -> None:
    try:
        print(f"ilbot guardian: {msg}", file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


class _Watch:
    """The guardian's state and its X connection."""

    def __init__(self, display: str, hotkey: str, pid: int) -> None:
        from ..data.keys import key_id
        from .xstate import XInputState

        self.xs = XInputState(display)
        if not self.xs.display.has_extension("XTEST"):
            raise RuntimeError(f"display {display} has no XTEST extension")
        self.hotkey = hotkey
        self.hotkey_code = self.xs.keycode(key_id(hotkey))
        self.pid = pid
        self.late = threading.Event()
        self.kill = threading.Event()
        self.listener = None

    def start_listener(self) -> None:
        from pynput import keyboard

        from .killswitch import pressed_name

        def on_press(key, injected=False):
            if self.late.is_set() and pressed_name(key) == self.hotkey:
                self.kill.set()

        self.listener = keyboard.Listener(on_press=on_press)
        self.listener.daemon = True
        self.listener.start()
        self.listener.wait()

    def release(self) -> str:
        keys, buttons = self.xs.release_everything()
        return ", ".join([f"keycode {k}" for k in sorted(keys)] + [f"button {b}" for b in sorted(buttons)])

    def hotkey_down(self) -> bool:
        return bool(self.hotkey_code) and self.hotkey_code in self.xs.keys_down()


def run(display: str, hotkey: str, timeout_ms: float, poll_ms: float, pid: int, fd: int = 0) -> int:
    # the hotkey listener's thread dies with the X server: one line, not a traceback
    threading.excepthook = lambda a: _say(f"hotkey listener stopped: {a.exc_type.__name__}: {a.exc_value}")
    try:
        watch = _Watch(display, hotkey, pid)
        watch.start_listener()
    except Exception as e:  # one line for the agent, which raises it as a UserError
        print(f"error: {type(e).__name__}: {e}".replace("\n", " "), flush=True)
        return 2
    print("ready", flush=True)
    try:
        return _watch(watch, hotkey, timeout_ms, poll_ms, pid, fd)
    except Exception as e:  # the X server went away (a test's Xvfb, the session ending): nothing left to do
        _say(f"stopped: {type(e).__name__}: {e}")
        return 1


def _watch(watch: _Watch, hotkey: str, timeout_ms: float, poll_ms: float, pid: int, fd: int) -> int:
    timeout_ns, poll_s = int(timeout_ms * 1e6), poll_ms / 1e3
    last_beat: int | None = None  # armed by the first beat
    late_since: int | None = None
    while True:
        if last_beat is None:
            wait = None
        elif late_since is None:
            wait = max(0.0, (last_beat + timeout_ns - time.monotonic_ns()) / 1e9)
        else:
            wait = poll_s
        if select.select([fd], [], [], wait)[0]:
            data = os.read(fd, 65536)
            if not data:
                what = watch.release()
                _say(f"the agent is gone; released {what or 'nothing (nothing was down)'}")
                return 0
            if BYE in data:
                return 0
            last_beat = time.monotonic_ns()
            if late_since is not None:
                _say(f"heartbeats back after {(last_beat - late_since) / 1e6:.0f} ms")
                late_since = None
                watch.late.clear()
            continue
        now = time.monotonic_ns()
        if last_beat is None or now - last_beat < timeout_ns:
            continue
        if late_since is None:
            late_since = now
            watch.late.set()
            what = watch.release()
            _say(f"no heartbeat from the agent (pid {pid}) for {(now - last_beat) / 1e6:.0f} ms: released "
                 f"{what or 'nothing (nothing was down)'}; releasing everything until it beats again; "
                 f"{hotkey} ends it")
            continue
        if watch.kill.is_set() or watch.hotkey_down():
            watch.release()
            try:
                os.kill(pid, signal.SIGKILL)
                _say(f"{hotkey}: killed the frozen agent (pid {pid}) and released everything")
            except ProcessLookupError:
                _say(f"{hotkey}: the agent (pid {pid}) was already gone; released everything")
            watch.release()
            return 0
        watch.release()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m ilbot.safety.guardian",
                                description="Release every key and button when the agent's heartbeats stop.")
    p.add_argument("--display", required=True)
    p.add_argument("--hotkey", default="f12")
    p.add_argument("--timeout-ms", type=float, default=300.0)
    p.add_argument("--poll-ms", type=float, default=20.0)
    p.add_argument("--pid", type=int, required=True, help="the agent's process id (killed on the hotkey)")
    a = p.parse_args(argv)
    os.environ["DISPLAY"] = a.display  # pynput binds to $DISPLAY
    return run(a.display, a.hotkey, a.timeout_ms, a.poll_ms, a.pid)


if __name__ == "__main__":
    sys.exit(main())

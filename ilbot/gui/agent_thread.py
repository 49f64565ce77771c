"""Running an agent runtime off the GUI thread and reporting back through Qt signals.

`AgentThread(build)` is a QThread: in its own thread it calls `build(thread)` (which opens the
capture source and makes the runtime, so a slow source never freezes the window), then runs the
runtime's loop until stopped. It never touches widgets: everything
goes out as signals, which Qt queues onto the GUI thread:

- `planned(tick, actions, tick_ms)` — the plan of every tick after safety (the overlay's input),
- `performed(tick, actions)` — the actions the executor performed (or, in dry run, showed),
- `stats(dict)` — counters after each tick (ticks, plan latency, interventions by reason),
- `failed(message)` — a one-line error (bad checkpoint, dead source, crash); the thread ends,
  the window stays,
- `finished_run(summary)` — the run ended (stopped, tick limit, or failure), with final counters.

The runtime paces itself (`run(ticks)` returns when stopped or after `ticks` ticks); pause and
resume are the runtime's (a paused runtime plans nothing and holds no key or button). Anything
with `run(ticks)`, `stop()`, `pause(reason)`, `resume()`, `paused` and `counters` runs here, so
a replay goes through the same thread.
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
from typing import Any, Callable

from PyQt6.QtCore import QThread, pyqtSignal

from ..errors import UserError


def describe_error(e: BaseException) -> str:
    """One line for the message area: UserErrors say what to fix; anything else names its type."""
    if isinstance(e, UserError):
        return str(e)
    return f"{type(e).__name__}: {e}"


class AgentThread(QThread):
    planned = pyqtSignal(int, list, float)
    performed = pyqtSignal(int, list)
    stats = pyqtSignal(dict)
    state = pyqtSignal(str, str)  # runtime state (running/paused/stopped), reason
    failed = pyqtSignal(str)
    finished_run = pyqtSignal(dict)

    def __init__(self, build: Callable[["AgentThread"], Any], *, ticks: int | None = None, name: str = "agent"):
        super().__init__()
        self.build = build
        self.ticks = ticks
        self.name = name
        self.runtime = None
        self._stop = threading.Event()
        self._paused = False
        self.error: str | None = None

    # -- control (GUI thread) ----------------------------------------------------------------
    def request_stop(self) -> None:
        """Stop the run: the runtime releases everything and its loop returns."""
        self._stop.set()
        rt = self.runtime
        if rt is not None:
            try:
                rt.stop()
            except Exception:  # noqa: BLE001 - the run loop reports its own failure
                pass

    def set_paused(self, paused: bool) -> None:
        """Pause (the runtime releases everything and plans nothing) or resume."""
        rt = self.runtime
        self._paused = bool(paused)
        if rt is None:
            return
        if paused:
            rt.pause("user")
        else:
            rt.resume()

    @property
    def paused(self) -> bool:
        rt = self.runtime
        return bool(getattr(rt, "paused", self._paused)) if rt is not None else self._paused

    # -- listeners (runtime / scheduler threads) -------------------------------------------------
    def emit_plan(self, tick: int, actions, tick_ms: float = 600.0) -> None:
        self.planned.emit(int(tick), list(actions), float(tick_ms))

    def emit_performed(self, tick: int, actions) -> None:
        self.performed.emit(int(tick), list(actions))

    def emit_stats(self, counters: dict) -> None:
        self.stats.emit(plain(counters))

    def emit_state(self, state: str, reason: str) -> None:
        self.state.emit(str(state), str(reason or ""))

    # -- the run (agent thread) ----------------------------------------------------------------
    def run(self) -> None:  # noqa: D401 - QThread's entry point
        _inherit_python_thread_hooks()  # takes effect from the next call: the body runs in _run
        self._run()

    def _run(self) -> None:
        counters: dict = {}
        try:
            self.runtime = self.build(self)
            if self._stop.is_set():
                self.runtime.stop()
            elif self._paused:
                self.runtime.pause("user")
            self.runtime.run(self.ticks)  # paced by the runtime: returns when stopped or after `ticks`
        except Exception as e:  # noqa: BLE001 - every failure goes to the window, not only the console
            self.error = describe_error(e)
            if not isinstance(e, UserError):
                traceback.print_exc()
            self.failed.emit(self.error)
        finally:
            if self.runtime is not None:
                try:
                    self.runtime.stop()
                    counters = plain(self.runtime.counters)
                except Exception as e:  # noqa: BLE001
                    if self.error is None:
                        self.error = describe_error(e)
                        self.failed.emit(self.error)
            self.finished_run.emit({"error": self.error, **counters})


def _inherit_python_thread_hooks() -> None:
    """A QThread is not started through `threading`, so the trace and profile hooks that tools
    install for every new Python thread (`threading.settrace`/`setprofile`: coverage, profilers)
    never reach it; install them here the way `threading.Thread` would."""
    trace = getattr(threading, "_trace_hook", None)
    if trace is not None:
        sys.settrace(trace)
    profile = getattr(threading, "_profile_hook", None)
    if profile is not None:
        sys.setprofile(profile)


def plain(counters: dict) -> dict:
    """A plain copy of counters (nested dicts copied) stamped with the monotonic time, safe to
    hand to another thread."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in dict(counters or {}).items()}
    out["t"] = time.monotonic()
    return out

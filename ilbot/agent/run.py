"""`Run`: the one interface of everything that performs actions over time (DESIGN §7b).

The agent runtime (`ilbot.agent.runtime.AgentRuntime`) and session replay
(`ilbot.agent.replay.SessionReplay`) both are a `Run`. Front ends (the app, `ilbot play`,
`ilbot replay`, the benches, the closed-loop evaluation) drive and display them only through
this interface: `start(ticks)` / `run(ticks)`, `pause(reason)`, `resume()`, `stop(reason)`,
`counters`, and the listeners `on_plan(tick, actions)`, `on_counters(dict)`,
`on_state(state, reason)`.

The state machine, the only place a run's state changes:

    waiting_for_state ──► running ⇄ paused(reason)
            │                 │            │
            └─────────────────┴────────────┴──► stopped(reason)

- `waiting_for_state`: started, no game state seen yet (a replay starts `running`);
- `paused(reason)`: nothing scheduled, every key and button released; `resume()` goes back to
  `running` (or to `waiting_for_state` if no state was ever seen);
- `stopped(reason)`: final. Reasons are short names (`STOP_REASONS`, `PAUSE_REASONS`) that front
  ends turn into words with `describe_reason`. `stop()` returns once everything is released and
  the supervision has ended, also when another thread is the one stopping the run.

A transition that the table does not allow (resume after stop, pause while stopped) is ignored and
returns False, so any thread (a kill switch, a listener, the GUI) may ask at any time.
"""

from __future__ import annotations

import threading
from enum import Enum
from typing import Callable


class RunState(str, Enum):
    WAITING = "waiting_for_state"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"


_NEXT = {
    RunState.WAITING: {RunState.RUNNING, RunState.PAUSED, RunState.STOPPED},
    RunState.RUNNING: {RunState.PAUSED, RunState.STOPPED},
    RunState.PAUSED: {RunState.RUNNING, RunState.WAITING, RunState.STOPPED},
    RunState.STOPPED: set(),
}

# plain words for every reason a run pauses or stops (the app's status line, `ilbot play`)
PAUSE_REASONS = {
    "user": "paused by you",
    "human_override": "you moved the mouse: the agent let go",
    "stale_state": "no fresh game state",
    "suspended": "the process was suspended (Ctrl+Z)",
}
STOP_REASONS = {
    "user": "by you",
    "kill_switch": "kill switch pressed",
    "finished": "finished",
    "ticks": "tick limit reached",
    "no_state": "no game state arrived",
    "window_closed": "the game window closed",
    "error": "an error stopped it",
}
RESUME_HINT = "press Resume (F6) to go on"


def describe_reason(state: str, reason: str) -> str:
    """One short line for a state and its reason, as every front end shows it."""
    state = RunState(state).value if isinstance(state, RunState) else str(state)
    if state == RunState.PAUSED.value:
        return f"PAUSED: {PAUSE_REASONS.get(reason, reason or 'paused')} ({RESUME_HINT})"
    if state == RunState.STOPPED.value:
        return f"stopped: {STOP_REASONS.get(reason, reason or 'stopped')}"
    if state == RunState.WAITING.value:
        return f"waiting for game state{' from ' + reason if reason else ''}"
    return "running"


class Run:
    """The state machine and listeners shared by every run; subclasses do the work in `run()`."""

    def __init__(self, initial: RunState = RunState.WAITING) -> None:
        self.state = initial
        self.reason = ""
        self.on_plan: list[Callable] = []
        self.on_counters: list[Callable[[dict], None]] = []
        self.on_state: list[Callable[[str, str], None]] = []
        self.pauses: dict[str, int] = {}  # reason → how many times
        self.error: BaseException | None = None  # what ended run() with an exception, if anything
        self.mode = None  # the execution mode (ilbot.agent.assemble.Mode) the assembly picked
        self.window_alive: Callable[[], bool] | None = None  # False once the game window has closed
        self._state_lock = threading.Lock()
        self._stop_event = threading.Event()
        self._stop_done = threading.Event()  # set once stop() has released everything and ended the supervision
        self._stopper: threading.Thread | None = None  # the thread that moved the run to stopped
        self._thread: threading.Thread | None = None

    # -- state ------------------------------------------------------------------------------
    @property
    def paused(self) -> bool:
        return self.state == RunState.PAUSED

    @property
    def stopped(self) -> bool:
        return self.state == RunState.STOPPED

    @property
    def running(self) -> bool:
        return self.state == RunState.RUNNING

    @property
    def pause_reason(self) -> str | None:
        return self.reason if self.state == RunState.PAUSED else None

    def _transition(self, new: RunState, reason: str = "") -> bool:
        """Move to `new` if the table allows it; listeners hear of it outside the lock."""
        with self._state_lock:
            if new not in _NEXT[self.state]:
                return False
            self.state, self.reason = new, reason
            if new == RunState.PAUSED:
                self.pauses[reason] = self.pauses.get(reason, 0) + 1
            if new == RunState.STOPPED:
                self._stopper = threading.current_thread()
                self._stop_event.set()
        self._emit_state(new.value, reason)
        return True

    def _await_stop(self, timeout: float = 5.0) -> None:
        """`stop()` asked again while another thread (the kill switch's, the GUI's) is stopping
        the run: return once that stop has released everything and ended the supervision (the
        guardian included), so a front end that returns or exits next leaves nothing behind.
        Never waits on the stopping thread itself, nor on the run's own background thread (the
        stopping thread may be joining it)."""
        me = threading.current_thread()
        if me is not self._stopper and me is not self._thread:
            self._stop_done.wait(timeout)

    def _emit_state(self, state: str, reason: str) -> None:
        for fn in list(self.on_state):
            fn(state, reason)

    def _emit_plan(self, tick: int, actions) -> None:
        for fn in list(self.on_plan):
            fn(tick, actions)
        if self.on_counters:
            c = self.counters
            for fn in list(self.on_counters):
                fn(c)

    # -- the interface ----------------------------------------------------------------------
    def run(self, ticks: int | None = None) -> dict:  # pragma: no cover - interface
        raise NotImplementedError

    def pause(self, reason: str = "user") -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def resume(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def stop(self, reason: str = "user") -> None:  # pragma: no cover - interface
        raise NotImplementedError

    @property
    def counters(self) -> dict:  # pragma: no cover - interface
        raise NotImplementedError

    def start(self, ticks: int | None = None) -> threading.Thread:
        """Run in a background thread; `stop()` ends it, `join()` waits. An exception from
        `run()` stops the run (reason `error`) and is kept in `self.error`."""

        def body() -> None:
            try:
                self.run(ticks)
            except BaseException as e:  # noqa: BLE001 - kept for the front end, which shows it
                self.error = e
                self.stop("error")

        self._thread = threading.Thread(target=body, name=type(self).__name__, daemon=True)
        self._thread.start()
        return self._thread

    def join(self, timeout: float | None = None) -> bool:
        """Wait for a started run to end; True when it has."""
        t = self._thread
        if t is None:
            return True
        t.join(timeout)
        return not t.is_alive()

"""What the app adds around the one run assembly (`ilbot.agent.assemble`): the in-process sandbox
game, the GUI-thread dispatcher for the sandbox execution mode, the recorder, and the run's
listeners wired to an `AgentThread`'s signals. No widgets here; the main window calls these.

Everything under `ilbot.agent`, `ilbot.model` and `ilbot.safety` is imported lazily, so the
window opens fast and a missing or broken part shows as an error in the window.

Decisions where the design is silent:
- The sandbox source in the app is the sandbox game opened in the app's own QApplication,
  publishing to a private temporary state folder (`json-dir` protocol); the agent reads it
  through `make_adapter("sandbox:<folder>")`, exactly as it would read a real game client.
- On the sandbox the default execution mode is `sandbox`: each action that passed safety is
  applied to the game in this process, on the GUI thread (no operating-system input).
- The panels' "recent actions" come from the executor's listeners, so every mode reports the
  same thing: what was performed (or shown).
- The sandbox window closing stops the run (`window_closed`); the next Start reopens it and it
  ticks again.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from PyQt6.QtCore import QObject, pyqtSignal

from ..errors import UserError

DEFAULT_KILL_KEY = "f12"
RECORD_STOP_KEY = "f7"  # the app's record toggle: also the recorder's own stop key, so it is never recorded
RECORD_PAUSE_KEY = "f9"


def default_safety_config():
    from ..safety import SafetyConfig

    return SafetyConfig()


def load_model(path: str):
    """A checkpoint from a checkpoint or training-run folder; `UserError`s name what is wrong."""
    if not path:
        raise UserError("no model chosen: pick a checkpoint folder")
    from ..agent.assemble import load_model as _load

    return _load(path)


def describe_checkpoint(ckpt, path: str) -> str:
    n = sum(p.numel() for p in ckpt.model.parameters())
    tick = (ckpt.stats or {}).get("tick_ms", 600)
    return f"{Path(path).name}: {n / 1e6:.2f} M parameters, tick {tick:g} ms, spec {str(ckpt.spec_hash)[:10]}"


def plan_latency_ms(stats: dict) -> float | None:
    v = stats.get("plan_ms_p50")
    return float(v) if v is not None else None


# -------------------------------------------------------------------------------------------- sandbox
class SandboxHost:
    """The sandbox game window in this QApplication, publishing to a private state folder."""

    def __init__(self, tick_ms: float = 600.0, seed: int = 0, state_dir: Path | None = None):
        from ..sandbox.game import SandboxWindow
        from ..sandbox.logic import GameConfig
        from ..sandbox.publish import JsonDirPublisher

        self._tmp = None
        if state_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="ilbot-app-sandbox-")
            state_dir = Path(self._tmp.name)
        self.state_dir = Path(state_dir)
        self.window = SandboxWindow(GameConfig(seed=seed), [JsonDirPublisher(self.state_dir)], tick_ms=tick_ms)
        self.window.closed.connect(self._on_closed)
        self.started = False
        self.on_closed: list = []  # called when the person closes the game window

    @property
    def game(self):
        return self.window.game

    def _on_closed(self) -> None:
        self.started = False
        for fn in list(self.on_closed):
            fn()

    @property
    def source(self) -> str:
        return f"sandbox:{self.state_dir}"

    def show(self, pos: tuple[int, int] = (0, 0)) -> None:
        if not self.window.isVisible():
            self.window.move(*pos)
            self.window.show()
        self.window.raise_()
        if not self.started:
            self.window.start()
            self.started = True

    def close(self) -> None:
        self.window.stop()
        self.window.close()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


# -------------------------------------------------------------------------------------------- runs
class GuiDispatcher(QObject):
    """Runs a callable on the GUI thread (where the in-process sandbox game lives and ticks):
    the sandbox execution mode's `dispatch`. Emitting from another thread queues the call."""

    call = pyqtSignal(object)

    def __init__(self):
        super().__init__()
        self.call.connect(lambda fn: fn())

    def __call__(self, fn) -> None:
        self.call.emit(fn)


def build_run(request, thread):
    """The run `request` (an `ilbot.agent.assemble.RunRequest`) describes, assembled in the agent
    thread (a slow source never freezes the window) and wired to `thread`'s signals."""
    from ..agent.assemble import assemble

    run = assemble(request)
    last_tick = {"tick": -1}

    def on_plan(tick, actions):
        last_tick["tick"] = tick
        thread.emit_plan(tick, actions, run.tick_ms)

    run.on_plan.append(on_plan)
    run.on_counters.append(thread.emit_stats)
    run.on_state.append(thread.emit_state)
    run.executor.add_listener(lambda rec: thread.emit_performed(last_tick["tick"], [rec.action]))
    return run


# -------------------------------------------------------------------------------------------- recorder
def start_recorder(path: Path, rect: tuple[int, int, int, int], source: str, kill_key: str):
    """Start recording input on the game window (and game state from `source`) into `path`."""
    from ..agent.capture import make_adapter
    from ..agent.recorder import Recorder
    from ..agent.window import WindowGeometry

    from ..agent.recorder import RecorderHotkeys

    window = WindowGeometry(*rect)
    adapter = make_adapter(source, **({"window": window} if source.startswith("screen") else {}))
    try:
        rec = Recorder(path, window, adapter=adapter, hotkeys=RecorderHotkeys(stop=RECORD_STOP_KEY, pause=RECORD_PAUSE_KEY))
        rec.start()
    except BaseException:
        adapter.close()
        raise
    return rec


def stop_recorder(rec) -> str:
    """Stop a recorder; a one-line summary of what it recorded."""
    try:
        c = rec.stop()
    finally:
        if rec.adapter is not None:
            rec.adapter.close()
    kinds = ", ".join(f"{c.get(k, 0)} {k}" for k in ("CLICK", "KEY", "SCROLL", "MOVE"))
    return f"{kinds}, {c.get('ticks', 0)} ticks"

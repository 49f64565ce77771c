"""How the app assembles the agent parts: model, capture source, executor, runtime, recorder,
replay, and the in-process sandbox game. No widgets here; the main window calls these.

Everything under `ilbot.agent`, `ilbot.model` and `ilbot.safety` is imported lazily, so the
window opens fast and a missing or broken part shows as an error in the window.

Decisions where the design is silent:
- The sandbox source in the app is the sandbox game opened in the app's own QApplication,
  publishing to a private temporary state folder (`json-dir` protocol); the agent reads it
  through `make_adapter("sandbox:<folder>")`, exactly as it would read a real game client.
- A model whose feature-spec hash differs from the source's spec is refused before the agent
  starts (DESIGN §3: loading a model against a different spec is an error).
- The panels' "recent actions" come from a thin wrapper around the executor, so dry run and
  live report the same thing: what was performed (or shown), when it was due.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    from ..model import load_checkpoint

    p = Path(path).expanduser()
    if not p.exists():
        raise UserError(f"{p}: no such checkpoint folder")
    try:
        return load_checkpoint(p)
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001 - a file the loader did not expect: still one line
        raise UserError(f"{p}: cannot load checkpoint ({type(e).__name__}: {e})") from None


def describe_checkpoint(ckpt, path: str) -> str:
    n = sum(p.numel() for p in ckpt.model.parameters())
    tick = (ckpt.stats or {}).get("tick_ms", 600)
    return f"{Path(path).name}: {n / 1e6:.2f} M parameters, tick {tick:g} ms, spec {str(ckpt.spec_hash)[:10]}"


def is_region(spec: str) -> bool:
    """Is the game-window text a region "x,y,w,h" (rather than a title)?"""
    from ..agent.window import _REGION

    return bool(_REGION.match(spec))


def resolve_window(spec: str) -> tuple[int, int, int, int]:
    """'x,y,w,h' or a window title → (x, y, width, height) of its client area on screen."""
    from ..agent.window import resolve_window as _resolve

    g = _resolve(spec)
    return (g.x, g.y, g.width, g.height)


def plan_latency_ms(stats: dict) -> float | None:
    v = stats.get("plan_ms_p50")
    return float(v) if v is not None else None


NOT_INTERVENTIONS = ("planned", "passed")  # the safety pipeline's throughput counters


def interventions(stats: dict) -> dict[str, int]:
    """Safety interventions by reason from runtime counters (throughput counters left out)."""
    return {str(k): int(v) for k, v in (stats.get("interventions") or {}).items() if k not in NOT_INTERVENTIONS}


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
        self.started = False

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


# -------------------------------------------------------------------------------------------- agent
@dataclass
class RunSpec:
    checkpoint: Any  # a loaded Checkpoint
    source: str  # a make_adapter source string
    rect: tuple[int, int, int, int]  # game client area on screen
    live: bool = False
    safety: Any = None  # SafetyConfig
    tick_ms: float | None = None
    kill_key: str = DEFAULT_KILL_KEY
    seed: int = 0


class NotifyingExecutor:
    """Wraps an executor: after each performed action, `notify(action)` (on the executor's thread)."""

    def __init__(self, inner, notify):
        self.inner = inner
        self.notify = notify

    def perform(self, action, origin) -> None:
        self.inner.perform(action, origin)
        self.notify(action)

    def release_all(self) -> None:
        self.inner.release_all()

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name):
        return getattr(self.inner, name)


def make_executor(live: bool):
    if live:
        from ..agent.executors import PynputExecutor

        return PynputExecutor()
    from ..agent.executors import DryRunExecutor

    return DryRunExecutor()


def check_spec(ckpt, adapter, source: str) -> None:
    spec = getattr(adapter, "spec", None)
    ours = getattr(spec, "hash", None)
    if ours is not None and ckpt.spec_hash and ours != ckpt.spec_hash:
        raise UserError(f"source {source!r}: its feature spec ({ours[:10]}) is not the model's ({str(ckpt.spec_hash)[:10]});"
                        " pick the model trained for this game")


def _wire(runtime, thread, executor_holder) -> None:
    """Connect a runtime's listeners to the thread's signals."""
    state = {"tick": -1}

    def on_plan(tick, actions):
        state["tick"] = tick
        thread.emit_plan(tick, actions, runtime.tick_ms)

    runtime.on_plan.append(on_plan)
    runtime.on_counters.append(thread.emit_stats)
    if hasattr(runtime, "on_state"):
        runtime.on_state.append(thread.emit_state)
    executor_holder.notify = lambda a: thread.emit_performed(state["tick"], [a])


def build_runtime(spec: RunSpec, thread):
    """An `AgentRuntime` for `spec`, wired to `thread`'s signals (runs on the agent thread)."""
    from ..agent.capture import make_adapter
    from ..agent.runtime import AgentRuntime, RuntimeConfig
    from ..agent.window import WindowGeometry

    x, y, w, h = spec.rect
    options = {"window": WindowGeometry(x, y, w, h)} if spec.source.startswith("screen") else {}
    adapter = make_adapter(spec.source, **options)
    try:
        check_spec(spec.checkpoint, adapter, spec.source)
        executor = NotifyingExecutor(make_executor(spec.live), lambda a: None)
        runtime = AgentRuntime(spec.checkpoint, adapter, executor, spec.safety, seed=spec.seed, live=spec.live,
                               tick_ms=spec.tick_ms, window=spec.rect,
                               config=RuntimeConfig(kill_hotkey=spec.kill_key))
    except BaseException:
        adapter.close()
        raise
    _wire(runtime, thread, executor)
    return runtime


# -------------------------------------------------------------------------------------------- replay
@dataclass
class ReplaySpec:
    session: str
    rect: tuple[int, int, int, int]
    live: bool = False
    safety: Any = None
    speed: float = 1.0
    kill_key: str = DEFAULT_KILL_KEY


class ReplayRun:
    """A `Replayer` with the runtime's face for `AgentThread`: `run(ticks)`, `stop()`,
    `pause()`/`resume()` (a replay cannot pause: the request is refused with a message),
    `counters`, `on_plan`/`on_counters` listeners. Each replay chunk is shown as a plan."""

    def __init__(self, replayer):
        self.replayer = replayer
        self.tick_ms = float(replayer.config.chunk_ms)
        self.on_plan: list = []
        self.on_counters: list = []
        self.on_state: list = []
        self.paused = False
        self._actions = replayer.actions()
        self._done = 0
        self._chunk = 0

    @property
    def counters(self) -> dict:
        c = dict(self.replayer.counters) if self.replayer.counters else {}
        c.setdefault("interventions", dict(self.replayer.safety.counters))
        c.setdefault("performed", self.replayer.executor.performed)
        c["ticks"] = self._chunk
        c["progress"] = f"{self._done}/{len(self._actions)}"
        return c

    def _progress(self, done: int, total: int) -> None:
        chunk = self._actions[self._done:done]
        self._done = done
        if chunk:
            k = int(chunk[0].t_ms // self.tick_ms)
            plan = [a.with_(t_ms=a.t_ms - k * self.tick_ms) for a in chunk]
            for fn in list(self.on_plan):
                fn(self._chunk, plan)
        self._chunk += 1
        c = self.counters
        for fn in list(self.on_counters):
            fn(c)

    def run(self, ticks=None) -> dict:
        return self.replayer.run(on_progress=self._progress)

    def stop(self) -> None:
        self.replayer.stop()

    def pause(self, reason: str = "user") -> None:
        for fn in list(self.on_state):
            fn("running", "a replay cannot pause: stop it instead")

    def resume(self) -> None:
        pass


def build_replay(spec: ReplaySpec, thread):
    """A replay of a recorded session through safety and an executor, wired like a runtime."""
    import dataclasses

    from ..agent.replay import Replayer, ReplayConfig

    cfg = ReplayConfig(speed=spec.speed)
    safety = dataclasses.replace(spec.safety, tick_ms=cfg.chunk_ms) if spec.safety is not None else None
    executor = NotifyingExecutor(make_executor(spec.live), lambda a: None)
    replayer = Replayer(spec.session, executor, safety, window=spec.rect, config=cfg, live=spec.live,
                        kill_hotkey=spec.kill_key)
    run = ReplayRun(replayer)
    _wire(run, thread, executor)
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

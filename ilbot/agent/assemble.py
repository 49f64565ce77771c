"""`assemble(RunRequest)`: the one place a run is put together (DESIGN §7b).

Every way the agent starts — the app, headless `main.py`, `ilbot play`, `ilbot replay`, every
`ilbot bench`, the closed-loop evaluation — describes what it wants in a `RunRequest` and gets a
`Run` (`ilbot.agent.run`) back. Here, once:

- the checkpoint is loaded (one line naming the folder and what is wrong);
- the capture adapter is made from the source string (`make_adapter`); a `json-dir` source
  without an explicit spec reads its JSON with the model's spec when that is a shipped one;
- a model whose feature-spec hash or key vocabulary is not the source's is refused, in one line
  naming both (`IncompatibleModel`);
- the game window is resolved once into a `WindowGeometry` (a title, a region, a geometry, the
  adapter's own window, a replayed session's recorded window, or 800x600 at the origin);
- the executor is picked from the execution mode:

  | mode | executor | for |
  | --- | --- | --- |
  | `dry_run` | `DryRunExecutor`: shows, performs nothing | default for external games |
  | `sandbox` | `SandboxExecutor`: applies to the in-process sandbox game | default on the sandbox |
  | `live` | `PynputExecutor`: real input (the front end has asked for consent) | opt-in |

  Every mode goes through the same safety pipeline, scheduler and safety clock.
- a real window (found by title) is watched: when it closes the run stops (`window_closed`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Callable

from ..errors import UserError
from .run import Run


class Mode(str, Enum):
    DRY_RUN = "dry_run"
    SANDBOX = "sandbox"
    LIVE = "live"

    @classmethod
    def parse(cls, text) -> "Mode":
        try:
            return cls(str(text).replace("-", "_").replace(" ", "_").lower())
        except ValueError:
            raise UserError(f"execution mode {text!r}: expected one of {', '.join(m.value for m in cls)}") from None

    @property
    def label(self) -> str:
        """How front ends show it: DRY RUN / SANDBOX / LIVE."""
        return self.value.replace("_", " ").upper()


class IncompatibleModel(UserError):
    """The model was trained on another feature spec or key vocabulary than the source's."""


@dataclass
class RunRequest:
    """What a front end wants to run. An agent run names `model` and `source`; a replay names
    `session` (and no model)."""

    model: Any = None  # a checkpoint or run folder, or a loaded Checkpoint
    source: str | None = None  # a capture source string (see ilbot.agent.capture.registry)
    session: str | Path | None = None  # a session store to replay
    window: Any = None  # title, "x,y,w,h", WindowGeometry, (x, y, w, h), session meta dict, or None
    mode: Mode | str = Mode.DRY_RUN
    safety: Any = None  # a SafetyConfig, a TOML path with a [safety] table, or None (defaults)
    seed: int = 0
    temperature: float = 1.0
    tick_ms: float | None = None  # None: the source's or the checkpoint's
    kill_hotkey: str = "f12"
    pause_hotkey: str | None = None  # live: a global key that pauses and resumes (none: the app has its own F6)
    state_timeout_s: float = 10.0  # waiting for the first game state gives up after this (from the assembly's start)
    speed: float = 1.0  # replay speed
    game: Any = None  # mode sandbox: the in-process game the actions are applied to
    dispatch: Callable | None = None  # mode sandbox: runs a call where the game lives (GUI thread)
    realtime: bool = True  # False: virtual time (dry_run and sandbox only; closed-loop evaluation)
    guardian: bool | None = None  # the dead-man's-switch process; None: in live mode
    source_options: dict = field(default_factory=dict)  # passed to make_adapter

    def __post_init__(self) -> None:
        self.mode = Mode.parse(self.mode) if not isinstance(self.mode, Mode) else self.mode
        for name in ("tick_ms", "state_timeout_s", "speed", "temperature"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise UserError(f"{name.replace('_', '-')}: must be a positive number, got {v!r}")
        if (self.model is None) == (self.session is None):
            raise UserError("a run needs either a model and a source, or a session to replay")
        if self.model is not None and not self.source:
            raise UserError("a model run needs a capture source")
        if self.mode == Mode.SANDBOX and self.game is None:
            raise UserError("execution mode 'sandbox' needs the in-process sandbox game")
        if self.mode == Mode.LIVE and not self.realtime:
            raise UserError("live mode runs in real time")


def load_model(model):
    """A loaded `Checkpoint` from a folder (a checkpoint or a training run), or the one given."""
    if model is None or hasattr(model, "model"):
        return model
    from ..model.checkpoint import load_checkpoint

    p = Path(str(model)).expanduser()
    if not p.exists():
        raise UserError(f"{p}: no such checkpoint folder")
    if not p.is_dir():
        raise UserError(f"{p}: is a file, not a checkpoint folder")
    try:
        return load_checkpoint(p)
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001 - a file the loader did not expect: still one line
        raise UserError(f"{p}: cannot load checkpoint ({type(e).__name__}: {e})") from None


def check_compatible(ckpt, adapter, source: str) -> None:
    """Refuse a model whose feature spec or key vocabulary is not the source's (one line, both named)."""
    from ..data.keys import KEY_VOCAB

    ours = getattr(adapter, "spec_hash", None)
    theirs = getattr(ckpt, "spec_hash", None)
    if theirs and ours != theirs:
        raise IncompatibleModel(f"model spec {_short(theirs)} does not match source {source!r} spec "
                                f"{_short(ours)}: pick the model trained for this game")
    vocab = list(getattr(adapter, "key_vocab", None) or KEY_VOCAB)
    if getattr(ckpt, "key_vocab", None) and list(ckpt.key_vocab) != vocab:
        raise IncompatibleModel(f"model key vocabulary ({len(ckpt.key_vocab)} keys) does not match source "
                                f"{source!r} ({len(vocab)} keys): pick the model trained for this game")


def _short(spec_hash) -> str:
    """A spec hash as people read it: hex digests cut to 12 characters, names whole."""
    h = str(spec_hash or "none")
    return h[:12] if all(c in "0123456789abcdef" for c in h) else h


def make_executor(mode: Mode, game=None, dispatch=None):
    if mode == Mode.LIVE:
        from .executors.pynput_exec import PynputExecutor

        return PynputExecutor()
    if mode == Mode.SANDBOX:
        from .executors.sandbox_exec import SandboxExecutor

        return SandboxExecutor(game, dispatch)
    from .executors.dry_run import DryRunExecutor

    return DryRunExecutor()


def _window_for(req: RunRequest, adapter=None):
    from .window import resolve_window

    window = req.window
    if window is None and adapter is not None:
        window = getattr(adapter, "window", None)
        session = getattr(adapter, "session", None)
        if window is None and session is not None:
            window = session.meta.get("window")  # a replayed session: its recorded window
    if window is None:
        return None
    return resolve_window(window)


def _alive_check(window) -> Callable[[], bool] | None:
    """For a window found by title: a check that it is still there (asked at most twice a second)."""
    wid = getattr(window, "window_id", 0)
    if not wid:
        return None
    from .window import window_exists

    last = {"t": 0.0, "alive": True}

    def alive() -> bool:
        now = time.monotonic()
        if now - last["t"] >= 0.5:
            last["t"], last["alive"] = now, window_exists(wid)
        return last["alive"]

    return alive


def _safety(req: RunRequest, tick_ms: float | None):
    from ..safety import SafetyConfig

    if req.safety is None:
        return SafetyConfig(tick_ms=tick_ms) if tick_ms else None
    if isinstance(req.safety, (str, Path)):
        return SafetyConfig.from_toml(req.safety)
    return req.safety


def assemble(req: RunRequest) -> Run:
    """The run `req` describes (see the module docstring). Nothing has been performed yet; the
    caller runs it (`run(ticks)` or `start(ticks)`) and stops it (`stop()`)."""
    if req.session is not None:
        return _assemble_replay(req)
    return _assemble_agent(req)


def _assemble_agent(req: RunRequest) -> Run:
    from .capture.registry import make_adapter
    from .runtime import AgentRuntime, RuntimeConfig

    t0 = time.monotonic()
    ckpt = load_model(req.model)
    options = dict(req.source_options)
    if req.tick_ms is not None:
        options["tick_ms"] = req.tick_ms
    source, speed = _split_speed(req.source)
    if speed is not _NO_SPEED:
        options["speed"] = speed
    window = None
    if source.strip().lower().startswith("screen"):
        from .capture.screen import ScreenAdapter

        check_compatible(ckpt, ScreenAdapter, req.source)  # its features are its code: refuse before grabbing
        if req.window is not None:
            window = _window_for(req)
            options["window"] = window
    if source.strip().lower().startswith("json-dir") and "spec" not in options:
        # a game plugin's JSON read the way the model was trained to read it, when that is a shipped spec
        from ..data.featurespec import shipped_spec_for_hash

        spec = shipped_spec_for_hash(getattr(ckpt, "spec_hash", None))
        if spec is not None:
            options["spec"] = spec
    adapter = make_adapter(source, **options)
    executor = None
    try:
        check_compatible(ckpt, adapter, req.source)
        if window is None:
            window = _window_for(req, adapter)
        executor = make_executor(req.mode, req.game, req.dispatch)
        # a dry run on a session replayed "as fast as polled" runs on virtual time: as fast as it plans
        fast = getattr(adapter, "name", "") == "replay" and getattr(adapter, "speed", 1.0) is None
        realtime = req.realtime and not (fast and req.mode != Mode.LIVE)
        cfg = RuntimeConfig(kill_hotkey=req.kill_hotkey, pause_hotkey=req.pause_hotkey,
                            state_timeout_s=req.state_timeout_s,
                            source_name=req.source, guardian=req.guardian)
        rt = AgentRuntime(ckpt, adapter, executor, _safety(req, None), seed=req.seed, temperature=req.temperature,
                          live=req.mode == Mode.LIVE, tick_ms=req.tick_ms, window=window, config=cfg,
                          realtime=realtime)
    except BaseException:
        if executor is not None:
            executor.close()
        adapter.close()
        raise
    rt.mode = req.mode
    rt.window_alive = _alive_check(rt.window)
    _close_with(rt, executor, adapter)
    rt.config.startup_s = time.monotonic() - t0  # the wait for game state counts from here
    return rt


def _assemble_replay(req: RunRequest) -> Run:
    from .replay import ReplayConfig, SessionReplay

    from ..data.store import open_session
    from .window import resolve_window

    cfg = ReplayConfig(speed=req.speed)
    session = open_session(req.session)
    spec = req.window if req.window is not None else session.meta.get("window")
    window = resolve_window(spec) if spec is not None else None
    executor = make_executor(req.mode, req.game, req.dispatch)
    try:
        safety = _safety(req, cfg.chunk_ms)
        if safety is not None and safety.tick_ms != cfg.chunk_ms:
            import dataclasses

            safety = dataclasses.replace(safety, tick_ms=cfg.chunk_ms)  # a chunk is the pipeline's tick
        run = SessionReplay(session, executor, window=window, config=cfg, safety_config=safety,
                            live=req.mode == Mode.LIVE, kill_hotkey=req.kill_hotkey, guardian=req.guardian,
                            pause_hotkey=req.pause_hotkey)
    except BaseException:
        executor.close()
        raise
    run.mode = req.mode
    run.window_alive = _alive_check(run.window)
    _close_with(run, executor, None)
    return run


def _close_with(run: Run, executor, adapter) -> None:
    """When the run stops, its executor and adapter close too (once)."""

    def on_state(state: str, reason: str) -> None:
        if state == "stopped":
            try:
                executor.close()
            finally:
                if adapter is not None:
                    adapter.close()

    run.on_state.append(on_state)


_NO_SPEED = object()


def _split_speed(source: str):
    """`replay:S?speed=X|max` → (source, speed); speed must be a positive number or 'max' (None)."""
    if not source.startswith("replay:") or "?speed=" not in source:
        return source, _NO_SPEED
    source, _, speed = source.partition("?speed=")
    if speed == "max":
        return source, None
    try:
        v = float(speed)
    except ValueError:
        v = float("nan")
    if not (math.isfinite(v) and v > 0):
        raise UserError(f"source {source!r}: speed {speed!r} must be a positive number or 'max'")
    return source, v

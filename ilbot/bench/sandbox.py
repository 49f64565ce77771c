"""`ilbot bench sandbox [--ticks N] [--json]`: the shipped model against the demonstrator, live.

Both play the sandbox game with the same seed for the same ticks, through real input, each on
its own private Xvfb (never the user's display), side by side:

- **agent**: the game (`ilbot sandbox`, its own process) publishes json-dir state; the shipped
  model plays it through the run the one assembly makes (`ilbot.agent.assemble`) in live mode
  (`PynputExecutor`, the `sandbox:` capture source, default `SafetyConfig`, kill switch,
  human-override listeners, safety clock and guardian on);
- **demonstrator**: `record_session` (the scripted player that made the training data, with the
  recorder running, as when the data was made).

Items = the game's score at the last tick. `ratio` = agent_items / demonstrator_items.

`safety_violations` counts what was *performed* (every `Performed` record the executor
reports, checked by `SafetyAudit`, independently of the safety pipeline that should have
prevented it): positions outside the game window, gaps under `min_dt_ms` or a type's cooldown,
more than a type's (or all types') per-second rate in any 1 s window, click holds over
`max_click_hold_ms`, keys held longer than `max_hold_ms` or more than `max_keys_held` at once,
blocked keys — plus every key or button the X server still has down after the agent stopped.
Timing checks allow `TIMING_SLACK_MS` for the scheduler's jitter (a performed action is late by
up to a few ms on a busy machine, which can shrink the gap to the next one by as much).

Each side runs in a child process (`python -m ilbot.bench.sandbox agent|demo ...`), because
pynput binds to the X display it finds in DISPLAY when it is first used.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path

from ..errors import UserError
from ..sandbox import SHIPPED_MODEL
from .xserver import start_xvfb

TIMING_SLACK_MS = 3.0


def add_arguments(p) -> None:
    p.add_argument("--ticks", type=int, default=200, help="ticks each side plays (default 200)")
    p.add_argument("--seed", type=int, default=0, help="game seed, also the agent's and demonstrator's (default 0)")
    p.add_argument("--model", default=None, help="checkpoint folder (default: the shipped sandbox model)")
    p.add_argument("--temperature", type=float, default=1.0, help="the agent's sampling temperature: multiplies the checkpoint's own (default 1.0)")


# --- checking what was performed ----------------------------------------------------------

class SafetyAudit:
    """An executor listener: keeps every `Performed` record and checks them against the limits."""

    def __init__(self, config, window: tuple[float, float, float, float]):
        self.config = config
        self.window = window  # screen x, y, width, height
        self.records: list = []
        self._lock = threading.Lock()

    def __call__(self, rec) -> None:
        with self._lock:
            self.records.append(rec)

    def min_gap_ms(self) -> float | None:
        """The smallest gap between two performed actions (ms)."""
        with self._lock:
            t = sorted(r.t_ns for r in self.records)
        return round(min(b - a for a, b in zip(t, t[1:])) / 1e6, 2) if len(t) > 1 else None

    def violations(self) -> dict[str, int]:
        """Violations by kind (only kinds that occurred)."""
        from ..data.schema import EventType, KeyAction

        cfg = self.config
        x, y, w, h = self.window
        out: dict[str, int] = {}

        def bad(kind: str) -> None:
            out[kind] = out.get(kind, 0) + 1

        with self._lock:
            recs = sorted(self.records, key=lambda r: r.t_ns)
        last_any = None
        last_by_type: dict[int, int] = {}
        window_all: deque = deque()
        window_by_type: dict[int, deque] = {}
        keys_down: dict[int, int] = {}  # key id → press t_ns
        blocked = cfg.blocked_key_ids
        slack = TIMING_SLACK_MS * 1e6
        for r in recs:
            a, t = r.action, r.t_ns
            kind = EventType(int(a.type))
            name = kind.name
            if not (x <= r.screen_x <= x + w - 1 and y <= r.screen_y <= y + h - 1) and kind != EventType.KEY:
                bad("out_of_bounds")
            is_release = kind == EventType.KEY and int(a.key_action) == KeyAction.RELEASE
            if last_any is not None and t - last_any < cfg.min_dt_ms * 1e6 - slack:
                bad("min_dt")
            last_any = t
            if not is_release:
                cd = cfg.cooldown_ms.get(name, 0.0)
                prev = last_by_type.get(int(kind))
                if prev is not None and cd > 0 and t - prev < cd * 1e6 - slack:
                    bad(f"cooldown_{name}")
                last_by_type[int(kind)] = t
                # rates over any sliding 1 s window (plus the slack)
                window_all.append(t)
                while window_all[0] <= t - 1e9 + slack:
                    window_all.popleft()
                if len(window_all) > cfg.max_actions_per_s:
                    bad("rate_all")
                if name in cfg.max_per_s:
                    q = window_by_type.setdefault(int(kind), deque())
                    q.append(t)
                    while q[0] <= t - 1e9 + slack:
                        q.popleft()
                    if len(q) > cfg.max_per_s[name]:
                        bad(f"rate_{name}")
            if kind == EventType.CLICK and not (0 <= float(a.hold_ms) <= cfg.max_click_hold_ms):
                bad("click_hold")
            if kind == EventType.KEY:
                kid = int(a.key_id)
                if int(a.key_action) == KeyAction.PRESS:
                    if kid in blocked:
                        bad("blocked_key")
                    keys_down.setdefault(kid, t)
                    if len(keys_down) > cfg.max_keys_held:
                        bad("keys_held")
                elif kid in keys_down:
                    if t - keys_down.pop(kid) > cfg.max_hold_ms * 1e6 + cfg.tick_ms * 1e6:
                        bad("key_hold")
        return out


def held_on_server(display: str | None = None) -> list[str]:
    """What the X server still has down (keycodes and buttons), as names for the report."""
    from ..safety.xstate import XInputState

    with XInputState(display) as xs:
        return [f"keycode {k}" for k in sorted(xs.keys_down())] + [f"button {b}" for b in sorted(xs.buttons_down())]


# --- one side each ------------------------------------------------------------------------

def _wait_state(state_dir: Path, game: subprocess.Popen, timeout_s: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout_s
    first = state_dir / "tick_0.json"
    while time.monotonic() < deadline:
        if first.is_file():
            try:
                return json.loads(first.read_text())
            except (OSError, json.JSONDecodeError):  # pragma: no cover - the write is atomic
                pass
        if game.poll() is not None:
            raise UserError(f"the sandbox game exited before publishing state: {game.stdout.read().strip()[-300:]}")
        time.sleep(0.02)
    raise UserError(f"the sandbox game published no state in {state_dir} within {timeout_s:.0f} s")


def _final_state(state_dir: Path, ticks: int) -> dict:
    files = sorted(state_dir.glob("tick_*.json"), key=lambda p: int(p.stem.split("_")[1]))
    want = state_dir / f"tick_{ticks}.json"
    path = want if want.is_file() else (files[-1] if files else None)
    return json.loads(path.read_text()) if path is not None else {}


def play_agent(model: str | Path, ticks: int, seed: int = 0, temperature: float = 1.0) -> dict:
    """The model plays the sandbox live on the current DISPLAY for `ticks` ticks; returns the
    items gathered, the safety audit and the runtime's counters."""
    from ..agent.assemble import Mode, RunRequest, assemble
    from ..safety import SafetyConfig
    from ..sandbox.commands import require_display

    require_display("bench sandbox")
    state_dir = Path(tempfile.mkdtemp(prefix="ilbot-bench-sandbox-"))
    game = subprocess.Popen([sys.executable, "-m", "ilbot.cli", "sandbox", "--state-dir", str(state_dir),
                             "--seed", str(seed), "--ticks", str(ticks), "--keep", str(ticks + 10)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    rt = None
    try:
        win = _wait_state(state_dir, game)["window"]
        window = (float(win["x"]), float(win["y"]), float(win["width"]), float(win["height"]))
        safety = SafetyConfig(tick_ms=600.0)
        audit = SafetyAudit(safety, window)
        rt = assemble(RunRequest(model=model, source=f"sandbox:{state_dir}", window=window, mode=Mode.LIVE,
                                 safety=safety, seed=seed, temperature=temperature))
        rt.executor.add_listener(audit)
        rt.start()
        game.wait(timeout=ticks * 0.6 * 3 + 60)
    finally:
        if rt is not None:
            rt.stop()
        if game.poll() is None:
            game.terminate()
            game.wait(timeout=10)
        final = _final_state(state_dir, ticks) if rt is not None else {}
        shutil.rmtree(state_dir, ignore_errors=True)  # also when the run could not be assembled
    time.sleep(0.1)
    held = held_on_server()
    violations = audit.violations()
    if held:
        violations["held_after_stop"] = len(held)
    c = rt.counters
    return {"items": int(final.get("score", 0)), "ticks": int(final.get("tick", 0)),
            "misclicks": int(final.get("misclicks", 0)), "banked": int(final.get("banked", 0)),
            "performed": len(audit.records), "performed_by_type": c["performed_by_type"],
            "min_gap_ms": audit.min_gap_ms(), "late": c["scheduler"].get("late", 0), "timing": c["timing"],
            "violations": violations, "held_after_stop": held, "interventions": c["interventions"],
            "pauses": c["pauses"], "plan_ms_p50": c["plan_ms_p50"], "plan_ms_p99": c["plan_ms_p99"]}


def play_demonstrator(ticks: int, seed: int = 0) -> dict:
    """The scripted demonstrator plays the same game on the current DISPLAY (recorded, as when
    the training data was made; the session file is thrown away)."""
    from ..demo.record import record_session

    with tempfile.TemporaryDirectory(prefix="ilbot-bench-demo-") as d:
        r = record_session(Path(d) / "bench.ilbot.sqlite", ticks=ticks, seed=seed)
    return {"items": r["items"], "ticks": r["ticks"], "misclicks": r["misclicks"], "banked": r["banked"],
            "events": r["events"]}


# --- the benchmark -------------------------------------------------------------------------

def _child(role: str, display: str, args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "DISPLAY": display}
    env.pop("WAYLAND_DISPLAY", None)
    return subprocess.Popen([sys.executable, "-m", "ilbot.bench.sandbox", role, *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _result(role: str, proc: subprocess.Popen, timeout_s: float) -> dict:
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise UserError(f"bench sandbox: the {role} did not finish within {timeout_s:.0f} s") from None
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise UserError(f"bench sandbox: the {role} failed (exit {proc.returncode}): {err.strip()[-400:]}")
    return json.loads(lines[-1])


def compare(model: str | Path, ticks: int = 200, seed: int = 0, temperature: float = 1.0, progress=None) -> dict:
    """Agent and demonstrator side by side, each on its own Xvfb; the bench's figures."""
    model = Path(model)
    if not (model / "config.json").is_file() and not (model / "best" / "config.json").is_file():
        raise UserError(f"bench sandbox: {model} is not a checkpoint folder (no config.json)")
    if ticks < 1:
        raise UserError(f"--ticks must be at least 1, got {ticks}")
    servers = []
    try:
        for _ in range(2):
            servers.append(start_xvfb(who="bench sandbox"))
        if progress:
            progress(f"bench sandbox: agent and demonstrator each play {ticks} ticks (~{ticks * 0.6:.0f} s, in parallel)")
        t0 = time.monotonic()
        common = ["--ticks", str(ticks), "--seed", str(seed)]
        agent = _child("agent", servers[0][1], [*common, "--model", str(model), "--temperature", str(temperature)])
        demo = _child("demo", servers[1][1], common)
        limit = ticks * 0.6 * 3 + 120
        a = _result("agent", agent, limit)
        d = _result("demonstrator", demo, limit)
    finally:
        for proc, _ in servers:
            proc.terminate()
            proc.wait(timeout=10)
    ratio = a["items"] / d["items"] if d["items"] else (math.inf if a["items"] else 0.0)
    return {"ticks": ticks, "seed": seed, "agent_items": a["items"], "demonstrator_items": d["items"],
            "ratio": round(ratio, 3), "safety_violations": int(sum(a["violations"].values())),
            "violations": a["violations"], "agent_min_gap_ms": a["min_gap_ms"], "agent_late_actions": a["late"],
            "agent_timing_ms": a["timing"],
            "agent_misclicks": a["misclicks"],
            "demonstrator_misclicks": d["misclicks"], "agent_performed": a["performed_by_type"],
            "demonstrator_events": d["events"], "interventions": a["interventions"], "pauses": a["pauses"],
            "plan_ms_p50": a["plan_ms_p50"], "plan_ms_p99": a["plan_ms_p99"], "temperature": temperature,
            "model": str(model), "seconds": round(time.monotonic() - t0, 1)}


def run(args) -> dict:
    return compare(args.model or SHIPPED_MODEL, ticks=args.ticks, seed=args.seed, temperature=args.temperature,
                   progress=lambda s: print(s, file=sys.stderr, flush=True))


def main(argv: list[str] | None = None) -> int:
    """The child processes: `agent` / `demo` on the current DISPLAY, one JSON line out."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m ilbot.bench.sandbox")
    p.add_argument("role", choices=("agent", "demo"))
    p.add_argument("--ticks", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", default=None)
    p.add_argument("--temperature", type=float, default=1.0)
    a = p.parse_args(argv)
    try:
        if a.role == "agent":
            r = play_agent(a.model or SHIPPED_MODEL, a.ticks, a.seed, a.temperature)
        else:
            r = play_demonstrator(a.ticks, a.seed)
    except UserError as e:  # a model not made for the sandbox, say: one line for the parent to show
        print(str(e), file=sys.stderr, flush=True)
        return 2
    print(json.dumps(r, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

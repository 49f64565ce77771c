"""`python main.py` without a display: the agent plays the sandbox headless, in dry run.

The sandbox's rules (`SandboxGame`, no Qt) run in this process and publish each tick's state
through the json-dir protocol into a temporary folder, exactly as the game window does; the agent
runtime reads it through `make_adapter("sandbox:<folder>")`, plans with the model, filters
through safety and shows the plan to a `DryRunExecutor`. Dry run performs nothing on any screen;
so that the summary says something about play, each action that passed safety is also applied
to the game's rules directly (click, key, scroll, move at its window position) — the simulated
equivalent of performing it. Ticks run back to back (`AgentRuntime.step()` keeps exact tick
times without sleeping), so 100 ticks take about as long as 100 plans.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from ..data.keys import KEY_VOCAB
from ..data.schema import EventType

DEFAULT_TICKS = 100


def apply_to_game(game, action) -> None:
    """Apply one planned action to the sandbox rules (the headless stand-in for performing it)."""
    t = EventType(int(action.type))
    if t == EventType.CLICK:
        game.click(action.x, action.y, int(action.button))
    elif t == EventType.KEY:
        if int(action.key_action) == 1 and 0 <= int(action.key_id) < len(KEY_VOCAB):
            game.key(KEY_VOCAB[int(action.key_id)])
    elif t == EventType.SCROLL:
        game.scroll(1 if int(action.scroll_y) == 1 else -1)
    else:
        game.move(action.x, action.y)


def run_headless(model: str | Path, ticks: int = DEFAULT_TICKS, seed: int = 0, out=print) -> dict:
    """Run the agent on the headless sandbox for `ticks` ticks; returns (and prints) a summary."""
    from ..agent.capture import make_adapter
    from ..agent.executors import DryRunExecutor
    from ..agent.runtime import AgentRuntime
    from ..sandbox.logic import GameConfig, SandboxGame
    from ..sandbox.publish import JsonDirPublisher
    from . import wiring

    ckpt = wiring.load_model(str(model))
    game = SandboxGame(GameConfig(seed=seed))
    cfg = game.cfg
    by_type = {e.name: 0 for e in EventType}
    with tempfile.TemporaryDirectory(prefix="ilbot-headless-") as state_dir:
        publisher = JsonDirPublisher(state_dir)
        publisher.publish(game.state())
        adapter = make_adapter(f"sandbox:{state_dir}")
        wiring.check_spec(ckpt, adapter, "sandbox")
        runtime = AgentRuntime(ckpt, adapter, DryRunExecutor(), seed=seed, window=(0, 0, cfg.width, cfg.height))
        t0 = time.perf_counter()
        try:
            for k in range(ticks):
                plan = runtime.step()
                for a in plan:
                    apply_to_game(game, a)
                    by_type[EventType(int(a.type)).name] += 1
                game.tick()
                publisher.publish(game.state())
                if (k + 1) % 25 == 0:
                    out(f"  tick {k + 1}/{ticks}: score {game.score}")
        finally:
            runtime.stop()
            adapter.close()
        elapsed = time.perf_counter() - t0
    c = runtime.counters
    summary = {
        "ticks": ticks, "score": game.score, "banked": game.banked, "actions": sum(by_type.values()),
        "actions_by_type": by_type, "interventions": wiring.interventions(c),
        "plan_ms_p50": c.get("plan_ms_p50"), "plan_ms_p99": c.get("plan_ms_p99"), "seconds": round(elapsed, 2),
    }
    return summary


def print_summary(summary: dict, out=print) -> None:
    out(f"headless sandbox run: {summary['ticks']} ticks in {summary['seconds']} s (dry run)")
    out(f"  score {summary['score']} items gathered, {summary['banked']} banked")
    out("  actions " + ", ".join(f"{k} {v}" for k, v in summary["actions_by_type"].items()) + f" (total {summary['actions']})")
    iv = summary["interventions"]
    out("  safety interventions " + (", ".join(f"{k} {v}" for k, v in iv.items()) if iv else "none"))
    if summary.get("plan_ms_p50") is not None:
        out(f"  plan latency p50 {summary['plan_ms_p50']:.1f} ms, p99 {summary['plan_ms_p99']:.1f} ms")

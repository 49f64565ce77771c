"""`python main.py` without a display: the agent plays the sandbox headless.

The same episode the closed-loop evaluation plays (`ilbot.agent.sandbox_episode`): the sandbox
rules in this process, the run from the one assembly, ticks back to back on a virtual clock. The
default execution mode is `sandbox` (each action that passed safety is applied to the game, so the
score says how the agent plays); `dry_run` shows only, and the score stays 0.
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_TICKS = 100


def run_headless(model: str | Path, ticks: int = DEFAULT_TICKS, seed: int = 0, mode: str = "sandbox",
                 out=print, safety=None) -> dict:
    """Run the agent on the headless sandbox for `ticks` ticks under the safety limits `safety` (a
    SafetyConfig; defaults when None); returns a summary."""
    from ..agent.sandbox_episode import play_episode
    from ..safety.reason_names import interventions

    def progress(k: int, game) -> None:
        if (k + 1) % 25 == 0:
            out(f"  tick {k + 1}/{ticks}: score {game.score}")

    ep = play_episode(str(model), seed=seed, ticks=ticks, mode=mode, on_tick=progress, safety=safety)
    c = ep.counters
    by_type = c["performed_by_type"]
    return {
        "ticks": ticks, "mode": mode, "score": ep.game.score, "banked": ep.game.banked,
        "misclicks": ep.game.misclicks, "actions": sum(by_type.values()), "actions_by_type": by_type,
        "interventions": interventions(c), "plan_ms_p50": c.get("plan_ms_p50"),
        "plan_ms_p99": c.get("plan_ms_p99"), "seconds": round(ep.seconds, 2),
    }


def print_summary(summary: dict, out=print) -> None:
    out(f"headless sandbox run: {summary['ticks']} ticks in {summary['seconds']} s ({summary['mode']} mode)")
    out(f"  score {summary['score']} items gathered, {summary['banked']} banked, {summary['misclicks']} misclicks")
    out("  actions " + ", ".join(f"{k} {v}" for k, v in summary["actions_by_type"].items()) + f" (total {summary['actions']})")
    iv = summary["interventions"]
    out("  safety interventions " + (", ".join(f"{k} {v}" for k, v in iv.items()) if iv else "none"))
    if summary.get("plan_ms_p50") is not None:
        out(f"  plan latency p50 {summary['plan_ms_p50']:.1f} ms, p99 {summary['plan_ms_p99']:.1f} ms")

"""`ilbot replay` and `ilbot play`: re-perform a recording, or run the agent headless.

    ilbot replay S.ilbot.sqlite [--live] [--speed X] [--window TITLE_OR_REGION]
    ilbot play [--model M] --source SOURCE [--live] [--ticks N] [--seed N] [--temperature T]

Dry run is the default: nothing is performed, the summary says what would have been. `--live`
performs real input with pynput and needs an explicit consent: `--i-understand`, or typing "yes"
at the prompt when stdin is a terminal. Automating an online game can break its terms of
service; whoever runs live mode answers for where they run it. In live mode F12 (configurable
with `--kill-hotkey`) stops everything and releases every key and button, and F6 (`--pause-hotkey`)
pauses and resumes.

`ilbot.agent.commands` (the recorder's module) calls `register(sub)` here.
"""

from __future__ import annotations

import json
import sys

from ..errors import UserError
from ..safety.reason_names import describe_intervention, interventions

LIVE_WARNING = ("LIVE MODE: ilbot will move your mouse and press keys. Automating an online game can "
                "break its terms of service; you answer for where you run this. Kill switch: {hotkey}.")


def register(sub) -> None:
    p = sub.add_parser("replay", help="re-perform a recorded session through the safety layers",
                       description="Re-perform a recorded session's input through the safety layers: shown "
                                   "(dry run, the default) or performed (--live --i-understand).")
    p.add_argument("session", help="a session store (*.ilbot.sqlite)")
    p.add_argument("--speed", type=float, default=1.0, help="replay speed (2 = twice as fast; default 1)")
    p.add_argument("--window", default=None,
                   help="target window: a title or a region x,y,w,h (default: the geometry recorded in the session)")
    _add_live(p)
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("play", help="run the agent headless (dry run unless --live)",
                       description="Run a trained model on a game-state source without the app: it waits for "
                                   "game state, plans each tick, filters through safety and shows (dry run) or "
                                   "performs (--live --i-understand) each action; a summary at the end.")
    p.add_argument("--model", default=None,
                   help="a checkpoint folder or a training run folder (default: the shipped sandbox model)")
    p.add_argument("--source", required=True, help="capture source: json-dir:PATH, http[:URL], screen[:x,y,w,h], "
                                                    "replay:SESSION[?speed=X|max], sandbox")
    p.add_argument("--ticks", type=int, default=None, help="stop after this many ticks (default: until stopped)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature: multiplies the checkpoint's own (config.json \"sampling\"; default 1.0)")
    p.add_argument("--tick-ms", type=float, default=None, help="tick length when the source reports none")
    p.add_argument("--window", default=None, help="game window: a title or a region x,y,w,h")
    _add_live(p)
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.add_argument("--plans", action="store_true", help="print each tick's plan (one JSON line per tick)")
    p.add_argument("--state-timeout", type=float, default=10.0,
                   help="give up when no game state arrives within this many seconds (default 10)")
    p.set_defaults(func=cmd_play)


def _add_live(p) -> None:
    p.add_argument("--live", action="store_true", help="perform real input (needs --i-understand or a typed yes)")
    p.add_argument("--i-understand", dest="consent", action="store_true",
                   help="consent to live input without a prompt")
    p.add_argument("--kill-hotkey", default="f12", help="live mode: the key that stops everything (default f12)")
    p.add_argument("--pause-hotkey", default="f6",
                   help="live mode: the key that pauses and resumes (default f6; 'none' for no key)")
    p.add_argument("--safety", default=None, help="a TOML file whose [safety] table sets the safety limits")


def confirm_live(args, stdin=None, out=None) -> None:
    """Raise UserError unless live mode was consented to (flag, or a typed yes on a terminal)."""
    stdin = stdin or sys.stdin
    out = out or sys.stderr
    print(LIVE_WARNING.format(hotkey=args.kill_hotkey.upper()), file=out)
    if args.consent:
        return
    if not stdin.isatty():
        raise UserError("--live needs consent: add --i-understand (stdin is not a terminal, so no prompt)")
    out.write('Type "yes" to go live: ')
    out.flush()
    if stdin.readline().strip().lower() != "yes":
        raise UserError("live mode not confirmed; nothing was performed")


def _request(args, **kw):
    """The `RunRequest` both commands describe (one assembly point: `ilbot.agent.assemble`)."""
    from .assemble import Mode, RunRequest

    pause = None if args.pause_hotkey.strip().lower() in ("", "none") else args.pause_hotkey
    if pause is not None and pause.strip().lower() == args.kill_hotkey.strip().lower():
        raise UserError(f"--pause-hotkey {pause!r} is the kill switch's key: pick another")
    return RunRequest(mode=Mode.LIVE if args.live else Mode.DRY_RUN, safety=args.safety, window=args.window,
                      kill_hotkey=args.kill_hotkey, pause_hotkey=pause if args.live else None, **kw)


def _show_states(run, out=None) -> None:
    """Every state change as one line on stderr (the same words the app shows)."""
    from .run import describe_reason

    out = out or sys.stderr

    def on_state(state: str, reason: str) -> None:
        if state != "running":
            print(describe_reason(state, reason) + ("…" if state == "waiting_for_state" else ""), file=out, flush=True)

    run.on_state.append(on_state)


def progress_line(c: dict, total: int | None = None) -> str:
    """One progress line from a run's counters: how far (a replay: the session's events done of
    all; the agent: ticks), what was performed and the safety interventions."""
    if "total" in c:  # a replay
        n, of = c.get("done", 0), c["total"]
        where = f"  event {n}/{of} ({n / of:.0%})" if of else f"  event {n}"
    else:
        where = f"  tick {c.get('ticks', 0)}" + (f"/{total}" if total else "")
    return (f"{where}: {c.get('performed', 0)} actions performed, "
            f"{sum(interventions(c).values())} safety interventions")


def _show_progress(run, total: int | None, every_s: float = 2.0, out=None) -> None:
    """A progress line (`progress_line`) at most every `every_s` seconds, on stderr."""
    import time

    out = out or sys.stderr
    last = {"t": time.monotonic()}

    def on_counters(c: dict) -> None:
        now = time.monotonic()
        if now - last["t"] < every_s:
            return
        last["t"] = now
        print(progress_line(c, total), file=out, flush=True)

    run.on_counters.append(on_counters)


def _print_summary(title: str, summary: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(summary, default=str))
        return
    from .run import describe_reason

    print(title)
    print(f"  mode: {summary.get('mode')}; {describe_reason(summary.get('state', 'stopped'), summary.get('reason', ''))}")
    for k in ("ticks", "chunks", "recorded", "replayed", "performed"):
        if k in summary:
            print(f"  {k}: {summary[k]}" + _note(k, summary))
    by_type = summary.get("performed_by_type") or {}
    if by_type:
        print("  performed by type: " + ", ".join(f"{k} {v}" for k, v in by_type.items()))
    iv = interventions(summary)
    print("  safety interventions: " + (", ".join(f"{describe_intervention(k)} ({k}) {v}" for k, v in iv.items())
                                        if iv else "none"))
    if summary.get("plan_ms_p50") is not None:
        print(f"  plan latency: p50 {summary['plan_ms_p50']:.1f} ms, p99 {summary['plan_ms_p99']:.1f} ms")
    pauses = summary.get("pauses") or {}
    if pauses:
        print("  pauses: " + ", ".join(f"{k} {v}" for k, v in pauses.items()))


def _note(key: str, summary: dict) -> str:
    """A few words after a summary figure that would read wrongly alone."""
    if key == "replayed" and summary.get("thinned_moves"):
        return f" (the other {summary['thinned_moves']} recorded events: mouse moves too close to the one before)"
    if key == "performed" and summary.get("mode") == "dry_run":
        return " (dry run: shown only, none sent to the game)"
    return ""


def _run_to_end(run, ticks) -> dict:
    """Run in this thread; whatever happens, stop (everything released) before returning."""
    try:
        run.run(ticks)
    finally:
        run.stop("user")  # a no-op once the run has stopped by itself
    return run.counters


def cmd_replay(args) -> int:
    from .assemble import assemble

    if args.live:
        confirm_live(args)
    run = assemble(_request(args, session=args.session, speed=args.speed))
    _show_states(run)
    _show_progress(run, None)
    summary = _run_to_end(run, None)
    summary["mode"] = run.mode.value
    _print_summary(f"replay {args.session}:", summary, args.json)
    return 0


def cmd_play(args) -> int:
    from .assemble import assemble

    if args.ticks is not None and args.ticks < 1:
        raise UserError(f"--ticks must be at least 1, got {args.ticks}")
    if not 0 <= args.seed < 2**31 or not (args.state_timeout is None or args.state_timeout <= 86_400):
        raise UserError(f"--seed must be in 0..{2**31 - 1} and --state-timeout at most 86400 s, "
                        f"got {args.seed} and {args.state_timeout}")
    if args.live:
        confirm_live(args)
    if args.model is None:
        from ..sandbox import SHIPPED_MODEL

        args.model = str(SHIPPED_MODEL)
    run = assemble(_request(args, model=args.model, source=args.source, seed=args.seed,
                            temperature=args.temperature, tick_ms=args.tick_ms, state_timeout_s=args.state_timeout))
    if args.plans:
        run.on_plan.append(lambda tick, plan: print(json.dumps(
            {"tick": tick, "actions": [_action_json(a) for a in plan]}), flush=True))
    _show_states(run)
    _show_progress(run, args.ticks)
    counters = _run_to_end(run, args.ticks)
    counters["mode"] = run.mode.value
    _print_summary(f"play {args.model} on {args.source}:", counters, args.json)
    return 0


def _action_json(a) -> dict:
    return {"type": int(a.type), "t_ms": round(float(a.t_ms), 3), "x": round(float(a.x), 2), "y": round(float(a.y), 2),
            "button": int(a.button), "key_action": int(a.key_action), "key_id": int(a.key_id),
            "scroll_y": int(a.scroll_y), "hold_ms": round(float(a.hold_ms), 2)}

"""`ilbot replay` and `ilbot play`: re-perform a recording, or run the agent headless.

    ilbot replay S.ilbot.sqlite [--live] [--speed X] [--window TITLE_OR_REGION]
    ilbot play --model M --source SOURCE [--live] [--ticks N] [--seed N] [--temperature T]

Dry run is the default: nothing is performed, the summary says what would have been. `--live`
performs real input with pynput and needs an explicit consent: `--i-understand`, or typing "yes"
at the prompt when stdin is a terminal. Automating an online game can break its terms of
service; whoever runs live mode answers for where they run it. In live mode F12 (configurable
with `--kill-hotkey`) stops everything and releases every key and button.

`ilbot.agent.commands` (the recorder's module) calls `register(sub)` here.
"""

from __future__ import annotations

import json
import sys

from ..errors import UserError

LIVE_WARNING = ("LIVE MODE: ilbot will move your mouse and press keys. Automating an online game can "
                "break its terms of service; you answer for where you run this. Kill switch: {hotkey}.")


def register(sub) -> None:
    p = sub.add_parser("replay", help="re-perform a recorded session through the safety layers")
    p.add_argument("session", help="a session store (*.ilbot.sqlite)")
    p.add_argument("--speed", type=float, default=1.0, help="replay speed (2 = twice as fast; default 1)")
    p.add_argument("--window", default=None,
                   help="target window: a title or a region x,y,w,h (default: the geometry recorded in the session)")
    _add_live(p)
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("play", help="run the agent headless (dry run unless --live)")
    p.add_argument("--model", required=True, help="a checkpoint folder or a training run folder")
    p.add_argument("--source", required=True, help="capture source: json-dir:PATH, http[:URL], screen[:x,y,w,h], "
                                                    "replay:SESSION[?speed=X|max], sandbox")
    p.add_argument("--ticks", type=int, default=None, help="stop after this many ticks (default: until stopped)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (default 1.0)")
    p.add_argument("--tick-ms", type=float, default=None, help="tick length when the source reports none")
    p.add_argument("--window", default=None, help="game window: a title or a region x,y,w,h")
    _add_live(p)
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.add_argument("--plans", action="store_true", help="print each tick's plan (one JSON line per tick)")
    p.set_defaults(func=cmd_play)


def _add_live(p) -> None:
    p.add_argument("--live", action="store_true", help="perform real input (needs --i-understand or a typed yes)")
    p.add_argument("--i-understand", dest="consent", action="store_true",
                   help="consent to live input without a prompt")
    p.add_argument("--kill-hotkey", default="f12", help="live mode: the key that stops everything (default f12)")
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


def _safety_config(args, **defaults):
    from ..safety.config import SafetyConfig

    if args.safety:
        return SafetyConfig.from_toml(args.safety)
    return SafetyConfig(**defaults) if defaults else None


def _executor(live: bool):
    if live:
        from .executors.pynput_exec import PynputExecutor

        return PynputExecutor()
    from .executors.dry_run import DryRunExecutor

    return DryRunExecutor()


def _print_summary(title: str, summary: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(summary, default=str))
        return
    print(title)
    for k, v in summary.items():
        print(f"  {k}: {v}")


def cmd_replay(args) -> int:
    from .replay import Replayer, ReplayConfig

    if args.live:
        confirm_live(args)
    cfg = ReplayConfig(speed=args.speed)
    executor = _executor(args.live)
    try:
        replay = Replayer(args.session, executor, _safety_config(args, tick_ms=cfg.chunk_ms), window=args.window,
                          config=cfg, live=args.live, kill_hotkey=args.kill_hotkey)
        try:
            summary = replay.run()
        finally:
            replay.stop()
    finally:
        executor.close()
    summary["mode"] = "live" if args.live else "dry run"
    _print_summary(f"replay {args.session}:", summary, args.json)
    return 0


def _adapter(source: str, tick_ms):
    """make_adapter, plus `replay:S?speed=X|max` for headless runs."""
    from .capture.registry import make_adapter

    options = {}
    if tick_ms is not None:
        options["tick_ms"] = tick_ms
    if source.startswith("replay:") and "?speed=" in source:
        source, _, speed = source.partition("?speed=")
        if speed == "max":
            options["speed"] = None
        else:
            try:
                options["speed"] = float(speed)
            except ValueError:
                raise UserError(f"source {source!r}: speed {speed!r} is not a number or 'max'") from None
    return make_adapter(source, **options)


def cmd_play(args) -> int:
    from .runtime import AgentRuntime

    if args.ticks is not None and args.ticks < 1:
        raise UserError(f"--ticks must be at least 1, got {args.ticks}")
    if args.live:
        confirm_live(args)
    from .runtime import RuntimeConfig

    adapter = _adapter(args.source, args.tick_ms)
    window = args.window
    if window is None and getattr(adapter, "session", None) is not None:
        window = adapter.session.meta.get("window")  # a replayed session: its recorded window
    # a dry run on a session replayed "as fast as polled" runs on virtual time: as fast as it plans
    fast = not args.live and getattr(adapter, "name", "") == "replay" and getattr(adapter, "speed", 1.0) is None
    executor = _executor(args.live)
    try:
        rt = AgentRuntime(args.model, adapter, executor, _safety_config(args), seed=args.seed,
                          temperature=args.temperature, live=args.live, tick_ms=args.tick_ms, window=window,
                          config=RuntimeConfig(kill_hotkey=args.kill_hotkey), realtime=not fast)
    except BaseException:
        executor.close()
        adapter.close()
        raise
    if args.plans:
        rt.on_plan.append(lambda tick, plan: print(json.dumps(
            {"tick": tick, "actions": [_action_json(a) for a in plan]}), flush=True))
    try:
        counters = rt.run(ticks=args.ticks)
    finally:
        rt.stop()
        executor.close()
        adapter.close()
    counters = rt.counters
    counters["mode"] = "live" if args.live else "dry run"
    _print_summary(f"play {args.model} on {args.source}:", counters, args.json)
    return 0


def _action_json(a) -> dict:
    return {"type": int(a.type), "t_ms": round(float(a.t_ms), 3), "x": round(float(a.x), 2), "y": round(float(a.y), 2),
            "button": int(a.button), "key_action": int(a.key_action), "key_id": int(a.key_id),
            "scroll_y": int(a.scroll_y), "hold_ms": round(float(a.hold_ms), 2)}

"""`ilbot record` (and, through `ilbot.agent.play_commands`, `replay` and `play`)."""

from __future__ import annotations

import importlib
import math
import sys

from ..errors import UserError


def register(sub) -> None:
    _register_record(sub)
    try:
        play = importlib.import_module("ilbot.agent.play_commands")
    except ModuleNotFoundError as e:
        if e.name != "ilbot.agent.play_commands":
            raise
        return
    play.register(sub)


def _register_record(sub) -> None:
    p = sub.add_parser("record", help="record your mouse, keyboard and the game state into a session store",
                       description="Record mouse and keyboard input (positions relative to the game window) "
                                   "and the game state of a capture source into one session store. "
                                   "Keys and clicks are recorded only while the game window has focus, pointer "
                                   "moves only inside it (--all-input records everything). "
                                   "Stop with the stop hotkey (F10), Ctrl+C or --duration.")
    p.add_argument("--source", default="none",
                   help="game-state source: json-dir:PATH, http[:URL], screen[:x,y,w,h], replay:SESSION, "
                        "sandbox[:STATE_DIR], or none (input only; default)")
    p.add_argument("--window", required=True, help="the game window's title, or a screen region x,y,w,h")
    p.add_argument("--out", required=True, help="the session store to write (S.ilbot.sqlite)")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--spec", default=None, help="feature spec name or TOML path (default: the source's)")
    p.add_argument("--tick-ms", type=float, default=None, help="tick length in ms (default 600)")
    p.add_argument("--stop-key", default="f10", help="hotkey that stops the recording (default f10)")
    p.add_argument("--pause-key", default="f9", help="hotkey that pauses/resumes it (default f9)")
    p.add_argument("--all-input", action="store_true",
                   help="record all input on the display; by default keys and clicks are recorded only while "
                        "the game window has focus, and pointer moves only inside it")
    p.add_argument("--allow-remote", action="store_true", help="let an http source use a non-loopback host")
    p.add_argument("--overwrite", action="store_true", help="replace an existing session store")
    p.add_argument("--notes", default="", help="free notes stored in the session's meta")
    p.set_defaults(func=_record)


MAX_DURATION_S = 7 * 86_400.0  # a recording's --duration: at most a week


def _in_range(flag: str, value, unit: str, lo: float, hi: float) -> None:
    """UserError unless `value` (from the command line) is None or a finite number in (lo, hi]
    ([lo, hi] when lo > 0)."""
    if value is not None and not (math.isfinite(value) and (value >= lo if lo > 0 else value > lo) and value <= hi):
        raise UserError(f"{flag} must be a number of {unit} in {lo:g}..{hi:g}, got {value}")


def _record(args) -> int:
    from ..data.schema import MAX_TICK_MS, MIN_TICK_MS, TICK_MS
    from .capture import make_adapter
    from .recorder import Recorder, RecorderHotkeys
    from .window import resolve_window

    _in_range("--tick-ms", args.tick_ms, "milliseconds", MIN_TICK_MS, MAX_TICK_MS)
    _in_range("--duration", args.duration, "seconds", 0.0, MAX_DURATION_S)
    hotkeys = RecorderHotkeys(stop=args.stop_key, pause=args.pause_key)
    window = resolve_window(args.window)
    adapter = None
    if args.source != "none":
        options = {"tick_ms": args.tick_ms or TICK_MS}
        kind = args.source.split(":", 1)[0]
        if kind == "screen":
            options["window"] = window
        if kind in ("http", "https"):
            options["allow_remote"] = args.allow_remote
        if kind == "replay":
            options.pop("tick_ms")
        adapter = make_adapter(args.source, args.spec, **options)
    try:
        rec = Recorder(args.out, window, adapter, hotkeys, tick_ms=args.tick_ms, overwrite=args.overwrite,
                       notes=args.notes, all_input=args.all_input)
        rec.start()
    except BaseException:
        if adapter is not None:
            adapter.close()
        raise
    print(f"recording {window.width}x{window.height} at {window.x},{window.y} ({window.title}) into {args.out}; "
          f"stop: {hotkeys.stop} (pause: {hotkeys.pause})", file=sys.stderr)
    print(rec.privacy_note, file=sys.stderr)

    def progress(r: Recorder) -> None:
        c = r.counters
        state = " [paused]" if r.paused else ""
        print(f"  {c['MOVE']} moves, {c['CLICK']} clicks, {c['KEY']} keys, {c['SCROLL']} scrolls, "
              f"{c['ticks']} ticks{state}", file=sys.stderr)

    try:
        reason = rec.wait(args.duration, progress=progress)
    except KeyboardInterrupt:
        reason = "interrupt"
    finally:
        counters = rec.stop()
        if adapter is not None:
            adapter.close()
    if rec.failure is not None:
        raise UserError(rec.failure)
    n = sum(counters[k] for k in ("MOVE", "CLICK", "KEY", "SCROLL"))
    print(f"stopped ({reason}): {n} events, {counters['ticks']} ticks written to {args.out}", file=sys.stderr)
    note = rec.source_note()
    if note:
        print(note, file=sys.stderr)
    return 0

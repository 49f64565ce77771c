"""`ilbot sandbox demo`: the scripted demonstrator records sessions on the sandbox.

    ilbot sandbox demo --sessions N --ticks M --out DIR [--seed S]

`register` adds the `demo` sub-command to the `ilbot sandbox` command (ilbot.sandbox.commands,
registered before this module), so the sandbox package never imports the recorder or the agent.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import UserError
from ..sandbox.commands import require_display


def register(sub) -> None:
    sandbox = sub.choices.get("sandbox")
    if sandbox is None:  # pragma: no cover - ilbot.sandbox.commands registers it first
        sandbox = sub.add_parser("sandbox", help="the practice game's scripted demonstrator")
    ssub = sandbox.add_subparsers(dest="sandbox_command", metavar="demo|takeover")
    d = ssub.add_parser("demo", help="record demonstrator sessions on the sandbox (real input on this DISPLAY)")
    d.add_argument("--sessions", type=int, default=1, help="sessions to record (default 1)")
    d.add_argument("--ticks", type=int, default=200, help="ticks per session (default 200)")
    d.add_argument("--out", required=True, help="folder for the *.ilbot.sqlite session files")
    d.add_argument("--seed", type=int, default=0, help="seed of the first session (game and demonstrator); +1 per session")
    d.add_argument("--tick-ms", type=float, default=600.0, help=argparse.SUPPRESS)
    d.set_defaults(func=_run_demo)
    t = ssub.add_parser("takeover", help="sessions where the demonstrator takes over from a model (virtual clock)",
                        description="A model and the demonstrator play a seeded sandbox game in turns: the model "
                                    "plays a span, the demonstrator takes over for one gesture or more, hands back, "
                                    "and so on; each session is recorded with its spans marked (agent, takeover): "
                                    "training data from the states the agent leads to (ilbot.demo.takeover). In "
                                    "process, no display needed.")
    t.add_argument("--model", required=True, help="the model whose states the demonstrator corrects")
    t.add_argument("--sessions", type=int, default=32, help="sessions to write (default 32)")
    t.add_argument("--out", required=True, help="folder for the *.ilbot.sqlite session files")
    t.add_argument("--seed", type=int, default=1000, help="seed of the first session; +1 per session (default 1000)")
    t.add_argument("--ticks", type=int, default=200, help="ticks per session (default 200)")
    t.add_argument("--agent-ticks", default="2-12", help="length of each of the agent's spans, drawn (default 2-12)")
    t.add_argument("--demo-ticks", default="1-3",
                   help="least length of each of the demonstrator's spans, drawn; it hands back between gestures "
                        "(default 1-3)")
    t.add_argument("--no-takeover-on-misclick", dest="on_misclick", action="store_false",
                   help="hand over only after the drawn agent spans (by default an agent tick that misclicks is "
                        "undone and the demonstrator plays it from the same state)")
    t.set_defaults(func=_run_takeover)


def _ticks_range(flag: str, value: str, least: int) -> tuple[int, int]:
    try:
        lo, _, hi = value.partition("-")
        lo, hi = int(lo), int(hi or lo)
    except ValueError:
        raise UserError(f"{flag} {value!r}: expected N or MIN-MAX ticks") from None
    if not least <= lo <= hi:
        raise UserError(f"{flag} {value!r}: expected {least} <= MIN <= MAX")
    return lo, hi


def _run_takeover(args) -> int:
    from .takeover import record_takeovers

    agent, demo = _ticks_range("--agent-ticks", args.agent_ticks, 1), _ticks_range("--demo-ticks", args.demo_ticks, 1)
    if args.sessions < 1 or args.ticks < 1:
        raise UserError("--sessions and --ticks must be at least 1")
    record_takeovers(args.model, Path(args.out), sessions=args.sessions, seed0=args.seed, ticks=args.ticks,
                     agent_ticks=agent, demo_ticks=demo, on_misclick=args.on_misclick)
    return 0


def _run_demo(args) -> int:
    require_display("ilbot sandbox demo")
    if args.sessions < 1 or args.ticks < 1:
        raise UserError("--sessions and --ticks must be at least 1")
    from .record import record_sessions

    record_sessions(Path(args.out), sessions=args.sessions, ticks=args.ticks, seed=args.seed, tick_ms=args.tick_ms)
    return 0

"""`ilbot app [...]`: the desktop app, the same as `python main.py [...]` (see ilbot/gui/launch.py)."""

from __future__ import annotations


def register(sub) -> None:
    from .launch import add_arguments

    p = sub.add_parser("app", help="the desktop app (as python main.py): sandbox + shipped model, dry run",
                       description="The desktop app: the sandbox with the shipped model in dry run by default.")
    add_arguments(p)
    p.set_defaults(func=_run)


def _run(args) -> int:
    from .launch import run

    return run(args)

"""The `ilbot` command line.

Each sub-package that offers commands has a `commands.py` with `register(subparsers)`; this
module only collects them, so adding a command never touches another package's code. Errors a
user can fix (bad files, bad config) are raised as `ilbot.errors.UserError` and printed as one
line with a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .errors import UserError

# Packages whose commands.py registers sub-commands, in help order.
COMMAND_MODULES = ["data", "training", "eval", "agent", "sandbox", "gui", "bench"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ilbot", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"ilbot.{name}.commands")
        except ModuleNotFoundError as e:
            if e.name != f"ilbot.{name}.commands":
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        rc = args.func(args)
    except UserError as e:
        print(f"ilbot {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ilbot {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())

"""The `ilbot` command line.

Each sub-package that offers commands has a `commands.py` with `register(subparsers)`; this
module only collects them, so adding a command never touches another package's code. Errors a
user can fix (bad files, bad config) are raised as `ilbot.errors.UserError` and printed as one
line with a non-zero exit, never a traceback.

`ilbot` alone prints the help (usage and every command with what it does) and exits 0;
`ilbot --version` prints the version. A command registered without a `description` gets its
one-line `help` as its description, so `ilbot COMMAND --help` always says what the command does.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from . import __doc__ as package_doc
from . import __version__
from .errors import UserError

# Packages whose commands.py registers sub-commands, in help order.
COMMAND_MODULES = ["data", "training", "eval", "agent", "sandbox", "demo", "gui", "bench"]
EPILOG = ("The loop: record (or import) sessions → build a dataset → train → eval → play or app. "
          "Run 'ilbot COMMAND --help' for one command's options; 'python main.py' opens the app.")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ilbot", description=package_doc.strip().splitlines()[0], epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"ilbot {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"ilbot.{name}.commands")
        except ModuleNotFoundError as e:
            if e.name != f"ilbot.{name}.commands":
                raise
            continue
        module.register(sub)
    describe_commands(parser)
    return parser


def subcommands(parser: argparse.ArgumentParser) -> dict[str, tuple[argparse.ArgumentParser, str | None]]:
    """name → (its parser, its one-line help) for each sub-command of `parser` (one level)."""
    out = {}
    for action in parser._actions:  # noqa: SLF001 - argparse keeps sub-parsers only here
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            helps = {a.dest: a.help for a in action._choices_actions}  # noqa: SLF001
            for name, p in action.choices.items():
                out[name] = (p, helps.get(name))
    return out


def describe_commands(parser: argparse.ArgumentParser) -> None:
    """Give every sub-command (at any depth) without a description its help line as one."""
    for _name, (p, help_text) in subcommands(parser).items():
        if not p.description and help_text:
            text = help_text.strip()
            p.description = text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")
        describe_commands(p)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "command", None) is None or not hasattr(args, "func"):
        parser.print_help()
        return 0
    _interrupt_on_sigterm()
    try:
        rc = args.func(args)
    except UserError as e:
        print(f"ilbot {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ilbot {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(rc or 0)


def _interrupt_on_sigterm() -> None:
    """SIGTERM (the app's Cancel, a service manager) stops a command like Ctrl+C: as a
    KeyboardInterrupt, so what it was writing is cleaned up (outputs are written beside and renamed
    in) and a live run releases everything. Only where SIGTERM still has its default action, and
    from the main thread."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        def interrupt(signum, frame):
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, interrupt)


if __name__ == "__main__":
    sys.exit(main())

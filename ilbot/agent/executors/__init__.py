"""Executors: one interface (`Executor`), one file per way of performing actions.

`DryRunExecutor` (the default: records, performs nothing) and `PynputExecutor` (live input).
`PynputExecutor` is imported lazily by name so this package imports without an X display.
"""

from .base import Executor, Performed, held_name, screen_position
from .dry_run import DryRunExecutor


def __getattr__(name):
    if name == "PynputExecutor":
        from .pynput_exec import PynputExecutor
        return PynputExecutor
    raise AttributeError(name)


__all__ = ["Executor", "Performed", "held_name", "screen_position", "DryRunExecutor", "PynputExecutor"]

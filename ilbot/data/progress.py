"""A minimal progress bar on stderr for long data jobs (import, build).

On a terminal it redraws one line; otherwise (logs, CI) it prints a line every 10 %, so long work
is visible without flooding a log file."""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, total: int, desc: str, *, stream=None, enabled: bool = True, unit: str = ""):
        self.total = max(int(total), 0)
        self.desc = desc
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.unit = unit
        self.n = 0
        self.t0 = time.monotonic()
        self._last_draw = 0.0
        self._last_decile = -1
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def update(self, k: int = 1, note: str = "") -> None:
        self.n += k
        if not self.enabled:
            return
        now = time.monotonic()
        frac = self.n / self.total if self.total else 1.0
        if self._tty:
            if now - self._last_draw >= 0.1 or self.n >= self.total:
                bar = "#" * int(frac * 30)
                self.stream.write(f"\r{self.desc} [{bar:<30}] {self.n}/{self.total}{self.unit} "
                                  f"{now - self.t0:5.1f}s {note[:40]:<40}")
                self.stream.flush()
                self._last_draw = now
        else:
            decile = int(frac * 10)
            if decile != self._last_decile:
                self._last_decile = decile
                self.stream.write(f"{self.desc}: {self.n}/{self.total}{self.unit} ({frac:.0%}, "
                                  f"{now - self.t0:.1f}s) {note}\n")
                self.stream.flush()

    def close(self) -> None:
        if self.enabled and self._tty:
            self.stream.write("\n")
            self.stream.flush()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

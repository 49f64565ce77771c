"""A one-line progress bar on stderr (no dependency): `label [####....] 120/400 key=value ...`.

Redrawn in place on a terminal; on a pipe or file it prints a line at most every `every_s`
seconds, so logs stay readable."""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, total: int, label: str = "", enabled: bool = True, every_s: float = 0.5, stream=None):
        self.total = max(int(total), 0)
        self.label = label
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.every_s = every_s if self.tty else max(every_s, 10.0)
        self.start = time.monotonic()
        self.last = 0.0
        self.n = 0

    def update(self, n: int = 1, force: bool = False, **info) -> None:
        self.n += n
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self.last < self.every_s and self.n < self.total:
            return
        self.last = now
        width = 24
        frac = self.n / self.total if self.total else 0.0
        bar = "#" * int(frac * width) + "." * (width - int(frac * width))
        elapsed = now - self.start
        rate = self.n / elapsed if elapsed > 0 else 0.0
        extras = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in info.items())
        line = f"{self.label} [{bar}] {self.n}/{self.total} {rate:.1f}/s {elapsed:.0f}s {extras}".rstrip()
        if self.tty:
            self.stream.write("\r" + line[:200] + "\x1b[K")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()

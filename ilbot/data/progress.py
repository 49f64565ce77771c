"""The one progress reporter of every long job (import, build, train, eval).

`Progress(total, desc)` counts work done with `update(k, note, **figures)` and reports it two ways:

- for people, on stderr: on a terminal one line redrawn in place
  (`train [#####.......]  42% 120/400 3.1/s 38s ETA 52s loss=1.23`); on a pipe or log file a line
  at each tenth of the work and at least every `log_every_s` seconds, so logs stay short;
- for programs (the app), when `json_stream` is given: one JSON object per line —
  `{"kind": "progress", "label", "n", "total", "frac", "elapsed_s", "eta_s", "cap_s", ...figures}`
  at most every `json_every_s` seconds, the documents passed to `record(doc)` as they are,
  `{"kind": "message", "text"}` for each `message(text)` line, and `{"kind": "end", "reason", ...}`
  from `close(reason)`.

A time cap (`cap_s`, e.g. training's `max_minutes`) is part of the bar: the fraction done is
whichever is further along, the count or the time since this reporter started, and the ETA is the
sooner of the two. The cap counts from the reporter's start, so a resumed run gets its own cap
(`cap_note` says so on the line). `start` is the count already done before this invocation
(a resumed run's step); rates and ETAs use only the work done since.

`close("done")` and `close("cap")` draw the bar full: the job is over, whether its count or its
time ran out. Any other reason leaves the bar where the work stopped.
"""

from __future__ import annotations

import json
import math
import sys
import time

FULL_REASONS = ("done", "cap")


def format_duration(seconds: float | None) -> str:
    """12s, 3m05s, 1h02m; '–' when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "–"
    s = int(round(max(seconds, 0.0)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def _fmt_figure(key: str, value) -> str:
    return f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"


class Progress:
    def __init__(self, total: int, desc: str = "", *, stream=None, enabled: bool = True, unit: str = "",
                 start: int = 0, cap_s: float = 0.0, cap_note: str = "", json_stream=None,
                 log_every_s: float = 30.0, tty_every_s: float = 0.1, json_every_s: float = 0.5, clock=time.monotonic):
        self.total = max(int(total), 0)
        self.desc = desc
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.unit = unit
        self.cap_s = float(cap_s or 0.0)
        self.cap_note = cap_note
        self.json_stream = json_stream
        self.log_every_s = log_every_s
        self.tty_every_s = tty_every_s
        self.json_every_s = json_every_s
        self.clock = clock
        self.n0 = int(start)
        self.n = int(start)
        self.t0 = clock()
        self.figures: dict = {}
        self.note = ""
        self.closed = False
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last_draw = -math.inf
        self._last_json = -math.inf
        self._last_decile = -1

    # ------------------------------------------------------------------ figures
    @property
    def elapsed_s(self) -> float:
        """Seconds since this reporter started (this invocation)."""
        return self.clock() - self.t0

    def time_fraction(self) -> float:
        """Share of the time cap used (0 without a cap)."""
        return min(self.elapsed_s / self.cap_s, 1.0) if self.cap_s > 0 else 0.0

    def fraction(self) -> float:
        """Share of the job done: the count or the capped time, whichever is further along."""
        count = min(self.n / self.total, 1.0) if self.total else (1.0 if not self.cap_s else 0.0)
        return max(count, self.time_fraction())

    def rate(self) -> float:
        """Items per second over this invocation."""
        el = self.elapsed_s
        return (self.n - self.n0) / el if el > 0 else 0.0

    def eta_s(self) -> float | None:
        """Seconds left: the sooner of the count's end (at this invocation's rate) and the cap."""
        left = []
        rate = self.rate()
        if self.total and rate > 0:
            left.append(max(self.total - self.n, 0) / rate)
        if self.cap_s > 0:
            left.append(max(self.cap_s - self.elapsed_s, 0.0))
        return min(left) if left else None

    # ------------------------------------------------------------------ reporting
    def update(self, k: int = 1, note: str = "", force: bool = False, **figures) -> None:
        """`k` more items done; `note` (a name) and `figures` (loss=…) are shown on the line."""
        self.n += k
        if note:
            self.note = note
        if figures:
            self.figures = figures
        if not self.enabled:
            return
        now = self.clock()
        if self.json_stream is not None and (force or now - self._last_json >= self.json_every_s
                                             or self.n >= self.total):
            self._last_json = now
            self._json(self.snapshot())
        if self._tty:
            if force or now - self._last_draw >= self.tty_every_s or self.n >= self.total:
                self._last_draw = now
                self.stream.write("\r" + self.line()[:200] + "\x1b[K")
                self.stream.flush()
        else:
            decile = int(self.fraction() * 10)
            if force or decile != self._last_decile or now - self._last_draw >= self.log_every_s:
                self._last_decile, self._last_draw = decile, now
                self.stream.write(self.log_line() + "\n")
                self.stream.flush()

    def snapshot(self, **extra) -> dict:
        """The machine-readable state: what a `progress` JSON line holds."""
        eta = self.eta_s()
        return {"kind": "progress", "label": self.desc, "n": self.n, "total": self.total,
                "frac": round(self.fraction(), 5), "elapsed_s": round(self.elapsed_s, 3),
                "eta_s": None if eta is None else round(eta, 3), "cap_s": self.cap_s or None,
                "rate": round(self.rate(), 4), **self.figures, **extra}

    def _cap_text(self) -> str:
        if not self.cap_s:
            return ""
        return f" (cap {format_duration(self.cap_s)}{' ' + self.cap_note if self.cap_note else ''})"

    def line(self, frac: float | None = None, tail: str | None = None) -> str:
        """The terminal line: bar, percent, count, rate, elapsed, ETA (or `tail`), note, figures."""
        frac = self.fraction() if frac is None else frac
        width = 24
        bar = "#" * int(frac * width) + "." * (width - int(frac * width))
        tail = f"ETA {format_duration(self.eta_s())}{self._cap_text()}" if tail is None else tail
        extras = " ".join(_fmt_figure(k, v) for k, v in self.figures.items())
        return (f"{self.desc} [{bar}] {frac:4.0%} {self.n}/{self.total}{self.unit} {self.rate():.1f}/s "
                f"{format_duration(self.elapsed_s)} {tail} {self.note[:40]} {extras}").rstrip()

    def log_line(self, frac: float | None = None, tail: str | None = None) -> str:
        """The log-file line: `desc: n/total (42%, 38s, ETA 52s) note figures`."""
        frac = self.fraction() if frac is None else frac
        tail = f"ETA {format_duration(self.eta_s())}{self._cap_text()}" if tail is None else tail
        extras = " ".join(_fmt_figure(k, v) for k, v in self.figures.items())
        return (f"{self.desc}: {self.n}/{self.total}{self.unit} ({frac:.0%}, {format_duration(self.elapsed_s)}, "
                f"{tail}) {self.note} {extras}").rstrip()

    def message(self, text: str) -> None:
        """One line of text between progress lines (and a `{"kind": "message"}` JSON line)."""
        if not self.enabled:
            return
        self.stream.write(("\r" + text + "\x1b[K\n") if self._tty else text + "\n")
        self.stream.flush()
        if self.json_stream is not None:
            self._json({"kind": "message", "text": text})

    def record(self, doc: dict) -> None:
        """Pass one document (a metrics line) to the JSON stream as it is."""
        if self.enabled and self.json_stream is not None:
            self._json(doc)

    def _json(self, doc: dict) -> None:
        self.json_stream.write(json.dumps(doc, default=float) + "\n")
        self.json_stream.flush()

    def close(self, reason: str = "", message: str = "") -> None:
        """End the report. `reason` "done" or "cap" draws the bar full; any reason (and `message`)
        is written on a final line; no reason ends a terminal line only."""
        if self.closed:
            return
        self.closed = True
        if not self.enabled:
            return
        full = reason in FULL_REASONS
        frac = 1.0 if full else self.fraction()
        if reason and self.json_stream is not None:
            self._json({**self.snapshot(), "kind": "end", "reason": reason, "frac": round(frac, 5),
                        "eta_s": 0.0 if full else None, "message": message})
        if reason:
            tail = message or reason
            if self._tty:
                self.stream.write("\r" + self.line(frac, tail)[:200] + "\x1b[K\n")
            else:
                self.stream.write(self.log_line(frac, tail) + "\n")
            self.stream.flush()
        elif self._tty:
            self.stream.write("\n")
            self.stream.flush()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

"""The capture-adapter interface (DESIGN §3): one family, one interface, one file per source.

An adapter turns a game-state source (a folder of JSON files, an HTTP endpoint, the screen, a
recorded session) into `Capture` records: `(tick, t_ns, raw_json, features)`.

Decisions the design leaves open, recorded here:

- `poll()` never blocks for long and never raises for bad data: it returns the newest *fresh*
  capture since the previous poll, or None. Captures a slow caller missed are skipped (newest
  wins): a live agent only ever wants the current state.
- `Capture.t_ns` is the `time.monotonic_ns()` at which the state was observed (for json-dir: when
  the game wrote the file, converted from the file's wall-clock mtime), so it lives on the same
  clock as the scheduler and the recorder. The recorder subtracts its session start.
- `.counters` is a plain dict (like the safety pipeline's): `ok` captures delivered, `malformed`
  documents skipped as unparsable, `stale` documents ignored as too old, `errors` failed reads
  of an unreachable source.
- The stale-state watchdog is time based: `ticks_since_fresh` is how many whole ticks
  (`tick_ms`) have passed since the last fresh capture (since the adapter opened, before the
  first), whatever the caller's poll rate. The safety layer decides what N means (`is_stale(n)`).
- Hostile documents never raise and never block: `parse_document` reads a game document as
  strict JSON within limits (size `max_bytes`, nesting `max_depth`, UTF-8 only, no lone
  surrogates, integers within int64, finite numbers) and names what is wrong. A skipped
  document counts `malformed` and `malformed.<reason>` (`too_large`, `not_utf8`, `not_json`,
  `too_deep`, `bad_string`, `bad_number`, `bad_tick`, `not_regular`, `features`);
  `last_malformed` says which document and why. Tick numbers must lie in [0, MAX_TICK].
"""

from __future__ import annotations

import gc
import json
import math
import re
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ...data.schema import F, TICK_MS, tick_ms_problem
from ...errors import UserError

Clock = Callable[[], int]  # → monotonic nanoseconds

MAX_BYTES = 1024 * 1024  # default cap on one game document (a real one is a few KB; see parse_document)
MAX_DEPTH = 64  # default cap on a game document's nesting
MAX_TICK = 2**62  # tick numbers beyond this (or negative) are refused: the store keeps int64
_INT64 = 2**63


class Malformed(ValueError):
    """A game document refused: `reason` is a short code (a counter name), `detail` says why."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)  # a JSON string literal
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _nesting(text: str) -> int:
    """The deepest nesting of brackets in a JSON text, strings excluded (no recursion)."""
    bare = _STRING.sub('""', text).encode("ascii", "replace")
    codes = np.frombuffer(bare, np.uint8)  # [n]
    steps = ((codes == 91) | (codes == 123)).astype(np.int32) - ((codes == 93) | (codes == 125))  # [n]
    return int(np.cumsum(steps).max(initial=0))


def _numbers_need_care(raw: bytes) -> bool:
    """Could a number in this JSON text fall outside int64 or overflow a float? Only a run of 19
    or more digits or an exponent can write one (strings included: a false alarm costs time only)."""
    codes = np.frombuffer(raw, np.uint8)  # [n]
    if codes.size == 0:
        return False
    digit = (codes >= 48) & (codes <= 57)  # [n]
    breaks = np.flatnonzero(~digit)
    runs = np.diff(np.concatenate(([-1], breaks, [codes.size]))) - 1  # digit run lengths
    if runs.max() >= 19:
        return True
    return bool((((codes[1:] | 0x20) == ord("e")) & digit[:-1]).any())  # a digit, then e or E


def _int(text: str) -> int:
    if len(text.lstrip("-")) > 19 or not -_INT64 <= (v := int(text)) < _INT64:
        raise Malformed("bad_number", f"integer {text[:24]}{'...' if len(text) > 24 else ''} is outside int64")
    return v


def _float(text: str) -> float:
    v = float(text)
    if not math.isfinite(v):
        raise Malformed("bad_number", f"number {text[:24]} is not finite")
    return v


def _constant(text: str):
    raise Malformed("bad_number", f"{text} is not a JSON number")


def _has_lone_surrogate(doc) -> bool:
    stack = [doc]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            try:
                v.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return False


def parse_document(data: bytes, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH):
    """(document, text) of a game document's bytes; `Malformed` naming what is wrong otherwise.

    Strict: UTF-8 (a leading BOM is dropped), at most `max_bytes` bytes and `max_depth` levels of
    nesting (checked before parsing, so a deep document costs no recursion), integers within
    int64, finite numbers only (no NaN/Infinity), no lone surrogate escapes. Never raises
    anything but `Malformed`. Cost: linear in the size; the worst document under the default
    1 MiB cap (a quarter million tiny containers) takes about 0.1 s here, a real state < 1 ms."""
    if len(data) > max_bytes:
        raise Malformed("too_large", f"{len(data)} bytes > the {max_bytes}-byte cap")
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError as e:
        raise Malformed("not_utf8", f"not UTF-8 (byte {e.start}: {bytes(data[e.start:e.start + 2])!r})") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    if text.count("[") + text.count("{") > max_depth and (depth := _nesting(text)) > max_depth:
        raise Malformed("too_deep", f"nested {depth} deep > the cap of {max_depth}")
    # numbers are checked one by one only when one could be out of range; else at C speed
    careful = _numbers_need_care(data)
    # a big document makes many objects: the cyclic GC would scan the whole heap over and over
    # while they are made (1.3 s instead of 0.15 s for 4 MB of small lists beside torch)
    pause_gc = len(data) > 65536 and gc.isenabled()
    if pause_gc:
        gc.disable()
    try:
        if careful:
            doc = json.loads(text, parse_int=_int, parse_float=_float, parse_constant=_constant)
        else:
            doc = json.loads(text, parse_constant=_constant)
    except Malformed:
        raise
    except RecursionError:
        raise Malformed("too_deep", f"nested deeper than the cap of {max_depth}") from None
    except ValueError as e:
        raise Malformed("not_json", f"not JSON ({str(e).splitlines()[0][:120]})") from None
    finally:
        if pause_gc:
            gc.enable()
    if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(doc):
        raise Malformed("bad_string", "a string holds a lone UTF-16 surrogate")
    return doc, text


def check_tick(tick: int) -> int:
    """`tick` if it lies in [0, MAX_TICK]; `Malformed("bad_tick")` otherwise."""
    if not 0 <= tick <= MAX_TICK:
        raise Malformed("bad_tick", f"tick {tick} is outside [0, 2^62]")
    return tick


@dataclass(frozen=True)
class Capture:
    """One fresh game state: tick index, observation time (monotonic ns), raw JSON, features [F]."""

    tick: int
    t_ns: int
    raw_json: str
    features: np.ndarray  # [F] float32


class StaleWatchdog:
    """Counts whole ticks since the last fresh capture on a monotonic clock."""

    def __init__(self, tick_ms: float = TICK_MS, clock: Clock = time.monotonic_ns):
        if not tick_ms > 0:
            raise ValueError(f"tick_ms must be > 0, got {tick_ms}")
        self.tick_ms = float(tick_ms)
        self.clock = clock
        self.last_fresh_ns = clock()  # before any capture: since the watchdog started

    def fresh(self, t_ns: int | None = None) -> None:
        """Note a fresh capture (now, or at `t_ns` on the same clock)."""
        self.last_fresh_ns = self.clock() if t_ns is None else int(t_ns)

    @property
    def ticks_since_fresh(self) -> int:
        elapsed_ns = max(0, self.clock() - self.last_fresh_ns)
        return int(elapsed_ns // int(self.tick_ms * 1e6))

    def is_stale(self, n: int) -> bool:
        """True when no fresh capture arrived for `n` or more whole ticks."""
        return self.ticks_since_fresh >= n


class CaptureAdapter(ABC):
    """A game-state source. Subclasses implement `_poll()`; the base keeps counters and watchdog.

    `spec` is a feature spec (`ilbot.data.featurespec.FeatureSpec`: `.features(raw) -> [F]`), or
    None where the adapter makes its own features (screen) or reuses stored ones (replay)."""

    name = "adapter"
    # True when each fresh capture starts a tick (the game's own ticks, or a recording's): the
    # runtime then starts its ticks on captures instead of keeping its own grid
    reports_ticks = False

    def __init__(self, spec=None, *, tick_ms: float = TICK_MS, clock: Clock = time.monotonic_ns):
        problem = tick_ms_problem(tick_ms)
        if problem:
            raise UserError(f"{self.name} source: tick_ms: {problem}")
        self.spec = spec
        self.tick_ms = float(tick_ms)
        self.clock = clock
        self.counters: dict[str, int] = {"ok": 0, "malformed": 0, "stale": 0, "errors": 0}
        self.watchdog = StaleWatchdog(tick_ms, clock)
        self.closed = False
        self.last_malformed: str | None = None  # "<document>: <why>" of the last skipped document

    # -- the interface -------------------------------------------------------------------
    def poll(self) -> Capture | None:
        """The newest fresh capture since the last poll, or None (nothing new, bad data, closed)."""
        if self.closed:
            return None
        cap = self._poll()
        if cap is not None:
            self.counters["ok"] += 1
            self.watchdog.fresh()
        return cap

    @property
    def ticks_since_fresh(self) -> int:
        return self.watchdog.ticks_since_fresh

    def is_stale(self, n: int) -> bool:
        return self.watchdog.is_stale(n)

    def close(self) -> None:
        self.closed = True

    def describe(self) -> str:
        """A short human description, stored as the session's `source` meta."""
        return self.name

    @property
    def spec_name(self) -> str | None:
        """Name of the features' spec (the session meta's `feature_spec`)."""
        return getattr(self.spec, "name", None)

    @property
    def spec_hash(self) -> str | None:
        """Hash of the features' spec (the session meta's `feature_spec_hash`)."""
        return getattr(self.spec, "hash", None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @abstractmethod
    def _poll(self) -> Capture | None: ...

    # -- helpers for subclasses ----------------------------------------------------------
    def _features(self, doc) -> np.ndarray:
        """Features [F] of a parsed document via the spec; zeros without a spec. A spec that
        fails on an odd document raises `Malformed("features")`."""
        if self.spec is None:
            return np.zeros(F, np.float32)
        try:
            return np.asarray(self.spec.features(doc), dtype=np.float32).reshape(F)  # [F]
        except Exception as e:  # noqa: BLE001 - any failure of the spec on this document
            raise Malformed("features", f"the feature spec failed ({type(e).__name__}: {str(e)[:120]})") from None

    def _malformed(self, what: str, err: Malformed) -> None:
        """Count a skipped document (total and per reason) and remember why."""
        self.counters["malformed"] += 1
        key = f"malformed.{err.reason}"
        self.counters[key] = self.counters.get(key, 0) + 1
        self.last_malformed = f"{what}: {err.detail}"


def tick_of(doc, *keys: str) -> int | None:
    """The game's own tick number from a document's first present key, if it is an integer."""
    if not isinstance(doc, dict):
        return None
    for k in keys:
        v = doc.get(k)
        if isinstance(v, bool):
            continue
        if isinstance(v, int):
            return v
        if isinstance(v, float) and v.is_integer():
            return int(v)
    return None

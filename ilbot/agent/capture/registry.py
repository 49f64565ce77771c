"""`make_adapter(source, spec, **options)`: a capture adapter from a source string.

| source | adapter |
| --- | --- |
| `json-dir:PATH` | `JsonDirAdapter(PATH)` |
| `http` / `http:URL` | `HttpAdapter(URL)`, default http://localhost:8081 (`http:127.0.0.1:9000` works too) |
| `screen` / `screen:x,y,w,h` | `ScreenAdapter(region)`; without a region, `window=` (a geometry) is required |
| `replay:SESSION` | `ReplayAdapter(SESSION)`; `speed=` (default 1.0; None = as fast as polled) |
| `sandbox` / `sandbox:STATE_DIR` | `JsonDirAdapter` on the sandbox game's state folder |

`spec` is a `FeatureSpec`, a spec name or path, or None for the source's default: `osrs` for
http, `sandbox` for the sandbox, `empty` for json-dir, none for screen (its own features) and
replay (the stored features). Options are passed to the adapter (tick_ms, stale_ms, allow_remote,
speed, max_bytes, ...); numeric ones are checked first (`check_options`: finite and in range).
Unknown sources and bad options are a `UserError` naming the forms above or the option.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from ...data import paths
from ...data.schema import tick_ms_problem
from ...errors import UserError
from .base import CaptureAdapter

SOURCES = ("json-dir:PATH", "http[:URL]", "screen[:x,y,w,h]", "replay:SESSION", "sandbox[:STATE_DIR]")
DEFAULT_SPECS = {"http": "osrs", "sandbox": "sandbox", "json-dir": "empty"}


def sandbox_state_dir() -> Path:
    """Where the sandbox game publishes its per-tick JSON by default, created 0700 and checked
    (`ilbot.data.paths.sandbox_state_dir`: $ILBOT_SANDBOX_STATE, else a folder only this user
    can reach)."""
    return paths.sandbox_state_dir(create=True)


def _resolve_spec(spec, kind: str):
    if spec is None:
        spec = DEFAULT_SPECS.get(kind)
        if spec is None:
            return None
    if isinstance(spec, (str, os.PathLike)):
        from ...data.featurespec import load_spec

        return load_spec(str(spec))
    return spec


def parse_region(text: str) -> tuple[int, int, int, int]:
    """"x,y,w,h" → ints; UserError otherwise."""
    parts = text.replace(" ", "").split(",")
    try:
        x, y, w, h = (int(p) for p in parts)
    except ValueError:
        raise UserError(f"region {text!r}: expected x,y,width,height in pixels") from None
    if w <= 0 or h <= 0:
        raise UserError(f"region {text!r}: width and height must be positive")
    return x, y, w, h


# numeric options: name → smallest allowed value and whether it may equal it
_NUMERIC = {"tick_ms": (0, False), "stale_ms": (0, False), "settle_ms": (0, True), "timeout_s": (0, False),
            "min_interval_ms": (0, True), "max_bytes": (1, True), "max_depth": (1, True)}


def check_options(source: str, options: dict) -> None:
    """UserError naming the source, option and value for a numeric option that is not a finite
    number in range (tick_ms 0, nan or -600; max_bytes 0; ...)."""
    if options.get("tick_ms") is not None and tick_ms_problem(options["tick_ms"]):
        raise UserError(f"source {source!r}: tick_ms: {tick_ms_problem(options['tick_ms'])}")
    for name, (low, inclusive) in _NUMERIC.items():
        if name not in options or options[name] is None:
            continue
        value = options[name]
        try:
            v = float(value)
            ok = not isinstance(value, bool) and math.isfinite(v) and (v >= low if inclusive else v > low)
        except (TypeError, ValueError, OverflowError):
            ok = False
        if not ok:
            bound = f">= {low}" if inclusive else f"> {low}"
            raise UserError(f"source {source!r}: {name} must be a finite number {bound}, got {value!r}")


def make_adapter(source: str, spec=None, **options) -> CaptureAdapter:
    check_options(source, options)
    kind, _, arg = source.partition(":")
    kind = kind.strip().lower()
    if kind == "json-dir":
        if not arg:
            raise UserError("source 'json-dir' needs a folder: json-dir:PATH")
        from .json_dir import JsonDirAdapter

        return JsonDirAdapter(arg, _resolve_spec(spec, kind), **options)
    if kind == "sandbox":
        from .json_dir import JsonDirAdapter

        options.setdefault("create", True)  # the game may start after the recorder
        return JsonDirAdapter(arg or sandbox_state_dir(), _resolve_spec(spec, kind), **options)
    if kind in ("http", "https"):
        from .http import DEFAULT_URL, HttpAdapter

        if kind == "https" or arg.startswith("//"):
            url = source  # a plain URL: http://host:port
        elif "://" in arg:
            url = arg
        else:
            url = f"http://{arg}" if arg else DEFAULT_URL
        return HttpAdapter(url, _resolve_spec(spec, kind), **options)
    if kind == "screen":
        from .screen import ScreenAdapter

        window = options.pop("window", None)
        if arg:
            region = parse_region(arg)
        elif window is not None:
            region = (window.x, window.y, window.width, window.height)
        else:
            raise UserError("source 'screen' needs a region (screen:x,y,w,h) or a game window (--window)")
        return ScreenAdapter(region, None, **options)
    if kind == "replay":
        if not arg:
            raise UserError("source 'replay' needs a session: replay:SESSION.ilbot.sqlite")
        from .replay import ReplayAdapter

        options.pop("window", None)
        return ReplayAdapter(arg, _resolve_spec(spec, kind) if spec is not None else None, **options)
    raise UserError(f"unknown capture source {source!r}; expected one of: {', '.join(SOURCES)}")

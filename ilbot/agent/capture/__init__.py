"""Capture adapters (DESIGN §3): game state in, `Capture(tick, t_ns, raw_json, features)` out.

One interface (`base.CaptureAdapter`: `poll()`, `.counters`, `ticks_since_fresh`,
`is_stale(n)`, `close()`), one file per source: `json_dir`, `http`, `screen`, `replay`.
`make_adapter(source, spec, **options)` builds one from a command-line source string.
Importing this package needs no display (mss is imported when a screen adapter is made).
"""

from .base import Capture, CaptureAdapter, StaleWatchdog
from .registry import SOURCES, make_adapter, parse_region

__all__ = ["Capture", "CaptureAdapter", "StaleWatchdog", "SOURCES", "make_adapter", "parse_region"]

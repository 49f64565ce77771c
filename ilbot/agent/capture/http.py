"""`http`: polls JSON endpoints of a game-client HTTP plugin on localhost (DESIGN §3).

The RuneLite "HTTP server" plugins serve `/events` (animation, game tick, run energy, health
"cur/max", worldPoint, camera, mouse), `/inv` (`[{"id","quantity"}]`) and `/stats` (a list of
skills) on port 8081. One poll fetches every endpoint and merges them into one document,
`{"events": ..., "inv": ..., "stats": ...}` (one key per endpoint, named after it), which is what
the `osrs` feature spec reads and what the store keeps as the tick's raw JSON.

Decisions:
- Only loopback hosts (`localhost`, 127.0.0.0/8, ::1) unless `allow_remote=True`: game state is
  private, and a remote URL is more likely a typo than an intent. Names other than `localhost`
  are refused rather than resolved (no DNS lookups). Proxies from the environment are ignored.
- Freshness: when `/events` carries the game's tick (`"game tick"`, `"tick"` or `"gameTick"`),
  a capture is fresh when that number changes (a relog may reset it, so "changed", not
  "greater"). Without it, the adapter slices time itself: a document that answers at least
  `tick_ms` after the previous capture is fresh, numbered by its own counter.
- The endpoints are fetched at most every `min_interval_ms` (default a sixth of a tick), so a
  fast caller does not hammer the game client.
- A body that is not JSON counts `malformed`; an unreachable endpoint or a non-200 answer
  counts `errors`; either way that poll yields nothing and the stale watchdog keeps counting.
"""

from __future__ import annotations

import ipaddress
import json
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from ...data.schema import TICK_MS
from ...errors import UserError
from .base import Capture, CaptureAdapter, Clock, tick_of

DEFAULT_URL = "http://localhost:8081"
DEFAULT_ENDPOINTS = ("events", "inv", "stats")
TICK_KEYS = ("game tick", "tick", "gameTick")


def check_loopback(url: str, allow_remote: bool = False) -> str:
    """The URL without a trailing slash; UserError for a non-http URL or a non-loopback host."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserError(f"http source: {url!r} is not an http://HOST[:PORT] URL")
    host = parts.hostname
    if not allow_remote:
        if host != "localhost":
            try:
                loopback = ipaddress.ip_address(host).is_loopback
            except ValueError:
                loopback = False
            if not loopback:
                raise UserError(f"http source: refusing non-loopback host {host!r} in {url!r} "
                                "(game state stays on this machine; pass allow_remote=True to override)")
    return url.rstrip("/")


class HttpAdapter(CaptureAdapter):
    name = "http"
    reports_ticks = True  # the game tick when /events has one, else its own slices of tick_ms

    def __init__(self, url: str = DEFAULT_URL, spec=None, *, endpoints=DEFAULT_ENDPOINTS,
                 tick_ms: float = TICK_MS, timeout_s: float = 0.25, min_interval_ms: float | None = None,
                 allow_remote: bool = False, clock: Clock = time.monotonic_ns):
        super().__init__(spec, tick_ms=tick_ms, clock=clock)
        self.url = check_loopback(url, allow_remote)
        self.endpoints = tuple(e.strip("/") for e in endpoints)
        self.timeout_s = float(timeout_s)
        self.min_interval_ns = int((self.tick_ms / 6 if min_interval_ms is None else min_interval_ms) * 1e6)
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        self._last_fetch_ns: int | None = None
        self._last_capture_ns: int | None = None
        self._last_game_tick: int | None = None
        self._next_tick = 0

    def describe(self) -> str:
        return f"http:{self.url}"

    def _get(self, endpoint: str) -> bytes | None:
        try:
            with self._opener.open(f"{self.url}/{endpoint}", timeout=self.timeout_s) as r:
                if r.status != 200:
                    self.counters["errors"] += 1
                    return None
                return r.read()
        except (urllib.error.URLError, OSError, ValueError):
            # HTTPError (non-2xx) is a URLError; refused connections and timeouts are OSErrors
            self.counters["errors"] += 1
            return None

    def _poll(self) -> Capture | None:
        now = self.clock()
        if self._last_fetch_ns is not None and now - self._last_fetch_ns < self.min_interval_ns:
            return None
        self._last_fetch_ns = now
        doc = {}
        for ep in self.endpoints:
            body = self._get(ep)
            if body is None:
                return None
            try:
                doc[ep] = json.loads(body)
            except (ValueError, UnicodeDecodeError):
                self.counters["malformed"] += 1
                return None
        game_tick = tick_of(doc.get("events"), *TICK_KEYS)
        if game_tick is not None:
            if game_tick == self._last_game_tick:
                return None
            self._last_game_tick = game_tick
            tick = game_tick
        else:
            if self._last_capture_ns is not None and now - self._last_capture_ns < int(self.tick_ms * 1e6):
                return None
            tick = self._next_tick
            self._next_tick += 1
        feats = self._features(doc)  # [F]
        self._last_capture_ns = now
        return Capture(tick, now, json.dumps(doc, separators=(",", ":")), feats)

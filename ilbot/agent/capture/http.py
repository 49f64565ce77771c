"""`http`: polls JSON endpoints of a game-client HTTP plugin on localhost (DESIGN §3).

The RuneLite "HTTP server" plugins serve `/events` (animation, game tick, run energy, health
"cur/max", worldPoint, camera, mouse), `/inv` (`[{"id","quantity"}]`) and `/stats` (a list of
skills) on port 8081. One fetch round gets every endpoint and merges them into one document,
`{"events": ..., "inv": ..., "stats": ...}` (one key per endpoint, named after it), which is what
the `osrs` feature spec reads and what the store keeps as the tick's raw JSON.

Decisions:
- The network is never touched by `poll()`: the adapter's own background thread (a daemon,
  started by the first poll) fetches rounds every `min_interval_ms` (default a sixth of a tick,
  so the game client is not hammered) while polls keep coming, and pauses when none came for
  `idle_s` (2 s or three ticks). `poll()` only takes the newest finished round, if any, and
  returns at once, whatever the server does; a slow or silent server only makes the stale
  watchdog count. `fetch_round()` does one round on the calling thread.
- Each round has one deadline, `timeout_s` (default 0.5 s) for all its requests together,
  enforced on every socket operation (connect, send, each read of the status line, headers and
  body), so a server that drips one byte at a time cannot stretch it. A body over `max_bytes`
  (default 1 MiB) is refused: by its Content-Length before reading, otherwise after reading
  `max_bytes + 1` bytes in chunks. Redirects are refused, never followed.
- Only loopback hosts (`localhost`, 127.0.0.0/8, ::1) unless `allow_remote=True`: game state is
  private, and a remote URL is more likely a typo than an intent. Names other than `localhost`
  are refused rather than resolved (no DNS lookups). No proxy is ever used.
- A round older than five ticks when it is polled (polling paused meanwhile) counts `stale`.
- Freshness: when `/events` carries the game's tick (`"game tick"`, `"tick"` or `"gameTick"`),
  a capture is fresh when that number changes (a relog may reset it, so "changed", not
  "greater"). Without it, the adapter slices time itself: a document that answers at least
  `tick_ms` after the previous capture is fresh, numbered by its own counter.
- A body that fails `parse_document` (not JSON, not UTF-8, too deep, huge numbers, lone
  surrogates) or is too large counts `malformed` (and `malformed.<reason>`); an unreachable
  endpoint, a timeout, a redirect or another non-200 answer counts `errors` (and
  `errors.<kind>`: `unreachable`, `timeout`, `redirect`, `status`); either way that round yields
  nothing.
"""

from __future__ import annotations

import http.client
import io
import ipaddress
import json
import socket
import threading
import time
from urllib.parse import urlsplit

from ...data.schema import TICK_MS
from ...errors import UserError
from .base import MAX_BYTES, MAX_DEPTH, Capture, CaptureAdapter, Clock, Malformed, check_tick, parse_document, tick_of

DEFAULT_URL = "http://localhost:8081"
DEFAULT_ENDPOINTS = ("events", "inv", "stats")
TICK_KEYS = ("game tick", "tick", "gameTick")
_CHUNK = 64 * 1024


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
    try:
        parts.port
    except ValueError:
        raise UserError(f"http source: {url!r} has a bad port") from None
    return url.rstrip("/")


class FetchError(Exception):
    """A request that gave no body: `kind` is `unreachable`, `timeout`, `redirect` or `status`."""

    def __init__(self, kind: str, detail: str):
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


class _DeadlineRaw(io.RawIOBase):
    """A socket's reading side where every read waits at most until a fixed deadline."""

    def __init__(self, sock: socket.socket, deadline: float):
        self._sock = sock
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("deadline passed")
        self._sock.settimeout(left)
        return self._sock.recv_into(b)


class _DeadlineSocket:
    """The connected socket as http.client sees it: sends and reads bounded by one deadline."""

    def __init__(self, sock: socket.socket, deadline: float):
        self._sock = sock
        self._deadline = deadline

    def sendall(self, data) -> None:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("deadline passed")
        self._sock.settimeout(left)
        self._sock.sendall(data)

    def makefile(self, mode="rb", *args, **kwargs):
        return io.BufferedReader(_DeadlineRaw(self._sock, self._deadline))

    def close(self) -> None:
        """Nothing: http.client closes its connection while the response is still being read
        (a real socket's makefile keeps the fd open for that); `fetch` closes the socket."""

    def __getattr__(self, name):
        return getattr(self._sock, name)


def fetch(url: str, deadline: float, max_bytes: int = MAX_BYTES) -> bytes:
    """GET `url` and return its body, all of it before `deadline` (a `time.monotonic()` value).

    `FetchError` for anything but a 200 answer within the deadline (redirects are refused);
    `Malformed("too_large")` for a body over `max_bytes`, read in chunks and never whole."""
    parts = urlsplit(url)
    left = deadline - time.monotonic()
    if left <= 0:
        raise FetchError("timeout", "no time left in this round")
    cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = cls(parts.hostname, parts.port, timeout=left)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    sock = None
    try:
        conn.connect()
        sock = conn.sock
        conn.sock = _DeadlineSocket(sock, deadline)
        conn.request("GET", path, headers={"Accept": "application/json", "Connection": "close"})
        resp = conn.getresponse()
        if 300 <= resp.status < 400:
            raise FetchError("redirect", f"{resp.status} to {resp.getheader('Location', '?')!r} refused")
        if resp.status != 200:
            raise FetchError("status", f"HTTP {resp.status}")
        length = resp.getheader("Content-Length")
        if length is not None and length.strip().isdigit() and int(length) > max_bytes:
            raise Malformed("too_large", f"Content-Length {int(length)} > the {max_bytes}-byte cap")
        chunks, n = [], 0
        while n <= max_bytes:
            chunk = resp.read(min(_CHUNK, max_bytes + 1 - n))
            if not chunk:
                break
            chunks.append(chunk)
            n += len(chunk)
        if n > max_bytes:
            raise Malformed("too_large", f"body over the {max_bytes}-byte cap")
        return b"".join(chunks)
    except (FetchError, Malformed):
        raise
    except (TimeoutError, socket.timeout):
        raise FetchError("timeout", "no whole answer within the deadline") from None
    except (OSError, http.client.HTTPException, ValueError) as e:
        if time.monotonic() >= deadline:
            raise FetchError("timeout", "no whole answer within the deadline") from None
        raise FetchError("unreachable", f"{type(e).__name__}: {str(e)[:120]}") from None
    finally:
        conn.close()
        if sock is not None:
            sock.close()


class HttpAdapter(CaptureAdapter):
    name = "http"
    reports_ticks = True  # the game tick when /events has one, else its own slices of tick_ms

    def __init__(self, url: str = DEFAULT_URL, spec=None, *, endpoints=DEFAULT_ENDPOINTS,
                 tick_ms: float = TICK_MS, timeout_s: float = 0.5, min_interval_ms: float | None = None,
                 max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH, allow_remote: bool = False,
                 clock: Clock = time.monotonic_ns):
        super().__init__(spec, tick_ms=tick_ms, clock=clock)
        self.url = check_loopback(url, allow_remote)
        self.endpoints = tuple(e.strip("/") for e in endpoints)
        self.timeout_s = float(timeout_s)
        self.max_bytes = int(max_bytes)
        self.max_depth = int(max_depth)
        self.min_interval_ns = int((self.tick_ms / 6 if min_interval_ms is None else min_interval_ms) * 1e6)
        self.last_error: str | None = None  # "<url>: <why>" of the last failed request
        self.rounds = 0  # fetch rounds finished (with or without a document)
        self._lock = threading.Lock()
        self._result: tuple[int, dict, str, object] | None = None  # newest round not yet polled
        self._wanted = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_poll = float("-inf")  # time.monotonic() of the last poll
        self.idle_s = max(2.0, 3 * self.tick_ms / 1000)  # fetching pauses this long after the last poll
        self._last_capture_ns: int | None = None
        self._last_game_tick: int | None = None
        self._next_tick = 0

    def describe(self) -> str:
        return f"http:{self.url}"

    # -- the fetcher thread ---------------------------------------------------------------------
    def _error(self, url: str, err: FetchError) -> None:
        self.counters["errors"] += 1
        key = f"errors.{err.kind}"
        self.counters[key] = self.counters.get(key, 0) + 1
        self.last_error = f"{url}: {err.detail}"

    def fetch_round(self):
        """Fetch and check every endpoint once (on the calling thread, within `timeout_s`):
        (start_ns, document, raw JSON, features [F]), or None after counting what went wrong."""
        start_ns = self.clock()
        deadline = time.monotonic() + self.timeout_s
        doc = {}
        for ep in self.endpoints:
            url = f"{self.url}/{ep}"
            try:
                doc[ep], _ = parse_document(fetch(url, deadline, self.max_bytes), max_bytes=self.max_bytes,
                                            max_depth=self.max_depth)
            except FetchError as err:
                self._error(url, err)
                return None
            except Malformed as err:
                self._malformed(url, err)
                return None
        try:
            game_tick = tick_of(doc.get("events"), *TICK_KEYS)
            if game_tick is not None:
                check_tick(game_tick)
            feats = self._features(doc)  # [F]
        except Malformed as err:
            self._malformed(self.url, err)
            return None
        return start_ns, doc, json.dumps(doc, separators=(",", ":")), feats

    def _run(self) -> None:
        while not self._stop.is_set():
            # fetch while polls keep coming (the last within `idle_s`), else wait for the next poll
            if time.monotonic() - self._last_poll > self.idle_s and not self._wanted.wait(0.25):
                continue
            self._wanted.clear()
            if self._stop.is_set():
                break
            t0 = time.monotonic()
            try:
                result = self.fetch_round()
            except Exception as e:  # noqa: BLE001 - the fetcher never dies: count it, try again later
                self._error(self.url, FetchError("unreachable", f"{type(e).__name__}: {str(e)[:120]}"))
                result = None
            self.rounds += 1
            if result is not None:
                with self._lock:
                    self._result = result
            wait_s = max(t0 + self.min_interval_ns / 1e9 - time.monotonic(), 0.001)  # at least 1 ms between rounds
            self._stop.wait(wait_s)

    # -- the interface ----------------------------------------------------------------------------
    def _poll(self) -> Capture | None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"http-capture:{self.url}", daemon=True)
            self._thread.start()
        self._last_poll = time.monotonic()
        self._wanted.set()
        with self._lock:
            result, self._result = self._result, None
        if result is None:
            return None
        fetched_ns, doc, raw, feats = result
        if self.clock() - fetched_ns > 5 * self.tick_ms * 1e6:  # fetched before a long pause in polling
            self.counters["stale"] += 1
            return None
        game_tick = tick_of(doc.get("events"), *TICK_KEYS)
        if game_tick is not None:
            if game_tick == self._last_game_tick:
                return None
            self._last_game_tick = game_tick
            tick = game_tick
        else:
            if self._last_capture_ns is not None and fetched_ns - self._last_capture_ns < int(self.tick_ms * 1e6):
                return None
            tick = self._next_tick
            self._next_tick += 1
        self._last_capture_ns = fetched_ns
        return Capture(tick, fetched_ns, raw, feats)

    def close(self) -> None:
        """Stop the fetcher without waiting on the network: a round in flight ends by its
        deadline and the (daemon) thread with it."""
        self._stop.set()
        self._wanted.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(0.1)
        super().close()

"""The http adapter against a real local HTTP server (a thread serving RuneLite-style JSON)."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ilbot.agent.capture import make_adapter
from ilbot.agent.capture.http import HttpAdapter, check_loopback
from ilbot.data.featurespec import load_spec
from ilbot.errors import UserError

EVENTS = {"animation": 625, "animation pose": 808, "game tick": 100, "run energy": 87, "health": "50/99",
          "worldPoint": {"x": 3222, "y": 3218, "plane": 0}, "camera": {"yaw": 1024, "pitch": 300},
          "mouse": {"x": 300, "y": 200}}
INV = [{"id": 1511, "quantity": 1}, {"id": 995, "quantity": 1200}]
STATS = [{"stat": "Attack", "level": 60, "boostedLevel": 62, "xp": 273742},
         {"stat": "Hitpoints", "level": 99, "boostedLevel": 50, "xp": 13034431}]


class GameServer:
    """Serves /events, /inv, /stats from a dict the test edits; raw bodies override JSON."""

    def __init__(self):
        self.docs = {"events": dict(EVENTS), "inv": list(INV), "stats": list(STATS)}
        self.raw: dict[str, bytes] = {}
        self.status: dict[str, int] = {}
        self.hits = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.hits += 1
                name = self.path.strip("/")
                code = server.status.get(name, 200 if name in server.docs else 404)
                body = server.raw.get(name) or json.dumps(server.docs.get(name)).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body) if code == 200 else 0))
                self.end_headers()
                if code == 200:
                    self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = GameServer()
    yield s
    s.stop()


@pytest.fixture
def osrs():
    return load_spec("osrs")


@pytest.fixture
def adapters():
    """Adapters made by a test, closed after it (their fetcher threads stop)."""
    made = []
    yield made
    for ad in made:
        ad.close()


@pytest.fixture
def adapter(server, adapters):
    def make(spec, **kw):
        kw.setdefault("min_interval_ms", 20)
        ad = HttpAdapter(server.url, spec, **kw)
        adapters.append(ad)
        return ad

    return make


def poll_until(ad, timeout=10.0):
    """Poll as a live caller does (every 5 ms) until a capture arrives; it, or None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cap = ad.poll()
        if cap is not None:
            return cap
        time.sleep(0.005)
    return None


def wait_for(ad, cond, timeout=10.0) -> bool:
    """Poll (every 5 ms) until `cond()`; whether it came true, captures discarded."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        ad.poll()
        time.sleep(0.005)
    return True


def counted(ad, key, n=1, timeout=10.0) -> bool:
    """Poll until `ad.counters[key]` reaches n."""
    return wait_for(ad, lambda: ad.counters.get(key, 0) >= n, timeout)


def test_merges_the_endpoints_into_one_document_the_osrs_spec_reads(server, osrs, adapter):
    ad = adapter(osrs)
    assert ad.poll() is None  # the first poll starts the fetcher: nothing fetched yet
    cap = poll_until(ad)
    assert cap is not None and cap.tick == 100
    doc = json.loads(cap.raw_json)
    assert doc == {"events": EVENTS, "inv": INV, "stats": STATS}
    assert (cap.features == osrs.features(doc)).all()
    assert cap.features.any()  # the spec found values in the merged document
    assert ad.describe() == f"http:{server.url}" and ad.spec_name == "osrs"


def test_fresh_only_when_the_game_tick_changes(server, osrs, adapter):
    ad = adapter(osrs)
    assert poll_until(ad).tick == 100
    rounds, ok = ad.rounds, ad.counters["ok"]
    assert wait_for(ad, lambda: ad.rounds >= rounds + 3) and ad.counters["ok"] == ok  # same tick: nothing fresh
    server.docs["events"]["game tick"] = 101
    assert poll_until(ad).tick == 101
    server.docs["events"]["game tick"] = 3  # relog: the count restarts, still fresh
    assert poll_until(ad).tick == 3
    assert ad.counters["ok"] == 3


def test_without_a_game_tick_time_slices_ticks(server, osrs, adapter):
    del server.docs["events"]["game tick"]
    ad = adapter(osrs, tick_ms=300)
    first = poll_until(ad)
    assert first.tick == 0
    second = poll_until(ad)
    assert second.tick == 1 and second.t_ns - first.t_ns >= 300e6  # one per tick_ms, by fetch time


def test_min_interval_limits_requests(server, osrs, adapter):
    ad = adapter(osrs, min_interval_ms=10_000)
    assert poll_until(ad) is not None
    for _ in range(40):
        ad.poll()
        time.sleep(0.005)
    assert server.hits == 3  # one fetch of the three endpoints


def test_fetching_pauses_when_nobody_polls(server, osrs, adapter):
    ad = adapter(osrs, tick_ms=10)  # idle after 2 s without a poll
    assert poll_until(ad) is not None
    time.sleep(2.5)
    hits = server.hits
    time.sleep(0.5)
    assert server.hits == hits
    server.docs["events"]["game tick"] = 101
    assert ad.poll() is None and ad.counters["stale"] == 1  # the last round is 1 s old: not the current state
    assert poll_until(ad).tick == 101 and server.hits > hits


def test_malformed_body_is_skipped_and_counted(server, osrs, adapter):
    ad = adapter(osrs)
    server.raw["inv"] = b'[{"id": 1511, "quant'
    assert counted(ad, "malformed", 2) and ad.counters["ok"] == 0
    assert ad.counters["malformed.not_json"] >= 2 and ad.last_malformed.startswith(f"{server.url}/inv: not JSON")
    server.raw["inv"] = b"\xff\xfe\xfd"
    assert counted(ad, "malformed.not_utf8")
    del server.raw["inv"]
    assert poll_until(ad).tick == 100  # recovers


def test_error_answers_and_a_dead_server_feed_the_watchdog(server, osrs, adapter):
    ad = adapter(osrs, tick_ms=20)
    assert poll_until(ad) is not None
    server.status["stats"] = 204  # logged out: no content
    assert counted(ad, "errors.status") and ad.last_error.endswith("/stats: HTTP 204")
    server.status["stats"] = 500
    assert counted(ad, "errors.status", ad.counters["errors.status"] + 1)
    server.stop()  # the game client closes
    assert counted(ad, "errors.unreachable")
    assert wait_for(ad, lambda: ad.is_stale(4), timeout=5) and ad.ticks_since_fresh >= 4
    assert ad.counters["ok"] == 1


def test_refuses_remote_hosts_unless_allowed():
    for url in ("http://192.168.1.20:8081", "http://example.com:8081", "http://0.0.0.0:8081"):
        with pytest.raises(UserError, match="refusing non-loopback"):
            HttpAdapter(url)
    for url in ("http://localhost:8081", "http://127.0.0.1", "http://127.1.2.3:80", "http://[::1]:8081"):
        assert check_loopback(url) == url
    ad = HttpAdapter("http://192.168.1.20:8081", allow_remote=True)  # told: allowed
    assert ad.url == "http://192.168.1.20:8081"
    assert make_adapter("http:192.168.1.20:8081", allow_remote=True).url == "http://192.168.1.20:8081"


def test_refused_connection_counts_an_error(osrs, adapters):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    ad = HttpAdapter(f"http://127.0.0.1:{port}", osrs, min_interval_ms=20)
    adapters.append(ad)
    assert ad.poll() is None
    assert counted(ad, "errors.unreachable") and "Connection refused" in ad.last_error


def test_one_round_on_the_calling_thread(server, osrs, adapters):
    ad = HttpAdapter(server.url, osrs)
    adapters.append(ad)
    t_ns, doc, raw, feats = ad.fetch_round()
    assert doc["events"]["game tick"] == 100 and json.loads(raw) == doc and feats.shape == (128,)

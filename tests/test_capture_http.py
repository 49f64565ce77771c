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


def adapter(server, spec, **kw):
    kw.setdefault("min_interval_ms", 0)
    return HttpAdapter(server.url, spec, **kw)


def test_merges_the_endpoints_into_one_document_the_osrs_spec_reads(server, osrs):
    ad = adapter(server, osrs)
    cap = ad.poll()
    assert cap is not None and cap.tick == 100
    doc = json.loads(cap.raw_json)
    assert doc == {"events": EVENTS, "inv": INV, "stats": STATS}
    assert (cap.features == osrs.features(doc)).all()
    assert cap.features.any()  # the spec found values in the merged document
    assert ad.describe() == f"http:{server.url}" and ad.spec_name == "osrs"


def test_fresh_only_when_the_game_tick_changes(server, osrs):
    ad = adapter(server, osrs)
    assert ad.poll().tick == 100
    assert ad.poll() is None  # same tick
    server.docs["events"]["game tick"] = 101
    assert ad.poll().tick == 101
    server.docs["events"]["game tick"] = 3  # relog: the count restarts, still fresh
    assert ad.poll().tick == 3
    assert ad.counters["ok"] == 3


def test_without_a_game_tick_time_slices_ticks(server, osrs):
    del server.docs["events"]["game tick"]
    ad = adapter(server, osrs, tick_ms=400)  # long enough that two polls fit in one tick on a loaded machine
    assert ad.poll().tick == 0
    assert ad.poll() is None  # within the same 400 ms
    time.sleep(0.45)
    assert ad.poll().tick == 1


def test_min_interval_limits_requests(server, osrs):
    ad = HttpAdapter(server.url, osrs, min_interval_ms=10_000)
    ad.poll()
    hits = server.hits
    for _ in range(20):
        ad.poll()
    assert server.hits == hits == 3  # one fetch of the three endpoints


def test_malformed_body_is_skipped_and_counted(server, osrs):
    ad = adapter(server, osrs)
    server.raw["inv"] = b'[{"id": 1511, "quant'
    assert ad.poll() is None and ad.poll() is None
    assert ad.counters["malformed"] == 2 and ad.counters["ok"] == 0
    server.raw["inv"] = b"\xff\xfe\xfd"
    assert ad.poll() is None and ad.counters["malformed"] == 3
    del server.raw["inv"]
    assert ad.poll().tick == 100  # recovers


def test_error_answers_and_a_dead_server_feed_the_watchdog(server, osrs):
    ad = adapter(server, osrs, tick_ms=20, timeout_s=0.5)
    assert ad.poll() is not None
    server.status["stats"] = 204  # logged out: no content
    assert ad.poll() is None and ad.counters["errors"] == 1
    server.status["stats"] = 500
    assert ad.poll() is None and ad.counters["errors"] == 2
    server.stop()  # the game client closes
    time.sleep(0.1)
    assert ad.poll() is None and ad.counters["errors"] == 3
    assert ad.ticks_since_fresh >= 4 and ad.is_stale(4)


def test_refuses_remote_hosts_unless_allowed():
    for url in ("http://192.168.1.20:8081", "http://example.com:8081", "http://0.0.0.0:8081"):
        with pytest.raises(UserError, match="refusing non-loopback"):
            HttpAdapter(url)
    for url in ("http://localhost:8081", "http://127.0.0.1", "http://127.1.2.3:80", "http://[::1]:8081"):
        assert check_loopback(url) == url
    ad = HttpAdapter("http://192.168.1.20:8081", allow_remote=True)  # told: allowed
    assert ad.url == "http://192.168.1.20:8081"
    assert make_adapter("http:192.168.1.20:8081", allow_remote=True).url == "http://192.168.1.20:8081"


def test_refused_connection_counts_an_error(osrs):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    ad = HttpAdapter(f"http://127.0.0.1:{port}", osrs, min_interval_ms=0)
    assert ad.poll() is None and ad.counters["errors"] == 1

"""Capture adapters against hostile sources: they never raise, never block, never take it all in.

Real files, real FIFOs, a real HTTP server in a thread that drips, floods and redirects; each bad
document is counted `malformed` with its reason and skipped, and good ones after it still arrive.
"""

import json
import os
import re
import threading
import time
import tracemalloc
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from ilbot.agent.capture import make_adapter
from ilbot.agent.capture.base import MAX_TICK, Malformed, parse_document
from ilbot.agent.capture.http import FetchError, HttpAdapter, fetch
from ilbot.agent.capture.json_dir import JsonDirAdapter
from ilbot.agent.capture.replay import ReplayAdapter
from ilbot.data.featurespec import spec_from_dict
from ilbot.data.store import SessionWriter
from ilbot.errors import UserError

HOSTILE = {  # name → (document bytes, the reason it is refused)
    "utf16": ('{"tick": 1, "hp": 5}'.encode("utf-16"), "not_utf8"),
    "deep": (b'{"tick": 1, "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "too_deep"),
    "deep_unclosed": (b"[" * 100_000, "too_deep"),
    "int400": (b'{"tick": 1, "hp": ' + b"7" * 400 + b"}", "bad_number"),
    "int5000": (b'{"tick": 1, "hp": ' + b"7" * 5000 + b"}", "bad_number"),
    "surrogate_escape": (b'{"tick": 1, "name": "\\ud800"}', "bad_string"),
    "surrogate_bytes": (b'{"tick": 1, "name": "\xed\xa0\x80"}', "not_utf8"),
    "nan": (b'{"tick": 1, "hp": NaN}', "bad_number"),
    "inf": (b'{"tick": 1, "hp": 1e999}', "bad_number"),
    "tick_2_63": (b'{"tick": 9223372036854775808}', "bad_number"),
    "tick_huge_float": (b'{"tick": 1e300}', "bad_tick"),
    "tick_negative": (b'{"tick": -5}', "bad_tick"),
    "tick_over_max": (json.dumps({"tick": MAX_TICK + 1}).encode(), "bad_tick"),
    "truncated": (b'{"tick": 1, "hp"', "not_json"),
}


@pytest.fixture
def hp_spec():
    return spec_from_dict({"name": "hp", "slot": [
        {"index": 0, "path": "hp", "transform": "scale", "scale": 0.01},
        {"index": 1, "count": 127, "transform": "zero"}]})


def write(folder, name, data: bytes, age_s=0.0):
    """Write a file the way a game plugin does (temp + replace), optionally aged."""
    tmp = folder / (name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, folder / name)
    if age_s:
        t = time.time() - age_s
        os.utime(folder / name, (t, t))


def timed_poll(ad):
    t = time.monotonic()
    cap = ad.poll()
    return cap, time.monotonic() - t


# -- the document check ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_parse_document_names_what_is_wrong(name):
    data, reason = HOSTILE[name]
    if reason == "bad_tick":
        doc, _ = parse_document(data)  # a fine document; its tick is checked where ticks are read
        return
    with pytest.raises(Malformed) as e:
        parse_document(data)
    assert e.value.reason == reason and e.value.detail


def test_parse_document_accepts_ordinary_json():
    doc, text = parse_document(b'\xef\xbb\xbf{"tick": 3, "a": [1, -2.5, "x\\"]]"], "e": "\\ud83d\\ude00", "b": '
                               b'"\\\\ud800", "n": null}')
    assert doc == {"tick": 3, "a": [1, -2.5, 'x"]]'], "e": "\U0001f600", "b": "\\ud800", "n": None}
    assert text.startswith('{"tick"')  # the BOM is dropped
    deep_ok = b"[" * 60 + b"]" * 60
    assert parse_document(deep_ok)[0] is not None
    with pytest.raises(Malformed, match="too_deep"):
        parse_document(deep_ok, max_depth=10)
    with pytest.raises(Malformed, match="too_large"):
        parse_document(b"[1, 2, 3]", max_bytes=5)


# -- json-dir ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_json_dir_counts_each_hostile_file_and_goes_on(tmp_path, hp_spec, name):
    data, reason = HOSTILE[name]
    ad = JsonDirAdapter(tmp_path, hp_spec, settle_ms=0)
    write(tmp_path, "tick_1.json", data)
    cap, took = timed_poll(ad)
    assert cap is None and took < 2.0  # a generous bound: it returned, it did not hang
    assert ad.counters["malformed"] == 1 and ad.counters[f"malformed.{reason}"] == 1
    assert ad.last_malformed.startswith(str(tmp_path / "tick_1.json"))
    assert ad.poll() is None and ad.counters["malformed"] == 1  # counted once
    write(tmp_path, "tick_2.json", json.dumps({"tick": 2, "hp": 40}).encode())
    cap = ad.poll()
    assert cap.tick == 2 and cap.features[0] == pytest.approx(0.4)


def test_json_dir_fifo_never_blocks(tmp_path, hp_spec):
    """A FIFO named like a tick file, with no writer: opening it for reading would block."""
    ad = JsonDirAdapter(tmp_path, hp_spec)
    os.mkfifo(tmp_path / "tick_9.json")
    result = {}
    t = threading.Thread(target=lambda: result.update(cap=ad.poll()), daemon=True)
    t.start()
    t.join(5.0)  # a generous bound; before the fix this never returned
    assert not t.is_alive(), "poll() blocked on a FIFO"
    assert result["cap"] is None and ad.counters["malformed.not_regular"] == 1
    write(tmp_path, "tick_10.json", b'{"tick": 10, "hp": 1}')
    assert ad.poll().tick == 10


def test_json_dir_refuses_links_devices_and_folders(tmp_path, hp_spec):
    ad = JsonDirAdapter(tmp_path, hp_spec)
    os.symlink("/dev/zero", tmp_path / "tick_1.json")
    assert ad.poll() is None and ad.counters["malformed.not_regular"] == 1
    secret = tmp_path.parent / f"{tmp_path.name}-secret.json"
    secret.write_text('{"tick": 2, "password": "hunter2"}')
    os.symlink(secret, tmp_path / "tick_2.json")  # a link out of the folder
    assert ad.poll() is None and ad.counters["malformed.not_regular"] == 2
    (tmp_path / "tick_3.json").mkdir()
    assert ad.poll() is None and ad.counters["malformed.not_regular"] == 3
    assert ad.counters["ok"] == 0


def test_json_dir_huge_file_is_refused_without_reading_it(tmp_path, hp_spec):
    big = tmp_path / "tick_1.json"
    with open(big, "wb") as f:  # 64 MiB, sparse: cheap to make, costly to read
        f.truncate(64 * 1024 * 1024)
    ad = JsonDirAdapter(tmp_path, hp_spec)
    tracemalloc.start()
    try:
        assert ad.poll() is None
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert ad.counters["malformed.too_large"] == 1 and peak < 1024 * 1024
    small = JsonDirAdapter(tmp_path, hp_spec, max_bytes=100)
    write(tmp_path, "tick_2.json", json.dumps({"tick": 2, "pad": "x" * 200}).encode())
    assert small.poll() is None and small.counters["malformed.too_large"] == 1


def test_json_dir_absurd_tick_in_the_file_name(tmp_path, hp_spec):
    ad = JsonDirAdapter(tmp_path, hp_spec)
    write(tmp_path, "tick_" + "9" * 200 + ".json", b'{"hp": 1}')  # no "tick": the name's number is too long
    cap = ad.poll()
    assert cap is not None and cap.tick == 0  # not a tick number: the adapter's own counter
    write(tmp_path, "tick_9223372036854775807.json", b'{"hp": 2}')  # 19 digits: not read as a tick either
    assert ad.poll().tick == 1
    write(tmp_path, "tick_999999999999999999.json", b'{"hp": 3}')  # 18 digits: a tick (< 2^62)
    assert ad.poll().tick == 999999999999999999


def test_registry_checks_numeric_options(tmp_path):
    for value in (0, float("nan"), -600, float("inf"), "abc", True, 1e-300, 0.5, 1e300, 3_600_001):
        with pytest.raises(UserError, match=re.escape(f"tick_ms: expected a tick length in milliseconds, "
                                                      f"1..3.6e+06, got {value!r}")):
            make_adapter(f"json-dir:{tmp_path}", tick_ms=value)
    with pytest.raises(UserError, match="json-dir source: tick_ms"):  # an adapter made without the registry
        JsonDirAdapter(tmp_path, None, tick_ms=1e-300)
    with pytest.raises(UserError, match="max_bytes must be a finite number >= 1"):
        make_adapter(f"json-dir:{tmp_path}", max_bytes=0)
    assert make_adapter(f"json-dir:{tmp_path}", max_bytes=10, max_depth=3).max_depth == 3


# -- http ------------------------------------------------------------------------------------------
class HostileServer:
    """/events, /inv, /stats as a game client serves them; `mode[endpoint]` makes one hostile:
    "drip" (one byte every 0.2 s, forever), "flood" (100 MB, with or without Content-Length),
    "redirect", or raw bytes to send as the body."""

    def __init__(self):
        self.mode: dict[str, object] = {}
        self.requests: list[str] = []
        self.aborted = 0  # hostile answers the client hung up on
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_GET(self):
                name = self.path.strip("/")
                server.requests.append(name)
                mode = server.mode.get(name)
                try:
                    if mode == "drip":
                        self.wfile.write(b"H")
                        for c in b"TTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" + b" " * 10_000:
                            time.sleep(0.2)
                            self.wfile.write(bytes([c]))
                            self.wfile.flush()
                    elif mode in ("flood", "flood-chunked"):
                        self.send_response(200)
                        if mode == "flood":
                            self.send_header("Content-Length", str(100_000_000))
                        self.end_headers()
                        block = b"[" + b"1," * 500_000
                        for _ in range(100):
                            self.wfile.write(block)
                    elif mode == "redirect":
                        self.send_response(302)
                        self.send_header("Location", "/elsewhere")
                        self.end_headers()
                    else:
                        body = mode if isinstance(mode, bytes) else json.dumps(
                            {"events": {"game tick": 7, "hp": 50}, "inv": [], "stats": []}.get(name)).encode()
                        self.send_response(200)
                        self.send_header("Content-Length", str(len(body)))
                        self.end_headers()
                        self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    server.aborted += 1

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def hostile():
    s = HostileServer()
    yield s
    s.close()


@pytest.fixture
def adapters():
    made = []
    yield made
    for ad in made:
        ad.close()


def poll_for(ad, seconds):
    """Poll like a live caller (every 5 ms) for `seconds`: (captures, slowest poll in s)."""
    caps, slowest = [], 0.0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        cap, took = timed_poll(ad)
        slowest = max(slowest, took)
        if cap is not None:
            caps.append(cap)
        time.sleep(0.005)
    return caps, slowest


def test_fetch_gives_up_on_a_dripping_server_at_the_deadline(hostile):
    hostile.mode["events"] = "drip"
    t = time.monotonic()
    with pytest.raises(FetchError) as e:
        fetch(f"{hostile.url}/events", time.monotonic() + 0.5)
    took = time.monotonic() - t
    assert e.value.kind == "timeout" and 0.45 <= took < 1.5  # the 0.5 s deadline, whatever the drip


def test_dripping_server_never_holds_poll_and_the_watchdog_counts(hostile, adapters):
    hostile.mode["events"] = "drip"
    # A poll that waited on the network would take the whole 2 s deadline (the drip never ends);
    # half of it separates the two on a loaded machine, where a thread switch alone took 0.28 s.
    ad = HttpAdapter(hostile.url, None, tick_ms=100, timeout_s=2.0, min_interval_ms=20)
    adapters.append(ad)
    caps, slowest = poll_for(ad, 4.5)
    assert caps == [] and slowest < 1.0  # poll() never waits on the network
    assert ad.counters["errors.timeout"] >= 2  # each round gave up at its 2 s deadline
    assert ad.is_stale(20) and "no whole answer within the deadline" in ad.last_error
    hostile.mode.clear()  # the server recovers: state flows again (after the round in flight)
    caps, _ = poll_for(ad, 3.5)
    assert caps and caps[0].tick == 7


@pytest.mark.parametrize("mode", ["flood", "flood-chunked"])
def test_a_100_mb_body_is_refused_without_taking_it_in(hostile, mode):
    hostile.mode["events"] = mode
    tracemalloc.start()
    try:
        with pytest.raises(Malformed) as e:
            fetch(f"{hostile.url}/events", time.monotonic() + 30, max_bytes=4 * 1024 * 1024)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert e.value.reason == "too_large"
    assert peak < 16 * 1024 * 1024  # the 4 MiB cap and a chunk, not 100 MB


def test_adapter_counts_a_flood_as_malformed(hostile, adapters):
    hostile.mode["inv"] = "flood-chunked"
    ad = HttpAdapter(hostile.url, None, timeout_s=5, max_bytes=1024 * 1024, min_interval_ms=20)
    adapters.append(ad)
    t_end = time.monotonic() + 10
    while ad.counters.get("malformed.too_large", 0) < 1 and time.monotonic() < t_end:
        ad.poll()
        time.sleep(0.01)
    assert ad.counters["malformed.too_large"] >= 1 and ad.counters["ok"] == 0


def test_redirects_are_refused_not_followed(hostile):
    hostile.mode["events"] = "redirect"
    with pytest.raises(FetchError) as e:
        fetch(f"{hostile.url}/events", time.monotonic() + 2)
    assert e.value.kind == "redirect" and "/elsewhere" in e.value.detail
    assert hostile.requests == ["events"]  # /elsewhere never asked


@pytest.mark.parametrize("name", ["utf16", "deep", "int400", "surrogate_escape", "nan", "tick_2_63", "tick_negative"])
def test_hostile_bodies_are_counted_malformed(hostile, adapters, name):
    data, reason = HOSTILE[name]
    hostile.mode["events"] = data
    ad = HttpAdapter(hostile.url, None, min_interval_ms=20)
    adapters.append(ad)
    t_end = time.monotonic() + 10
    while ad.counters["malformed"] < 2 and time.monotonic() < t_end:
        assert ad.poll() is None
        time.sleep(0.01)
    assert ad.counters[f"malformed.{reason}"] >= 2 and ad.counters["ok"] == 0
    assert ad.last_malformed.startswith(f"{hostile.url}")


# -- replay ------------------------------------------------------------------------------------------
def test_replay_skips_damaged_ticks_and_ends_on_an_unreadable_store(tmp_path):
    import sqlite3

    path = tmp_path / "s.ilbot.sqlite"
    with SessionWriter(path, {"tick_ms": 600.0}) as w:
        for i in range(4):
            w.add_tick(i, i * 600_000_000, {"tick": i}, np.full(128, i, np.float32))
    with sqlite3.connect(path) as c:
        c.execute("UPDATE ticks SET features = ? WHERE tick = 2", (b"\x00" * 7,))
    ad = ReplayAdapter(path, speed=None)
    got = []
    for _ in range(6):
        cap = ad.poll()  # never raises
        if cap is not None:
            got.append(cap.tick)
    assert got[:2] == [0, 1] and 2 not in got
    assert ad.finished and ad.counters["malformed"] + ad.counters["errors"] >= 1

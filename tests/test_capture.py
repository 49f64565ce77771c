"""Capture adapters without a display: the interface, the watchdog, json-dir and the registry."""

import json
import os
import time

import numpy as np
import pytest

from ilbot.agent.capture import Capture, StaleWatchdog, make_adapter, parse_region
from ilbot.agent.capture.base import tick_of
from ilbot.agent.capture.json_dir import JsonDirAdapter
from ilbot.data.featurespec import load_spec, spec_from_dict
from ilbot.errors import UserError


class ManualClock:
    """A monotonic clock the test advances by hand (ns)."""

    def __init__(self):
        self.now = 1_000_000_000

    def __call__(self):
        return self.now

    def advance_ms(self, ms):
        self.now += int(ms * 1e6)


@pytest.fixture
def hp_spec():
    """A real spec: slot 0 = hp / 100, slot 1 = xp / 1000, the rest zero."""
    return spec_from_dict({"name": "hp", "slot": [
        {"index": 0, "path": "hp", "transform": "scale", "scale": 0.01},
        {"index": 1, "path": "xp", "transform": "scale", "scale": 0.001},
        {"index": 2, "count": 126, "transform": "zero"},
    ]})


def write_state(folder, n, doc, age_s=0.0, atomic=True):
    """Write tick_<n>.json like a game plugin does (temp file + os.replace), optionally aged."""
    path = folder / f"tick_{n}.json"
    text = doc if isinstance(doc, str) else json.dumps(doc)
    if atomic:
        tmp = folder / f"tick_{n}.json.tmp"
        tmp.write_text(text)
        os.replace(tmp, path)
    else:
        path.write_text(text)
    if age_s:
        t = time.time() - age_s
        os.utime(path, (t, t))
    return path


def test_watchdog_counts_whole_ticks():
    clock = ManualClock()
    wd = StaleWatchdog(tick_ms=600, clock=clock)
    assert wd.ticks_since_fresh == 0
    clock.advance_ms(599)
    assert wd.ticks_since_fresh == 0 and not wd.is_stale(1)
    clock.advance_ms(1)
    assert wd.ticks_since_fresh == 1 and wd.is_stale(1) and not wd.is_stale(2)
    clock.advance_ms(1800)
    assert wd.ticks_since_fresh == 4
    wd.fresh()
    assert wd.ticks_since_fresh == 0
    with pytest.raises(ValueError):
        StaleWatchdog(tick_ms=0)


def test_tick_of_reads_integers_only():
    assert tick_of({"tick": 5}, "tick") == 5
    assert tick_of({"game tick": 7.0}, "tick", "game tick") == 7
    assert tick_of({"tick": True}, "tick") is None
    assert tick_of({"tick": "5"}, "tick") is None
    assert tick_of([1, 2], "tick") is None


def test_json_dir_newest_file_wins_and_each_file_is_delivered_once(tmp_path, hp_spec):
    ad = JsonDirAdapter(tmp_path, hp_spec)
    assert ad.poll() is None  # empty folder
    write_state(tmp_path, 1, {"tick": 1, "hp": 10})
    write_state(tmp_path, 2, {"tick": 2, "hp": 20})
    cap = ad.poll()
    assert isinstance(cap, Capture) and cap.tick == 2
    assert cap.features.shape == (128,) and cap.features.dtype == np.float32
    assert cap.features[0] == pytest.approx(0.2)
    assert json.loads(cap.raw_json) == {"tick": 2, "hp": 20}
    assert cap.t_ns <= time.monotonic_ns()
    assert ad.poll() is None  # nothing new
    write_state(tmp_path, 3, {"tick": 3, "hp": 30})
    assert ad.poll().tick == 3
    assert ad.counters == {"ok": 2, "malformed": 0, "stale": 0, "errors": 0}


def test_json_dir_tick_from_name_then_counter(tmp_path, hp_spec):
    ad = JsonDirAdapter(tmp_path, hp_spec)
    write_state(tmp_path, 41, {"hp": 1})
    assert ad.poll().tick == 41  # no "tick" in the document: the name's number
    p = tmp_path / "state.json"
    p.write_text(json.dumps({"hp": 2}))
    t = time.time() + 1  # newer than tick_41.json
    os.utime(p, (t, t))
    assert ad.poll().tick == 42  # neither: continue the count


def test_json_dir_ignores_stale_files_tmp_files_and_hidden_files(tmp_path, hp_spec):
    ad = JsonDirAdapter(tmp_path, hp_spec, stale_ms=1000)
    write_state(tmp_path, 9, {"tick": 9, "hp": 90}, age_s=5)
    (tmp_path / "tick_10.json.tmp").write_text('{"tick": 10')
    (tmp_path / ".tick_11.json").write_text('{"tick": 11}')
    assert ad.poll() is None
    assert ad.poll() is None
    assert ad.counters["stale"] == 1  # counted once, not per poll
    write_state(tmp_path, 12, {"tick": 12, "hp": 5})
    assert ad.poll().tick == 12


def test_json_dir_malformed_document_is_skipped_and_counted(tmp_path, hp_spec):
    ad = JsonDirAdapter(tmp_path, hp_spec, settle_ms=0)
    write_state(tmp_path, 1, {"tick": 1, "hp": 10})
    assert ad.poll().tick == 1
    write_state(tmp_path, 2, '{"tick": 2, "hp": ')  # truncated
    assert ad.poll() is None
    assert ad.poll() is None
    assert ad.counters["malformed"] == 1
    write_state(tmp_path, 3, b"\xff\xfe not json".decode("latin-1"))
    assert ad.poll() is None and ad.counters["malformed"] == 2
    write_state(tmp_path, 4, {"tick": 4, "hp": 40})
    assert ad.poll().tick == 4  # and it carries on


def test_json_dir_half_written_file_is_retried_not_counted(tmp_path, hp_spec):
    """A non-atomic writer caught mid-write: retried until it settles, read once complete."""
    ad = JsonDirAdapter(tmp_path, hp_spec, settle_ms=5000)
    path = write_state(tmp_path, 7, '{"tick": 7, "hp"', atomic=False)
    assert ad.poll() is None
    assert ad.counters["malformed"] == 0
    with open(path, "a") as fh:
        fh.write(': 70}')
    cap = ad.poll()
    assert cap.tick == 7 and cap.features[0] == pytest.approx(0.7)


def test_json_dir_watchdog_fires_when_the_game_stops_writing(tmp_path, hp_spec):
    clock = ManualClock()
    ad = JsonDirAdapter(tmp_path, hp_spec, clock=clock, tick_ms=600)
    write_state(tmp_path, 1, {"tick": 1})
    assert ad.poll() is not None
    for _ in range(5):
        clock.advance_ms(600)
        assert ad.poll() is None
    assert ad.ticks_since_fresh == 5 and ad.is_stale(5) and not ad.is_stale(6)
    write_state(tmp_path, 2, {"tick": 2})
    assert ad.poll() is not None and ad.ticks_since_fresh == 0


def test_json_dir_errors(tmp_path):
    with pytest.raises(UserError, match="not a folder"):
        JsonDirAdapter(tmp_path / "missing")
    ad = JsonDirAdapter(tmp_path / "made", create=True)
    ad.close()
    assert ad.poll() is None and ad.closed


def test_registry_builds_each_source(tmp_path, hp_spec):
    with make_adapter(f"json-dir:{tmp_path}", hp_spec) as ad:
        assert isinstance(ad, JsonDirAdapter) and ad.path == tmp_path and ad.spec is hp_spec
        assert ad.describe() == f"json-dir:{tmp_path}"
        assert ad.reports_ticks  # each file is a game tick: the runtime starts ticks on them
    ad = make_adapter(f"json-dir:{tmp_path}")  # default spec for json-dir: empty
    assert ad.spec_name == "empty" and ad.spec_hash == load_spec("empty").hash
    ad = make_adapter(f"json-dir:{tmp_path}", "osrs")  # a spec by name
    assert ad.spec_name == "osrs"
    sandbox = make_adapter(f"sandbox:{tmp_path / 'state'}", hp_spec)
    assert isinstance(sandbox, JsonDirAdapter) and (tmp_path / "state").is_dir()
    h = make_adapter("http")
    assert h.url == "http://localhost:8081" and h.spec_name == "osrs"
    assert make_adapter("http:127.0.0.1:9000", hp_spec).url == "http://127.0.0.1:9000"
    assert make_adapter("http://127.0.0.1:9001/", hp_spec).url == "http://127.0.0.1:9001"
    assert make_adapter("http:http://[::1]:9002", hp_spec).url == "http://[::1]:9002"


def test_registry_sandbox_default_state_dir(monkeypatch, tmp_path):
    """The default folder comes from ilbot.data.paths (created for this user only); the
    environment overrides it."""
    from ilbot.agent.capture.registry import sandbox_state_dir

    monkeypatch.setenv("ILBOT_SANDBOX_STATE", str(tmp_path / "s"))
    assert sandbox_state_dir() == tmp_path / "s" and (tmp_path / "s").is_dir()
    monkeypatch.delenv("ILBOT_SANDBOX_STATE")
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert sandbox_state_dir() == tmp_path / "cache" / "ilbot" / "sandbox-state"
    assert (tmp_path / "cache" / "ilbot").stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize("source,message", [
    ("bogus:x", "unknown capture source 'bogus:x'"),
    ("json-dir", "needs a folder"),
    ("replay", "needs a session"),
    ("screen", "needs a region"),
    ("screen:1,2,3", "expected x,y,width,height"),
    ("screen:0,0,0,10", "must be positive"),
    ("http:ftp://localhost", "not an http"),
    ("http:10.0.0.5:8081", "refusing non-loopback host '10.0.0.5'"),
    ("http:example.com", "refusing non-loopback host 'example.com'"),
])
def test_registry_errors_are_one_line_user_errors(source, message):
    with pytest.raises(UserError, match=message) as e:
        make_adapter(source)
    assert "\n" not in str(e.value)


def test_parse_region():
    assert parse_region("1, 2,30,40") == (1, 2, 30, 40)


def test_json_dir_without_a_spec_gives_zero_features(tmp_path):
    ad = JsonDirAdapter(tmp_path)
    write_state(tmp_path, 1, {"tick": 1, "hp": 3})
    cap = ad.poll()
    assert cap.tick == 1 and not cap.features.any() and ad.spec_name is None and ad.spec_hash is None


def test_json_dir_folder_removed_counts_errors(tmp_path):
    folder = tmp_path / "state"
    ad = JsonDirAdapter(folder, create=True)
    folder.rmdir()
    assert ad.poll() is None and ad.counters["errors"] == 1

"""The replay adapter: a recorded session's game state at recorded or accelerated speed."""

import json

import numpy as np
import pytest

from ilbot.agent.capture import make_adapter
from ilbot.agent.capture.replay import ReplayAdapter
from ilbot.data.featurespec import spec_from_dict
from ilbot.data.store import SessionWriter
from ilbot.errors import UserError


class ManualClock:
    def __init__(self):
        self.now = 5_000_000_000

    def __call__(self):
        return self.now

    def advance_ms(self, ms):
        self.now += int(ms * 1e6)


@pytest.fixture
def session(tmp_path):
    """Ten ticks 600 ms apart; tick i has hp = i, features[0] = i."""
    path = tmp_path / "s.ilbot.sqlite"
    with SessionWriter(path, {"source": "test", "tick_ms": 600.0, "feature_spec": "stored",
                              "feature_spec_hash": "abc"}) as w:
        for i in range(10):
            feats = np.zeros(128, np.float32)
            feats[0] = i
            w.add_tick(100 + i, 1_000_000 + i * 600_000_000, json.dumps({"hp": i}), feats)
    return path


def test_as_fast_as_polled_gives_every_tick_in_order(session):
    ad = ReplayAdapter(session, speed=None)
    caps = []
    while not ad.finished:
        caps.append(ad.poll())
    assert [c.tick for c in caps] == list(range(100, 110))
    assert [c.features[0] for c in caps] == list(range(10))
    assert json.loads(caps[3].raw_json) == {"hp": 3}
    assert ad.poll() is None and ad.counters["stale"] == 0
    assert ad.spec_name == "stored" and ad.spec_hash == "abc" and ad.tick_ms == 600.0
    assert ad.describe() == f"replay:{session}"


def test_recorded_speed_follows_the_clock_and_newest_wins(session):
    clock = ManualClock()
    ad = ReplayAdapter(session, speed=2.0, clock=clock)  # 300 ms per tick
    assert ad.poll().tick == 100
    assert ad.poll() is None
    clock.advance_ms(299)
    assert ad.poll() is None
    clock.advance_ms(1)
    cap = ad.poll()
    assert cap.tick == 101 and cap.t_ns == clock.now
    clock.advance_ms(900)  # ticks 102, 103, 104 due: the newest wins
    assert ad.poll().tick == 104 and ad.counters["stale"] == 2
    clock.advance_ms(10_000)
    assert ad.poll().tick == 109 and ad.finished


def test_a_different_spec_recomputes_features_from_raw_json(session):
    spec = spec_from_dict({"name": "hp", "slot": [
        {"index": 0, "path": "hp", "transform": "scale", "scale": 10.0},
        {"index": 1, "count": 127, "transform": "zero"}]})
    ad = make_adapter(f"replay:{session}", spec, speed=None)
    assert isinstance(ad, ReplayAdapter) and ad.recompute
    caps = [ad.poll() for _ in range(3)]
    assert [c.features[0] for c in caps] == [0.0, 10.0, 20.0]
    assert ad.spec_name == "hp" and ad.spec_hash == spec.hash


def test_speed_options(session, tmp_path):
    assert ReplayAdapter(session, speed=0).speed is None
    assert ReplayAdapter(session, speed=float("inf")).speed is None
    for bad in (-1, float("nan"), -float("inf"), "fast", 1e-300, 0.001, 1e300, 1001):
        with pytest.raises(UserError, match=r"replay speed must be a number in 0\.01\.\.1000 or 'max'"):
            ReplayAdapter(session, speed=bad)
    empty = tmp_path / "e.ilbot.sqlite"
    SessionWriter(empty, {}).close()
    ad = ReplayAdapter(empty)
    assert ad.finished and ad.poll() is None


def test_missing_session_is_a_user_error(tmp_path):
    from ilbot.errors import UserError

    with pytest.raises(UserError, match="no such session"):
        make_adapter(f"replay:{tmp_path / 'nope.ilbot.sqlite'}")

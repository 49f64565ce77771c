"""Replay in dry run: action conversion, move thinning, timing through the scheduler, the CLI."""

from __future__ import annotations

import io
import json
import threading
import time

import pytest

from ilbot.agent.executors.dry_run import DryRunExecutor
from ilbot.agent.replay import ReplayConfig, SessionReplay, action_of, thin_moves
from ilbot.cli import main as cli_main
from ilbot.data.keys import key_id
from ilbot.data.schema import Button, Event, EventType, KeyAction
from ilbot.data.store import SessionWriter
from ilbot.errors import ConfigError, UserError

MS = 1_000_000
WINDOW = {"x": 10, "y": 20, "width": 640, "height": 480}


def _session(path, events, window=WINDOW):
    with SessionWriter(path, {"window": window}) as w:
        for e in events:
            w.add_event(e)
    return path


def _events():
    evs = [Event.make(i * 2 * MS, 10 + i, 10 + i) for i in range(50)]  # a 500 Hz mouse trail, 0..98 ms
    evs.append(Event.make(100 * MS, 60, 60, button=Button.LEFT, hold_ms=90))
    evs.append(Event.make(300 * MS, 61, 61, key_action=KeyAction.PRESS, key_id=key_id("w")))
    evs.append(Event.make(380 * MS, 61, 61, key_action=KeyAction.RELEASE, key_id=key_id("w")))
    evs.append(Event.make(500 * MS, 100, 50, scroll_y=1))
    evs.append(Event.make(700 * MS, 639, 479, button=Button.RIGHT))  # no recorded hold: default
    return evs


def test_action_of_carries_fields_and_scales_hold():
    e = Event.make(5 * MS, 3, 4, button=Button.RIGHT, hold_ms=100)
    a = action_of(e, 12.5, speed=2.0)
    assert (a.type, a.t_ms, a.x, a.y, a.button, a.hold_ms, a.source) == (EventType.CLICK, 12.5, 3, 4, 2, 50.0, "replay")
    k = action_of(Event.make(0, 1, 1, key_action=KeyAction.RELEASE, key_id=7), 0)
    assert (k.type, k.key_action, k.key_id, k.hold_ms) == (EventType.KEY, KeyAction.RELEASE, 7, 0.0)


def test_thin_moves_keeps_every_non_move_and_spaces_moves():
    evs = _events()
    kept = thin_moves(evs, 15.0, 8.0)
    assert [e for e in kept if e.type != EventType.MOVE] == [e for e in evs if e.type != EventType.MOVE]
    moves = [e.t_ns / MS for e in kept if e.type == EventType.MOVE]
    assert all(b - a >= 15 for a, b in zip(moves, moves[1:]))
    assert all(100 - t >= 8 for t in moves)  # none within the time floor before the click at 100 ms


def test_dry_replay_performs_everything_on_time(tmp_path):
    path = _session(tmp_path / "s.ilbot.sqlite", _events())
    ex = DryRunExecutor()
    rp = SessionReplay(path, ex, speed=4.0)
    summary = rp.run()
    log = list(ex.log)
    kinds = [(p.action.type, p.action.button, p.action.key_action) for p in log if p.action.type != EventType.MOVE]
    assert kinds == [(EventType.CLICK, 1, 0), (EventType.KEY, 0, 1), (EventType.KEY, 0, 2), (EventType.SCROLL, 0, 0),
                     (EventType.CLICK, 2, 0)]
    # window-relative → screen by the session's window origin
    click = next(p for p in log if p.action.type == EventType.CLICK)
    assert (click.screen_x, click.screen_y) == (10 + 60, 20 + 60)
    # times: 4x speed → the right click 700/4 ms after the first event
    t0 = log[0].t_ns
    right = next(p for p in log if p.action.button == Button.RIGHT)
    assert (right.t_ns - t0) / MS == pytest.approx(700 / 4, abs=15)
    assert right.action.hold_ms == pytest.approx(110 / 4)
    assert summary["recorded"] == 55 and summary["performed"] == len(log)
    assert summary["thinned_moves"] > 0 and not summary["stopped_early"]
    assert rp.scheduler.stopped and not ex.held_keys


def test_window_override_and_bounds(tmp_path):
    path = _session(tmp_path / "s.ilbot.sqlite", [Event.make(0, 5, 5, button=1, hold_ms=10),
                                                 Event.make(100 * MS, 700, 5, button=1, hold_ms=10)])
    ex = DryRunExecutor()
    summary = SessionReplay(path, ex, window="200,300,640,480", speed=10).run()
    assert [(p.screen_x, p.screen_y) for p in ex.log] == [(205, 305)]  # x=700 is outside a 640 px window
    assert summary["interventions"]["out_of_bounds"] == 1


def test_stop_ends_replay_early_and_releases(tmp_path):
    evs = [Event.make(0, 1, 1, key_action=KeyAction.PRESS, key_id=key_id("a"))]
    evs += [Event.make(i * 100 * MS, 1, 1) for i in range(1, 60)]  # 6 s of moves
    path = _session(tmp_path / "s.ilbot.sqlite", evs)
    ex = DryRunExecutor()
    rp = SessionReplay(path, ex)
    out = {}
    th = threading.Thread(target=lambda: out.update(rp.run()))
    th.start()
    time.sleep(0.5)
    assert ex.held_keys == {key_id("a")}
    t = time.monotonic()
    rp.stop()
    th.join(5)
    assert time.monotonic() - t < 1.0
    assert out["stopped_early"] and out["performed"] < 60
    assert not ex.held_keys  # released


def test_empty_session_and_bad_speed(tmp_path):
    path = _session(tmp_path / "e.ilbot.sqlite", [])
    assert SessionReplay(path, DryRunExecutor()).run()["performed"] == 0
    with pytest.raises(ConfigError, match="speed"):
        ReplayConfig(speed=0)


def test_cli_replay_dry_run_json(tmp_path, capsys):
    path = _session(tmp_path / "s.ilbot.sqlite", _events())
    assert cli_main(["replay", str(path), "--speed", "8", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["mode"] == "dry_run" and summary["performed"] >= 5
    assert summary["state"] == "stopped" and summary["reason"] == "finished"


def test_cli_replay_text_summary_and_errors(tmp_path, capsys):
    path = _session(tmp_path / "s.ilbot.sqlite", _events()[-2:])
    assert cli_main(["replay", str(path), "--speed", "8"]) == 0
    assert "performed: 2" in capsys.readouterr().out
    assert cli_main(["replay", str(tmp_path / "missing.ilbot.sqlite")]) == 2
    err = capsys.readouterr().err
    assert "missing.ilbot.sqlite" in err and len(err.strip().splitlines()) == 1
    assert cli_main(["replay", str(path), "--speed", "-1"]) == 2
    bad = tmp_path / "junk.ilbot.sqlite"
    bad.write_text("not sqlite")
    assert cli_main(["replay", str(bad)]) == 2


def test_live_needs_consent(tmp_path, capsys, monkeypatch):
    from ilbot.agent import play_commands

    path = _session(tmp_path / "s.ilbot.sqlite", _events())
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # not a terminal: no prompt possible
    assert cli_main(["replay", str(path), "--live"]) == 2
    assert "--i-understand" in capsys.readouterr().err

    class Tty(io.StringIO):
        def isatty(self):
            return True

    args = type("A", (), {"consent": False, "kill_hotkey": "f12"})()
    with pytest.raises(UserError, match="not confirmed"):
        play_commands.confirm_live(args, stdin=Tty("no\n"), out=io.StringIO())
    out = io.StringIO()
    play_commands.confirm_live(args, stdin=Tty("yes\n"), out=out)
    assert "terms of service" in out.getvalue() and "F12" in out.getvalue()


def test_pause_resume_hooks_and_chunk_limit(tmp_path):
    evs = [Event.make(i * 100 * MS, 5 + i, 5) for i in range(30)]  # 3 s of moves, 6 chunks of 500 ms
    path = _session(tmp_path / "s.ilbot.sqlite", evs)
    ex = DryRunExecutor()
    rp = SessionReplay(path, ex, speed=2.0)  # 1.5 s of replay
    plans, counts, states, progress = [], [], [], []
    rp.on_plan.append(lambda k, a: plans.append((k, len(a))))
    rp.on_counters.append(counts.append)
    rp.on_state.append(lambda s, r: states.append((s, r)))
    out = {}
    th = threading.Thread(target=lambda: out.update(rp.run(on_progress=lambda i, n: progress.append((i, n)))))
    th.start()
    time.sleep(0.3)
    rp.pause()
    rp.pause()  # twice: no-op
    n_paused = len(ex.log)
    time.sleep(0.4)
    assert len(ex.log) == n_paused and rp.paused and rp.counters["state"] == "paused"
    rp.resume()
    th.join(10)
    assert states == [("paused", "user"), ("running", ""), ("stopped", "finished")]
    assert out["stopped_early"] is False and out["performed"] < 30  # the chunk cancelled by the pause is lost
    assert plans and counts and progress[-1] == (30, 30)
    rp2 = SessionReplay(path, DryRunExecutor(), speed=2.0)
    c = rp2.run(ticks=2)
    assert c["stopped_early"] is True and c["reason"] == "ticks"  # two chunks only

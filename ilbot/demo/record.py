"""Recording the demonstrator: whole sessions as ordinary `*.ilbot.sqlite` stores.

`record_session` runs the game as its own process (`process.start_game`), the demonstrator in
this process (`DemoPolicy` → `GesturePerformer` → the agent's `PynputExecutor`, real input on
this DISPLAY) and the real recorder (`ilbot.agent.recorder.Recorder`: pynput listeners for the
input, its own json-dir adapter for the ticks — exactly what a person's recording goes through).
F12 (the kill switch) stops the demonstrator and releases everything; the recorder's stop hotkey
(F10) ends the session early. `record_sessions` is `ilbot sandbox demo`: one store per seed.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from ..agent.capture.json_dir import JsonDirAdapter
from ..agent.recorder import Recorder
from ..agent.window import WindowGeometry
from ..data.featurespec import load_spec
from ..data.store import open_session
from ..errors import UserError
from ..safety import KillSwitch
from ..sandbox.demonstrator import DemoConfig, DemoPolicy
from .perform import GesturePerformer
from .play import Demonstrator, StateFeed
from .process import end_game, game_output, start_game


def record_session(out_path: Path, *, ticks: int = 200, seed: int = 0, tick_ms: float = 600.0,
                   config: DemoConfig | None = None, timeout_s: float | None = None) -> dict:
    """Runs the game + demonstrator for `ticks` ticks while the real recorder records one
    session store at out_path (input through pynput listeners, ticks through its own json-dir
    adapter). Returns a summary: items gathered (the game's score), banked, misclicks, ticks
    recorded, events by type and events per recorded tick (from the store as written)."""
    if not os.environ.get("DISPLAY"):
        raise UserError("the sandbox demonstrator needs a display: DISPLAY is not set")
    out_path = Path(out_path)
    if out_path.exists():
        raise UserError(f"{out_path}: already exists (refusing to overwrite a session)")
    cfg = config or DemoConfig(seed=seed)
    spec = load_spec("sandbox")
    state_dir = Path(tempfile.mkdtemp(prefix="ilbot-sandbox-demo-"))
    game = start_game(state_dir, seed, ticks, tick_ms)
    feed = recorder = performer = kill = None
    final: dict = {}
    try:
        feed = StateFeed(JsonDirAdapter(state_dir, spec, tick_ms=tick_ms)).start()
        first = feed.wait_first(timeout_s=30.0)
        if first is None:
            out = game_output(game)
            raise UserError(f"sandbox game published no state in {state_dir} within 30 s {out.strip()[-300:]}")
        win = json.loads(first.raw_json)["window"]
        window = WindowGeometry(int(win["x"]), int(win["y"]), int(win["width"]), int(win["height"]), "ilbot sandbox")
        recorder = Recorder(out_path, window, JsonDirAdapter(state_dir, spec, tick_ms=tick_ms), spec=spec,
                            tick_ms=tick_ms, notes=f"ilbot sandbox demo, seed {seed}, user demonstrator",
                            all_input=True)  # its own private X server: every input there is the demonstrator's
        recorder.start()
        performer = GesturePerformer((window.x, window.y))
        demo = Demonstrator(DemoPolicy(cfg), performer, feed)

        def kill_now():
            demo.stop()
            performer.release_all()

        kill = KillSwitch("f12", on_trigger=kill_now).start()
        final = demo.run(until_tick=ticks, timeout_s=timeout_s or ticks * tick_ms / 1000.0 * 3 + 30,
                         alive=lambda: game.poll() is None and not recorder.stop_requested.is_set())
        performer.release_all()
        time.sleep(0.3)  # the last input reaches the recorder's listeners before it stops
        counters = recorder.stop()
    finally:
        if kill is not None:
            kill.stop()
        if performer is not None:
            performer.close()  # releases everything first
        if recorder is not None:
            recorder.stop()
        if feed is not None:
            feed.stop()
        end_game(game)
        shutil.rmtree(state_dir, ignore_errors=True)
    with open_session(out_path) as session:
        n_ticks = session.n_ticks
        counts: dict[str, int] = {}
        for e in session.events():
            counts[e.type.name] = counts.get(e.type.name, 0) + 1
    return {"path": str(out_path), "ticks": n_ticks, "items": int(final.get("score", 0)),
            "banked": int(final.get("banked", 0)), "misclicks": int(final.get("misclicks", 0)),
            "events": counts, "events_per_tick": sum(counts.values()) / max(1, n_ticks),
            "recorder": {k: v for k, v in counters.items() if v},
            "stopped_early": bool(kill.triggered.is_set() or int(final.get("tick", 0)) < ticks)}


MAX_MISCLICK_RATE = 0.1  # a session whose misclicks exceed this share of its clicks is set aside


def record_sessions(out_dir: Path, *, sessions: int, ticks: int, seed: int = 0, tick_ms: float = 600.0,
                    max_misclick_rate: float = MAX_MISCLICK_RATE) -> list[dict]:
    """`ilbot sandbox demo`: one store per session, seeds seed, seed+1, ...; prints progress.

    The demonstrator does not misclick when it keeps up with the game; on an overloaded machine a
    session can fall behind its state documents and click where nodes were (seen once in 16
    sessions: 182 misclicks, 53 items instead of ~115). Such a session is no demonstration of
    playing well, so it is renamed `*.rejected` (kept to look at, not read by `ilbot build`) and
    its result says `rejected`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for i in range(sessions):
        s = seed + i
        path = out_dir / f"sandbox-demo-seed{s}.ilbot.sqlite"
        print(f"[{i + 1}/{sessions}] recording {path.name}: {ticks} ticks (~{ticks * tick_ms / 1000:.0f} s) ...",
              flush=True)
        r = record_session(path, ticks=ticks, seed=s, tick_ms=tick_ms)
        print(f"[{i + 1}/{sessions}] {path.name}: {r['items']} items, {r['events_per_tick']:.1f} events/tick, "
              f"events {r['events']}", flush=True)
        clicks = int(r["events"].get("CLICK", 0))
        r["rejected"] = r["misclicks"] > max_misclick_rate * max(clicks, 1)
        if r["rejected"]:
            path.rename(path.with_name(path.name.replace(".ilbot.sqlite", ".rejected")))
            print(f"[{i + 1}/{sessions}] {path.name}: {r['misclicks']} misclicks in {clicks} clicks: set aside "
                  f"as {path.name.replace('.ilbot.sqlite', '.rejected')} (the demonstrator fell behind the game)", flush=True)
        results.append(r)
        if r["stopped_early"]:
            print(f"stopped early at tick {r['ticks']}: no further sessions", flush=True)
            break
    return results

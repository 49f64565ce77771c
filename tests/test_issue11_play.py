"""`ilbot play` without game state, as a person runs it: "waiting for game state from <source>…",
then one error line and a non-zero exit, within the 15 s the issue allows for the default 10 s
timeout — the wait counts from when the run began to be put together (loading the model and
starting the source are part of it), so a slow machine's start-up does not add to it."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from ilbot.agent.assemble import RunRequest, assemble
from ilbot.agent.runtime import NoGameState

ROOT = Path(__file__).resolve().parents[1]


def test_the_assembly_time_counts_toward_the_state_timeout(tmp_path):
    run = assemble(RunRequest(model=ROOT / "ilbot" / "sandbox" / "assets" / "model", source=f"json-dir:{tmp_path}",
                              state_timeout_s=10.0))
    assert run.config.startup_s > 0  # loading the model took some time
    run.config.startup_s = 9.5  # as if loading had taken 9.5 s of the 10 s
    t0 = time.monotonic()
    with pytest.raises(NoGameState, match=r"in 10 s"):
        run.run(5)
    took = time.monotonic() - t0
    assert took < 5.0, took  # ~0.5 s left of the wait, not 10 s
    assert run.stopped and run.reason == "no_state" and run.config.startup_s == 0.0


def test_play_on_an_empty_json_dir_gives_up_within_15_s(tmp_path):
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "ilbot.cli", "play", "--source", f"json-dir:{tmp_path}", "--ticks", "5"],
                       capture_output=True, text=True, timeout=60, cwd=ROOT)
    took = time.monotonic() - t0
    lines = r.stderr.strip().splitlines()
    assert r.returncode != 0 and "Traceback" not in r.stderr + r.stdout, r.stderr
    assert lines[0] == f"waiting for game state from json-dir:{tmp_path}…", lines
    assert lines[-1].startswith("ilbot play: error: no game state from json-dir:") and "in 10 s" in lines[-1], lines
    assert took <= 15.0, (took, lines)


def test_play_refuses_a_pause_key_that_is_the_kill_switch(tmp_path):
    r = subprocess.run([sys.executable, "-m", "ilbot.cli", "play", "--source", f"json-dir:{tmp_path}", "--live",
                        "--i-understand", "--pause-hotkey", "F12"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    last = r.stderr.strip().splitlines()[-1]
    assert r.returncode == 2 and "Traceback" not in r.stderr and "--pause-hotkey" in last and "kill switch" in last

"""The one assembly point (`ilbot.agent.assemble`): every front end's run is made there, and
there a model that is not the source's is refused, the window is resolved once, and the
execution mode picks the executor. The CLI and the app are driven as a person would."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from ilbot.agent.assemble import IncompatibleModel, Mode, RunRequest, assemble, check_compatible
from ilbot.agent.executors.dry_run import DryRunExecutor
from ilbot.agent.executors.sandbox_exec import SandboxExecutor
from ilbot.agent.sandbox_episode import play_episode
from ilbot.agent.window import WindowGeometry
from ilbot.data.keys import KEY_VOCAB
from ilbot.errors import UserError

from test_runtime_support import tiny_checkpoint

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "ilbot" / "sandbox" / "assets" / "model"


def _cli(*args, timeout=60, **kw):
    return subprocess.run([sys.executable, "-m", "ilbot.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, **kw)


@pytest.fixture(scope="module")
def other_model(tmp_path_factory):
    """A model trained on another feature spec (as a Balabit model is, for the sandbox)."""
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "other")


def test_shipped_model_on_screen_is_refused_naming_both_specs():
    r = _cli("play", "--model", str(SHIPPED), "--source", "screen:0,0,800,600")
    assert r.returncode != 0 and "Traceback" not in r.stderr
    line = r.stderr.strip()
    assert len(line.splitlines()) == 1 and "screen-grey" in line
    from ilbot.model import load_checkpoint

    assert load_checkpoint(SHIPPED).spec_hash[:12] in line


def test_other_model_on_the_sandbox_is_refused(other_model, tmp_path):
    with pytest.raises(IncompatibleModel, match="does not match source"):
        assemble(RunRequest(model=other_model, source=f"sandbox:{tmp_path}"))
    r = _cli("play", "--model", str(other_model), "--source", f"sandbox:{tmp_path}", "--ticks", "2")
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_key_vocabulary_must_be_the_sources(other_model):
    from ilbot.model import load_checkpoint

    ckpt = load_checkpoint(other_model)

    class Source:
        spec_hash = ckpt.spec_hash
        key_vocab = list(KEY_VOCAB)[:-1]

    with pytest.raises(IncompatibleModel, match="key vocabulary"):
        check_compatible(ckpt, Source, "x")
    Source.key_vocab = list(KEY_VOCAB)
    check_compatible(ckpt, Source, "x")  # the same: accepted


def test_empty_json_dir_waits_then_gives_up_in_one_line(tmp_path):
    t0 = time.monotonic()
    r = _cli("play", "--model", str(SHIPPED), "--source", f"json-dir:{tmp_path}", "--ticks", "5", timeout=40)
    took = time.monotonic() - t0
    assert r.returncode != 0 and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert lines[0].startswith("waiting for game state from json-dir:")
    assert "no game state" in lines[-1] and "10 s" in lines[-1]
    assert took < 30  # 10 s timeout plus start-up on a shared machine


def test_state_timeout_is_configurable_and_model_defaults_to_the_shipped_one(tmp_path):
    t0 = time.monotonic()
    r = _cli("play", "--source", f"json-dir:{tmp_path}", "--state-timeout", "1")
    assert r.returncode != 0 and "in 1 s" in r.stderr and time.monotonic() - t0 < 20


@pytest.mark.parametrize("bad", ["0", "nan", "-600", "inf"])
def test_tick_ms_is_range_checked(bad, tmp_path):
    r = _cli("play", "--model", str(SHIPPED), "--source", f"json-dir:{tmp_path}", "--tick-ms", bad)
    assert r.returncode != 0 and "tick-ms" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("speed", ["-1", "0", "nan", "fast"])
def test_replay_source_speed_is_checked(speed, tmp_path):
    with pytest.raises(UserError, match="speed"):
        assemble(RunRequest(model=SHIPPED, source=f"replay:{tmp_path / 's.ilbot.sqlite'}?speed={speed}"))


def test_main_py_bogus_source_is_one_line():
    r = subprocess.run([sys.executable, "main.py", "--source", "bogus"], capture_output=True, text=True, timeout=60,
                       cwd=ROOT)
    assert r.returncode != 0 and "Traceback" not in r.stderr + r.stdout
    assert len(r.stderr.strip().splitlines()) == 1 and "bogus" in r.stderr


def test_request_checks():
    with pytest.raises(UserError, match="either"):
        RunRequest()
    with pytest.raises(UserError, match="sandbox game"):
        RunRequest(model=SHIPPED, source="sandbox", mode="sandbox")
    with pytest.raises(UserError, match="execution mode"):
        RunRequest(model=SHIPPED, source="sandbox", mode="turbo")
    with pytest.raises(UserError, match="real time"):
        RunRequest(model=SHIPPED, source="sandbox", mode="live", realtime=False)
    assert Mode.parse("dry-run") is Mode.DRY_RUN and Mode.LIVE.label == "LIVE"


def test_play_model_that_is_a_file_names_the_file(tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("hi")
    r = _cli("play", "--model", str(f), "--source", "sandbox")
    assert r.returncode != 0 and "notes.txt" in r.stderr and "not a checkpoint folder" in r.stderr


def test_modes_pick_executors_and_window_resolves_once(tmp_path):
    from ilbot.sandbox.logic import GameConfig, SandboxGame

    game = SandboxGame(GameConfig(seed=0))
    run = assemble(RunRequest(model=SHIPPED, source=f"sandbox:{tmp_path}", window="10,20,800,600", mode="sandbox",
                              game=game, realtime=False))
    try:
        assert isinstance(run.executor.inner, SandboxExecutor) and run.mode is Mode.SANDBOX
        assert isinstance(run.window, WindowGeometry) and (run.window.x, run.window.y) == (10, 20)
        assert run.state.value == "waiting_for_state"
    finally:
        run.stop()
    assert run.state.value == "stopped" and run.reason == "user"
    run = assemble(RunRequest(model=SHIPPED, source=f"sandbox:{tmp_path}", realtime=False))
    try:
        assert isinstance(run.executor.inner, DryRunExecutor) and run.mode is Mode.DRY_RUN
    finally:
        run.stop()


def test_sandbox_mode_plays_and_dry_run_does_not():
    played = play_episode(str(SHIPPED), seed=0, ticks=60, mode="sandbox")
    shown = play_episode(str(SHIPPED), seed=0, ticks=60, mode="dry_run")
    assert played.game.score > 0 and played.counters["performed"] > 0
    assert shown.game.score == 0 and shown.counters["performed"] > 0  # shown, not applied

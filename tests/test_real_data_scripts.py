"""scripts/train_keystrokes.sh and scripts/train_balabit.sh (one body, scripts/real_data_splits.sh)
on data other than ../shared/data: other user ids, a single user, a rerun into the same folder.

The runs are a few optimizer steps on a small generated keystroke log: what is under test is the
scripts' import → build → train → calibrate → eval chain and its split choices, not the figures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _typing_log(path: Path, users: list[int], sessions: int = 3, keys: int = 60) -> None:
    rng = np.random.default_rng(0)
    rows = ["user,session,keyname,timepress,timerelease"]
    for u in users:
        for s in range(sessions):
            t = 1000.0
            for _ in range(keys):
                t += float(rng.gamma(2.0, 90.0))
                rows.append(f"{u},{s},{'abcdefgh'[int(rng.integers(8))]},{t:.0f},{t + rng.uniform(40, 140):.0f}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(rows) + "\n")


def _run(data: Path, work: Path, *extra: str, **env_vars: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATA": str(data), "WORK": str(work), "PY": sys.executable}
    env.pop("HOLDOUT_USERS", None)
    env.update(env_vars)
    return subprocess.run(["bash", str(ROOT / "scripts" / "train_keystrokes.sh"), "--set", "max_steps=2",
                           "--set", "val_every_steps=2", *extra], env=env, capture_output=True, text=True,
                          timeout=600)


def _val_users(ds: Path) -> set[int]:
    meta = json.loads((ds / "meta.json").read_text())
    return {s["user"] for s in meta["sessions"] if s["split"] == "val"}


def test_other_typists_get_a_seeded_share_held_out_and_a_rerun_replaces_the_scripts_outputs(tmp_path):
    data, work = tmp_path / "data", tmp_path / "work"
    _typing_log(data / "keystrokes" / "free_text_dev.csv", users=[101, 102, 103, 104, 105])  # none of 0, 5, …
    r = _run(data, work)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "no sessions of user 0 here; holding out a share of 0.2" in r.stderr
    held = _val_users(work / "dataset_users")
    assert len(held) == 1 and held <= {101, 102, 103, 104, 105}  # round(0.2 × 5) typists, whole
    for sfx in ("", "_users"):
        report = json.loads((work / f"report{sfx}" / "report.json").read_text())
        assert report["n_slots"]["all"] > 0 and (work / f"calibration{sfx}.txt").read_text()
    first = (work / "report_users" / "report.json").stat().st_mtime_ns
    r = _run(data, work, "--set", "seed=1")  # the same folder again: replaced, not refused
    assert r.returncode == 0, r.stderr[-2000:]
    assert (work / "report_users" / "report.json").stat().st_mtime_ns > first
    assert _val_users(work / "dataset_users") == held  # the build's seed, not the training's, draws them


def test_named_users_must_exist_and_one_typist_has_no_user_split(tmp_path):
    data = tmp_path / "data"
    _typing_log(data / "keystrokes" / "free_text_dev.csv", users=[7])
    r = _run(data, tmp_path / "one")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "user split: skipped, the data has 1 user(s)" in r.stderr
    assert (tmp_path / "one" / "report" / "report.json").exists()
    assert not (tmp_path / "one" / "dataset_users").exists()
    r = _run(data, tmp_path / "named", HOLDOUT_USERS="3", SPLITS="user")
    assert r.returncode != 0 and "no session of user(s) 3 (users: 7)" in r.stderr
    assert not (tmp_path / "named" / "dataset_users").exists()

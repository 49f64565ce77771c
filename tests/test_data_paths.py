"""ilbot.data.paths: the per-user folders shared by the sandbox and the agent (real folders)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ilbot.data import paths
from ilbot.errors import UserError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def no_env(monkeypatch, tmp_path):
    for var in ("ILBOT_SANDBOX_STATE", "XDG_RUNTIME_DIR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path


def test_default_is_under_the_users_cache_not_tmp(no_env):
    d = paths.sandbox_state_dir()
    assert d == no_env / "home" / ".cache" / "ilbot" / "sandbox-state" and not d.exists()  # not created
    assert paths.sandbox_state_dir(create=True) == d and d.is_dir()
    assert (d.parent.stat().st_mode & 0o777) == 0o700 and (d.stat().st_mode & 0o777) == 0o700


def test_xdg_runtime_dir_when_it_is_private_and_ours(no_env, monkeypatch):
    run = no_env / "run"
    run.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(run))
    assert paths.sandbox_state_dir(create=True) == run / "ilbot" / "sandbox-state"
    run.chmod(0o755)  # not private: not used
    assert paths.user_dir() == no_env / "home" / ".cache" / "ilbot"
    monkeypatch.setenv("XDG_RUNTIME_DIR", "relative/run")
    assert paths.user_dir() == no_env / "home" / ".cache" / "ilbot"


def test_a_planted_symlink_is_refused(no_env):
    elsewhere = no_env / "attacker"
    elsewhere.mkdir()
    base = no_env / "home" / ".cache" / "ilbot"
    base.parent.mkdir(parents=True)
    base.symlink_to(elsewhere)
    with pytest.raises(UserError, match="is a symlink"):
        paths.sandbox_state_dir(create=True)
    assert list(elsewhere.iterdir()) == []  # nothing written through it
    base.unlink()
    base.mkdir(mode=0o700)
    (base / "sandbox-state").symlink_to(elsewhere)
    with pytest.raises(UserError, match="sandbox-state: is a symlink"):
        paths.sandbox_state_dir(create=True)


def test_an_explicit_folder_is_checked_too_and_not_a_file(no_env, monkeypatch):
    target = no_env / "mine"
    monkeypatch.setenv("ILBOT_SANDBOX_STATE", str(target))
    assert paths.sandbox_state_dir() == target and not target.exists()
    assert paths.sandbox_state_dir(create=True) == target and target.is_dir()
    f = no_env / "file"
    f.write_text("x")
    monkeypatch.setenv("ILBOT_SANDBOX_STATE", str(f))
    with pytest.raises(UserError, match="not a folder"):
        paths.sandbox_state_dir(create=True)


def test_own_folder_is_tightened_but_an_explicit_one_keeps_its_mode(no_env, monkeypatch):
    base = no_env / "home" / ".cache" / "ilbot"
    base.mkdir(parents=True, mode=0o755)
    base.chmod(0o755)
    paths.sandbox_state_dir(create=True)
    assert base.stat().st_mode & 0o777 == 0o700
    shared = no_env / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    monkeypatch.setenv("ILBOT_SANDBOX_STATE", str(shared))
    assert paths.sandbox_state_dir(create=True) == shared and shared.stat().st_mode & 0o777 == 0o755


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="giving a folder away needs root")
def test_another_users_folder_is_refused(no_env):
    base = no_env / "home" / ".cache" / "ilbot"
    base.mkdir(parents=True, mode=0o700)
    os.chown(base, 4242, 4242)
    with pytest.raises(UserError, match="owned by uid 4242"):
        paths.sandbox_state_dir(create=True)


def test_sandbox_command_uses_the_default_and_refuses_a_symlink(no_env):
    """`ilbot sandbox` with no --state-dir: one line naming the planted symlink, exit 2."""
    base = no_env / "home" / ".cache" / "ilbot"
    base.parent.mkdir(parents=True)
    base.symlink_to(no_env)
    env = {**os.environ, "HOME": str(no_env / "home"), "DISPLAY": os.environ.get("DISPLAY", ":0")}
    out = subprocess.run([sys.executable, "-m", "ilbot.cli", "sandbox", "--ticks", "1"], capture_output=True,
                         text=True, cwd=ROOT, env=env, timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines() == [f"ilbot sandbox: error: {base}: is a symlink (to {no_env}); "
                                               "refusing to use it as ilbot's folder"]

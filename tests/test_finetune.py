"""Fine-tuning: the fine-tuned model keeps its base's normalisation (ilbot.training.normalisation)
and rehearses the base's windows at the configured share (ilbot.training.rehearsal); the app adds
the shipped dataset when it fine-tunes the shipped model."""

from __future__ import annotations

import numpy as np
import pytest

from ilbot.data.build import build_dataset
from ilbot.data.dataset import open_dataset
from ilbot.demo.virtual import play_demo_episode, write_session
from ilbot.errors import ConfigError
from ilbot.gui.train_panel import fine_tune_settings
from ilbot.model.checkpoint import load_checkpoint
from ilbot.sandbox import SHIPPED_DATASET, SHIPPED_MODEL
from ilbot.training.config import load_config
from ilbot.training.data import EpochSampler
from ilbot.training.loop import train
from ilbot.training.normalisation import Renormalised, renormalised
from ilbot.training.rehearsal import RehearsalWindows
from ilbot.training.synthetic import make_dataset

TINY = ["model={d_model=32, n_heads=2, n_context_layers=1, n_decoder_layers=1, ff_mult=2, dropout=0.0}",
        "data.batch_size=16", "optim.warmup_steps=0", "log_every_steps=5", "epochs=1", "data.epoch_windows=48"]


def _sandbox_dataset(root, seeds, ticks):
    paths = []
    for seed in seeds:
        paths.append(root / f"s{seed}.ilbot.sqlite")
        write_session(play_demo_episode(seed, ticks), paths[-1])
    build_dataset(paths, root / "dataset", split_by="session", holdout_frac=0.34, seed=0)
    return root / "dataset"


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    """A base dataset of sandbox play and a short one of other play: their feature statistics differ."""
    root = tmp_path_factory.mktemp("ft")
    (root / "base").mkdir()
    (root / "short").mkdir()
    return _sandbox_dataset(root / "base", (1, 2, 3), 80), _sandbox_dataset(root / "short", (7, 8), 30)


def test_renormalised_windows_are_the_raw_features_in_the_base_normalisation(two):
    base, short = open_dataset(two[0], split="train"), open_dataset(two[1], split="train")
    assert renormalised(short, short.stats) is short  # its own normalisation: nothing to do
    mean_b, std_b = (np.asarray(base.stats[k], np.float64) for k in ("feature_mean", "feature_std"))
    mean_s, std_s = (np.asarray(short.stats[k], np.float64) for k in ("feature_mean", "feature_std"))
    assert not np.allclose(mean_b, mean_s)
    r = renormalised(short, base.stats)
    assert isinstance(r, Renormalised) and len(r) == len(short) and r.spec_hash == short.spec_hash
    idx = np.arange(min(64, len(short)))
    raw = short.batch(idx)["gamestate"] * np.maximum(std_s, 1e-6) + mean_s  # [B, T, F] the features as captured
    want = (raw - mean_b) / np.maximum(std_b, 1e-6)
    np.testing.assert_allclose(r.batch(idx)["gamestate"], want, rtol=1e-4, atol=1e-3)
    assert r.stats["feature_mean"] == base.stats["feature_mean"] and r.stats["tick_ms"] == short.stats["tick_ms"]


def test_fine_tuned_checkpoint_keeps_the_base_normalisation_and_predicts_as_it(two, tmp_path):
    """With lr ~0 the fine-tuned model is its base: same weights and the same statistics for the
    runtime to normalise live features with. Before, it stored the short data's statistics: the
    same weights then read every live feature on another scale."""
    train(two[0], tmp_path / "a", load_config(None, TINY + ["optim.lr=3e-3"]), show_progress=False)
    cfg = load_config(None, TINY + ["optim.lr=1e-12", f"init_from={tmp_path / 'a' / 'last'}"])
    train(two[1], tmp_path / "b", cfg, show_progress=False)
    a, b = load_checkpoint(tmp_path / "a" / "last"), load_checkpoint(tmp_path / "b" / "last")
    short = open_dataset(two[1], split="train")
    for k in ("feature_mean", "feature_std"):
        assert b.stats[k] == a.stats[k] and b.stats[k] != short.stats[k]
    wa, wb = a.model.state_dict(), b.model.state_dict()
    assert all(np.allclose(wa[k].numpy(), wb[k].numpy(), atol=1e-6) for k in wa)
    # resuming keeps it too
    train(two[1], tmp_path / "b", None, show_progress=False, resume=True, overrides=["epochs=2"])
    assert load_checkpoint(tmp_path / "b" / "last").stats["feature_std"] == a.stats["feature_std"]


def test_rehearsal_draws_the_base_windows_at_its_share_and_reads_both(two, tmp_path):
    own, base = open_dataset(two[1], split="train"), open_dataset(two[0], split="train")
    mix = RehearsalWindows(own, renormalised(base, own.stats), 0.3)
    assert len(mix) == len(own) + len(base)
    drawn = np.concatenate([EpochSampler(len(mix), seed=s, weights=mix.weights).epoch_indices(0) for s in range(20)])
    share = float((drawn >= len(own)).mean())
    assert 0.25 < share < 0.35, share
    idx = np.array([0, 1, len(own), len(own) + 2])
    b = mix.batch(idx)
    np.testing.assert_array_equal(b["targets"][:2], own.batch(idx[:2])["targets"])
    np.testing.assert_array_equal(b["targets"][2:], base.batch(idx[2:] - len(own))["targets"])
    # a training run with it, and a share out of range is one line
    train(two[1], tmp_path / "r", load_config(None, TINY + ["optim.lr=3e-3", f"data.rehearse={two[0]}",
                                                            "data.rehearse_share=0.3"]), show_progress=False)
    assert (tmp_path / "r" / "last" / "config.json").is_file()
    with pytest.raises(ConfigError, match="data.rehearse_share"):
        load_config(None, TINY + [f"data.rehearse={two[0]}", "data.rehearse_share=1"])


def test_rehearsal_refuses_windows_of_another_spec(two, tmp_path):
    own = open_dataset(two[1], split="train")
    other = open_dataset(make_dataset(tmp_path, n_sessions=2, duration_s=30), split="train")  # no game state
    with pytest.raises(ConfigError, match="data.rehearse"):
        RehearsalWindows(own, other, 0.5)


def test_app_rehearses_the_shipped_dataset_when_it_fine_tunes_the_shipped_model():
    assert fine_tune_settings([f"init_from={SHIPPED_MODEL}", "optim.lr=2e-4"], "")[-1] == f"data.rehearse={SHIPPED_DATASET}"
    assert fine_tune_settings([f'init_from="{SHIPPED_MODEL}"'], "")[-1] == f"data.rehearse={SHIPPED_DATASET}"  # quoted
    assert fine_tune_settings(["optim.lr=2e-4"], "") == ["optim.lr=2e-4"]
    own = [f"init_from={SHIPPED_MODEL}", "data.rehearse=/elsewhere"]
    assert fine_tune_settings(own, "") == own
    # the Start from field: init_from, and the shipped model's rehearsal with it; a Settings init_from wins
    assert fine_tune_settings(["epochs=3"], str(SHIPPED_MODEL)) == [
        "epochs=3", f"init_from={SHIPPED_MODEL}", f"data.rehearse={SHIPPED_DATASET}"]
    assert fine_tune_settings(["init_from=/a/run"], str(SHIPPED_MODEL)) == ["init_from=/a/run"]

"""Checkpoints: save → load → identical outputs; refusal of tampered, mismatched or broken ones."""

import json

import pytest
import torch
from safetensors.torch import save_file

from ilbot.data.keys import KEY_VOCAB
from ilbot.errors import CheckpointError
from ilbot.model import ModelConfig, UnifiedEventModel, load_checkpoint, save_checkpoint
from ilbot.model.synthetic import synthetic_windows

CFG = ModelConfig(d_model=32, n_heads=2, n_context_layers=1, n_decoder_layers=1)
STATS = {"feature_mean": [0.0] * 128, "feature_std": [1.0] * 128, "hold_ms": {"median": 110.0}, "tick_ms": 600.0}


def _batch():
    return {k: torch.from_numpy(v) for k, v in synthetic_windows(2, seed=7).items()}


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    model = UnifiedEventModel(CFG).eval()
    d = save_checkpoint(tmp_path / "ck", model, spec_hash="abc123", key_vocab=KEY_VOCAB, stats=STATS, extra={"step": 5})
    return d, model


def test_save_load_identical_outputs(saved):
    d, model = saved
    ck = load_checkpoint(d, expect_spec_hash="abc123", expect_key_vocab=KEY_VOCAB)
    assert not ck.model.training
    assert ck.config == CFG and ck.spec_hash == "abc123" and ck.key_vocab == list(KEY_VOCAB)
    assert ck.stats["hold_ms"]["median"] == 110.0 and ck.meta["extra"]["step"] == 5
    assert ck.meta["code_version"]
    b = _batch()
    with torch.no_grad():
        a, c = model(b), ck.model(b)
    for k in a:
        assert torch.equal(a[k], c[k]), k


def test_numpy_stats_are_stored_as_json(tmp_path):
    import numpy as np
    d = save_checkpoint(tmp_path / "np", UnifiedEventModel(CFG), spec_hash="h", key_vocab=KEY_VOCAB,
                        stats={"feature_mean": np.zeros(128, np.float32), "n": np.int64(4)})
    assert load_checkpoint(d).stats == {"feature_mean": [0.0] * 128, "n": 4}


def test_run_folder_prefers_best_then_last(tmp_path):
    model = UnifiedEventModel(CFG)
    save_checkpoint(tmp_path / "run" / "last", model, spec_hash="last", key_vocab=KEY_VOCAB, stats={})
    assert load_checkpoint(tmp_path / "run").spec_hash == "last"
    save_checkpoint(tmp_path / "run" / "best", model, spec_hash="best", key_vocab=KEY_VOCAB, stats={})
    assert load_checkpoint(tmp_path / "run").spec_hash == "best"
    assert load_checkpoint(tmp_path / "run" / "best" / "model.safetensors").spec_hash == "best"


def test_missing_paths_and_files(tmp_path, saved):
    with pytest.raises(CheckpointError, match="no such"):
        load_checkpoint(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="not a checkpoint"):
        load_checkpoint(tmp_path / "empty")
    d, _ = saved
    (d / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="model.safetensors: missing"):
        load_checkpoint(d)
    (d / "config.json").unlink()
    with pytest.raises(CheckpointError, match="not a checkpoint"):
        load_checkpoint(d)


def test_config_without_weights_or_weights_without_config(tmp_path, saved):
    d, _ = saved
    (d / "config.json").unlink()
    with pytest.raises(CheckpointError, match="config.json: missing"):
        load_checkpoint(d)


def test_tampered_weights_refused(saved):
    d, _ = saved
    w = d / "model.safetensors"
    data = bytearray(w.read_bytes())
    data[-5] ^= 0xFF
    w.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"model.safetensors: sha256 differs"):
        load_checkpoint(d)


def _rewrite(d, **changes):
    meta = json.loads((d / "config.json").read_text())
    for k, v in changes.items():
        meta[k] = v
    (d / "config.json").write_text(json.dumps(meta))
    return meta


def test_spec_hash_and_key_vocab_mismatch_refused(saved):
    d, _ = saved
    with pytest.raises(CheckpointError, match=r"config.json: feature spec hash 'abc123' differs"):
        load_checkpoint(d, expect_spec_hash="other")
    with pytest.raises(CheckpointError, match="key vocabulary differs"):
        load_checkpoint(d, expect_key_vocab=list(KEY_VOCAB[:-1]) + ["new_key"])


def test_bad_config_refused(saved):
    d, _ = saved
    meta = json.loads((d / "config.json").read_text())
    _rewrite(d, surprise=1)
    with pytest.raises(CheckpointError, match=r"unknown key\(s\) \['surprise'\]"):
        load_checkpoint(d)
    mc = dict(meta["model_config"], wings=2)
    (d / "config.json").write_text(json.dumps(dict(meta, model_config=mc)))
    with pytest.raises(CheckpointError, match="unknown model_config key.*wings"):
        load_checkpoint(d)
    (d / "config.json").write_text(json.dumps(dict(meta, model_config=dict(meta["model_config"], d_model=33))))
    with pytest.raises(CheckpointError, match="n_heads=2 does not divide model_config.d_model=33"):
        load_checkpoint(d)
    (d / "config.json").write_text(json.dumps(dict(meta, key_vocab=["UNK"])))
    with pytest.raises(CheckpointError, match="key_vocab has 1 names"):
        load_checkpoint(d)
    (d / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not readable JSON"):
        load_checkpoint(d)
    (d / "config.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(CheckpointError, match="not an ilbot checkpoint"):
        load_checkpoint(d)
    (d / "config.json").write_text(json.dumps(dict(meta, format_version=99)))
    with pytest.raises(CheckpointError, match="format_version"):
        load_checkpoint(d)
    m2 = dict(meta)
    del m2["stats"]
    (d / "config.json").write_text(json.dumps(m2))
    with pytest.raises(CheckpointError, match="missing key"):
        load_checkpoint(d)


def test_wrong_shapes_and_nan_weights_refused(tmp_path):
    import hashlib
    # weights of another size under a config that records their (correct) hash: shape check
    d = save_checkpoint(tmp_path / "a", UnifiedEventModel(CFG), spec_hash="h", key_vocab=KEY_VOCAB, stats={})
    big = UnifiedEventModel(ModelConfig(d_model=64, n_heads=2, n_context_layers=1, n_decoder_layers=1))
    save_file({k: v.contiguous() for k, v in big.state_dict().items()}, str(d / "model.safetensors"))
    _rewrite(d, weights_sha256=hashlib.sha256((d / "model.safetensors").read_bytes()).hexdigest())
    with pytest.raises(CheckpointError, match="has shape"):
        load_checkpoint(d)
    # a tensor missing
    sd = {k: v.contiguous() for k, v in UnifiedEventModel(CFG).state_dict().items()}
    sd.pop("decoder.start")
    save_file(sd, str(d / "model.safetensors"))
    _rewrite(d, weights_sha256=hashlib.sha256((d / "model.safetensors").read_bytes()).hexdigest())
    with pytest.raises(CheckpointError, match="do not fit the config"):
        load_checkpoint(d)
    # NaN weights, saved honestly (hash matches)
    model = UnifiedEventModel(CFG)
    with torch.no_grad():
        model.event_head.proj.weight[0, 0] = float("nan")
    d2 = save_checkpoint(tmp_path / "nan", model, spec_hash="h", key_vocab=KEY_VOCAB, stats={})
    with pytest.raises(CheckpointError, match="NaN"):
        load_checkpoint(d2)
    # not safetensors at all (of a plausible size), with a matching hash
    junk = b"\x00" * (d2 / "model.safetensors").stat().st_size
    (d2 / "model.safetensors").write_bytes(junk)
    _rewrite(d2, weights_sha256=hashlib.sha256(junk).hexdigest())
    with pytest.raises(CheckpointError, match="not readable safetensors"):
        load_checkpoint(d2)


def test_save_refuses_vocab_size_mismatch(tmp_path):
    with pytest.raises(ValueError, match="key vocabulary"):
        save_checkpoint(tmp_path / "x", UnifiedEventModel(CFG), spec_hash="h", key_vocab=["UNK"], stats={})

"""Checkpoints (DESIGN §9): a folder with `model.safetensors` and `config.json`.

config.json holds the model config, the feature-spec hash, the key vocabulary, the dataset's
normalisation stats (feature mean/std, hold-time stats, tick_ms, …), the code version, the
sha256 of model.safetensors and free `extra` (e.g. the training step). Nothing is unpickled:
weights load through safetensors, metadata through JSON.

Loading refuses, with a one-line `CheckpointError` naming the file: a missing file, unreadable
JSON, unknown keys (top-level or in the model config), weights whose hash differs from the
recorded one (tampering or a partial copy), weights whose names or shapes do not fit the config,
non-finite weights, and a feature-spec hash or key vocabulary other than the expected one.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .. import __version__
from ..errors import CheckpointError
from .config import ModelConfig
from .model import UnifiedEventModel

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
FORMAT = "ilbot-checkpoint"
FORMAT_VERSION = 1
_KEYS = {"format", "format_version", "model_config", "spec_hash", "key_vocab", "stats", "code_version",
         "weights_sha256", "extra"}


@dataclass
class Checkpoint:
    model: UnifiedEventModel  # in eval mode
    config: ModelConfig
    spec_hash: str
    key_vocab: list[str]
    stats: dict
    meta: dict = field(default_factory=dict)  # the whole config.json (code_version, extra, …)
    path: Path | None = None  # the checkpoint folder it was loaded from


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _jsonable(x):
    """Stats may hold numpy arrays or scalars: make them JSON lists and numbers."""
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if hasattr(x, "tolist"):
        return x.tolist()
    return x


def save_checkpoint(dir, model: UnifiedEventModel, *, spec_hash: str, key_vocab, stats: dict, extra: dict | None = None) -> Path:
    """Write model.safetensors then config.json into `dir` (created). config.json is written last
    and atomically (tmp + replace), so a folder with a config.json is complete. Returns the folder."""
    out = Path(dir)
    out.mkdir(parents=True, exist_ok=True)
    key_vocab = list(key_vocab)
    if len(key_vocab) != model.cfg.key_vocab_size:
        raise ValueError(f"save_checkpoint: key vocabulary has {len(key_vocab)} names but the model's "
                         f"key_vocab_size is {model.cfg.key_vocab_size}")
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    weights = out / WEIGHTS
    tmp = out / (WEIGHTS + ".tmp")
    save_file(tensors, str(tmp), metadata={"format": FORMAT})
    os.replace(tmp, weights)
    meta = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "model_config": model.cfg.to_dict(),
        "spec_hash": str(spec_hash), "key_vocab": key_vocab, "stats": _jsonable(stats or {}),
        "code_version": __version__, "weights_sha256": _sha256(weights), "extra": _jsonable(extra or {}),
    }
    tmp = out / (CONFIG + ".tmp")
    tmp.write_text(json.dumps(meta, indent=1, allow_nan=False))
    os.replace(tmp, out / CONFIG)
    return out


def resolve_checkpoint_dir(path) -> Path:
    """A checkpoint folder, or a training run folder holding best/ (preferred) or last/."""
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"{p}: no such checkpoint or run folder")
    if p.is_file():
        p = p.parent  # a path to model.safetensors or config.json
    if (p / CONFIG).exists() or (p / WEIGHTS).exists():
        return p
    for sub in ("best", "last"):
        if (p / sub / CONFIG).exists() or (p / sub / WEIGHTS).exists():
            return p / sub
    raise CheckpointError(f"{p}: not a checkpoint (no {CONFIG}) and no best/ or last/ checkpoint inside")


def read_checkpoint_meta(path) -> tuple[Path, dict]:
    """(checkpoint folder, validated config.json dict) without loading the weights."""
    d = resolve_checkpoint_dir(path)
    cfg_path = d / CONFIG
    if not cfg_path.exists():
        raise CheckpointError(f"{cfg_path}: missing (an incomplete checkpoint)")
    try:
        meta = json.loads(cfg_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{cfg_path}: not readable JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{cfg_path}: not an ilbot checkpoint config (format is not {FORMAT!r})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{cfg_path}: format_version {meta.get('format_version')!r}, this code reads {FORMAT_VERSION}")
    unknown = sorted(set(meta) - _KEYS)
    if unknown:
        raise CheckpointError(f"{cfg_path}: unknown key(s) {unknown}")
    missing = sorted(_KEYS - set(meta))
    if missing:
        raise CheckpointError(f"{cfg_path}: missing key(s) {missing}")
    return d, meta


def load_checkpoint(path, *, expect_spec_hash: str | None = None, expect_key_vocab=None) -> Checkpoint:
    d, meta = read_checkpoint_meta(path)
    cfg_path, weights = d / CONFIG, d / WEIGHTS
    try:
        cfg = ModelConfig.from_dict(meta["model_config"])
    except KeyError as e:
        raise CheckpointError(f"{cfg_path}: unknown model_config key(s) {e.args[0]}") from None
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{cfg_path}: bad model_config ({e})") from None
    key_vocab = list(meta["key_vocab"])
    if len(key_vocab) != cfg.key_vocab_size:
        raise CheckpointError(f"{cfg_path}: key_vocab has {len(key_vocab)} names but model_config.key_vocab_size is {cfg.key_vocab_size}")
    if expect_spec_hash is not None and meta["spec_hash"] != expect_spec_hash:
        raise CheckpointError(f"{cfg_path}: feature spec hash {meta['spec_hash']!r} differs from the expected "
                              f"{expect_spec_hash!r} (the model was trained on another feature spec)")
    if expect_key_vocab is not None and key_vocab != list(expect_key_vocab):
        raise CheckpointError(f"{cfg_path}: key vocabulary differs from the expected one "
                              f"({len(key_vocab)} vs {len(list(expect_key_vocab))} names)")
    if not weights.exists():
        raise CheckpointError(f"{weights}: missing")
    if _sha256(weights) != meta["weights_sha256"]:
        raise CheckpointError(f"{weights}: sha256 differs from the one recorded in {CONFIG} (modified or incomplete file)")
    try:
        tensors = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{weights}: not readable safetensors ({e})") from None
    model = UnifiedEventModel(cfg)
    expected = model.state_dict()
    missing, unexpected = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"{weights}: tensors do not fit the config (missing {missing[:3]}, unexpected {unexpected[:3]})")
    for name, t in tensors.items():
        if tuple(t.shape) != tuple(expected[name].shape):
            raise CheckpointError(f"{weights}: tensor {name} has shape {tuple(t.shape)}, the config needs {tuple(expected[name].shape)}")
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise CheckpointError(f"{weights}: tensor {name} holds NaN or infinite values")
    model.load_state_dict(tensors)
    model.eval()
    stats = meta["stats"] if isinstance(meta["stats"], dict) else {}
    return Checkpoint(model=model, config=cfg, spec_hash=meta["spec_hash"], key_vocab=key_vocab, stats=stats, meta=meta, path=d)



"""Checkpoints (DESIGN §9): a folder with `model.safetensors` and `config.json`.

config.json holds the model config, the feature-spec hash, the key vocabulary, the dataset's
normalisation stats (feature mean/std, hold-time stats, tick_ms, …), the code version, the
sha256 of model.safetensors and free `extra` (e.g. the training step), and optionally the
post-hoc `calibration` of the heads (ilbot.model.calibration; fitted by `ilbot eval calibrate`,
written with `write_calibration`, attached to the loaded model as `model.calibration`; a
checkpoint without it loads with `model.calibration = None`, the raw heads), and optionally the
planner's `sampling` temperatures (ilbot.model.sampling.Temperature; chosen in closed loop, written
with `write_sampling`, attached as `model.sampling`; absent: 1 for every draw). Nothing is
unpickled: weights load through safetensors, metadata through JSON.

Loading refuses, with a one-line `CheckpointError` naming the file: a missing file, unreadable
JSON, unknown keys (top-level or in the model config), a field of the wrong type or out of range
(`check_meta`: model sizes, versions, the normalisation stats the runtime uses, every field of the
calibration), a config.json or
weights file that is not a regular file (a FIFO, a device) or whose size does not fit the config,
weights whose hash differs from the recorded one (tampering or a partial copy), weights whose
names or shapes do not fit the config, non-finite weights, and a feature-spec hash or key
vocabulary other than the expected one. Everything is checked before a model is built.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .. import __version__
from ..data.atomic import make_private, private_dir, write_private_text
from ..data.schema import MAX_TICK_MS, MIN_TICK_MS
from ..data.stats_check import stats_problem
from ..errors import CheckpointError
from .calibration import Calibration
from .config import ModelConfig
from .model import UnifiedEventModel
from .sampling import Temperature

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
FORMAT = "ilbot-checkpoint"
FORMAT_VERSION = 1
_KEYS = {"format", "format_version", "model_config", "spec_hash", "key_vocab", "stats", "code_version",
         "weights_sha256", "extra"}
# absent in checkpoints never calibrated (or written before calibration existed), and in those
# that sample at the heads' own temperatures (no "sampling")
_OPTIONAL_KEYS = {"calibration", "sampling"}
MAX_CONFIG_BYTES = 64 << 20
MAX_WEIGHT_BYTES = 16 << 30
# model_config fields: integer ranges, float ranges (lo, hi, lo inclusive), booleans, strings
_INT_RANGES = {"n_ticks": (1, 1024), "n_features": (1, 65536), "n_slots": (1, 4096), "key_vocab_size": (1, 1 << 20),
               "d_model": (1, 4096), "n_heads": (1, 256), "ff_mult": (1, 64), "n_context_layers": (0, 64),
               "n_decoder_layers": (0, 64)}
_FLOAT_RANGES = {"dropout": (0.0, 1.0, True), "dt_log_scale": (0.0, 1e6, False), "logsig_min": (-50.0, 50.0, True),
                 "logsig_max": (-50.0, 50.0, True), "time_max_ms": (0.0, 1e9, False),
                 "xy_input_noise": (0.0, 10.0, True), "x_sigma_scale": (0.0, 1e6, False),
                 "y_sigma_scale": (0.0, 1e6, False), "tick_ms": (MIN_TICK_MS, MAX_TICK_MS, True)}
_BOOLS = ("xy_residual", "slot_elapsed_input", "xy_step_input", "xy_by_type", "time_by_type", "pointer_input")
_STRINGS = ("xy_dist", "time_head")


@dataclass
class Checkpoint:
    model: UnifiedEventModel  # in eval mode
    config: ModelConfig
    spec_hash: str
    key_vocab: list[str]
    stats: dict
    meta: dict = field(default_factory=dict)  # the whole config.json (code_version, extra, …)
    path: Path | None = None  # the checkpoint folder it was loaded from
    calibration: Calibration | None = None  # config.json's "calibration" (also model.calibration)
    sampling: Temperature = field(default_factory=Temperature)  # config.json's "sampling" (also model.sampling)


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


def save_checkpoint(dir, model: UnifiedEventModel, *, spec_hash: str, key_vocab, stats: dict, extra: dict | None = None,
                    calibration: Calibration | None = None, sampling: Temperature | None = None) -> Path:
    """Write model.safetensors then config.json into `dir` (created 0700, files 0600). config.json is
    written last and atomically (tmp + replace), so a folder with a config.json is complete.
    `calibration` is stored only when given (a model's own `model.calibration` is not: new
    weights need a new fit); `sampling` likewise, and only when not the default. Returns the folder."""
    out = private_dir(Path(dir))
    key_vocab = list(key_vocab)
    if len(key_vocab) != model.cfg.key_vocab_size:
        raise ValueError(f"save_checkpoint: key vocabulary has {len(key_vocab)} names but the model's "
                         f"key_vocab_size is {model.cfg.key_vocab_size}")
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    weights = out / WEIGHTS
    tmp = out / (WEIGHTS + ".tmp")
    save_file(tensors, str(tmp), metadata={"format": FORMAT})
    make_private(tmp)
    os.replace(tmp, weights)
    meta = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "model_config": model.cfg.to_dict(),
        "spec_hash": str(spec_hash), "key_vocab": key_vocab, "stats": _jsonable(stats or {}),
        "code_version": __version__, "weights_sha256": _sha256(weights), "extra": _jsonable(extra or {}),
    }
    if calibration is not None:
        meta["calibration"] = _jsonable(calibration.to_dict())
    if sampling is not None and Temperature.of(sampling) != Temperature():
        meta["sampling"] = Temperature.of(sampling).to_dict()
    _write_config(out, meta)
    return out


def _write_config(folder: Path, meta: dict) -> None:
    """config.json written atomically: a temp file beside it, then os.replace."""
    tmp = folder / (CONFIG + ".tmp")
    write_private_text(tmp, json.dumps(meta, indent=1, allow_nan=False))
    os.replace(tmp, folder / CONFIG)


def write_calibration(path, calibration: Calibration | None) -> Path:
    """Store `calibration` in the config.json of the checkpoint at `path` (a checkpoint folder, a
    file in one, or a run folder: its best/, else last/), replacing any calibration there (None
    removes it). The weights and every other field are untouched; config.json is validated before
    and after and replaced atomically (a crash leaves the old file or the new one, never half of
    either). Returns the checkpoint folder."""
    d, meta = read_checkpoint_meta(path)
    meta = dict(meta)
    if calibration is None:
        meta.pop("calibration", None)
    else:
        meta["calibration"] = _jsonable(calibration.to_dict())
    check_meta(d / CONFIG, meta)
    _write_config(d, meta)
    return d


def write_sampling(path, sampling: Temperature | None) -> Path:
    """Store the planner's sampling temperatures (`Temperature`, chosen in closed loop: `ilbot eval
    closed-loop --sampling ... --store-sampling`) in the config.json of the checkpoint at `path`, as
    `write_calibration` does (None removes them: the heads' own temperature, 1). Returns the folder."""
    d, meta = read_checkpoint_meta(path)
    meta = dict(meta)
    if sampling is None:
        meta.pop("sampling", None)
    else:
        meta["sampling"] = sampling.to_dict()
    check_meta(d / CONFIG, meta)
    _write_config(d, meta)
    return d


def _read_sampling(cfg_path: Path, meta: dict) -> Temperature:
    try:
        t = meta.get("sampling")
        if t is not None and not isinstance(t, dict):
            raise ValueError(f"expected an object (event, time, position), got {t!r}")
        temp = Temperature.of(t)
    except (ValueError, TypeError) as e:
        raise CheckpointError(f"{cfg_path}: sampling: {str(e)[:200]}") from None
    return temp


def _number(v) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)


def model_config_problem(mc, prefix: str = "model_config.") -> str | None:
    """What is wrong with a model config dict (types and ranges of its fields, each named with
    `prefix`), or None. The checkpoint loader and the training config (its [model] table) share it."""
    if not isinstance(mc, dict):
        return f"{prefix.rstrip('.')} must be an object, got {type(mc).__name__}"
    for k, (lo, hi) in _INT_RANGES.items():
        if k in mc and not (type(mc[k]) is int and lo <= mc[k] <= hi):
            return f"{prefix}{k} must be an integer in {lo}..{hi}, got {mc[k]!r}"
    for k, (lo, hi, lo_in) in _FLOAT_RANGES.items():
        if k in mc:
            v = mc[k]
            if not (_number(v) and (v >= lo if lo_in else v > lo) and v <= hi):
                return f"{prefix}{k} must be a number in {'[' if lo_in else '('}{lo:g}, {hi:g}], got {v!r}"
    for k in _BOOLS:
        if k in mc and not isinstance(mc[k], bool):
            return f"{prefix}{k} must be true or false, got {mc[k]!r}"
    for k in _STRINGS:
        if k in mc and not isinstance(mc[k], str):
            return f"{prefix}{k} must be a string, got {mc[k]!r}"
    if "anchors" in mc and not (isinstance(mc["anchors"], list) and len(mc["anchors"]) <= 1024):
        return f"{prefix}anchors must be a list (at most 1024 anchors)"
    d, h = mc.get("d_model", 128), mc.get("n_heads", 4)
    if d % h:
        return f"{prefix}n_heads={h} does not divide {prefix}d_model={d}"
    return None


def _check_model_config(where: Path, mc) -> None:
    problem = model_config_problem(mc)
    if problem:
        raise CheckpointError(f"{where}: {problem}")


def _check_stats(where: Path, stats, n_features: int) -> None:
    problem = stats_problem(stats, n_features, prefix="stats.", required=False)
    if problem:
        raise CheckpointError(f"{where}: {problem}")


def check_meta(cfg_path: Path, meta: dict) -> None:
    """Types and ranges of a config.json's fields (CheckpointError naming the file and field)."""
    fv = meta.get("format_version")
    if type(fv) is not int:
        raise CheckpointError(f"{cfg_path}: format_version must be an integer, got {fv!r}")
    if fv != FORMAT_VERSION:
        raise CheckpointError(f"{cfg_path}: format_version {fv!r}, this code reads {FORMAT_VERSION}")
    for k in ("code_version", "spec_hash"):
        if not isinstance(meta.get(k), str):
            raise CheckpointError(f"{cfg_path}: {k} must be a string, got {meta.get(k)!r}")
    sha = meta.get("weights_sha256")
    if not (isinstance(sha, str) and len(sha) == 64 and all(c in "0123456789abcdef" for c in sha)):
        raise CheckpointError(f"{cfg_path}: weights_sha256 must be 64 hex digits, got {str(sha)[:80]!r}")
    kv = meta.get("key_vocab")
    if not (isinstance(kv, list) and all(isinstance(x, str) for x in kv)):
        raise CheckpointError(f"{cfg_path}: key_vocab must be a list of key names")
    if not isinstance(meta.get("extra"), dict):
        raise CheckpointError(f"{cfg_path}: extra must be an object, got {type(meta.get('extra')).__name__}")
    _check_model_config(cfg_path, meta.get("model_config"))
    _check_stats(cfg_path, meta.get("stats"), meta["model_config"].get("n_features", ModelConfig.n_features))
    if "calibration" in meta:
        _read_calibration(cfg_path, meta)
    _read_sampling(cfg_path, meta)


def _read_calibration(cfg_path: Path, meta: dict) -> Calibration | None:
    """config.json's calibration (None when it has none); a bad field is a CheckpointError naming it."""
    if "calibration" not in meta:
        return None
    try:
        return Calibration.from_dict(meta["calibration"])
    except (ValueError, TypeError) as e:
        raise CheckpointError(f"{cfg_path}: {e}") from None


def _regular_file(path: Path, what: str, max_bytes: int) -> int:
    """The size of `path`, which must be a regular file (a link to one is followed) of at most `max_bytes`."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: missing") from None
    except OSError as e:
        raise CheckpointError(f"{path}: cannot be read ({e.strerror or e})") from None
    if not stat.S_ISREG(st.st_mode):
        raise CheckpointError(f"{path}: {what} is not a regular file (a device, FIFO or folder)")
    if st.st_size > max_bytes:
        raise CheckpointError(f"{path}: {what} is {st.st_size} bytes, more than ilbot reads ({max_bytes})")
    return st.st_size


def _expected_weight_bytes(cfg: ModelConfig) -> tuple[int, int]:
    """(bytes of the config's tensors in float32, number of tensors), from a model on the meta
    device (no memory allocated)."""
    with torch.device("meta"):
        sd = UnifiedEventModel(cfg).state_dict()
    return sum(t.numel() * t.element_size() for t in sd.values()), len(sd)


def resolve_checkpoint_dir(path) -> Path:
    """A checkpoint folder (or its config.json / model.safetensors), or a training run folder
    holding best/ (preferred) or last/. Any other file is refused, naming it."""
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"{p}: no such checkpoint or run folder")
    if not p.is_dir():
        if p.name not in (CONFIG, WEIGHTS):
            raise CheckpointError(f"{p} is a file, not a checkpoint or run folder (give the folder holding "
                                  f"{CONFIG} and {WEIGHTS}, or a training run folder)")
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
    _regular_file(cfg_path, CONFIG, MAX_CONFIG_BYTES)
    try:
        meta = json.loads(cfg_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise CheckpointError(f"{cfg_path}: not readable JSON ({str(e).splitlines()[0][:200] if str(e) else type(e).__name__})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{cfg_path}: not an ilbot checkpoint config (format is not {FORMAT!r})")
    unknown = sorted(set(meta) - _KEYS - _OPTIONAL_KEYS)
    if unknown:
        raise CheckpointError(f"{cfg_path}: unknown key(s) {unknown}")
    missing = sorted(_KEYS - set(meta))
    if missing:
        raise CheckpointError(f"{cfg_path}: missing key(s) {missing}")
    check_meta(cfg_path, meta)
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
    size = _regular_file(weights, WEIGHTS, MAX_WEIGHT_BYTES)
    want, n_tensors = _expected_weight_bytes(cfg)
    if want > MAX_WEIGHT_BYTES:
        raise CheckpointError(f"{cfg_path}: model_config describes {want} bytes of weights, more than ilbot loads "
                              f"({MAX_WEIGHT_BYTES})")
    if not want // 4 <= size <= 2 * want + (1 << 20) + 1024 * n_tensors:
        raise CheckpointError(f"{weights}: {size} bytes, implausible for the model in {CONFIG} "
                              f"({want} bytes of float32 weights)")
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
    calibration = _read_calibration(cfg_path, meta)
    model.calibration = calibration  # what the planner and the evaluator apply (ilbot.model.calibration)
    model.sampling = _read_sampling(cfg_path, meta)  # the planner's temperatures (ilbot.model.sampling.Temperature)
    stats = meta["stats"] if isinstance(meta["stats"], dict) else {}
    return Checkpoint(model=model, config=cfg, spec_hash=meta["spec_hash"], key_vocab=key_vocab, stats=stats, meta=meta,
                      path=d, calibration=calibration, sampling=model.sampling)



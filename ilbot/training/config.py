"""Training configuration: typed dataclasses, loaded from TOML, every key overridable.

A config file has top-level keys of `TrainConfig` and one table per section:

```toml
seed = 0
epochs = 3
[optim]
lr = 3e-4
[loss]
class_weights = "auto"
[data]
batch_size = 64
[model]          # any ilbot.model.ModelConfig field
d_model = 128
```

`--set optim.lr=1e-3` overrides one key (the value is read as a TOML value, so `1e-3`, `true`,
`"auto"`, `[1, 2]` and `{MOVE = 1.0, CLICK = 8.0}` work; a bare word is taken as a string). An
unknown key or a value of the wrong type raises `ConfigError` naming the key (and the file).
The `model` table is checked against `ModelConfig`'s fields when the model is built.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError


@dataclass
class OptimConfig:
    """AdamW with linear warm-up then cosine decay to `min_lr_ratio · lr`."""

    lr: float = 3e-4
    weight_decay: float = 0.01
    beta1: float = 0.9
    beta2: float = 0.95
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0  # max global grad norm; 0 disables clipping


@dataclass
class LossConfig:
    """Weights of UnifiedEventLoss (DESIGN §6). class_weights: a name → weight table, "auto"
    (inverse frequency from the dataset stats) or "default" (the seed's MOVE 1, CLICK 8, KEY 6,
    SCROLL 12)."""

    w_event: float = 1.0
    w_time: float = 1.0
    w_xy: float = 1.0
    w_aux: float = 1.0
    class_weights: typing.Any = "default"
    beta_nll: float = 0.0  # β of β-NLL (0 = plain Gaussian NLL; DESIGN suggests 0.5 as the option)


@dataclass
class DataConfig:
    """What one epoch draws from the dataset.

    `epoch_windows` caps the windows per epoch (0 = all): huge datasets get "epochs" of a fixed
    size, each a fresh random draw. `idle_keep` keeps that fraction of idle windows (one look-ahead
    slot only) per epoch: real mouse data is ~70 % idle, which wastes steps on one easy slot. It
    also lowers the odds of "nothing this tick" the model learns (by the factor idle_keep): fine
    where the decision is calibrated afterwards or only scored, not for an agent that samples it
    (the sandbox keeps every idle window)."""

    train_split: str = "train"
    val_split: str = "val"
    batch_size: int = 64
    epoch_windows: int = 0
    idle_keep: float = 1.0
    val_windows: int = 2000  # cap on validation windows (a fixed, seeded subset); 0 = all
    num_workers: int = 0
    # fine-tuning: a dataset folder (the base model's data, same feature spec) whose training windows
    # are mixed in, `rehearse_share` of each epoch's draws, so the model keeps what it knew
    # (ilbot.training.rehearsal); "" = none
    rehearse: str = ""
    rehearse_share: float = 0.5


@dataclass
class TrainConfig:
    seed: int = 0
    epochs: int = 10
    max_steps: int = 0  # stop after this many optimizer steps (0 = no cap)
    max_minutes: float = 0.0  # stop (after a validation) once this much wall time passed; 0 = none
    val_every_steps: int = 0  # validate every N steps as well as at each epoch end (0 = epochs only)
    log_every_steps: int = 20
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    bf16: bool = True  # bf16 autocast, used on a GPU only
    threads: int = 0  # torch CPU threads (0 = torch's default)
    init_from: str = ""  # a checkpoint folder whose weights start the model (fine-tuning; same model config)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    data: DataConfig = field(default_factory=DataConfig)
    model: dict = field(default_factory=dict)  # ModelConfig fields

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


SECTIONS = {"optim": OptimConfig, "loss": LossConfig, "data": DataConfig}


def _check_type(key: str, value, annotation, where: str):
    """Coerce/check a TOML value against a dataclass field annotation; int → float is allowed."""
    ann = annotation if not isinstance(annotation, str) else eval(annotation, vars(typing) | {"typing": typing})  # noqa: S307
    if ann is typing.Any:
        return value
    if ann is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}config key '{key}': expected a number, got {value!r}")
        return float(value)
    if ann is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}config key '{key}': expected an integer, got {value!r}")
        return value
    if ann is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}config key '{key}': expected true or false, got {value!r}")
        return value
    if ann is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}config key '{key}': expected a string, got {value!r}")
        return value
    if ann is dict or typing.get_origin(ann) is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}config key '{key}': expected a table, got {value!r}")
        return value
    if isinstance(ann, types.UnionType):
        return value
    return value


def _apply(obj, table: dict, prefix: str, where: str) -> None:
    hints = {f.name: f.type for f in dataclasses.fields(obj)}
    for key, value in table.items():
        full = f"{prefix}{key}"
        if key not in hints:
            known = ", ".join(sorted(hints))
            raise ConfigError(f"{where}unknown config key '{full}' (known{' in [' + prefix[:-1] + ']' if prefix else ''}: {known})")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}config key '{full}': expected a table, got {value!r}")
            _apply(current, value, f"{full}.", where)
        elif key == "model" and not prefix:
            if not isinstance(value, dict):
                raise ConfigError(f"{where}config key 'model': expected a table, got {value!r}")
            current.update(value)
        else:
            setattr(obj, key, _check_type(full, value, hints[key], where))


def parse_override(item: str) -> tuple[str, object]:
    """'optim.lr=1e-3' → ('optim.lr', 0.001). The value is TOML; a bare word is a string."""
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected key=value")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"--set {item!r}: empty key")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return key, value


def _nest(key: str, value) -> dict:
    out: dict = value
    for part in reversed(key.split(".")):
        out = {part: out}
    return out


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """The defaults, updated by the TOML file (if any), then by each `key=value` override."""
    cfg = TrainConfig()
    if path is not None:
        path = Path(path)
        try:
            table = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"config file {path}: {e}") from None
        _apply(cfg, table, "", f"{path}: ")
    for item in overrides:
        key, value = parse_override(item)
        _apply(cfg, _nest(key, value), "", "--set: ")
    validate(cfg)
    return cfg


def config_from_dict(d: dict) -> TrainConfig:
    """A TrainConfig from `to_dict()` output (as saved in train_state.json)."""
    cfg = TrainConfig()
    _apply(cfg, d, "", "saved config: ")
    return cfg


MAX_INT = 2**31 - 1  # every integer key (steps, sizes, counts, the seed) fits in 0..MAX_INT
MAX_WEIGHT = 1e6  # loss weights and class weights


def validate(cfg: TrainConfig) -> None:
    """Range checks, each naming its key (every number must also be finite: TOML allows nan/inf;
    every integer within ±MAX_INT: TOML integers are unbounded)."""
    for section, obj in (("", cfg), *((f"{n}.", getattr(cfg, n)) for n in SECTIONS)):
        for f in dataclasses.fields(obj):
            v = getattr(obj, f.name)
            if isinstance(v, float) and not math.isfinite(v):
                raise ConfigError(f"config key '{section}{f.name}' must be a finite number, got {v!r}")
            if isinstance(v, int) and not isinstance(v, bool) and abs(v) > MAX_INT:
                raise ConfigError(f"config key '{section}{f.name}' must be an integer of at most {MAX_INT}, got {v!r}")
    checks = [
        ("seed", cfg.seed >= 0, "must be 0 or positive"),
        ("threads", cfg.threads <= 1024, "must be at most 1024"),
        ("max_minutes", cfg.max_minutes <= 1e7, "must be at most 1e7 (minutes)"),
        ("optim.lr", cfg.optim.lr <= 1.0, "must be at most 1"),
        ("optim.weight_decay", cfg.optim.weight_decay <= 10.0, "must be at most 10"),
        ("optim.grad_clip", cfg.optim.grad_clip <= 1e6, "must be at most 1e6"),
        ("loss.w_event", cfg.loss.w_event <= MAX_WEIGHT, f"must be at most {MAX_WEIGHT:g}"),
        ("loss.w_time", cfg.loss.w_time <= MAX_WEIGHT, f"must be at most {MAX_WEIGHT:g}"),
        ("loss.w_xy", cfg.loss.w_xy <= MAX_WEIGHT, f"must be at most {MAX_WEIGHT:g}"),
        ("loss.w_aux", cfg.loss.w_aux <= MAX_WEIGHT, f"must be at most {MAX_WEIGHT:g}"),
        ("data.num_workers", cfg.data.num_workers <= 256, "must be at most 256"),
        ("epochs", cfg.epochs >= 1, "must be at least 1"),
        ("max_steps", cfg.max_steps >= 0, "must be 0 (no cap) or positive"),
        ("max_minutes", cfg.max_minutes >= 0, "must be 0 (no cap) or positive"),
        ("val_every_steps", cfg.val_every_steps >= 0, "must be 0 (epochs only) or positive"),
        ("log_every_steps", cfg.log_every_steps >= 1, "must be at least 1"),
        ("threads", cfg.threads >= 0, "must be 0 (torch's default) or positive"),
        ("optim.weight_decay", cfg.optim.weight_decay >= 0, "must be 0 or positive"),
        ("optim.beta1", 0 <= cfg.optim.beta1 < 1, "must be within [0, 1)"),
        ("optim.beta2", 0 <= cfg.optim.beta2 < 1, "must be within [0, 1)"),
        ("loss.w_event", cfg.loss.w_event >= 0, "must be 0 or positive"),
        ("loss.w_time", cfg.loss.w_time >= 0, "must be 0 or positive"),
        ("loss.w_xy", cfg.loss.w_xy >= 0, "must be 0 or positive"),
        ("loss.w_aux", cfg.loss.w_aux >= 0, "must be 0 or positive"),
        ("data.num_workers", cfg.data.num_workers >= 0, "must be 0 or positive"),
        ("optim.lr", cfg.optim.lr > 0, "must be positive"),
        ("optim.warmup_steps", cfg.optim.warmup_steps >= 0, "must be 0 or positive"),
        ("optim.min_lr_ratio", 0 <= cfg.optim.min_lr_ratio <= 1, "must be within [0, 1]"),
        ("optim.grad_clip", cfg.optim.grad_clip >= 0, "must be 0 (off) or positive"),
        ("data.batch_size", cfg.data.batch_size >= 1, "must be at least 1"),
        ("data.epoch_windows", cfg.data.epoch_windows >= 0, "must be 0 (all) or positive"),
        ("data.idle_keep", 0 < cfg.data.idle_keep <= 1, "must be within (0, 1]"),
        ("data.rehearse_share", 0 < cfg.data.rehearse_share < 1, "must be within (0, 1)"),
        ("data.val_windows", cfg.data.val_windows >= 0, "must be 0 (all) or positive"),
        ("loss.beta_nll", 0 <= cfg.loss.beta_nll <= 1, "must be within [0, 1]"),
    ]
    for key, ok, why in checks:
        if not ok:
            raise ConfigError(f"config key '{key}' {why}")
    cw = cfg.loss.class_weights
    if isinstance(cw, str):
        if cw not in ("auto", "default"):
            raise ConfigError(f"config key 'loss.class_weights': expected 'auto', 'default' or a table, got {cw!r}")
    elif isinstance(cw, dict):
        from ..data.schema import EVENT_NAMES
        unknown = sorted(set(cw) - set(EVENT_NAMES))
        if unknown:
            raise ConfigError(f"config key 'loss.class_weights': unknown event type(s) {unknown}; expected {list(EVENT_NAMES)}")
        for name, w in cw.items():
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not (math.isfinite(w) and 0 <= w <= MAX_WEIGHT):
                raise ConfigError(f"config key 'loss.class_weights.{name}' must be a number in 0..{MAX_WEIGHT:g}, "
                                  f"got {w!r}")
    else:
        raise ConfigError(f"config key 'loss.class_weights': expected 'auto', 'default' or a table, got {cw!r}")
    if cfg.device not in ("auto", "cpu", "cuda") and not cfg.device.startswith("cuda:"):
        raise ConfigError(f"config key 'device': expected auto, cpu, cuda or cuda:N, got {cfg.device!r}")
    from ..model.checkpoint import model_config_problem

    problem = model_config_problem({k: v for k, v in cfg.model.items() if k != "anchors" or v != "spec"}, "model.")
    if problem:
        raise ConfigError(f"config key {problem}")

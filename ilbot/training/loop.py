"""The training loop: `train(data, out, cfg)` — single process or one rank of a torchrun job.

Per step: a batch of windows (the epoch's seeded order, this rank's shard), the teacher-forced
forward pass with UnifiedEventLoss (bf16 autocast on a GPU only: CPU bf16 is slower and less
exact here), backward, global grad-norm clipping, AdamW, and the learning rate of a linear
warm-up followed by a cosine decay to `min_lr_ratio · lr` over the run's total steps.

Validation runs at each epoch end (and every `val_every_steps` if set) on a fixed, seeded subset
of the validation split, on rank 0. Each validation writes `RUN/last/` (checkpoint + resume
state) and, when the validation loss improved, `RUN/best/`. `RUN/metrics.jsonl` logs one JSON
object per line (`kind` = "train" or "val"). The run folder (ilbot.training.rundir) is user-only
(0700/0600) and marked as an ilbot run; an existing run is continued only with `resume=True` and
replaced only with `overwrite=True` (the old run is kept aside until the new one's first
checkpoint); checkpoints are written beside `best/`/`last/` and renamed into place.

Resuming (`resume=True`) restores the model, the optimizer state (moments and step counts), the
step, the torch RNG and the data position: the epoch order is a pure function of the seed and
the epoch (ilbot.training.data.EpochSampler), so the run recomputes it and skips the batches it
already took. The resume state is `train_state.safetensors` (tensors) + `train_state.json`
(everything else); nothing is pickled.

A caller can look at the weights while they train (`check`, `check_every_s`: `ilbot bench train
--data` scores them against the baselines); the time a check takes is not training time.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ..data.atomic import open_private, write_private_text
from ..data.progress import Progress
from ..errors import CheckpointError, ConfigError
from . import ddp
from .config import TrainConfig, config_from_dict
from .data import EpochSampler, idle_windows, iterate_batches
from .normalisation import renormalised
from .rehearsal import RehearsalWindows
from .rundir import RunFolder, checkpoint_tmp, replace_dir
from .tensorboard import TensorBoardLog

LOG_PARTS = ("event", "time", "xy", "aux")  # loss parts shown on the progress bar
END_MESSAGES = {"done": "done: {step}/{total} steps",
                "cap": "stopped by the {cap:g}-minute cap (per invocation; --resume continues)",
                "cancelled": "cancelled at step {step}: checkpoint in last/, --resume continues",
                "paused": "paused at step {step}: --resume continues"}


class _Discard:
    """A text stream that drops everything (the human progress line when only JSON is wanted)."""

    def write(self, _text: str) -> int:
        return 0

    def flush(self) -> None:
        pass


# ---------------------------------------------------------------- building blocks


def open_split(data_path, split: str, key: str):
    """The dataset's split `split`; a missing split is a ConfigError naming `key`."""
    from ..data.dataset import open_dataset

    probe = open_dataset(data_path)
    names = list(getattr(probe, "split_names", []) or [])
    if split not in names:
        hint = (" (build it with --holdout-frac F, one session is enough, or set data.val_split=\"\" to train "
                "without validation)" if key == "data.val_split" and names == ["train"] else "")
        raise ConfigError(f"config key '{key}': dataset {data_path} has no split {split!r} "
                          f"(it has: {', '.join(names) or 'none'}){hint}")
    return open_dataset(data_path, split=split)


def build_model(cfg: TrainConfig, ds):
    """ModelConfig from the config's [model] table, with the geometry taken from the dataset,
    and the model with its UnifiedEventLoss from the [loss] table."""
    from ..model.config import ModelConfig
    from ..model.loss import UnifiedEventLoss
    from ..model.model import UnifiedEventModel

    geometry = {"n_ticks": int(ds["gamestate"].shape[1]), "n_features": int(ds["gamestate"].shape[2]),
                "n_slots": int(ds["targets"].shape[1]), "key_vocab_size": len(ds.key_vocab)}
    model_table = dict(cfg.model)
    if model_table.get("anchors") == "spec":  # the position anchors the dataset's feature spec names
        model_table["anchors"] = spec_anchors(ds)
    try:
        mcfg = ModelConfig.from_dict({**geometry, **model_table})
    except KeyError as e:
        raise ConfigError(f"unknown config key 'model.{e.args[0]}' (not a ModelConfig field)") from None
    except (TypeError, ValueError) as e:
        raise ConfigError(f"config table 'model': {e}") from None
    cw = cfg.loss.class_weights
    loss = UnifiedEventLoss(None if cw == "default" else cw, ds.stats.get("event_counts"), w_event=cfg.loss.w_event,
                            w_time=cfg.loss.w_time, w_xy=cfg.loss.w_xy, w_aux=cfg.loss.w_aux, beta=cfg.loss.beta_nll)
    model = UnifiedEventModel(mcfg, loss=loss)
    if model.anchors is not None:  # the anchors read raw positions back from normalised features
        model.anchors.set_feature_stats(ds.stats["feature_mean"], ds.stats["feature_std"])
    return model


def spec_anchors(ds) -> list[list[int]]:
    """The [[anchor]] list of the feature spec the dataset was built with (config `model.anchors = "spec"`)."""
    from ..data.featurespec import load_spec

    name = ds.meta.get("feature_spec")
    try:
        spec = load_spec(name) if name else None
    except ConfigError as e:
        raise ConfigError(f"config key 'model.anchors': {e}") from None
    if spec is not None and spec.hash != ds.meta.get("spec_hash"):
        raise ConfigError(f"config key 'model.anchors': feature spec {name!r} has hash {spec.hash}, "
                          f"the dataset was built with {ds.meta.get('spec_hash')}")
    anchors = spec.anchors if spec else []
    if not anchors:
        raise ConfigError(f"config key 'model.anchors': the dataset's feature spec {name!r} names no [[anchor]]")
    return anchors


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW; weight decay on matrices only (not on biases, norms or embeddings' 1-D params).

    The fused kernel updates every parameter in one pass where the parameters' device has it (CPU
    since torch 2.4, CUDA): on the Balabit model's 117 small tensors the step takes 1.7 ms
    instead of 4.7 (one loop per tensor), ~5 % of a training step on 2 cores. Elsewhere the
    per-tensor loop (the same update)."""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.optim.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    kwargs = dict(lr=cfg.optim.lr, betas=(cfg.optim.beta1, cfg.optim.beta2))
    try:
        return torch.optim.AdamW(groups, fused=True, **kwargs)
    except RuntimeError:  # no fused kernel for these parameters' device in this torch
        return torch.optim.AdamW(groups, **kwargs)


def lr_at(step: int, total: int, cfg: TrainConfig, time_frac: float = 0.0) -> float:
    """Linear warm-up over warmup_steps, then cosine decay to min_lr_ratio·lr at `total`.

    A run capped by wall time (`max_minutes`) passes `time_frac` = elapsed / cap: the decay then
    follows whichever is further along, steps or time, so a time-capped run still anneals fully
    however fast the machine turns out to be."""
    o = cfg.optim
    if o.warmup_steps and step < o.warmup_steps:
        return o.lr * (step + 1) / o.warmup_steps
    span = max(total - o.warmup_steps, 1)
    progress = min(max(max(step - o.warmup_steps, 0) / span, time_frac), 1.0)
    return o.lr * (o.min_lr_ratio + (1 - o.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


# ---------------------------------------------------------------- resume state


def save_train_state(folder: Path, optimizer: torch.optim.Optimizer, state: dict) -> None:
    """train_state.safetensors: optimizer moments/steps and RNG; train_state.json: the rest."""
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    for pid, pstate in sd["state"].items():
        for name, value in pstate.items():
            t = value if torch.is_tensor(value) else torch.tensor(value)
            tensors[f"optim.{pid}.{name}"] = t.detach().cpu().contiguous()
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    save_file(tensors, str(folder / "train_state.safetensors"))
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in sd["param_groups"]]
    doc = {**state, "optim_param_groups": groups}
    (folder / "train_state.json").write_text(json.dumps(doc, indent=1))


def load_train_state(folder: Path, optimizer: torch.optim.Optimizer) -> dict:
    """Restore the optimizer and RNG from `folder`; returns train_state.json's dict."""
    js, st = folder / "train_state.json", folder / "train_state.safetensors"
    if not js.is_file() or not st.is_file():
        raise CheckpointError(f"cannot resume: {folder} has no train_state.json / train_state.safetensors")
    for f in (js, st):
        if f.is_symlink():
            raise CheckpointError(f"cannot resume: {f} is a symbolic link, not a file the run wrote")
    try:
        doc = json.loads(js.read_text())
        tensors = load_file(str(st))
    except (json.JSONDecodeError, OSError, Exception) as e:  # safetensors raises its own error type
        raise CheckpointError(f"cannot resume: {folder}: damaged train state ({e})") from None
    state: dict = {}
    for key, t in tensors.items():
        if key.startswith("optim."):
            _, pid, name = key.split(".", 2)
            state.setdefault(int(pid), {})[name] = t
    groups = [{k: (tuple(v) if k == "betas" else v) for k, v in g.items()} for g in doc["optim_param_groups"]]
    try:
        optimizer.load_state_dict({"state": state, "param_groups": groups})
    except (ValueError, KeyError) as e:
        raise CheckpointError(f"cannot resume: {folder}: optimizer state does not fit this model ({e})") from None
    torch.set_rng_state(tensors["rng.torch"])
    if torch.cuda.is_available():
        cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("rng.cuda."))]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
    return doc


def write_checkpoint(out: Path, name: str, model, ds, extra: dict, optimizer=None, state: dict | None = None) -> Path:
    """Write checkpoint `out/name` beside it (a mkdtemp folder) and rename it into place
    (rundir.replace_dir): a crash never leaves a half-written or half-replaced `best/`/`last/`."""
    from ..data.atomic import make_private
    from ..model.checkpoint import save_checkpoint

    tmp = checkpoint_tmp(out, name)
    try:
        save_checkpoint(tmp, model, spec_hash=ds.spec_hash, key_vocab=list(ds.key_vocab), stats=ds.stats, extra=extra,
                        sampling=getattr(model, "sampling", None))
        if optimizer is not None and state is not None:
            save_train_state(tmp, optimizer, state)
        make_private(tmp)
        replace_dir(tmp, out / name)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out / name


def _diverged(out: Path, step: int, what: str, value: float) -> ConfigError:
    """The one-line error of a run whose loss stopped being a number: nothing more is written,
    the run's best/ and last/ (if any) hold the last checkpoint from before it."""
    kept = [n for n in ("best", "last") if (out / n / "config.json").is_file()]
    where = f"{out}/{' and '.join(kept)} keep the checkpoint from before" if kept else "no checkpoint was written"
    return ConfigError(f"training diverged at step {step}: the {what} is {value} (lower optim.lr or raise "
                       f"optim.warmup_steps); {where}")


# ---------------------------------------------------------------- validation


@torch.no_grad()
def validate(model, ds, indices: np.ndarray, batch_size: int, device, autocast) -> dict:
    """Loss and its parts, averaged over the valid slots of all validation windows."""
    was_training = model.training
    model.eval()
    sums: dict[str, float] = {}
    n_total = 0
    for batch in iterate_batches(ds, [indices[i:i + batch_size] for i in range(0, len(indices), batch_size)]):
        b = {k: v.to(device) for k, v in batch.items()}
        with autocast():
            out = model(b, targets={"targets": b["targets"], "target_mask": b["target_mask"]})
        n = int(b["target_mask"].sum())
        sums["loss"] = sums.get("loss", 0.0) + float(out["loss"]) * n
        for k, v in out["loss_parts"].items():
            sums[k] = sums.get(k, 0.0) + float(v) * n
        n_total += n
    model.train(was_training)
    return {k: v / max(n_total, 1) for k, v in sums.items()}


# ---------------------------------------------------------------- the loop


def train(data_path, out_dir, cfg: TrainConfig | None = None, *, resume: bool = False, overwrite: bool = False,
          overrides=(),
          show_progress: bool = True, stop_at_step: int = 0, progress_json=None, should_stop=None,
          check=None, check_every_s: float = 60.0) -> dict:
    """Train on dataset `data_path`, writing the run folder `out_dir`. Returns a summary dict
    (steps, epochs, best/last validation loss, run folder).

    `stop_at_step` pauses the run at that step (validation + checkpoint, as at any stop) without
    changing its schedule, so `resume=True` continues it as if it had never stopped; so does
    `should_stop()` turning true (a cancel: the summary's `end` is "cancelled").

    `max_minutes` caps each invocation: a resumed run gets the whole cap again, and its learning
    rate decays over what was left of the schedule within that new cap. `progress_json` (a text
    stream) receives the progress reporter's JSON lines and every metrics document; the curves
    also go to TensorBoard event files in `RUN/tb/` (ilbot.training.tensorboard).

    `check(model, info)` (optional) is called on rank 0 at the first step after every
    `check_every_s` seconds of this invocation's training, and once more after the last step
    (unless a check just ran there), with the unwrapped model (put back in training mode after)
    and info = {"step", "epoch", "train_s": this invocation's training seconds, "windows": windows
    trained in this invocation, all ranks}. Its time is taken off every clock of the run (the
    `max_minutes` cap, the time-based learning rate, `elapsed_s`, windows/s, the progress bar), so
    training seconds count training only (with its validations and checkpoints).

    A training loss, gradient norm or validation loss that is not a finite number ends the run
    with a one-line ConfigError ("training diverged at step N ..."): nothing is written after it,
    so `best/` and `last/` keep the checkpoints from before."""
    out = Path(out_dir)
    run = RunFolder(out, resume=resume, overwrite=overwrite)  # refuses a run that exists (without resume/overwrite)
    saved = None
    if resume:
        js = out / "last" / "train_state.json"
        if not js.is_file():
            raise CheckpointError(f"cannot resume: {out / 'last'} has no train_state.json (is {out} a run folder?)")
        saved = json.loads(js.read_text())
        if cfg is None:
            cfg = config_from_dict(saved["config"])
            if overrides:
                from .config import _apply, _nest, parse_override, validate as validate_cfg

                for item in overrides:
                    k, v = parse_override(item)
                    _apply(cfg, _nest(k, v), "", "--set: ")
                validate_cfg(cfg)
    cfg = cfg or TrainConfig()

    info = ddp.setup(cfg.device)
    try:
        return _train(data_path, out, cfg, info, saved, show_progress, stop_at_step, progress_json, should_stop,
                      run=run, check=check, check_every_s=check_every_s)
    except BaseException:
        if info.main:
            run.abort()  # a replaced run comes back if the new one wrote no checkpoint
        raise
    finally:
        ddp.teardown(info)


def _train(data_path, out: Path, cfg: TrainConfig, info: ddp.DistInfo, saved: dict | None, show_progress: bool,
           stop_at_step: int = 0, progress_json=None, should_stop=None, run: RunFolder | None = None,
           check=None, check_every_s: float = 60.0) -> dict:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed + info.rank)
    device = info.device
    use_bf16 = cfg.bf16 and device.type == "cuda"
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if use_bf16 else nullcontext

    ds = open_split(data_path, cfg.data.train_split, "data.train_split")
    ds_val = open_split(data_path, cfg.data.val_split, "data.val_split") if cfg.data.val_split else None
    # the normalisation the weights are learned in: a resumed run's own, a fine-tuned model's base's
    # (ilbot.training.normalisation), else this dataset's
    norm_from = out / "last" if saved is not None else Path(cfg.init_from) if cfg.init_from else None
    if norm_from is not None:
        from ..model.checkpoint import read_checkpoint_meta

        norm = read_checkpoint_meta(norm_from)[1].get("stats")
        ds = renormalised(ds, norm)
        ds_val = renormalised(ds_val, norm) if ds_val is not None else None
    model = build_model(cfg, ds).to(device)
    optimizer = make_optimizer(model, cfg)

    state = {"step": 0, "epoch": 0, "batch_in_epoch": 0, "best_val": None, "elapsed_s": 0.0, "time_frac": 0.0}
    if saved is not None:
        from ..model.checkpoint import load_checkpoint

        last = out / "last"
        ck = load_checkpoint(last, expect_spec_hash=ds.spec_hash)
        model.load_state_dict(ck.model.state_dict())
        model.sampling = ck.sampling  # inherited from init_from, if the run began from one
        doc = load_train_state(last, optimizer)
        if doc.get("world_size", 1) != info.world_size:
            raise CheckpointError(f"cannot resume {out}: saved with {doc.get('world_size')} processes, now {info.world_size}")
        state.update({k: doc[k] for k in state if k in doc})
        if info.rank:  # every rank restored rank 0's RNG; keep their dropout streams apart
            torch.manual_seed(cfg.seed + info.rank + 1000 * state["step"])
    elif cfg.init_from:  # fine-tuning: the weights of another run, this dataset's normalisation
        from ..model.checkpoint import load_checkpoint

        ck = load_checkpoint(Path(cfg.init_from), expect_spec_hash=ds.spec_hash)
        try:
            model.load_state_dict(ck.model.state_dict())
        except RuntimeError as e:
            raise ConfigError(f"init_from {cfg.init_from}: its model does not fit this config "
                              f"({str(e).splitlines()[0]})") from None
        # its sampling temperatures go on with it (a decoding choice made for the model being
        # fine-tuned; `ilbot eval closed-loop --store-sampling` chooses again); not its calibration,
        # which new weights invalidate
        model.sampling = ck.sampling
        if model.anchors is not None:
            model.anchors.set_feature_stats(ds.stats["feature_mean"], ds.stats["feature_std"])

    run = run or RunFolder(out, resume=saved is not None, overwrite=False)
    if info.main:
        run.open()
        write_private_text(out / "train_config.json", json.dumps(cfg.to_dict(), indent=1))
    net = model
    if info.distributed:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)

    train = ds  # the windows the epochs draw from: the training split, with the base's mixed in to rehearse
    if cfg.data.rehearse:
        base = renormalised(open_split(cfg.data.rehearse, cfg.data.train_split, "data.rehearse"), ds.stats)
        train = RehearsalWindows(ds, base, cfg.data.rehearse_share)
    idle = idle_windows(train) if cfg.data.idle_keep < 1.0 else None
    sampler = EpochSampler(len(train), seed=cfg.seed, idle=idle, idle_keep=cfg.data.idle_keep,
                           epoch_windows=cfg.data.epoch_windows, rank=info.rank, world_size=info.world_size,
                           weights=train.weights)  # marked segments (corrections) weighted by the build
    bs = cfg.data.batch_size
    steps_per_epoch = len(sampler.batches(0, bs))
    total_steps = steps_per_epoch * cfg.epochs
    if cfg.max_steps:
        total_steps = min(total_steps, cfg.max_steps)
    val_idx = np.array([], np.int64)
    if ds_val is not None:
        n_val = len(ds_val) if not cfg.data.val_windows else min(cfg.data.val_windows, len(ds_val))
        val_idx = np.sort(np.random.default_rng(cfg.seed).permutation(len(ds_val))[:n_val])

    log = open_private(out / "metrics.jsonl", "a") if info.main else None
    t_start = time.monotonic() - state["elapsed_s"]
    bar = Progress(total_steps, "train", enabled=(show_progress or progress_json is not None) and info.main,
                   start=state["step"], cap_s=cfg.max_minutes * 60, cap_note="this invocation",
                   stream=None if show_progress else _Discard(), json_stream=progress_json)
    tb = TensorBoardLog(out, purge_step=state["step"] + 1 if saved is not None else None, enabled=info.main)
    if tb.missing_note:
        bar.message(tb.missing_note)
    time_base, end = state["time_frac"], "done"  # the schedule's time share used before this invocation
    last_val: dict | None = None
    windows_seen, t_rate = 0, time.monotonic()
    windows_total, checked_at, next_check_s = 0, -1, check_every_s
    running: dict[str, float] = {}
    n_running = 0

    def emit(doc: dict) -> None:
        if log is not None:
            log.write(json.dumps(doc) + "\n")
            log.flush()
            tb.log(doc)
            bar.record(doc)

    def checkpoint_and_validate() -> None:
        nonlocal last_val
        state["elapsed_s"] = time.monotonic() - t_start
        if info.main:
            extra = {"train_config": cfg.to_dict(), "step": state["step"], "epoch": state["epoch"]}
            if ds_val is not None and len(val_idx):
                last_val = validate(model, ds_val, val_idx, bs, device, autocast)
                if not math.isfinite(last_val["loss"]):
                    raise _diverged(out, state["step"], "validation loss", last_val["loss"])
                emit({"kind": "val", "step": state["step"], "epoch": state["epoch"], **last_val})
                extra["val_loss"] = last_val["loss"]
            improved = last_val is None or state["best_val"] is None or last_val["loss"] < state["best_val"]
            if improved:
                state["best_val"] = None if last_val is None else last_val["loss"]
            doc = {**state, "world_size": info.world_size, "config": cfg.to_dict(),
                   "data_order": {"seed": cfg.seed, "idle_keep": cfg.data.idle_keep,
                                  "epoch_windows": cfg.data.epoch_windows, "batch_size": bs}}
            write_checkpoint(out, "last", model, ds, extra, optimizer, doc)
            if improved:
                write_checkpoint(out, "best", model, ds, extra)
            run.commit()
        ddp.barrier(info)

    def run_check() -> None:
        """`check` on rank 0; its time is taken off the run's clocks (train's docstring)."""
        nonlocal t_start, t_rate, checked_at, next_check_s
        t0 = time.monotonic()
        if info.main:
            check(model, {"step": state["step"], "epoch": state["epoch"], "train_s": bar.elapsed_s,
                          "windows": windows_total})
            net.train()
        ddp.barrier(info)
        pause = time.monotonic() - t0
        t_start, t_rate, bar.t0 = t_start + pause, t_rate + pause, bar.t0 + pause
        checked_at = state["step"]
        next_check_s += check_every_s  # at least once: a rank whose own clock was not yet due (DDP)
        while check_every_s > 0 and next_check_s <= bar.elapsed_s:  # 0: a check after every step
            next_check_s += check_every_s

    stop = state["step"] >= total_steps
    validated_at = state["step"] if saved is not None else -1
    net.train()
    while not stop and state["epoch"] < cfg.epochs:
        batches = sampler.batches(state["epoch"], bs)
        skip = state["batch_in_epoch"]
        for batch in iterate_batches(train, batches[skip:], cfg.data.num_workers):
            b = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            session_frac = bar.elapsed_s / (cfg.max_minutes * 60) if cfg.max_minutes else 0.0
            if cfg.max_minutes and info.distributed:  # every rank must use the same lr and stop together
                session_frac = ddp.all_reduce_mean(session_frac, info)
            time_frac = state["time_frac"] = (time_base + (1.0 - time_base) * min(session_frac, 1.0)
                                              if cfg.max_minutes else 0.0)
            lr = lr_at(state["step"], total_steps, cfg, time_frac)
            for g in optimizer.param_groups:
                g["lr"] = lr
            with autocast():
                res = net(b, targets={"targets": b["targets"], "target_mask": b["target_mask"]})
            loss = res["loss"]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip) if cfg.optim.grad_clip else None
            loss_value = float(loss.detach())
            # grad norm: the same on every rank (gradients are averaged); the loss: this rank's
            if not math.isfinite(loss_value) or (gnorm is not None and not math.isfinite(float(gnorm))):
                raise _diverged(out, state["step"] + 1, "training loss" if not math.isfinite(loss_value)
                                else "gradient norm", loss_value if not math.isfinite(loss_value) else float(gnorm))
            optimizer.step()
            state["step"] += 1
            state["batch_in_epoch"] += 1
            windows_seen += len(b["targets"]) * info.world_size
            windows_total += len(b["targets"]) * info.world_size
            running["loss"] = running.get("loss", 0.0) + loss_value
            for k in LOG_PARTS:
                running[k] = running.get(k, 0.0) + float(res["loss_parts"][k].detach())
            n_running += 1
            bar.update(1, **{k: running[k] / n_running for k in ("loss",) + LOG_PARTS})
            if state["step"] % cfg.log_every_steps == 0 or state["step"] == total_steps:
                now = time.monotonic()
                emit({"kind": "train", "step": state["step"], "epoch": state["epoch"], "lr": lr,
                      **{k: v / n_running for k, v in running.items()},
                      "grad_norm": None if gnorm is None else float(gnorm),
                      "windows_per_s": windows_seen / max(now - t_rate, 1e-9), "time_s": now - t_start})
                running, n_running, windows_seen, t_rate = {}, 0, 0, now
            out_of_time = bool(cfg.max_minutes) and session_frac >= 1.0
            cancelled = should_stop is not None and (ddp.all_reduce_mean(float(should_stop()), info) > 0
                                                     if info.distributed else should_stop())
            if state["step"] >= total_steps or out_of_time or state["step"] == stop_at_step or cancelled:
                end = ("done" if state["step"] >= total_steps else "cap" if out_of_time
                       else "cancelled" if cancelled else "paused")
                stop = True
                break
            if cfg.val_every_steps and state["step"] % cfg.val_every_steps == 0:
                checkpoint_and_validate()
                validated_at = state["step"]
            if check is not None:
                due = bar.elapsed_s >= next_check_s
                if info.distributed:  # every rank must reach the check's barrier together
                    due = ddp.all_reduce_mean(float(due), info) > 0
                if due:
                    run_check()
        else:
            state["epoch"] += 1
            state["batch_in_epoch"] = 0
            checkpoint_and_validate()
            validated_at = state["step"]
            continue
        if state["batch_in_epoch"] >= len(batches):
            state["epoch"] += 1
            state["batch_in_epoch"] = 0
    if validated_at != state["step"]:
        checkpoint_and_validate()
    if check is not None and checked_at != state["step"]:
        run_check()
    tb.close()
    bar.close(end, END_MESSAGES[end].format(cap=cfg.max_minutes, step=state["step"], total=total_steps))
    if log is not None:
        log.close()
    elapsed = time.monotonic() - t_start
    return {"run": str(out), "steps": state["step"], "epochs": state["epoch"], "best_val_loss": state["best_val"],
            "last_val": last_val, "elapsed_s": elapsed, "rank": info.rank, "world_size": info.world_size, "end": end}

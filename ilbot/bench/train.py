"""`ilbot bench train [--json]`: training throughput in windows per second.

Builds the generated dataset (ilbot.training.synthetic) in a temporary folder, then times full
optimizer steps (batch read, forward with the loss, backward, clipping, AdamW) of the model a
training config describes (default: configs' defaults, i.e. ModelConfig's default sizes) on the
CPU and, when one is at hand, on the GPU (bf16 autocast, as training uses there). Keys:
`windows_per_s` and `device` (the fastest device measured), `per_device` (every device), the
batch size, steps timed and the model's parameter count."""

from __future__ import annotations

import tempfile
import time
from contextlib import nullcontext

import numpy as np
import torch


def add_arguments(parser) -> None:
    parser.add_argument("--config", help="training config TOML whose [model] and batch size are timed")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per device (after 2 warm-up steps)")


def measure(ds, cfg, device: torch.device, steps: int) -> float:
    from ..training.data import iterate_batches
    from ..training.loop import build_model, make_optimizer

    model = build_model(cfg, ds).to(device)
    opt = make_optimizer(model, cfg)
    bs = cfg.data.batch_size
    rng = np.random.default_rng(0)
    batches = [rng.choice(len(ds), size=min(bs, len(ds)), replace=False) for _ in range(steps + 2)]
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if device.type == "cuda" and cfg.bf16 else nullcontext
    n = 0
    t0 = time.perf_counter()
    for i, batch in enumerate(iterate_batches(ds, batches)):
        if i == 2:  # warm-up done (allocator, kernels)
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0, n = time.perf_counter(), 0
        b = {k: v.to(device) for k, v in batch.items()}
        with autocast():
            out = model(b, targets={"targets": b["targets"], "target_mask": b["target_mask"]})
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
        opt.step()
        n += len(b["targets"])
    if device.type == "cuda":
        torch.cuda.synchronize()
    return n / (time.perf_counter() - t0)


def run(args) -> dict:
    from ..data.dataset import open_dataset
    from ..training.config import load_config
    from ..training.loop import build_model
    from ..training.synthetic import make_dataset

    cfg = load_config(getattr(args, "config", None), getattr(args, "overrides", []))
    steps = max(int(getattr(args, "steps", 10)), 1)
    with tempfile.TemporaryDirectory(prefix="ilbot-bench-train-") as tmp:
        ds = open_dataset(make_dataset(tmp, n_sessions=2, duration_s=60, holdout_frac=0.0))
        devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
        per_device = {d.type: round(measure(ds, cfg, d, steps), 1) for d in devices}
        params = build_model(cfg, ds).num_params()
    best = max(per_device, key=per_device.get)
    return {"windows_per_s": per_device[best], "device": best, "per_device": per_device,
            "batch_size": cfg.data.batch_size, "steps": steps, "model_params": params,
            "threads": torch.get_num_threads()}

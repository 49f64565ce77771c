"""Post-hoc σ calibration of the position head: `python -m ilbot.eval.calibrate RUN DATASET --out DIR`.

The Gaussian NLL fits σ to the residuals' variance; mouse residuals are heavy-tailed (most moves
are a few pixels, a few are jumps), so a variance-matched σ covers ~85 % of residuals within 1σ
instead of 68.3 %. The fix here is one scale per axis, s = the 0.683 quantile of |r| / σ on
training windows (teacher-forced, every valid slot), stored as ModelConfig.x_sigma_scale and
y_sigma_scale in a new checkpoint (weights unchanged). 1σ coverage on the training windows is
then 0.683 by construction; whether it holds on held-out data is what `ilbot eval` measures. The
NLL gets a little worse (σ is no longer its optimum): a trade the issue's coverage goal asks for.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

import numpy as np

from ..model.checkpoint import load_checkpoint, save_checkpoint
from ..model.model import UnifiedEventModel
from .report import pick_windows, predict_split

ONE_SIGMA = 0.6826894921370859  # P(|z| < 1) of a standard normal


def coverage_scale(residual: np.ndarray, sigma: np.ndarray, target: float = ONE_SIGMA) -> float:
    """The factor s with P(|residual| < s·σ) = target over the given slots ([S] each)."""
    z = np.abs(np.asarray(residual, np.float64)) / np.maximum(np.asarray(sigma, np.float64), 1e-12)
    if z.size == 0:
        raise ValueError("coverage_scale: no slots")
    return float(max(np.quantile(z, target), 1e-3))


def calibrate(model_path, data_path, out_dir, *, max_windows: int = 20000, seed: int = 0, split: str = "train") -> dict:
    """Fit the two scales on `split` windows of the dataset and write the calibrated checkpoint
    to out_dir. Returns {"x_sigma_scale", "y_sigma_scale", "slots", ...}."""
    from ..data.dataset import open_dataset

    ds = open_dataset(data_path, split=split)
    ck = load_checkpoint(model_path, expect_spec_hash=ds.spec_hash)
    idx = pick_windows(len(ds), max_windows, seed)
    slots, pred = predict_split(ck.model, ds, idx)
    # the scales compose with any earlier calibration (pred's σ already includes it)
    sx = coverage_scale(slots.x - pred.x_mu, pred.x_sigma) * ck.config.x_sigma_scale
    sy = coverage_scale(slots.y - pred.y_mu, pred.y_sigma) * ck.config.y_sigma_scale
    cfg = dataclasses.replace(ck.config, x_sigma_scale=sx, y_sigma_scale=sy)
    model = UnifiedEventModel(cfg)
    model.load_state_dict(ck.model.state_dict())
    info = {"x_sigma_scale": sx, "y_sigma_scale": sy, "slots": int(len(slots)), "windows": int(len(idx)),
            "split": split, "from": str(ck.path)}
    extra = dict(ck.meta.get("extra") or {})
    extra["sigma_calibration"] = info
    save_checkpoint(out_dir, model, spec_hash=ck.spec_hash, key_vocab=ck.key_vocab, stats=ck.stats, extra=extra)
    return info


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m ilbot.eval.calibrate", description=__doc__.splitlines()[0])
    p.add_argument("model", help="checkpoint or run folder")
    p.add_argument("data", help="dataset folder")
    p.add_argument("--out", required=True, help="folder for the calibrated checkpoint")
    p.add_argument("--max-windows", type=int, default=20000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split", default="train")
    a = p.parse_args(argv)
    from ..errors import UserError
    try:
        info = calibrate(a.model, a.data, a.out, max_windows=a.max_windows, seed=a.seed, split=a.split)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"sigma scale x {info['x_sigma_scale']:.4f} y {info['y_sigma_scale']:.4f} "
          f"({info['slots']} slots of {info['windows']} {info['split']} windows) → {a.out}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

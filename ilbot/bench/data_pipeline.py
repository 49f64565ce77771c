"""`ilbot bench import`: the full Balabit import plus dataset build into a temporary folder.

Prints the seconds of each stage, the total and the counts (keys import_s, build_s, total_s,
events, windows, …). The machine may be shared: the 1-minute load average before and after is
printed with the figures so a slow run can be read in context."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from ..errors import DataError

DEFAULT_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "balabit" / "training_files"


def add_arguments(parser) -> None:
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="Balabit training_files folder")
    parser.add_argument("--split-by", default="user", choices=["user", "session"])
    parser.add_argument("--holdout", default="7,9", help="held-out users (split by user)")
    parser.add_argument("--keep", default=None, help="keep the stores and dataset in this folder")


def run(args) -> dict:
    from ..data.build import BuildConfig, build_dataset
    from ..data.importers import run_import

    data = Path(args.data)
    if not data.is_dir():
        raise DataError(f"{data}: no Balabit training_files folder (pass --data)")
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="ilbot-bench-") as tmp:
        root = Path(args.keep) if args.keep else Path(tmp)
        t0 = time.perf_counter()
        results = run_import("balabit", [data], root / "sessions", progress=False)
        t1 = time.perf_counter()
        cfg = BuildConfig(split_by=args.split_by, progress=False)
        if args.split_by == "user":
            cfg.holdout = tuple(h for h in args.holdout.split(",") if h)
        else:
            cfg.holdout_frac = 0.2
        stats = build_dataset(sorted((root / "sessions").glob("*.ilbot.sqlite")), root / "dataset", cfg)
        t2 = time.perf_counter()
        gather = _gather_rate(root / "dataset")
    events = sum(r["n_events"] for r in results)
    return {
        "import_s": round(t1 - t0, 2), "build_s": round(t2 - t1, 2), "total_s": round(t2 - t0, 2),
        "sessions": len(results), "events": events,
        "clicks": sum(r["counts"]["clicks"] for r in results),
        "windows": stats["all"]["n_windows"], "idle_windows": stats["all"]["idle_windows"],
        "events_after_thinning": sum(stats["all"]["event_counts"].values()),
        "overflow": stats["all"]["overflow"], "gather_windows_per_s": gather,
        "cpus": os.cpu_count(), "load_1min_before": round(load_before, 2),
        "load_1min_after": round(os.getloadavg()[0], 2),
    }


def _gather_rate(path: Path, batch: int = 256, batches: int = 20) -> int:
    """Windows per second that `WindowDataset.batch` gathers (random training batches, all arrays)."""
    import numpy as np

    from ..data.dataset import open_dataset
    ds = open_dataset(path, "train")
    rng = np.random.default_rng(0)
    ds.batch(rng.integers(0, len(ds), batch))  # warm the page cache
    t0 = time.perf_counter()
    for _ in range(batches):
        ds.batch(rng.integers(0, len(ds), batch))
    return int(batch * batches / (time.perf_counter() - t0))

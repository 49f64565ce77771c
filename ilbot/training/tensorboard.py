"""TensorBoard curves of a training run: `RUN/tb/`, so `tensorboard --logdir runs/` shows every run.

`TensorBoardLog(run_dir)` takes the same documents the loop writes to `metrics.jsonl` and writes
them as scalars with torch's `SummaryWriter`:

| metrics.jsonl | TensorBoard tag |
| --- | --- |
| train `loss`, val `loss` | `loss/train`, `loss/val` (one chart, both curves) |
| train `lr` | `lr` |
| train loss parts (`event`, `time`, `xy`, `aux`), `grad_norm`, `windows_per_s` | `train/<name>` |
| val loss parts | `val/<name>` |

The step axis is the optimizer step. A resumed run passes its checkpoint's step + 1 as
`purge_step`, so points a killed invocation logged after that checkpoint are dropped and the
curves continue cleanly.

The `tensorboard` package is an optional dependency (`pip install tensorboard`, also in the test
extra): without it `available` is False, nothing is written and `missing_note` says why.
"""

from __future__ import annotations

from pathlib import Path

SUBDIR = "tb"
TRAIN_PARTS = ("event", "time", "xy", "aux", "grad_norm", "windows_per_s")
VAL_PARTS = ("event", "time", "xy", "aux")


def writer_class():
    """torch's SummaryWriter, or None when the tensorboard package is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter


class TensorBoardLog:
    def __init__(self, run_dir, purge_step: int | None = None, enabled: bool = True):
        self.folder = Path(run_dir) / SUBDIR
        self.writer = None
        self.missing_note = ""
        if not enabled:
            return
        cls = writer_class()
        if cls is None:
            self.missing_note = "tensorboard is not installed: no TensorBoard curves (pip install tensorboard)"
            return
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)  # user-only, as the run folder
        self.writer = cls(log_dir=str(self.folder), purge_step=purge_step or None)

    @property
    def available(self) -> bool:
        return self.writer is not None

    def log(self, doc: dict) -> None:
        """Write one metrics document (kind "train" or "val"); other kinds are ignored."""
        if self.writer is None:
            return
        kind, step = doc.get("kind"), int(doc.get("step", 0))
        if kind == "train":
            self._scalar("loss/train", doc.get("loss"), step)
            self._scalar("lr", doc.get("lr"), step)
            for k in TRAIN_PARTS:
                self._scalar(f"train/{k}", doc.get(k), step)
        elif kind == "val":
            self._scalar("loss/val", doc.get("loss"), step)
            for k in VAL_PARTS:
                self._scalar(f"val/{k}", doc.get(k), step)

    def _scalar(self, tag: str, value, step: int) -> None:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            self.writer.add_scalar(tag, float(value), step)

    def flush(self) -> None:
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

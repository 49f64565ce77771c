"""`ilbot train --data DATASET [--config FILE.toml] [--set key=value ...] --out RUN [--resume | --overwrite]`.

--out must be new (or an empty folder): an existing run is continued only with `--resume` and
replaced only with `--overwrite`, and only if it is an ilbot run (ilbot.training.rundir).

Under torchrun: `torchrun --nproc_per_node 2 -m ilbot.cli train --data D --out RUN` (the same
command; ilbot.training.ddp joins the process group).

SIGTERM or Ctrl+C stops the run cleanly: the step in progress finishes, the run validates and
writes `last/` (so `--resume` continues it), and the command exits with 130; a second Ctrl+C
aborts at once. `--progress-json` writes the progress reporter's JSON lines (ilbot.data.progress)
and every metrics document to stdout, for the app; the summary line stays the last line."""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path

from ..errors import UserError


def register(sub) -> None:
    p = sub.add_parser("train", help="train a model on a dataset (single process or under torchrun)")
    p.add_argument("--data", required=True, help="dataset folder (ilbot build)")
    p.add_argument("--config", help="training config TOML (configs/*.toml)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config key, e.g. --set optim.lr=1e-3 (repeatable)")
    p.add_argument("--out", required=True, help="run folder: best/, last/, metrics.jsonl")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last/ checkpoint (a max_minutes cap counts from this invocation)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the training run already in --out (only an ilbot run is ever replaced)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--progress-json", action="store_true",
                   help="machine-readable progress on stdout: one JSON object per line (kind progress, train, val, end)")
    p.set_defaults(func=run)
    p.epilog = ("max_minutes caps each invocation: --resume gets the whole cap again (the progress line says "
                "'cap … this invocation'). SIGTERM or Ctrl+C checkpoints and exits with 130; --resume continues.")


def run(args) -> int:
    from .config import load_config
    from .loop import train

    if not Path(args.data).exists():
        raise UserError(f"dataset {args.data} does not exist")
    cfg = None
    if not args.resume or args.config:
        cfg = load_config(args.config, args.overrides)
    stop = threading.Event()
    previous = _catch_stop(stop)
    try:
        summary = train(args.data, args.out, cfg, resume=args.resume, overwrite=args.overwrite, overrides=args.overrides if cfg is None else (),
                        show_progress=not args.quiet, progress_json=sys.stdout if args.progress_json else None,
                        should_stop=stop.is_set)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if summary["rank"] == 0:
        print(json.dumps({k: summary[k] for k in ("run", "steps", "epochs", "best_val_loss", "elapsed_s", "end")}),
              flush=True)
    return 130 if summary["end"] == "cancelled" else 0


def _catch_stop(stop: threading.Event) -> dict:
    """SIGTERM/SIGINT set `stop` (the loop checkpoints and ends); a second SIGINT aborts.
    Returns the handlers it replaced. Outside the main thread it installs nothing."""
    if threading.current_thread() is not threading.main_thread():
        return {}

    def handler(signum, _frame):
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set()
        print(f"\ntrain: {signal.Signals(signum).name}: stopping after this step (checkpoint in last/, "
              "--resume continues)", file=sys.stderr, flush=True)

    return {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}

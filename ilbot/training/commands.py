"""`ilbot train --data DATASET [--config FILE.toml] [--set key=value ...] --out RUN [--resume]`.

Under torchrun: `torchrun --nproc_per_node 2 -m ilbot.cli train --data D --out RUN` (the same
command; ilbot.training.ddp joins the process group)."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import UserError


def register(sub) -> None:
    p = sub.add_parser("train", help="train a model on a dataset (single process or under torchrun)")
    p.add_argument("--data", required=True, help="dataset folder (ilbot build)")
    p.add_argument("--config", help="training config TOML (configs/*.toml)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config key, e.g. --set optim.lr=1e-3 (repeatable)")
    p.add_argument("--out", required=True, help="run folder: best/, last/, metrics.jsonl")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last/ checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    from .config import load_config
    from .loop import train

    if not Path(args.data).exists():
        raise UserError(f"dataset {args.data} does not exist")
    cfg = None
    if not args.resume or args.config:
        cfg = load_config(args.config, args.overrides)
    summary = train(args.data, args.out, cfg, resume=args.resume, overrides=args.overrides if cfg is None else (),
                    show_progress=not args.quiet)
    if summary["rank"] == 0:
        print(json.dumps({k: summary[k] for k in ("run", "steps", "epochs", "best_val_loss", "elapsed_s")}))
    return 0

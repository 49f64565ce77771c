"""`ilbot bench NAME [--json]`: every benchmark is a module `ilbot.bench.<module>` (table below) with
`add_arguments(parser)` (optional) and `run(args) -> dict`; the figures print as text or as one
JSON object."""

from __future__ import annotations

import importlib
import json

BENCHMARKS = {  # name → (module under ilbot.bench, help)
    "import": ("data_pipeline", "data pipeline: Balabit import + dataset build"),
    "latency": ("latency", "per-tick planning latency of the model"),
    "train": ("train", "training throughput; with --data, the minutes until every baseline is beaten"),
    "record": ("record", "recorder sustained rate with zero loss"),
    "killswitch": ("killswitch", "kill switch: hotkey to stopped and released"),
    "sandbox": ("sandbox", "shipped model vs demonstrator on the sandbox"),
    "overlay": ("overlay", "overlay paint time with 100 ellipses"),
}


def register(sub) -> None:
    p = sub.add_parser("bench", help="run a benchmark and print its figures")
    bsub = p.add_subparsers(dest="bench", metavar="NAME")
    bsub.required = True
    for name, (module_name, help_text) in BENCHMARKS.items():
        bp = bsub.add_parser(name, help=help_text)
        bp.add_argument("--json", action="store_true", help="print one JSON object")
        try:
            module = importlib.import_module(f"ilbot.bench.{module_name}")
        except ModuleNotFoundError as e:
            if e.name != f"ilbot.bench.{module_name}":
                raise
            bp.set_defaults(func=lambda a, n=name: _missing(n))
            continue
        if hasattr(module, "add_arguments"):
            module.add_arguments(bp)
        bp.set_defaults(func=lambda a, m=module: run_and_print(m, a))


def _missing(name: str) -> int:
    from ..errors import UserError
    raise UserError(f"benchmark {name!r} is not available in this build")


def run_and_print(module, args) -> int:
    """Run one benchmark module and print its figures (text, or one JSON object with --json)."""
    result = module.run(args)
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k}: {v}")
    return 0

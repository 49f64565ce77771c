"""`ilbot import`, `ilbot build` and `ilbot stats`: the data sub-commands."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..errors import DataError


def register(sub) -> None:
    p = sub.add_parser("import", help="import other recorders' logs into session stores")
    p.add_argument("format", choices=["balabit", "keystrokes", "ilbot-csv"], help="source format")
    p.add_argument("paths", nargs="+", metavar="PATH", help="files or folders to import")
    p.add_argument("--out", required=True, help="folder for the *.ilbot.sqlite stores")
    p.add_argument("--strict", action="store_true", help="reject a file at its first malformed row")
    p.add_argument("--overwrite", action="store_true", help="replace stores that already exist")
    p.add_argument("--hold-ms", type=float, default=None, help="CLICK hold where the source logs presses only")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("build", help="build dataset windows from session stores")
    p.add_argument("sessions", nargs="+", metavar="SESSION", help="*.ilbot.sqlite stores (or folders of them)")
    p.add_argument("--out", required=True, help="dataset folder")
    p.add_argument("--split-by", choices=["session", "user"], default=None)
    p.add_argument("--holdout", default="", help="held-out users (--split-by user) or session names, comma-separated")
    p.add_argument("--holdout-frac", type=float, default=0.0, help="share of sessions held out at random")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--thin-ms", type=float, default=None, help="MOVE/SCROLL thinning gap (default 15)")
    p.add_argument("--tick-ms", type=float, default=None, help="tick length (default: recorded ticks, else 600)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("stats", help="print a dataset's statistics")
    p.add_argument("dataset")
    p.add_argument("--json", action="store_true", help="print stats.json")
    p.set_defaults(func=cmd_stats)


def _fmt_counts(d: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in d.items() if not isinstance(v, (dict, list)) or v)


def cmd_import(args: argparse.Namespace) -> int:
    from .importers import ImportOptions, run_import
    opts = ImportOptions(strict=args.strict, overwrite=args.overwrite)
    if args.hold_ms is not None:
        opts.hold_ms = args.hold_ms
    results = run_import(args.format, args.paths, args.out, opts, progress=not args.no_progress)
    totals: dict[str, Any] = {}
    for r in results:
        c = r["counts"]
        print(f"{r['path']}: {r['n_events']} events ({_fmt_counts(c['events'])})")
        for k, v in c.items():
            if k == "events":
                for name, n in v.items():
                    totals[f"events.{name}"] = totals.get(f"events.{name}", 0) + n
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                totals[k] = totals.get(k, 0) + v
            elif isinstance(v, dict) and k == "unknown_key_names":
                for name, n in v.items():
                    totals.setdefault("unknown_key_names", {})
                    totals["unknown_key_names"][name] = totals["unknown_key_names"].get(name, 0) + n
        if c.get("malformed_rows"):
            print(f"  skipped {c['malformed_rows']} malformed row(s) at line(s) "
                  f"{', '.join(map(str, c['malformed_lines']))}{' …' if c['malformed_rows'] > len(c['malformed_lines']) else ''}")
        if c.get("unmatched_press"):
            print(f"  warning: {c['unmatched_press']} press(es) without a release dropped")
    print(f"imported {len(results)} session(s) into {args.out}")
    print("totals: " + ", ".join(f"{k} {v}" for k, v in totals.items() if not isinstance(v, dict)))
    if totals.get("unknown_key_names"):
        print("unknown keys (mapped to UNK): " + ", ".join(f"{k} {v}" for k, v in totals["unknown_key_names"].items()))
    return 0


def _session_paths(items: list[str]) -> list[Path]:
    out = []
    for s in items:
        p = Path(s)
        if p.is_dir():
            found = sorted(p.glob("*.ilbot.sqlite"))
            if not found:
                raise DataError(f"{p}: folder holds no *.ilbot.sqlite session stores")
            out += found
        else:
            out.append(p)
    return out


def cmd_build(args: argparse.Namespace) -> int:
    from .build import BuildConfig, build_dataset
    cfg = BuildConfig(split_by=args.split_by, holdout_frac=args.holdout_frac, seed=args.seed,
                      progress=not args.no_progress, tick_ms=args.tick_ms)
    if args.thin_ms is not None:
        cfg.thin_ms = args.thin_ms
    if args.holdout:
        cfg.holdout = tuple(h.strip() for h in args.holdout.split(",") if h.strip())
    if args.split_by == "session" and not cfg.holdout and cfg.holdout_frac <= 0:
        raise DataError("--split-by session needs --holdout NAMES or --holdout-frac F")
    if args.split_by == "user" and not cfg.holdout:
        raise DataError("--split-by user needs --holdout USER,...")
    stats = build_dataset(_session_paths(args.sessions), args.out, cfg)
    _print_stats(stats, args.out)
    return 0


def _print_summary(s: dict[str, Any], indent: str = "") -> None:
    print(f"{indent}sessions {s['sessions']}, windows {s['n_windows']}, ticks {s['n_ticks']}, "
          f"idle windows {s['idle_windows']} ({s['idle_windows'] / max(s['n_windows'], 1):.1%})")
    print(f"{indent}events by type (after thinning): {_fmt_counts(s['event_counts'])}")
    print(f"{indent}events by type (before thinning): {_fmt_counts(s['event_counts_raw'])}; "
          f"thinned {_fmt_counts(s['thinned'])}")
    q = s["dt_quantiles"]
    print(f"{indent}dt ms quantiles: " + ", ".join(f"{k} {v:.1f}" for k, v in q.items()) +
          f"; zero dt {s['dt_zero_frac']:.1%}")
    q = s["lookahead_dt_quantiles"]
    print(f"{indent}look-ahead dt ms: " + ", ".join(f"{k} {v:.0f}" for k, v in q.items()) +
          f"; clipped {s['lookahead_clipped_frac']:.1%}")
    hist = s["events_per_tick_hist"]
    shown = {str(k): hist[k] for k in range(min(len(hist) - 1, 10))}
    mid = sum(hist[10:-1])
    print(f"{indent}events per tick (windows): " + ", ".join(f"{k}: {v}" for k, v in shown.items()) +
          f", 10-{len(hist) - 2}: {mid}, >={len(hist) - 1}: {hist[-1]}")
    print(f"{indent}overflow: {s['overflow']} target events beyond the slots in {s['overflow_windows']} windows; "
          f"history overflow {s['history_overflow']}; dropped outside ticks {s['dropped_outside_ticks']}")
    h = s["hold_ms"]
    print(f"{indent}click hold ms: median {h['median']:.0f}, q10 {h['q10']:.0f}, q90 {h['q90']:.0f} (n {h['n']})")


def _print_stats(stats: dict[str, Any], where: str) -> None:
    print(f"dataset {where}: tick {stats['tick_ms']:.0f} ms, thinning {stats['thin_ms']} ms")
    for name, s in stats.get("splits", {}).items():
        print(f"[{name}]")
        _print_summary(s, "  ")
    if len(stats.get("splits", {})) > 1:
        print("[all]")
        _print_summary(stats["all"], "  ")


def cmd_stats(args: argparse.Namespace) -> int:
    from .dataset import open_dataset
    ds = open_dataset(args.dataset)
    if args.json:
        print(json.dumps(ds.stats))
        return 0
    _print_stats(ds.stats, args.dataset)
    print(f"spec hash {ds.spec_hash}, key vocabulary {len(ds.key_vocab)} keys, splits {', '.join(ds.split_names)}")
    return 0


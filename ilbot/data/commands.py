"""`ilbot import`, `ilbot build` and `ilbot stats`: the data sub-commands."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from ..errors import DataError, UserError


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
    p.add_argument("--out", required=True, help="dataset folder (written atomically; must be new, empty or, "
                   "with --overwrite, an ilbot dataset)")
    p.add_argument("--overwrite", action="store_true", help="replace the ilbot dataset already in --out")
    p.add_argument("--split-by", choices=["session", "user"], default=None)
    p.add_argument("--holdout", default="", help="held-out users (--split-by user) or session names, comma-separated")
    p.add_argument("--holdout-frac", type=float, default=None,
                   help="share in (0, 1) of sessions held out at random (implies --split-by session), or of "
                        "users with --split-by user (besides any --holdout; at least one, never all); "
                        "with one session, the share of its windows held out at its end (one session and no "
                        "split option: 0.2 of its end)")
    p.add_argument("--calib-frac", type=float, default=None,
                   help="share in (0, 1) of the remaining training sessions held out at random as a 'calib' split "
                        "for `ilbot eval calibrate --split calib` (needs a split; at least 1 session, never all; "
                        "not with a one-session time split)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--thin-ms", type=float, default=None, help="MOVE/SCROLL thinning gap (default 15)")
    p.add_argument("--tick-ms", type=float, default=None, help="tick length (default: recorded ticks, else 600)")
    p.add_argument("--segment-weight", action="append", default=[], metavar="KIND=W",
                   help="training weight of the windows inside marked segments, e.g. correction=3 (the person's "
                        "takeovers recorded by the app), takeover=4 (the sandbox demonstrator's) or agent=0 (the "
                        "agent's own spans in takeover sessions); repeatable")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("stats", help="print a dataset's statistics")
    p.add_argument("dataset")
    p.add_argument("--json", action="store_true", help="print stats.json")
    p.set_defaults(func=cmd_stats)


def _fmt_counts(d: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in d.items() if not isinstance(v, (dict, list)) or v)


def cmd_import(args: argparse.Namespace) -> int:
    """Import, then one line per store, one `skipped N rows: ...` line per source file with bad
    rows, and the totals. Names from data are printed escaped (no control characters)."""
    from .importers import ImportOptions, run_import
    from .schema import MAX_HOLD_MS
    opts = ImportOptions(strict=args.strict, overwrite=args.overwrite)
    if args.hold_ms is not None:
        if not (math.isfinite(args.hold_ms) and 0 <= args.hold_ms <= MAX_HOLD_MS):
            raise UserError(f"--hold-ms must be a number of milliseconds in 0..{MAX_HOLD_MS:g}, got {args.hold_ms!r}")
        opts.hold_ms = args.hold_ms
    skipped: list[str] = []
    results = run_import(args.format, args.paths, args.out, opts, progress=not args.no_progress, skipped=skipped)
    totals: dict[str, Any] = {}
    unknown: dict[str, int] = {}
    for r in results:
        c = r["counts"]
        print(f"{r['path']}: {r['n_events']} events ({_fmt_counts(c['events'])})")
        for k, v in c.items():
            if k == "events":
                for name, n in v.items():
                    totals[f"events.{name}"] = totals.get(f"events.{name}", 0) + n
            elif k == "malformed_rows":
                continue  # per source file, below
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                totals[k] = totals.get(k, 0) + v
            elif isinstance(v, dict) and k == "unknown_key_names":
                for name, n in v.items():
                    unknown[name] = unknown.get(name, 0) + n
        if c.get("unmatched_press"):
            print(f"  warning: {c['unmatched_press']} press(es) without a release dropped")
    for line in skipped:
        print(line)
    print(f"imported {len(results)} session(s) into {args.out}")
    print("totals: " + ", ".join(f"{k} {v}" for k, v in totals.items()))
    if unknown:
        print("unknown keys (mapped to UNK): " + ", ".join(f"{repr(k)[1:-1]} {v}" for k, v in unknown.items()))
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


def _check_build_args(args: argparse.Namespace) -> None:
    """Range checks of `ilbot build`'s numbers, each a one-line UserError naming the flag."""
    from .schema import MAX_TICK_MS, MIN_TICK_MS, SEED_MAX, tick_ms_problem

    def bad(flag: str, want: str, v) -> UserError:
        return UserError(f"{flag} must be {want}, got {v!r}")
    if args.tick_ms is not None and tick_ms_problem(args.tick_ms):
        raise bad("--tick-ms", f"a number of milliseconds in {MIN_TICK_MS:g}..{MAX_TICK_MS:g}", args.tick_ms)
    if args.thin_ms is not None and not (math.isfinite(args.thin_ms) and 0 <= args.thin_ms <= MAX_TICK_MS):
        raise bad("--thin-ms", f"a number of milliseconds in 0..{MAX_TICK_MS:g}", args.thin_ms)
    if not 0 <= args.seed <= SEED_MAX:
        raise bad("--seed", f"an integer in 0..{SEED_MAX}", args.seed)
    if args.holdout_frac is not None and not (math.isfinite(args.holdout_frac) and 0 < args.holdout_frac < 1):
        raise bad("--holdout-frac", "a share in (0, 1)", args.holdout_frac)
    if args.calib_frac is not None and not (math.isfinite(args.calib_frac) and 0 < args.calib_frac < 1):
        raise bad("--calib-frac", "a share in (0, 1)", args.calib_frac)
    if args.calib_frac is not None and args.split_by is None and args.holdout_frac is None:
        raise UserError("--calib-frac needs a split: --holdout-frac F, or --split-by session|user with --holdout")
    if args.holdout and args.split_by is None:
        raise UserError("--holdout needs --split-by session (session names) or --split-by user (user ids)")
    args.segment_weights = _segment_weights(args.segment_weight)


def _segment_weights(items: list[str]) -> dict[str, float]:
    """`--segment-weight KIND=W` values → {kind: weight}; one line naming a bad one."""
    from .store import SEGMENT_KINDS

    out = {}
    for item in items:
        kind, _, w = item.partition("=")
        try:
            weight = float(w)
        except ValueError:
            weight = float("nan")
        if kind not in SEGMENT_KINDS or not (math.isfinite(weight) and 0 <= weight <= 100):
            raise UserError(f"--segment-weight {item!r}: expected KIND=W with KIND one of {', '.join(SEGMENT_KINDS)} "
                            f"and 0 <= W <= 100")
        out[kind] = weight
    return out


def cmd_build(args: argparse.Namespace) -> int:
    """Build; a single session without split options is split by time (the last
    DEFAULT_TIME_HOLDOUT of its windows held out as 'val'), so `ilbot train` can validate on it."""
    from .build import DEFAULT_TIME_HOLDOUT, BuildConfig, build_dataset
    _check_build_args(args)
    split_by = args.split_by or ("session" if args.holdout_frac is not None else None)
    cfg = BuildConfig(split_by=split_by, holdout_frac=args.holdout_frac or 0.0, calib_frac=args.calib_frac or 0.0,
                      seed=args.seed, progress=not args.no_progress, tick_ms=args.tick_ms, segment_weights=args.segment_weights)
    if args.thin_ms is not None:
        cfg.thin_ms = args.thin_ms
    if args.holdout:
        cfg.holdout = tuple(h.strip() for h in args.holdout.split(",") if h.strip())
    if split_by == "session" and not cfg.holdout and cfg.holdout_frac <= 0:
        raise DataError("--split-by session needs --holdout NAMES or --holdout-frac F")
    if split_by == "user" and not cfg.holdout and cfg.holdout_frac <= 0:
        raise DataError("--split-by user needs --holdout USER,... or --holdout-frac F")
    paths = _session_paths(args.sessions)
    if split_by is None and len(set(paths)) == 1:  # one session and no split asked for: hold out its end
        cfg.split_by, cfg.holdout_frac, cfg.auto_holdout = "session", DEFAULT_TIME_HOLDOUT, True
    stats = build_dataset(paths, args.out, cfg, overwrite=args.overwrite)
    _print_stats(stats, args.out)
    if len(stats.get("splits", {})) < 2:
        print("note: no validation split (all windows train); `ilbot train` validates on 'val': build with "
              "--holdout-frac F (one session is enough) or train with --set data.val_split=\"\"")
    return 0


def _print_summary(s: dict[str, Any], indent: str = "") -> None:
    print(f"{indent}sessions {s['sessions']}, windows {s['n_windows']}, ticks {s['n_ticks']}, "
          f"idle windows {s['idle_windows']} ({s['idle_windows'] / max(s['n_windows'], 1):.1%})")
    if s.get("sessions_by_user"):
        print(f"{indent}sessions by user: " + ", ".join(f"{u}: {n}" for u, n in s["sessions_by_user"].items()))
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
    if stats.get("split_note"):
        print(f"split: {stats['split_note']}")
    for name, s in stats.get("splits", {}).items():
        print(f"[{name}]")
        _print_summary(s, "  ")
    if len(stats.get("splits", {})) > 1:
        print("[all]")
        _print_summary(stats["all"], "  ")


def cmd_stats(args: argparse.Namespace) -> int:
    """Print the dataset's statistics; a stats.json whose figures cannot be shown (a field missing
    or of another type) is one line naming it, printed before any of the figures."""
    import contextlib
    import io

    from .dataset import open_dataset
    ds = open_dataset(args.dataset)
    if args.json:
        print(json.dumps(ds.stats))
        return 0
    text = io.StringIO()
    try:
        with contextlib.redirect_stdout(text):
            _print_stats(ds.stats, args.dataset)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
        what = f"field {e.args[0]!r} is missing" if isinstance(e, KeyError) else f"a field of another type ({e})"
        raise DataError(f"{Path(args.dataset) / 'stats.json'}: cannot show its figures: {what}"[:400]) from None
    print(text.getvalue(), end="")
    print(f"spec hash {ds.spec_hash}, key vocabulary {len(ds.key_vocab)} keys, splits {', '.join(ds.split_names)}")
    return 0


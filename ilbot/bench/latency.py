"""`ilbot bench latency [--json]`: per-tick planning latency of the model on this CPU.

One tick = what the live agent does each tick: encode the context (T ticks of game state and
action history), decode slot by slot with the key/value cache, sample every head, build the
PlannedAction list. Two cases, each over `--ticks` ticks (default 500) after a warm-up:

- typical: 20 decoded slots per tick (the upper end of a typical tick's event count; real
  ticks are mostly idle or a few moves),
- worst: all A = 100 slots.

The decoding length is fixed by `max_slots` with an unbounded tick, so the figure does not
depend on what the weights happen to sample; the weights are the default config's random
initialisation unless `--checkpoint` is given (latency depends on the sizes, not the values).
Contexts are synthetic windows with up to 20 history events per tick. The machine is shared:
the 1-minute load average before and after is reported beside the figures, and the planning
thread's CPU time per tick (`cpu_*`) beside the wall-clock figures: on a busy machine the wall
clock includes waiting for a core, the CPU time does not.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

TYPICAL_SLOTS = 20


def add_arguments(parser) -> None:
    parser.add_argument("--ticks", type=int, default=500, help="ticks per case (default 500)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed ticks first (default 20)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads while planning (default 1)")
    parser.add_argument("--checkpoint", default=None, help="time this checkpoint's model (default: the default config)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--breakdown", action="store_true",
                        help="also the minimum over repeated calls of each part (encode, cache preparation, decoder step, plans of 1/20/100 slots)")


def _time_case(planner, contexts, n_slots: int, ticks: int, warmup: int, label: str) -> tuple[np.ndarray, np.ndarray]:
    """Wall-clock and this thread's CPU time per tick, ms."""
    n = len(contexts)
    for i in range(warmup):
        planner.plan(contexts[i % n], tick_ms=float("inf"), window_size=(800, 600), max_slots=n_slots)
    wall, cpu = np.empty(ticks), np.empty(ticks)
    for i in range(ticks):
        t0, c0 = time.perf_counter(), time.thread_time()
        planner.plan(contexts[i % n], tick_ms=float("inf"), window_size=(800, 600), max_slots=n_slots)
        wall[i], cpu[i] = time.perf_counter() - t0, time.thread_time() - c0
        if (i + 1) % 100 == 0:
            print(f"latency: {label} {i + 1}/{ticks} ticks", file=sys.stderr, flush=True)
    return wall * 1e3, cpu * 1e3


def _min_ms(f, n: int) -> float:
    best = float("inf")
    for _ in range(n):
        t0 = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t0)
    return round(best * 1e3, 3)


def _breakdown(model, planner, context: dict, threads: int) -> dict:
    """Minimum over repeated calls (the least disturbed by other processes) of each part."""
    import torch  # here: `ilbot` imports every benchmark module at start-up for its arguments

    batch = {k: torch.as_tensor(v)[None] for k, v in context.items()}
    dec = planner.decoder
    prev = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.inference_mode():
            enc = _min_ms(lambda: model.encode(batch), 200)
            ctx = model.encode(batch)
            start = _min_ms(lambda: dec.start(ctx), 200)
            state = dec.start(ctx)
            x = dec.start_in[None]
            step = _min_ms(lambda: dec.step(state, x, 10), 1000)
    finally:
        torch.set_num_threads(prev)
    plan = {n: _min_ms(lambda n=n: planner.plan(context, tick_ms=float("inf"), max_slots=n), 100 if n < 100 else 30)
            for n in (1, TYPICAL_SLOTS, model.cfg.n_slots)}
    return {"min_encode_ms": enc, "min_cache_prep_ms": start, "min_step_ms": step,
            "min_plan_1_ms": plan[1], f"min_plan_{TYPICAL_SLOTS}_ms": plan[TYPICAL_SLOTS],
            f"min_plan_{model.cfg.n_slots}_ms": plan[model.cfg.n_slots]}


def run(args) -> dict:
    import torch

    from ..data.schema import CONTEXT_FIELDS
    from ..model import ModelConfig, UnifiedEventModel, load_checkpoint
    from ..model.planner import Planner
    from ..model.synthetic import synthetic_windows

    if args.checkpoint:
        model = load_checkpoint(args.checkpoint).model
    else:
        torch.manual_seed(args.seed)
        model = UnifiedEventModel(ModelConfig()).eval()
    cfg = model.cfg
    w = synthetic_windows(16, seed=args.seed, vocab=cfg.key_vocab_size, n_ticks=cfg.n_ticks,
                          n_features=cfg.n_features, n_slots=cfg.n_slots)
    contexts = [{k: w[k][i] for k in CONTEXT_FIELDS} for i in range(16)]
    planner = Planner(model, seed=args.seed, threads=args.threads)
    load_before = os.getloadavg()[0]
    typical, typical_cpu = _time_case(planner, contexts, TYPICAL_SLOTS, args.ticks, args.warmup, "typical")
    worst, worst_cpu = _time_case(planner, contexts, cfg.n_slots, args.ticks, args.warmup, "worst")
    load_after = os.getloadavg()[0]
    r = lambda v: round(float(v), 2)  # noqa: E731
    extra = _breakdown(model, planner, contexts[0], args.threads) if args.breakdown else {}
    return extra | {
        "p50_ms": r(np.percentile(typical, 50)), "p99_ms": r(np.percentile(typical, 99)),
        "worst_p50_ms": r(np.percentile(worst, 50)), "worst_p99_ms": r(np.percentile(worst, 99)),
        # CPU time of the planning thread: what the tick costs without other processes' share of the cores
        "cpu_p50_ms": r(np.percentile(typical_cpu, 50)), "cpu_p99_ms": r(np.percentile(typical_cpu, 99)),
        "worst_cpu_p50_ms": r(np.percentile(worst_cpu, 50)), "worst_cpu_p99_ms": r(np.percentile(worst_cpu, 99)),
        "params": int(model.num_params()), "typical_slots": TYPICAL_SLOTS, "worst_slots": cfg.n_slots,
        "ticks": args.ticks, "threads": args.threads, "load_avg_before": r(load_before), "load_avg_after": r(load_after),
    }

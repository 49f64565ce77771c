"""The report's PNG plots (matplotlib, headless Agg backend):

- `confusion.png`: row-normalised 4×4 event confusion (true rows, predicted columns), model and
  markov side by side, all slots;
- `dt_calibration.png`: observed P(dt ≤ q̂) for q10/q50/q90 against the nominal 0.1/0.5/0.9,
  in-window and look-ahead, model vs dt_quantiles (a calibrated predictor sits on the nominal);
- `xy_calibration.png`: histogram of the standardised in-window residuals (x−μ)/σ against N(0,1),
  and the share of slots within k·σ against the Gaussian's nominal share, model vs
  previous_position;
- `pit.png`: PIT histograms (report.json `dt_pit_hist`, `x_pit_hist`, `y_pit_hist`) as densities,
  in-window and look-ahead, the model against the best baseline of that quantity in that slot
  group (lowest dt_wis_ms, x_crps_px, y_crps_px); a calibrated predictor is flat at 1;
- `reliability.png`: event-type reliability diagrams on all slots (report.json
  `event_reliability`): the top-1 probability of the model, markov and majority against how often
  the top-1 type is right, and the model's probability of each type against that type's observed
  frequency (marker area ∝ slots in the bin); a calibrated predictor sits on the diagonal;
- `coverage.png`: the model's x / y 1σ and [q10, q90] coverage, in-window and look-ahead, with
  each evaluated session's own coverage (marker area ∝ its slots), the session-bootstrap 90 %
  interval (report.json `intervals`) and the target band (0.683 ± 0.03, 0.80 ± 0.03) shaded;
- `events_per_tick.png`: events per tick, real vs sampled by the planner (free running).
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..data.schema import EVENT_NAMES  # noqa: E402
from .calibrate import ONE_SIGMA, TIME_TAIL  # noqa: E402  (the shares the calibration aims at)
from .intervals import unit_sums  # noqa: E402
from .metrics import QUANTILES, Prediction  # noqa: E402
from .slots import Slots  # noqa: E402


def _confusion_panel(ax, cm: np.ndarray, title: str) -> None:
    cm = np.asarray(cm, np.float64)
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    ax.imshow(norm, vmin=0, vmax=1, cmap="Blues")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, f"{norm[i, j]:.2f}\n({int(cm[i, j])})", ha="center", va="center", fontsize=7,
                    color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(EVENT_NAMES)), EVENT_NAMES, fontsize=8)
    ax.set_yticks(range(len(EVENT_NAMES)), EVENT_NAMES, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)


def plot_confusion(report: dict, path: Path) -> None:
    r = report["all"]
    panels = [("model", r.get("model", {}).get("confusion"))] + [("markov", r["baselines"].get("markov", {}).get("confusion"))]
    panels = [(n, cm) for n, cm in panels if cm is not None]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 4.2), squeeze=False)
    for ax, (name, cm) in zip(axes[0], panels):
        _confusion_panel(ax, cm, f"event confusion: {name}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_dt_calibration(slots: Slots, preds: dict[str, Prediction], path: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, (title, keep) in zip(axes, [("in-window slots", ~slots.lookahead), ("look-ahead slots", slots.lookahead)]):
        names = [n for n, p in preds.items() if p.time_q is not None]
        width = 0.8 / max(len(names) + 1, 1)
        x = np.arange(len(QUANTILES))
        ax.bar(x, QUANTILES, width, label="nominal", color="lightgrey")
        for k, name in enumerate(names):
            q = preds[name].time_q[keep]
            dt = slots.dt[keep]
            observed = [float((dt <= q[:, i]).mean()) if len(dt) else 0.0 for i in range(len(QUANTILES))]
            cov = float(((dt >= q[:, 0]) & (dt <= q[:, 2])).mean()) if len(dt) else 0.0
            ax.bar(x + (k + 1) * width, observed, width, label=f"{name} ([q10,q90] cov {cov:.2f})")
        ax.set_xticks(x + width * len(names) / 2, [f"q{int(q * 100)}" for q in QUANTILES])
        ax.set_ylim(0, 1)
        ax.set_ylabel("observed P(dt ≤ predicted quantile)")
        ax.set_title(f"dt calibration: {title}")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_xy_calibration(slots: Slots, preds: dict[str, Prediction], path: Path) -> None:
    keep = ~slots.lookahead
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    grid = np.linspace(-4, 4, 200)
    ks = np.linspace(0.1, 3.0, 30)
    nominal = [math.erf(k / math.sqrt(2)) for k in ks]
    axes[1].plot(ks, nominal, "k--", label="nominal (Gaussian)")
    for name, p in preds.items():
        if p.x_sigma is None:
            continue
        zx = ((slots.x - p.x_mu) / p.x_sigma)[keep]
        zy = ((slots.y - p.y_mu) / p.y_sigma)[keep]
        z = np.concatenate([zx, zy])
        if name == "model" and len(z):
            axes[0].hist(np.clip(z, -4, 4), bins=80, density=True, alpha=0.6, label="model (x and y)")
        if len(z):
            axes[1].plot(ks, [float((np.abs(z) <= k).mean()) for k in ks], label=name)
    axes[0].plot(grid, np.exp(-grid ** 2 / 2) / math.sqrt(2 * math.pi), "k--", label="N(0,1)")
    axes[0].set_title("standardised xy residuals (in-window)")
    axes[0].set_xlabel("(true − μ) / σ, clipped to ±4")
    axes[0].legend(fontsize=7)
    axes[1].set_title("sigma calibration (in-window)")
    axes[1].set_xlabel("k")
    axes[1].set_ylabel("share of slots within k·σ")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


PIT_SCORES = {"dt": "dt_wis_ms", "x": "x_crps_px", "y": "y_crps_px"}  # quantity → the score that picks the best baseline


def best_baseline(section: dict, quantity: str) -> str | None:
    """The baseline with the lowest proper score for `quantity` in a report section, or None."""
    score = PIT_SCORES[quantity]
    have = {n: m[score] for n, m in section["baselines"].items() if score in m and f"{quantity}_pit_hist" in m}
    return min(have, key=have.get) if have else None


def _density(counts: list[float]) -> np.ndarray:
    c = np.asarray(counts, np.float64)
    return c * len(c) / c.sum() if c.sum() > 0 else c


def plot_pit(report: dict, path: Path) -> None:
    kinds = [("in_window", "in-window"), ("lookahead", "look-ahead")]
    fig, axes = plt.subplots(len(kinds), len(PIT_SCORES), figsize=(12, 6.5), squeeze=False)
    for row, (kind, label) in enumerate(kinds):
        sec = report[kind]
        for col, quantity in enumerate(PIT_SCORES):
            ax = axes[row, col]
            key = f"{quantity}_pit_hist"
            lines = [("model", sec.get("model", {}))]
            best = best_baseline(sec, quantity)
            if best is not None:
                lines.append((best, sec["baselines"][best]))
            for name, m in lines:
                if key not in m:
                    continue
                d = _density(m[key])
                edges = np.linspace(0, 1, len(d) + 1)
                ax.stairs(d, edges, label=f"{name} ({PIT_SCORES[quantity]} {m[PIT_SCORES[quantity]]:.1f})",
                          fill=name == "model", alpha=0.45 if name == "model" else 1.0, linewidth=1.5)
            ax.axhline(1.0, color="k", linestyle="--", linewidth=1)
            ax.set_xlim(0, 1)
            ax.set_title(f"PIT of {quantity}: {label} ({report['n_slots'][kind]} slots)", fontsize=9)
            ax.set_xlabel("PIT")
            ax.set_ylabel("density")
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _reliability_line(ax, table: dict, label: str, **kw) -> None:
    pts = [(p, o, c) for p, o, c in zip(table["predicted"], table["observed"], table["count"]) if c]
    if not pts:
        return
    p, o, c = map(np.asarray, zip(*pts))
    line, = ax.plot(p, o, linewidth=1, label=label, **kw)
    ax.scatter(p, o, s=6 + 60 * c / c.max(), color=line.get_color(), zorder=3)  # marker area ∝ slots in the bin


def plot_reliability(report: dict, path: Path) -> None:
    sec = report["all"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
    for ax in axes:
        ax.plot([0, 1], [0, 1], "k--", linewidth=1, label="calibrated")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("predicted probability (bin mean)")
        ax.set_ylabel("observed frequency")
    named = [("model", sec.get("model", {}))] + [(n, sec["baselines"].get(n, {})) for n in ("markov", "majority")]
    for name, m in named:
        if "event_reliability" in m:
            _reliability_line(axes[0], m["event_reliability"]["top1"],
                              f"{name} (ECE {m['event_ece']:.3f}, acc {m['event_accuracy']:.3f}, "
                              f"macro-F1 {m['event_macro_f1']:.3f})")
    axes[0].set_title(f"top-1 reliability, all slots ({report['n_slots']['all']})", fontsize=9)
    model = sec.get("model", {})
    if "event_reliability" in model:
        for cls, table in model["event_reliability"]["per_class"].items():
            _reliability_line(axes[1], table, cls)
        axes[1].set_title(f"model, per type (classwise ECE {model['event_classwise_ece']:.3f})", fontsize=9)
    for ax in axes:
        ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


COVERAGE_TARGETS = {"x_coverage_1sigma": ("x 1σ", ONE_SIGMA), "y_coverage_1sigma": ("y 1σ", ONE_SIGMA),
                    "dt_coverage_q10_q90": ("[q10, q90]", 1 - 2 * TIME_TAIL)}  # figure → (label, nominal share)
BAND = 0.03  # the half-width of the target bands


def plot_coverage(report: dict, slots: Slots, model: Prediction, path: Path) -> None:
    kinds = [("in_window", "in-window", ~slots.lookahead), ("lookahead", "look-ahead", slots.lookahead)]
    fig, axes = plt.subplots(1, len(kinds), figsize=(10, 4), squeeze=False)
    for ax, (kind, label, keep) in zip(axes[0], kinds):
        if not keep.any():
            continue
        _, size, sums = unit_sums(slots.select(keep), model.select(keep))
        iv = report[kind].get("intervals", {})
        figures, unit, level = iv.get("figures", {}), iv.get("unit", "session"), iv.get("level", 0.9)
        names = [n for n in COVERAGE_TARGETS if n in sums]
        for i, name in enumerate(names):
            nominal = COVERAGE_TARGETS[name][1]
            ax.add_patch(plt.Rectangle((i - 0.4, nominal - BAND), 0.8, 2 * BAND, color="lightgreen", alpha=0.5,
                                       label="target band" if i == 0 else None))
            ax.scatter(np.full(len(size), i - 0.15), sums[name] / size, s=8 + 80 * size / size.max(), color="grey",
                       alpha=0.6, label=f"one {unit}" if i == 0 else None)
            pooled = report[kind]["model"][name]  # the figure over all slots, as the tables print it
            err = None
            if name in figures:
                lo, hi = figures[name]
                err = [[max(pooled - lo, 0.0)], [max(hi - pooled, 0.0)]]
            ax.errorbar([i + 0.15], [pooled], yerr=err, fmt="o", color="C0", capsize=4,
                        label=f"all slots, {level:.0%} {unit} bootstrap" if i == 0 else None)
        ax.set_xticks(range(len(names)), [COVERAGE_TARGETS[n][0] for n in names])
        ax.set_xlim(-0.6, len(names) - 0.4)
        ax.set_ylim(0, 1)
        ax.set_ylabel("share of slots covered")
        ax.set_title(f"model coverage: {label} ({len(size)} {unit}s)", fontsize=9)
        ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_events_per_tick(raw: dict, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    real, model = raw["real_counts"], raw["model_counts"]
    top = int(max(real.max(initial=0), model.max(initial=0))) + 1
    bins = np.arange(top + 1) - 0.5
    ax.hist(real, bins=bins, alpha=0.6, density=True, label=f"real (idle {float((real == 0).mean()):.2f})")
    ax.hist(model, bins=bins, alpha=0.6, density=True, label=f"sampled (idle {float((model == 0).mean()):.2f})")
    ax.set_xlabel("events per tick")
    ax.set_ylabel("share of ticks")
    ax.set_title("events per tick: real vs free-running samples")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_plots(out_dir: Path, report: dict, slots: Slots, preds: dict[str, Prediction], free_raw: dict | None) -> list[Path]:
    """Write every plot the available data allows; returns the files written."""
    out = Path(out_dir)
    written = []
    plot_confusion(report, out / "confusion.png")
    written.append(out / "confusion.png")
    plot_dt_calibration(slots, preds, out / "dt_calibration.png")
    written.append(out / "dt_calibration.png")
    plot_xy_calibration(slots, preds, out / "xy_calibration.png")
    written.append(out / "xy_calibration.png")
    plot_pit(report, out / "pit.png")
    written.append(out / "pit.png")
    plot_reliability(report, out / "reliability.png")
    written.append(out / "reliability.png")
    if "model" in preds:
        plot_coverage(report, slots, preds["model"], out / "coverage.png")
        written.append(out / "coverage.png")
    if free_raw is not None:
        plot_events_per_tick(free_raw, out / "events_per_tick.png")
        written.append(out / "events_per_tick.png")
    return written

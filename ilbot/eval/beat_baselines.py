"""Does the model beat every baseline? The one criterion `ilbot bench train --data` times and
`ilbot eval` prints under its tables.

The comparisons (`COMPARISONS`: slot section of report.json, key, direction), each of the model
against the best baseline that has the key:

- `in_window` and `lookahead`: `x_crps_px`, `y_crps_px` (position CRPS) and `dt_wis_ms` (the
  weighted interval score of the time quantiles): proper scores, lower is better; won when the
  model's is strictly below the lowest baseline's (a tie is not better);
- `all`: `event_accuracy`: won when the model's is ≥ the highest baseline's (the issue's bar:
  accuracy at least the Markov baseline's).

A comparison is left out when the model or every baseline lacks its key (a section without slots
has no keys). The model beats the baselines when at least one comparison is made and every one is
won.
"""

from __future__ import annotations

LOWER, HIGHER = "lower", "higher"
COMPARISONS = (
    ("in_window", "x_crps_px", LOWER), ("in_window", "y_crps_px", LOWER), ("in_window", "dt_wis_ms", LOWER),
    ("lookahead", "x_crps_px", LOWER), ("lookahead", "y_crps_px", LOWER), ("lookahead", "dt_wis_ms", LOWER),
    ("all", "event_accuracy", HIGHER),
)


def compare_with_baselines(report: dict) -> list[dict]:
    """One row per comparison made on `report` ({section: {"model": M, "baselines": {name: M}}}):
    {"slots", "key", "better", "model", "baseline" (the best baseline's name), "baseline_value", "won"}."""
    rows = []
    for kind, key, better in COMPARISONS:
        section = report.get(kind) or {}
        model = (section.get("model") or {}).get(key)
        rivals = {name: m[key] for name, m in (section.get("baselines") or {}).items() if key in m}
        if model is None or not rivals:
            continue
        pick = min if better == LOWER else max
        name = pick(rivals, key=rivals.get)
        best = rivals[name]
        won = model < best if better == LOWER else model >= best
        rows.append({"slots": kind, "key": key, "better": better, "model": float(model), "baseline": name,
                     "baseline_value": float(best), "won": bool(won)})
    return rows


def beats_baselines(rows: list[dict]) -> bool:
    """True when `rows` (compare_with_baselines) holds at least one comparison and all are won."""
    return bool(rows) and all(r["won"] for r in rows)


def summary_line(report: dict) -> str:
    """One line for people: yes/no, and the comparisons lost with both values."""
    rows = compare_with_baselines(report)
    if not rows:
        return "beats every baseline: — (no comparison possible)"
    lost = [f"{r['slots']} {r['key']} {r['model']:.4g} vs {r['baseline']} {r['baseline_value']:.4g}"
            for r in rows if not r["won"]]
    if not lost:
        return f"beats every baseline: yes (all {len(rows)} comparisons won)"
    return f"beats every baseline: no (lost {len(lost)} of {len(rows)}: {'; '.join(lost)})"

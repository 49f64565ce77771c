"""Plain words for the reasons the safety layers intervene, as front ends show them.

`Intervention.reason` (and the pipeline's `counters`) use short names such as `time_floor`; the
app's panels, `ilbot play` and logs meant for people show `describe_intervention(reason)`
instead. Every reason a layer or the pipeline can emit has an entry here (a test reads the
safety package's source for the names it emits); an unknown name is shown as it is, with its
underscores turned into spaces.
"""

from __future__ import annotations

INTERVENTION_NAMES: dict[str, str] = {
    # finite / field checks
    "non_finite": "not a number: dropped (model fault)",
    "invalid_field": "invalid field: dropped (model fault)",
    "blocked_key": "blocked key: not pressed",
    "negative_time": "planned in the past: dropped",
    "too_far_ahead": "planned too far ahead: dropped",
    # bounds
    "out_of_bounds": "outside the window or region: dropped",
    "clamped": "moved inside the window",
    "hold_clamped": "click held too long: shortened",
    # OS chords
    "os_chord": "system shortcut: blocked",
    # timing
    "time_floor": "too soon after the last action",
    "time_floor_delayed": "release delayed: too soon after the last action",
    "cooldown": "too soon after the same kind of action",
    "rate_limit": "too many actions per second",
    # key pairing
    "key_held": "press of a key already held",
    "too_many_keys": "too many keys held at once",
    "key_not_held": "release of a key not held",
    "button_held": "press of a button already held",
    "max_hold": "held too long: released",
    # watchdog and releases
    "stale_state": "no fresh game state: held back",
    "stale_release": "no fresh game state: everything released",
    "release_all": "everything released (stop or pause)",
}


def describe_intervention(reason: str) -> str:
    """The plain words for an intervention reason (the name itself, spaced, when unknown)."""
    return INTERVENTION_NAMES.get(str(reason), str(reason).replace("_", " "))


NOT_INTERVENTIONS = ("planned", "passed", "release_all")  # the pipeline's throughput and release counters


def interventions(counters: dict) -> dict[str, int]:
    """The interventions by reason in a run's counters (`counters["interventions"]`), without the
    pipeline's throughput counters and without zeros: what front ends list."""
    return {str(k): int(v) for k, v in (counters.get("interventions") or {}).items()
            if k not in NOT_INTERVENTIONS and v}

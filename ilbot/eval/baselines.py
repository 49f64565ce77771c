"""The baselines of DESIGN §10 (and a look-ahead position rival), fitted on the training split's
slots and predicting the heads they can (as `ilbot.eval.metrics.Prediction`).

- `majority`: always the most frequent event type (and, for the conditional heads, the most
  frequent button | CLICK, key action and key id | KEY, scroll class | SCROLL); its event
  probabilities are the training type frequencies (so its argmax is the most frequent type).
- `markov`: the next type given the previous event's type (the previous target slot, or the last
  history event for slot 0; `NO_PREV` when there is none): the fitted transition table's row as
  the event probabilities (its argmax is the prediction).
- `dt_quantiles`: empirical q10/q50/q90 of dt per slot kind (in-window or look-ahead) and previous
  event type; a (kind, previous type) pair unseen in training falls back to the kind alone.
- `previous_position`: xy = the previous event's position, with a Gaussian whose sigma per axis
  is fitted per slot kind as the RMS residual on the training slots (the maximum-likelihood
  sigma of a zero-mean Gaussian).
- `last_click`: xy = the position of the last CLICK before the slot (in the history or the
  window's earlier target slots; the previous event's position when there is none), with a
  Gaussian whose sigma per axis is fitted per slot kind like previous_position's. Clicks are where
  the cursor goes back to (the node being worked, the button pressed again), so this is the
  look-ahead position's stronger rival.

Each baseline is a small class with `fit(slots)` and `predict(slots) -> Prediction`.
"""

from __future__ import annotations

import numpy as np

from ..data.schema import N_EVENT_TYPES
from .metrics import QUANTILES, Prediction
from .slots import NO_PREV, Slots

SIGMA_FLOOR = 1e-4  # normalised units: keeps a degenerate fit (no movement at all) finite


def _mode(values: np.ndarray, default: int = 0) -> int:
    if len(values) == 0:
        return default
    return int(np.bincount(values.astype(np.int64)).argmax())


def _one_hot(classes: np.ndarray, n: int = N_EVENT_TYPES) -> np.ndarray:
    out = np.zeros((len(classes), n))
    out[np.arange(len(classes)), classes] = 1.0
    return out


class Majority:
    name = "majority"

    def fit(self, s: Slots) -> "Majority":
        self.type = _mode(s.type, default=3)
        counts = np.bincount(s.type.astype(np.int64), minlength=N_EVENT_TYPES).astype(np.float64)
        self.prior = counts / counts.sum() if counts.sum() > 0 else _one_hot(np.array([self.type]))[0]  # [4]
        self.button = _mode(s.button[s.type == 0])
        self.key_action = _mode(s.key_action[s.type == 1])
        self.key_id = _mode(s.key_id[s.type == 1])
        self.scroll = _mode(s.scroll[s.type == 2])
        return self

    def predict(self, s: Slots) -> Prediction:
        n = len(s)
        full = lambda v: np.full(n, v, np.int64)  # noqa: E731
        return Prediction(event_probs=np.broadcast_to(self.prior, (n, N_EVENT_TYPES)).copy(), button=full(self.button),
                          key_action=full(self.key_action), key_id=full(self.key_id), scroll=full(self.scroll))


class Markov:
    name = "markov"

    def fit(self, s: Slots) -> "Markov":
        counts = np.zeros((NO_PREV + 1, N_EVENT_TYPES))  # [prev type incl. none, next type]
        np.add.at(counts, (s.prev_type, s.type), 1.0)
        overall = counts.sum(axis=0) + 1e-9
        # a row never seen in training predicts the overall distribution
        rows = np.where(counts.sum(axis=1, keepdims=True) > 0, counts, overall)
        self.table = rows / rows.sum(axis=1, keepdims=True)  # [5, 4] P(next | prev)
        return self

    def predict(self, s: Slots) -> Prediction:
        return Prediction(event_probs=self.table[s.prev_type])  # [S, 4]


class DtQuantiles:
    name = "dt_quantiles"

    def fit(self, s: Slots) -> "DtQuantiles":
        self.by_kind = np.zeros((2, 3))
        self.table = np.zeros((2, NO_PREV + 1, 3))  # [kind, prev type, quantile]
        for kind in (0, 1):
            sel = s.lookahead == bool(kind)
            self.by_kind[kind] = np.quantile(s.dt[sel], QUANTILES) if sel.any() else np.quantile(s.dt, QUANTILES)
            for prev in range(NO_PREV + 1):
                sub = sel & (s.prev_type == prev)
                self.table[kind, prev] = np.quantile(s.dt[sub], QUANTILES) if sub.any() else self.by_kind[kind]
        return self

    def predict(self, s: Slots) -> Prediction:
        return Prediction(time_q=self.table[s.lookahead.astype(np.int64), s.prev_type])  # [S, 3]


class _FixedPoint:
    """A point per slot (`point(slots)` → (x, y)) with a zero-mean Gaussian residual whose sigma
    per axis and slot kind is the RMS residual on the training slots."""

    def point(self, s: Slots) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def fit(self, s: Slots):
        px, py = self.point(s)
        self.sigma = np.zeros((2, 2))  # [kind, axis]
        for kind in (0, 1):
            sel = s.lookahead == bool(kind)
            if not sel.any():
                sel = np.ones(len(s), bool)
            self.sigma[kind, 0] = max(float(np.sqrt(np.mean((s.x[sel] - px[sel]) ** 2))), SIGMA_FLOOR)
            self.sigma[kind, 1] = max(float(np.sqrt(np.mean((s.y[sel] - py[sel]) ** 2))), SIGMA_FLOOR)
        return self

    def predict(self, s: Slots) -> Prediction:
        kind = s.lookahead.astype(np.int64)
        px, py = self.point(s)
        return Prediction(x_mu=px.copy(), y_mu=py.copy(), x_sigma=self.sigma[kind, 0], y_sigma=self.sigma[kind, 1])


class PreviousPosition(_FixedPoint):
    name = "previous_position"

    def point(self, s: Slots) -> tuple[np.ndarray, np.ndarray]:
        return s.prev_x, s.prev_y


class LastClick(_FixedPoint):
    name = "last_click"

    def point(self, s: Slots) -> tuple[np.ndarray, np.ndarray]:
        if s.click_x is None:  # slots built without the click columns: the previous position
            return s.prev_x, s.prev_y
        return s.click_x, s.click_y


BASELINES = (Majority, Markov, DtQuantiles, PreviousPosition, LastClick)


def fit_baselines(train: Slots) -> dict:
    """name → fitted baseline, in report order."""
    return {cls.name: cls().fit(train) for cls in BASELINES}

"""ModelConfig: the sizes of the unified-event model (DESIGN §6).

The default is small enough to plan a tick on a CPU in a few milliseconds (about 1 M
parameters, under the 3 M ceiling); every size is configurable and is stored in the checkpoint's
config.json, so a checkpoint rebuilds exactly the model that wrote it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from ..data.keys import VOCAB_SIZE
from ..data.schema import A, F, LOOKAHEAD_CLIP_MS, T, TICK_MS


XY_DISTS = ("gaussian", "laplace", "laplace_mix")


@dataclass
class ModelConfig:
    # window geometry (DESIGN §5)
    n_ticks: int = T  # T: ticks of context
    n_features: int = F  # F: game-state features per tick
    n_slots: int = A  # A: event slots per tick window (history and targets)
    key_vocab_size: int = VOCAB_SIZE  # V: size of the key vocabulary (ilbot.data.keys)
    # widths
    d_model: int = 128
    n_heads: int = 4
    ff_mult: int = 4  # feed-forward width = ff_mult · d_model
    n_context_layers: int = 2  # TemporalEncoder layers (over the T ticks)
    n_decoder_layers: int = 2  # ActionDecoder layers (over the A slots)
    dropout: float = 0.1
    # input transforms: dt enters as log1p(ms) / dt_log_scale (≈ 0..2 for 0..10 s)
    dt_log_scale: float = 5.0
    # bounds of log σ of the position head, in normalised window units: σ ∈ [e^-7, e^1] ≈
    # [0.001, 2.7] windows, i.e. ~1 px on a 1000 px window up to far outside it.
    logsig_min: float = -7.0
    logsig_max: float = 1.0
    # the time head's log1p(ms) outputs are clamped here before expm1 (ms), so a wild
    # prediction cannot overflow; 10 × the look-ahead horizon.
    time_max_ms: float = 10 * LOOKAHEAD_CLIP_MS
    # decoder options (all off by default: the default rebuilds checkpoints written before they existed)
    # xy_residual: x_mu, y_mu = the previous event's position + the head's offset (the previous
    # target slot in teacher forcing, the previous sampled event in the planner, the last valid
    # history event for slot 0, the window centre when the history is empty), so "the cursor
    # stays near where it was" is the head's zero output instead of something learned.
    xy_residual: bool = False
    # slot_elapsed_input: each slot's input also gets, through its own linear map, the time from
    # the tick start to the previous event and the time left to the tick end (tick_ms; log1p
    # scaled like dt), so the time head can tell "next move soon" from "nothing until the next tick".
    slot_elapsed_input: bool = False
    # σ_x, σ_y are multiplied by these after the bounds; 1.0 unless an older checkpoint set them
    # (post-hoc calibration is now the checkpoint's `calibration` section: ilbot.model.calibration)
    # xy_step_input: slot i's input also gets, through its own linear map, the step from event
    # i−2 to event i−1 (ActionDecoder.STEP_SCALE × window units): the cursor's velocity, which the
    # network would otherwise compute as the small difference of two embedded absolute positions.
    xy_step_input: bool = False
    # xy_dist: the position distribution per coordinate, "gaussian" or "laplace". Either way
    # x_logsig, y_logsig give σ, the half-width of the central 68.3 % interval (the Gaussian's
    # std; for the Laplace 1.148 × its scale b), so overlays and 1σ coverage mean the same thing.
    # The Laplace's location is the conditional median, the point that minimises the absolute
    # error, and its heavier tails fit mouse steps (most tiny, a few jumps) without a wide σ.
    # "laplace_mix": a scale mixture of two Laplaces with that median, whose shape (the share and
    # width of jumps) is predicted per slot (ilbot.model.heads.LaplaceMixXYHead); no anchors.
    xy_dist: str = "gaussian"
    # xy_input_noise: in training only (like dropout), the teacher-forced previous positions the
    # decoder reads (slot inputs, and the origin of xy_residual, xy_step_input and anchors) get
    # Gaussian noise of this std (window units); the targets do not. The model then learns to
    # steer back from positions slightly off the demonstrated path — where its own sampled moves
    # put it when it plays (noise injection against compounding error, as in DART).
    xy_input_noise: float = 0.0
    x_sigma_scale: float = 1.0
    y_sigma_scale: float = 1.0
    tick_ms: float = TICK_MS  # the tick length for slot_elapsed_input in teacher forcing (the planner uses its own)
    # position anchors (ilbot.model.anchors): game-state features that are on-screen positions
    # in window units, as feature indices [x, y, valid…] per anchor (every row the same length);
    # empty: none. The training config's `anchors = "spec"` takes the feature spec's [[anchor]] list.
    anchors: list = field(default_factory=list)
    # time head (TimeQuantileHead): "quantiles", one set of q10/q50/q90 for every slot, or
    # "crossing", a probability that the slot's event falls after the tick's end and quantiles
    # conditional on each case.
    time_head: str = "quantiles"
    # xy_by_type: the position distribution depends on the slot's event type (ilbot.model.by_type):
    # the xy head and the anchors' scorer read the decoder state plus a learned embedding of the
    # type, and per-type biases shift the xy head's raw outputs (offsets, log σ) and, with anchors,
    # the free component's logit and every anchor's gain. Teacher forcing takes the type from the
    # slot's target; the planner draws the type first, then the component and the position given
    # it. Moves lie along the path and clicks on the node: one distribution for both puts a
    # sampled CLICK at a path point.
    xy_by_type: bool = False
    # time_by_type: the time quantiles depend on the slot's event type (ilbot.model.by_type.TimeByType):
    # a linear term per type, of the decoder state, on the quantile outputs (not on the crossing
    # logit, which the planner draws before the type). Teacher forcing takes the type from the
    # slot's target; the planner draws crossing, type, then the time given both. On Balabit half
    # the clicks that follow a move come in the same millisecond, where a move follows a move
    # after ~110 ms: one set of quantiles for both puts a click's median at a move's gap.
    time_by_type: bool = False
    # pointer_input: where the context holds no event, the previous position (xy_residual's and
    # the step input's origin, the anchors') is the context's pointer row — where the last
    # pointer event before the context left the cursor — instead of the window centre, and every
    # slot's input gets a linear map of that row (zero at the start), so the heads learn how far
    # to trust it. Without it, after T idle ticks the model no longer knows where the cursor is.
    pointer_input: bool = False
    # recent_events (ilbot.model.recent): K > 0 adds to each slot's input a linear map of the K
    # events just before it (the context's last ones, then the tick's own): type, gap, step and
    # step length, event by event — the kinematics the per-tick pooling of the context loses.
    recent_events: int = 0

    def __post_init__(self) -> None:
        if self.d_model % self.n_heads:
            raise ValueError(f"ModelConfig: d_model={self.d_model} is not divisible by n_heads={self.n_heads}")
        if not (self.x_sigma_scale > 0 and self.y_sigma_scale > 0):
            raise ValueError("ModelConfig: x_sigma_scale and y_sigma_scale must be positive")
        if self.xy_dist not in XY_DISTS:
            raise ValueError(f"ModelConfig: xy_dist must be one of {', '.join(map(repr, XY_DISTS))}, got {self.xy_dist!r}")
        if not self.xy_input_noise >= 0:
            raise ValueError("ModelConfig: xy_input_noise must be >= 0")
        if self.logsig_min >= self.logsig_max:
            raise ValueError("ModelConfig: logsig_min must be below logsig_max")
        self._check_anchors()
        if self.anchors and self.xy_dist == "laplace_mix":
            raise ValueError("ModelConfig: xy_dist 'laplace_mix' does not combine with anchors (use 'laplace')")
        if self.time_head not in ("quantiles", "crossing"):
            raise ValueError(f"ModelConfig: time_head must be 'quantiles' or 'crossing', got {self.time_head!r}")
        for name in ("n_ticks", "n_features", "n_slots", "key_vocab_size", "d_model", "n_heads", "ff_mult"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"ModelConfig: {name} must be at least 1")
        if isinstance(self.recent_events, bool) or not (isinstance(self.recent_events, int) and 0 <= self.recent_events < self.n_ticks * self.n_slots):
            raise ValueError(f"ModelConfig: recent_events must be an integer in 0..{self.n_ticks * self.n_slots - 1}, got {self.recent_events!r}")

    def _check_anchors(self) -> None:
        if not isinstance(self.anchors, list | tuple):
            raise ValueError(f"ModelConfig: anchors must be a list of [x, y, valid…] feature indices, got {self.anchors!r}")
        self.anchors = [list(a) for a in self.anchors]
        widths = {len(a) for a in self.anchors}
        if len(widths) > 1 or (widths and min(widths) < 2):
            raise ValueError("ModelConfig: every anchor is [x, y, valid…] with the same number of validity features")
        for a in self.anchors:
            if not all(isinstance(i, int) and 0 <= i < self.n_features for i in a):
                raise ValueError(f"ModelConfig: anchor {a} has an index outside 0..{self.n_features - 1}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        """Build from a dict; unknown keys raise KeyError naming them (callers turn it into
        their own error with the file name)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise KeyError(", ".join(unknown))
        return cls(**d)

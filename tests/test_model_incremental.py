"""Cached incremental decoding gives the teacher-forced full pass's per-slot outputs."""

import torch

from ilbot.model import ModelConfig, UnifiedEventModel
from ilbot.model.incremental import IncrementalDecoder
from ilbot.model.synthetic import synthetic_windows


def test_incremental_equals_full_teacher_forced_pass():
    torch.manual_seed(0)
    model = UnifiedEventModel(ModelConfig(d_model=64, n_heads=4, n_decoder_layers=3)).eval()
    b = {k: torch.from_numpy(v) for k, v in synthetic_windows(3, seed=11, max_events=30).items()}
    b["target_mask"][:] = True  # compare every slot
    with torch.no_grad():
        full = model(b)
        context = model.encode(b)
        inputs = model.decoder.slot_inputs(b["targets"], b["target_mask"])  # [B,A,d]
        dec = IncrementalDecoder(model)
        state = dec.start(context)
        assert torch.equal(inputs[:, 0], dec.start_in.expand(3, -1))
        core, hidden = [], []
        for i in range(inputs.shape[1]):
            h = dec.step(state, inputs[:, i], i)
            hidden.append(h)
            core.append(dec.core_heads(h))
    steps = {k: torch.stack([c[k] for c in core], dim=1) for k in core[0]}
    for k in ("event_logits", "time_q", "time_q_log", "x_mu", "x_logsig", "y_mu", "y_logsig"):
        assert torch.allclose(steps[k], full[k], atol=1e-4, rtol=1e-4), k
    ev = model.heads(torch.stack(hidden, dim=1))
    for k in ("button_logits", "key_action_logits", "key_id_logits", "scroll_y_logits"):
        assert torch.allclose(ev[k], full[k], atol=1e-4, rtol=1e-4), k

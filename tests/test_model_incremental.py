"""Cached incremental decoding gives the teacher-forced full pass's per-slot outputs."""

import numpy as np
import torch

from ilbot.data.schema import TG
from ilbot.model import ModelConfig, UnifiedEventModel
from ilbot.model.fields import target_to_history_rows
from ilbot.model.incremental import IncrementalDecoder
from ilbot.model.synthetic import synthetic_windows


def _model_and_batch(B=3):
    torch.manual_seed(0)
    model = UnifiedEventModel(ModelConfig(d_model=64, n_heads=4, n_decoder_layers=3)).eval()
    with torch.no_grad():  # non-trivial LayerNorm affines, so the folding is exercised
        for name, p in model.decoder.named_parameters():
            if "ln" in name:
                p.add_(0.3 * torch.randn_like(p))
    b = {k: torch.from_numpy(v) for k, v in synthetic_windows(B, seed=11, max_events=30).items()}
    b["target_mask"][:] = True  # compare every slot
    return model, b


def test_incremental_equals_full_teacher_forced_pass():
    model, b = _model_and_batch()
    with torch.no_grad():
        full = model(b)
        context = model.encode(b)
        inputs = model.decoder.slot_inputs(b["targets"], b["target_mask"]).numpy()  # [B,A,d]
    dec = IncrementalDecoder(model)
    state = dec.start(context)
    assert np.allclose(inputs[:, 0], dec.start_in[None], atol=1e-6)
    core, ev = [], {k: [] for k in dec.event_heads}
    for i in range(inputs.shape[1]):
        hn = dec.step(state, inputs[:, i], i)
        core.append(dec.core(hn))
        for k in ev:
            ev[k].append(dec.event_logits(k, hn))
    for k in ("event_logits", "time_q", "time_q_log", "x_mu", "x_logsig", "y_mu", "y_logsig"):
        got = np.stack([c[k] for c in core], axis=1)
        assert np.allclose(got, full[k].numpy(), atol=2e-4, rtol=1e-4), k
    for k, v in ev.items():
        assert np.allclose(np.stack(v, axis=1), full[f"{k}_logits"].numpy(), atol=2e-4, rtol=1e-4), k


def test_single_row_path_equals_batched_path():
    model, b = _model_and_batch(B=2)
    with torch.no_grad():
        context = model.encode(b)
        inputs = model.decoder.slot_inputs(b["targets"], b["target_mask"]).numpy()
    dec = IncrementalDecoder(model)
    both, one = dec.start(context), dec.start(context[1:])
    for i in range(10):
        a, c = dec.step(both, inputs[:, i], i), dec.step(one, inputs[1:, i], i)
        assert np.allclose(a[1:], c, atol=1e-5)


def test_numpy_slot_embedding_equals_the_decoders():
    model, b = _model_and_batch()
    dec = IncrementalDecoder(model)
    tg = b["targets"]
    with torch.no_grad():
        inputs = model.decoder.slot_inputs(tg, b["target_mask"]).numpy()  # slot i ← event i−1
    rows = target_to_history_rows(tg).numpy()
    since = np.cumsum(tg[..., TG["dt_ms"]].numpy(), axis=-1)
    for i in (0, 4, 17):
        r = rows[:, i]
        got = dec.embed(r[:, 3].astype(int), r[:, 0], r[:, 1], r[:, 2], r[:, 4].astype(int), r[:, 5].astype(int),
                        r[:, 6].astype(int), r[:, 7].astype(int), since[:, i], i + 1)
        assert np.allclose(got, inputs[:, i + 1], atol=1e-5)

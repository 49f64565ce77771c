"""IncrementalDecoder: the ActionDecoder one slot at a time, with a key/value cache.

The planner samples slot i from the model's outputs at slot i and feeds the sample back as slot
i+1's input, so the decoder runs one slot per step. Re-running the prefix every step costs
O(A²); this keeps each layer's self-attention keys and values in a preallocated cache
[B, 2, heads, A, d_head] and computes only the new slot's row.

Speed. At these sizes (d = 128, one row) the time goes to per-op dispatch, not arithmetic: a
torch op costs ~3–8 µs here, a numpy op on a few hundred numbers ~1 µs, and a slot step is a
few dozen ops. So the context is encoded with torch (one call per tick) and the slot loop runs
in numpy float32 on weights prepared once, with as few ops per step as the maths allows:

- every LayerNorm's scale and shift are folded into the linear map that follows it
  (LN(x)·W + c = x̂·(g⊙W) + (b·W + c)), leaving a plain standardisation;
- self-attention: one fused q/k/v matmul with 1/√d_head folded into the query weights, one
  copy of the new key and value into the cache, hand-written attention over slots 0..i;
- cross-attention to the T context vectors is folded per tick into two matrices per layer: the
  scores are x̂·M + c with M = (g⊙W_q)ᵀK for all heads at once ([d, heads·T]) and the output is
  softmax(scores)·V' with V' = V·W_outᵀ + b_out/heads (exact: each head's weights sum to 1), so
  the block is two matmuls and a softmax;
- the event, time and position heads share one matmul; the event-specific heads run only on
  the rows that need them (the planner decides);
- with ModelConfig.xy_by_type the type embedding E is folded through the position heads'
  weights once: each type's term is a row of a small table (E[t]·W_xyᵀ + xy_bias[t] for the xy
  head, E[t]·[score_h; free_logit]ᵀ for the anchors' scorer) added after the shared matmul;
- with ModelConfig.time_by_type each type's time head (the shared weights plus its term) is
  one block of a single matmul [d, types·n_out], whose drawn type's block is kept (timing()).

The step's result equals the teacher-forced full pass (tests/test_model_incremental.py). Build
it after training or loading: it copies the weights. The GELU is the tanh form in both paths.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..data.schema import N_EVENT_TYPES
from .anchors import anchor_components, anchor_inputs
from .model import UnifiedEventModel

_GELU_C = math.sqrt(2.0 / math.pi)


def _gelu_tanh(a: np.ndarray) -> np.ndarray:
    """0.5·a·(1 + tanh(√(2/π)(a + 0.044715a³))) = a / (1 + exp(−2√(2/π)(a + 0.044715a³))), in place."""
    t = a * a
    t *= -2.0 * _GELU_C * 0.044715
    t -= 2.0 * _GELU_C
    t *= a
    np.minimum(t, 80.0, out=t)  # a ≪ 0: e^t would overflow; e^80 already makes the result −0 in float32
    np.exp(t, out=t)
    t += 1.0
    return np.divide(a, t, out=t)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().to(torch.float32).numpy().copy()


def _fold_ln(ln, linear_w: torch.Tensor, linear_b: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """LN affine (g, b) followed by y = W·z + c → (Wᵀ with g folded in [d_in, d_out], bias [d_out])."""
    g, b = ln.weight.detach(), ln.bias.detach()
    return _np((linear_w * g).T), _np(linear_b + linear_w @ b)


class IncrementalDecoder:
    def __init__(self, model: UnifiedEventModel):
        cfg = model.cfg
        self.model = model
        self.d, self.n_heads = cfg.d_model, cfg.n_heads
        self.dh = cfg.d_model // cfg.n_heads
        self.n_slots = cfg.n_slots
        self.inv_d = np.float32(1.0 / self.d)
        scale = 1.0 / math.sqrt(self.dh)
        d = self.d
        dec = model.decoder
        with torch.no_grad():
            self.layers = []
            for blk in dec.blocks:
                sa, ca = blk.self_attn, blk.cross_attn
                qkv_w, qkv_b = sa.qkv.weight.clone(), sa.qkv.bias.clone()
                qkv_w[:d] *= scale  # fold 1/√d_head into the queries
                qkv_b[:d] *= scale
                g2, b2 = blk.ln2.weight.detach(), blk.ln2.bias.detach()
                wq = (ca.q.weight.detach() * scale).view(self.n_heads, self.dh, d)  # [h,dh,d]
                bq = (ca.q.bias.detach() * scale).view(self.n_heads, self.dh)  # [h,dh]
                wo = ca.out.weight.detach().view(d, self.n_heads, self.dh)  # [d,h,dh]
                self.layers.append(dict(
                    eps=(blk.ln1.eps, blk.ln2.eps, blk.ln3.eps),
                    qkv=_fold_ln(blk.ln1, qkv_w, qkv_b),  # [d,3d], [3d]
                    sa_out=(_np(sa.out.weight.T), _np(sa.out.bias)),
                    kv=(ca.kv.weight.detach().clone(), ca.kv.bias.detach().clone()),  # torch: context → K, V
                    # cross-attention folding (see start()): LN2's scale and shift are folded into
                    # the query weights and bias per head
                    cross_wq=_np((wq * g2).transpose(1, 2)),  # [h,d,dh]
                    cross_bq=_np(bq + wq @ b2),  # [h,dh]
                    cross_wo=_np(wo.permute(1, 2, 0)),  # [h,dh,d]
                    cross_bo=_np(ca.out.bias.detach() / self.n_heads),  # [d] b_out/heads
                    up=_fold_ln(blk.ln3, blk.ff.up.weight, blk.ff.up.bias),  # [d,4d], [4d]
                    down=(_np(blk.ff.down.weight.T), _np(blk.ff.down.bias)),
                ))
            self.final_eps = dec.ln.eps
            heads = model.core_heads  # event [4], time [3], xy [4]: one matmul [d, 11]
            self.core_w, self.core_b = _fold_ln(dec.ln, torch.cat([h.proj.weight for h in heads]),
                                                torch.cat([h.proj.bias for h in heads]))
            self.core_split = np.cumsum([h.proj.out_features for h in heads])[:-1].tolist()
            self.event_heads = {h.key.removesuffix("_logits"): _fold_ln(dec.ln, h.proj.weight, h.proj.bias)
                                for h in model.event_heads}
            xy = model.xy_head.proj
            self.xy_w = _fold_ln(dec.ln, xy.weight, xy.bias)  # [d, 4], [4]: the position head alone (position())
            self.start_in = _np(dec.start + dec.pos[0])  # [d] slot 0's input
            # the slot-input embedding of sampled events
            emb = dec.embed
            self.cont_w = _np(emb.cont.weight.T)  # [4, d]
            # the five categorical tables stacked into one, so a sampled event's five rows are one gather
            tables = [_np(t.weight) for t in (emb.event_type, emb.button, emb.key_action, emb.key_id, emb.scroll_y)]
            self.table = np.concatenate(tables)  # [4+4+3+V+3, d]
            self.table_offsets = np.cumsum([0] + [len(t) for t in tables[:-1]])  # [5]
            self.slot_bias = _np(dec.pos + emb.cont.bias)  # [A, d] slot position + the linear's bias
            self.dt_log_scale = emb.dt_log_scale
            # ModelConfig options (see ActionDecoder, UnifiedEventModel)
            self.xy_residual = model.cfg.xy_residual
            self.elapsed_w = None if dec.elapsed is None else (_np(dec.elapsed.weight.T), _np(dec.elapsed.bias))  # [2,d], [d]
            self.step_w = None if dec.step_in is None else (_np(dec.step_in.weight.T) * dec.STEP_SCALE, _np(dec.step_in.bias))  # [2,d], [d]
            self.pointer_w = None if dec.pointer_in is None else (_np(dec.pointer_in.weight.T), _np(dec.pointer_in.bias))  # [3,d], [d]
            an = model.anchors
            self.anchor_in = None if an is None else (_np(an.inputs.weight.T), _np(an.inputs.bias))  # [K·4,d], [d]
            # the anchors' mixture scorer (PositionAnchors.mixture): the final LayerNorm folded into
            # score_h and free_logit, which share one matmul
            self.anchor_w = None if an is None else dict(
                h=_fold_ln(dec.ln, torch.cat([an.score_h.weight, an.free_logit.weight]),
                           torch.cat([an.score_h.bias, an.free_logit.bias])),  # [d, ds+1], [ds+1]
                a=(_np(an.score_a.weight.T), _np(an.score_a.bias)),  # [4, ds], [ds]
                out=(_np(an.score_out.weight.T), _np(an.score_out.bias)))  # [ds, 2], [2]
            # xy_by_type (ilbot.model.by_type): per type, the terms its embedding and biases add
            bt = model.xy_by_type
            self.by_type = None if bt is None else dict(
                xy=_np(bt.embed.weight @ xy.weight.T + bt.xy_bias),  # [types, 4]
                anchor_h=None if an is None else _np(bt.embed.weight @ torch.cat([an.score_h.weight, an.free_logit.weight]).T),  # [types, ds+1]
                anchor_bias=None if an is None else _np(bt.anchor_bias))  # [types, 2]
            # time_by_type (ilbot.model.by_type.TimeByType): the time head's weights plus each type's
            # term, stacked per type (the crossing logit's row unchanged), for one matmul [d, types·n_out]
            tt = model.time_by_type
            self.time_by_type = None
            if tt is not None:
                tw, tb = model.time_head.proj.weight, model.time_head.proj.bias  # [n_out, d], [n_out]
                pad = tw.shape[0] - model.time_head.n_quantile_raw  # the crossing logit: no type term
                w = tw + F.pad(tt.weight, (0, 0, 0, pad))  # [types, n_out, d]
                b = tb + F.pad(tt.bias, (0, pad))  # [types, n_out]
                self.time_by_type = _fold_ln(dec.ln, w.reshape(-1, tw.shape[1]), b.reshape(-1))  # [d, types·n_out], [types·n_out]

    # ---- per tick -------------------------------------------------------------------------
    def start(self, context: torch.Tensor) -> dict:
        """Prepare a batch's caches: context [B,T,d] (torch) → state (numpy: empty self k/v
        cache, folded cross-attention matrices)."""
        B, T, d = context.shape
        h, dh = self.n_heads, self.dh
        state = {"T": T, "kv": [], "cross_m": [], "cross_c": [], "cross_v": []}
        with torch.no_grad():
            kvs = [F.linear(context, *L["kv"]).numpy() for L in self.layers]  # [B,T,2d] per layer
        for L, kv in zip(self.layers, kvs):
            kv = kv.reshape(B, T, 2, h, dh)
            K, V = kv[:, :, 0].transpose(0, 2, 1, 3), kv[:, :, 1].transpose(0, 2, 1, 3)  # [B,h,T,dh]
            # scores[b, h·T+t] = x̂·M[b,:,h·T+t] + c[b,h·T+t]: M = (g⊙W_q,h)ᵀ K, c = b'_q,h·K
            M = L["cross_wq"] @ K.swapaxes(-1, -2)  # [h,d,dh]@[B,h,dh,T] → [B,h,d,T]
            state["cross_m"].append(np.ascontiguousarray(M.transpose(0, 2, 1, 3)).reshape(B, d, h * T))
            state["cross_c"].append(np.einsum("bhtk,hk->bht", K, L["cross_bq"]).reshape(B, h * T))
            # out = Σ_h,t w[h,t]·(W_out,h V[b,h,t] + b_out/h)
            state["cross_v"].append((V @ L["cross_wo"] + L["cross_bo"]).reshape(B, h * T, d))  # [B,hT,d]
            state["kv"].append(np.zeros((B, 2, h, self.n_slots, dh), np.float32))
        return state

    def _standardise(self, x: np.ndarray, eps: float) -> np.ndarray:
        """LayerNorm without its affine (folded into the next linear map): [B,d] → [B,d].
        One row (the live agent) takes a shorter path: its mean and variance are scalars."""
        if x.shape[0] == 1:
            xc = x - np.add.reduce(x, axis=None) * self.inv_d
            r = xc[0]
            return xc * (1.0 / math.sqrt(float(np.dot(r, r)) * self.inv_d + eps))
        xc = x - np.add.reduce(x, axis=-1, keepdims=True) * self.inv_d
        var = np.add.reduce(xc * xc, axis=-1, keepdims=True) * self.inv_d
        return xc / np.sqrt(var + eps)

    def step(self, state: dict, x: np.ndarray, i: int) -> np.ndarray:
        """Slot i's input x [B,d] → its standardised decoder state [B,d] (the final LayerNorm's
        affine is folded into the heads: use core() and event_logits()); caches slot i."""
        B, d, h, dh, T = x.shape[0], self.d, self.n_heads, self.dh, state["T"]
        for li, L in enumerate(self.layers):
            e1, e2, e3 = L["eps"]
            # causal self-attention over slots 0..i
            qkv = self._standardise(x, e1) @ L["qkv"][0] + L["qkv"][1]  # [B,3d]
            KV = state["kv"][li]  # [B,2,h,A,dh]
            KV[:, :, :, i] = qkv[:, d:].reshape(B, 2, h, dh)
            s = qkv[:, :d].reshape(B, h, 1, dh) @ KV[:, 0, :, : i + 1].swapaxes(-1, -2)  # [B,h,1,i+1]
            w = np.exp(s - np.maximum.reduce(s, axis=-1, keepdims=True))
            w /= np.add.reduce(w, axis=-1, keepdims=True)
            x = x + (w @ KV[:, 1, :, : i + 1]).reshape(B, d) @ L["sa_out"][0]  # [B,d]
            x += L["sa_out"][1]
            # cross-attention to the context (folded per tick, see start())
            xn = self._standardise(x, e2)
            if B == 1:
                s = (xn @ state["cross_m"][li][0] + state["cross_c"][li]).reshape(B, h, T)  # [B,h,T]
            else:
                s = (xn[:, None, :] @ state["cross_m"][li]).reshape(B, h, T) + state["cross_c"][li].reshape(B, h, T)
            w = np.exp(s - np.maximum.reduce(s, axis=-1, keepdims=True))
            w /= np.add.reduce(w, axis=-1, keepdims=True)
            if B == 1:
                x = x + w.reshape(1, h * T) @ state["cross_v"][li][0]
            else:
                x = x + (w.reshape(B, 1, h * T) @ state["cross_v"][li]).reshape(B, d)
            # feed-forward, tanh GELU
            a = self._standardise(x, e3) @ L["up"][0]  # [B,4d]
            a += L["up"][1]
            a = _gelu_tanh(a)
            x = x + a @ L["down"][0]
            x += L["down"][1]
        return self._standardise(x, self.final_eps)  # [B,d]

    def core(self, hn: np.ndarray, prev_xy: np.ndarray | None = None, anchors: tuple | None = None,
             etype: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Event, time and position heads of standardised states [B,d] in one matmul → head dict (numpy).
        prev_xy [B,2]: the previous event's position, the origin of x_mu, y_mu when the model
        has xy_residual (ignored otherwise); anchors: anchor_input's second result when the model
        has anchors, adding anchor_logits [B,K+1], anchor_shift [B,K+1,2]. With xy_by_type the
        position, with time_by_type the time quantiles depend on the slot's event type etype [B]:
        without it the dict leaves them out (draw the type, then call position() and timing());
        a crossing head's cross_logit is always there."""
        raw = hn @ self.core_w + self.core_b  # [B,11]
        a, b = self.core_split
        out = {"event_logits": raw[:, :a]}
        times = self.model.time_head.params(raw[:, a:b])
        if self.time_by_type is not None:
            times = {k: v for k, v in times.items() if k == "cross_logit"}
            if etype is not None:
                times.update(self.timing(hn, etype))
        out.update(times)
        if self.by_type is None or etype is not None:
            out.update(self._position(hn, raw[:, b:], prev_xy, anchors, etype))
        return out

    def timing(self, hn: np.ndarray, etype: np.ndarray) -> dict[str, np.ndarray]:
        """The time quantile keys of core() (time_q, time_q_log and a crossing head's time_q_la,
        time_q_la_log) for slots of event type etype [B], with time_by_type."""
        if self.time_by_type is None:
            raise ValueError("IncrementalDecoder: the model has no time_by_type; core() holds its time quantiles")
        w, b = self.time_by_type
        raw = (hn @ w + b).reshape(len(hn), N_EVENT_TYPES, -1)[np.arange(len(hn)), etype]  # [B, n_out]
        out = self.model.time_head.params(raw)
        out.pop("cross_logit", None)  # drawn before the type, from core()
        return out

    def position(self, hn: np.ndarray, prev_xy: np.ndarray | None = None, anchors: tuple | None = None,
                 etype: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """The position keys of core() alone (x_mu, x_logsig, y_mu, y_logsig and the anchors'),
        for slots of event type etype [B] with xy_by_type (ignored otherwise)."""
        return self._position(hn, hn @ self.xy_w[0] + self.xy_w[1], prev_xy, anchors, etype)

    def _position(self, hn, xy, prev_xy, anchors, etype) -> dict[str, np.ndarray]:
        """xy [B,4]: the position head's raw outputs on hn (before its type term)."""
        bt = self.by_type
        if bt is not None and etype is None:
            raise ValueError("IncrementalDecoder: the model has xy_by_type; its position needs the slot's event type")
        if bt is not None:
            xy = xy + bt["xy"][etype]
        out = self.model.xy_head.params(xy)
        if self.xy_residual and prev_xy is not None:
            out["x_mu"] = out["x_mu"] + (prev_xy[:, 0] - 0.5)  # the head's own origin is 0.5
            out["y_mu"] = out["y_mu"] + (prev_xy[:, 1] - 0.5)
        if self.anchor_w is not None and anchors is not None:
            feats, rel, valid = anchors
            w = self.anchor_w
            hh = hn @ w["h"][0] + w["h"][1]  # [B, ds+1]: the scorer's share, then the free logit
            if bt is not None:
                hh = hh + bt["anchor_h"][etype]
            K = rel.shape[-2]
            a = feats.reshape(-1, K, 4).astype(np.float32) @ w["a"][0] + w["a"][1]  # [B,K,ds]
            z = _gelu_tanh(a + hh[:, None, :-1])
            sc = z @ w["out"][0] + w["out"][1]  # [B,K,2]: logit, gain
            logits = np.concatenate([hh[:, -1:], sc[..., 0]], axis=-1)  # [B,K+1]
            out["anchor_logits"], out["anchor_shift"] = anchor_components(
                sc[..., 1], logits, rel, valid, None if bt is None else bt["anchor_bias"][etype])
        return out

    def pointer_input(self, pointer: np.ndarray) -> np.ndarray | None:
        """pointer_input's term of every slot's input: pointer rows [B,3] → [B,d]; None when the
        model has no such input (ActionDecoder.pointer_input)."""
        if self.pointer_w is None:
            return None
        return np.asarray(pointer, np.float32) @ self.pointer_w[0] + self.pointer_w[1]

    def step_input(self, prev_xy: np.ndarray, prev2_xy: np.ndarray) -> np.ndarray | None:
        """xy_step_input's term of a slot's input: positions of events i−1, i−2 [B,2] → [B,d];
        None when the model has no such input (ActionDecoder.step_input)."""
        if self.step_w is None:
            return None
        return (prev_xy - prev2_xy).astype(np.float32) @ self.step_w[0] + self.step_w[1]

    def anchor_input(self, anchors: np.ndarray, valid: np.ndarray, prev_xy: np.ndarray) -> tuple:
        """The anchors' term of a slot's input and what core() needs of them: anchors [B,K,2],
        valid [B,K], prev_xy [B,2] → (input [B,d], (feats [B,K·4], rel [B,K,2], valid)); (None,
        None) without anchors."""
        if self.anchor_in is None:
            return None, None
        feats, rel = anchor_inputs(anchors, valid, prev_xy)  # [B,K·4], [B,K,2]
        return feats.astype(np.float32) @ self.anchor_in[0] + self.anchor_in[1], (feats, rel, valid)

    def elapsed_input(self, elapsed_ms: np.ndarray, tick_ms: float) -> np.ndarray | None:
        """The slot_elapsed_input term to add to a slot's input: elapsed_ms [B] (tick start to
        the previous event) → [B,d]; None when the model has no such input."""
        if self.elapsed_w is None:
            return None
        s = self.dt_log_scale
        f = np.stack([np.log1p(np.maximum(elapsed_ms, 0.0)) / s,
                      np.log1p(np.maximum(tick_ms - elapsed_ms, 0.0)) / s], axis=-1).astype(np.float32)  # [B,2]
        return f @ self.elapsed_w[0] + self.elapsed_w[1]

    def event_logits(self, name: str, hn: np.ndarray) -> np.ndarray:
        """An event-specific head (button, key_action, key_id, scroll_y) on states [n,d] → [n,C]."""
        w, b = self.event_heads[name]
        return hn @ w + b

    def embed(self, etype, dt_ms, x, y, button, key_action, key_id, scroll_y, since_start_ms, slot: int) -> np.ndarray:
        """Slot `slot`'s input: the embedding of a sampled event (fields as [B] arrays, in range:
        they come from the samplers) plus the slot's position → [B,d]; the same function as
        ActionDecoder.slot_inputs."""
        s = self.dt_log_scale
        cont = np.stack([np.log1p(np.maximum(dt_ms, 0.0)) / s, x - 0.5, y - 0.5,
                         np.log1p(np.maximum(since_start_ms, 0.0)) / s], axis=-1).astype(np.float32)  # [B,4]
        idx = np.stack([etype, button, key_action, key_id, scroll_y], axis=-1) + self.table_offsets  # [B,5]
        out = cont @ self.cont_w + np.add.reduce(self.table[idx], axis=1)  # [B,d]
        out += self.slot_bias[slot]
        return out

"""IncrementalDecoder: the ActionDecoder one slot at a time, with a key/value cache.

The planner samples slot i from the model's outputs at slot i and feeds the sample back as slot
i+1's input, so the decoder runs one slot per step. Re-running the prefix every step costs
O(A²); this keeps each layer's self-attention keys and values in a preallocated cache
[B, 2, heads, A, d_head] and computes only the new slot's row.

Speed: at these sizes (d = 128, one row) the time goes to per-op dispatch (a few µs per torch
call), not to arithmetic, so the step is written as few, plain functional calls on weights
prepared once (no nn.Module calls):

- self-attention: one fused q/k/v matmul, the 1/√d_head scale folded into the query weights,
  one copy of the new key and value into the cache, hand-written attention over slots 0..i;
- cross-attention to the T context vectors is folded per tick into two matrices per layer: the
  scores are LN(x)·M + c with M = W_qᵀK (all heads at once, [d, heads·T]) and the output is
  softmax(scores)·V' with V' = V·W_outᵀ (+ b_out/heads, exact because each head's weights sum to
  1), so the whole block is two batched matmuls and a softmax;
- the event, time and position heads share one matmul.

The result equals the teacher-forced full pass (tests/test_model_incremental.py). Build it after
training or loading: it copies the weights it fuses. The slot-input embedding of a sampled event
(`embed_numpy`) runs in numpy on the same weights: a handful of numbers per slot.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .model import UnifiedEventModel


class IncrementalDecoder:
    def __init__(self, model: UnifiedEventModel):
        cfg = model.cfg
        self.model = model
        self.d, self.n_heads = cfg.d_model, cfg.n_heads
        self.dh = cfg.d_model // cfg.n_heads
        self.n_slots = cfg.n_slots
        scale = 1.0 / math.sqrt(self.dh)
        d = self.d
        dec = model.decoder
        with torch.no_grad():
            self.layers = []
            for blk in dec.blocks:
                sa, ca = blk.self_attn, blk.cross_attn
                qkv_w, qkv_b = sa.qkv.weight.detach().clone(), sa.qkv.bias.detach().clone()
                qkv_w[:d] *= scale  # fold 1/√d_head into the queries
                qkv_b[:d] *= scale
                self.layers.append(dict(
                    ln1=(blk.ln1.weight.detach(), blk.ln1.bias.detach(), blk.ln1.eps),
                    qkv=(qkv_w, qkv_b), sa_out=(sa.out.weight.detach(), sa.out.bias.detach()),
                    ln2=(blk.ln2.weight.detach(), blk.ln2.bias.detach(), blk.ln2.eps),
                    q=(ca.q.weight.detach() * scale, ca.q.bias.detach() * scale),
                    kv=(ca.kv.weight.detach(), ca.kv.bias.detach()),
                    ca_out=(ca.out.weight.detach(), ca.out.bias.detach()),
                    ln3=(blk.ln3.weight.detach(), blk.ln3.bias.detach(), blk.ln3.eps),
                    up=(blk.ff.up.weight.detach(), blk.ff.up.bias.detach()),
                    down=(blk.ff.down.weight.detach(), blk.ff.down.bias.detach()),
                ))
            self.ln = (dec.ln.weight.detach(), dec.ln.bias.detach(), dec.ln.eps)
            heads = model.core_heads  # event [4], time [3], xy [4] in one matmul: [11, d]
            self.core_w = torch.cat([h.proj.weight.detach() for h in heads]).contiguous()
            self.core_b = torch.cat([h.proj.bias.detach() for h in heads]).contiguous()
            self.core_split = [h.proj.out_features for h in heads]
            self.start_in = (dec.start + dec.pos[0]).detach()  # [d] slot 0's input
            # numpy copies for the slot-input embedding of sampled events
            emb = dec.embed
            self.np_cont_w = emb.cont.weight.detach().numpy().T.copy()  # [4, d]
            self.np_cont_b = emb.cont.bias.detach().numpy().copy()
            self.np_tables = [t.weight.detach().numpy().copy() for t in
                              (emb.event_type, emb.button, emb.key_action, emb.key_id, emb.scroll_y)]
            self.np_pos = dec.pos.detach().numpy().copy()  # [A, d]
            self.dt_log_scale = emb.dt_log_scale

    # ---- per tick -------------------------------------------------------------------------
    def start(self, context: torch.Tensor) -> dict:
        """Prepare a batch's caches: context [B,T,d] → state (self k/v cache, folded cross-attention)."""
        B, T, d = context.shape
        h, dh = self.n_heads, self.dh
        state = {"kv": [], "cross_m": [], "cross_c": [], "cross_v": []}
        for L in self.layers:
            kv = F.linear(context, *L["kv"]).view(B, T, 2, h, dh)
            K, V = kv[:, :, 0], kv[:, :, 1]  # [B,T,h,dh]
            wq, bq = L["q"][0].view(h, dh, d), L["q"][1].view(h, dh)
            wo, bo = L["ca_out"][0].view(d, h, dh), L["ca_out"][1]
            # scores[b, h·T+t] = LN(x)·(W_q,hᵀ K[b,t,h]) + b_q,h·K[b,t,h]
            state["cross_m"].append(torch.einsum("hkd,bthk->bdht", wq, K).reshape(B, d, h * T))  # [B,d,hT]
            state["cross_c"].append(torch.einsum("hk,bthk->bht", bq, K).reshape(B, 1, h * T))  # [B,1,hT]
            # out = Σ_h,t w[h,t]·(W_out,h V[b,t,h] + b_out/h)
            state["cross_v"].append((torch.einsum("dhk,bthk->bhtd", wo, V) + bo / h).reshape(B, h * T, d))  # [B,hT,d]
            state["kv"].append(context.new_zeros(B, 2, h, self.n_slots, dh))
        state["T"] = T
        return state

    def step(self, state: dict, x: torch.Tensor, i: int) -> torch.Tensor:
        """Slot i's input x [B,d] → its decoder state [B,d] (after the final LayerNorm); caches slot i."""
        B, d, h, dh, T = x.shape[0], self.d, self.n_heads, self.dh, state["T"]
        x = x.view(B, 1, d)
        for li, L in enumerate(self.layers):
            # causal self-attention over slots 0..i
            qkv = F.linear(F.layer_norm(x, (d,), *L["ln1"]), *L["qkv"]).view(B, 3, h, 1, dh)
            KV = state["kv"][li]  # [B,2,h,A,dh]
            KV[:, :, :, i : i + 1] = qkv[:, 1:]
            w = torch.softmax(qkv[:, 0] @ KV[:, 0, :, : i + 1].transpose(-1, -2), dim=-1)  # [B,h,1,i+1]
            x = x + F.linear((w @ KV[:, 1, :, : i + 1]).view(B, 1, d), *L["sa_out"])  # [B,1,d]
            # cross-attention to the context (folded, see start())
            s = torch.baddbmm(state["cross_c"][li], F.layer_norm(x, (d,), *L["ln2"]), state["cross_m"][li])  # [B,1,hT]
            w = torch.softmax(s.view(B, h, T), dim=-1).view(B, 1, h * T)
            x = torch.baddbmm(x, w, state["cross_v"][li])  # [B,1,d]
            # feed-forward
            x = x + F.linear(F.gelu(F.linear(F.layer_norm(x, (d,), *L["ln3"]), *L["up"])), *L["down"])
        return F.layer_norm(x, (d,), *self.ln).view(B, d)  # [B,d]

    def core_heads(self, hidden: torch.Tensor) -> dict[str, torch.Tensor]:
        """Event, time and position heads of decoder states [B,d] in one matmul → the head dict."""
        raw = F.linear(hidden, self.core_w, self.core_b)  # [B,11]
        ev, tq, xy = raw.split(self.core_split, dim=-1)
        out = self.model.event_head.params(ev)
        out.update(self.model.time_head.params(tq))
        out.update(self.model.xy_head.params(xy))
        return out

    def embed_numpy(self, etype, dt_ms, x, y, button, key_action, key_id, scroll_y, since_start_ms, slot: int) -> np.ndarray:
        """Slot `slot`'s input: the embedding of a sampled event (numpy [B] fields) plus the slot's
        position → [B,d] float32; the same function as ActionDecoder.slot_inputs."""
        s = self.dt_log_scale
        cont = np.stack([np.log1p(np.maximum(dt_ms, 0.0)) / s, x - 0.5, y - 0.5,
                         np.log1p(np.maximum(since_start_ms, 0.0)) / s], axis=-1).astype(np.float32)  # [B,4]
        out = cont @ self.np_cont_w + self.np_cont_b + self.np_pos[slot]
        for table, v in zip(self.np_tables, (etype, button, key_action, key_id, scroll_y)):
            out += table[np.clip(np.asarray(v, np.int64), 0, len(table) - 1)]
        return out  # [B,d]

"""Column access for history and target rows (ilbot.data.schema), vectorised for tensors.

History rows are [..., 8] (dt_ms, x, y, type, button, key_action, key_id, scroll_y); target rows
are [..., 7] (the same without type, which is derived from the fields: CLICK if a button is set,
else KEY if a key action is set, else SCROLL if a scroll class is set, else MOVE — the
`derive_event_type` rule, here for whole tensors).
"""

from __future__ import annotations

import torch

from ..data.schema import TG, UNKNOWN_POINTER, EventType, H


def derive_event_types(button: torch.Tensor, key_action: torch.Tensor, scroll_y: torch.Tensor) -> torch.Tensor:
    """Event type index per element (long), the vectorised `derive_event_type`."""
    move = torch.full_like(button, int(EventType.MOVE), dtype=torch.long)
    t = torch.where(scroll_y != 0, torch.full_like(move, int(EventType.SCROLL)), move)
    t = torch.where(key_action != 0, torch.full_like(move, int(EventType.KEY)), t)
    return torch.where(button != 0, torch.full_like(move, int(EventType.CLICK)), t)


def target_event_types(targets: torch.Tensor) -> torch.Tensor:
    """targets [..., 7] → event type [...] (long)."""
    return derive_event_types(targets[..., TG["button"]], targets[..., TG["key_action"]], targets[..., TG["scroll_y"]])


def target_to_history_rows(targets: torch.Tensor) -> torch.Tensor:
    """targets [..., 7] → history-layout rows [..., 8] (type inserted at column 3)."""
    types = target_event_types(targets).to(targets.dtype).unsqueeze(-1)  # [..., 1]
    return torch.cat([targets[..., :3], types, targets[..., 3:]], dim=-1)  # [..., 8]


def last_history_xy(history: torch.Tensor, history_mask: torch.Tensor, before: int = 0,
                    pointer: torch.Tensor | None = None) -> torch.Tensor:
    """history [B,T,A,8], mask [B,T,A] → (x, y) [B,2] of the latest valid history event (ticks
    and slots in time order), or with `before` = 1 of the one before it; the latest event's
    position when it has one only. When the history has no event: the pointer row's position
    where `pointer` [B,3] (POINTER_FIELDS) is given and known, else the window centre (0.5, 0.5)."""
    B = history.shape[0]
    flat = history.reshape(B, -1, history.shape[-1])  # [B,T·A,8]
    m = history_mask.reshape(B, -1).bool()  # [B,T·A]
    order = torch.arange(1, m.shape[1] + 1, device=m.device)  # [T·A] 1-based so 0 means "none"
    last = (m * order).amax(dim=1)  # [B] 1-based index of the last valid event, 0 if none
    if before:  # the one before: the latest valid index below `last`, else `last` itself
        earlier = ((m * order) * (order < last.unsqueeze(1))).amax(dim=1)  # [B]
        last = torch.where(earlier > 0, earlier, last)
    xy = flat[torch.arange(B, device=m.device), (last - 1).clamp(min=0)][:, [H["x"], H["y"]]].float()  # [B,2]
    none = torch.full_like(xy, 0.5)
    if pointer is not None:
        pointer = pointer.float()
        none = torch.where(pointer[:, 2:3] > 0.5, pointer[:, :2], none)  # [B,2]
    return torch.where((last > 0).unsqueeze(-1), xy, none)


def context_pointer(batch: dict, like: torch.Tensor) -> torch.Tensor:
    """The batch's pointer rows [B,3] (POINTER_FIELDS), or UNKNOWN_POINTER rows where it has none
    (B and the device from `like` [B, ...])."""
    if "pointer" in batch:
        return torch.as_tensor(batch["pointer"]).float()
    return torch.tensor(UNKNOWN_POINTER, device=like.device).expand(like.shape[0], 3)


def previous_xy(targets: torch.Tensor, history_xy: torch.Tensor) -> torch.Tensor:
    """Teacher forcing's previous position per slot: targets [B,A,7], history_xy [B,2] → [B,A,2]
    (slot 0 ← the last history event, slot i ← target i−1)."""
    return torch.cat([history_xy.unsqueeze(1), targets[:, :-1, TG["x"]:TG["y"] + 1]], dim=1)

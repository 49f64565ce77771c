"""Column access for history and target rows (ilbot.data.schema), vectorised for tensors.

History rows are [..., 8] (dt_ms, x, y, type, button, key_action, key_id, scroll_y); target rows
are [..., 7] (the same without type, which is derived from the fields: CLICK if a button is set,
else KEY if a key action is set, else SCROLL if a scroll class is set, else MOVE — the
`derive_event_type` rule, here for whole tensors).
"""

from __future__ import annotations

import torch

from ..data.schema import TG, EventType


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

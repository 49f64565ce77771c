"""ilbot.model: the unified-event model (DESIGN §6, §7, §9). See docs/model.md.

    from ilbot.model import ModelConfig, UnifiedEventModel, UnifiedEventLoss
    from ilbot.model import save_checkpoint, load_checkpoint, Planner
"""

from .checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from .config import ModelConfig
from .loss import UnifiedEventLoss
from .model import UnifiedEventModel
from .planner import Planner
from .sampling import sample_event, sample_time, sample_xy

__all__ = ["Checkpoint", "ModelConfig", "Planner", "UnifiedEventLoss", "UnifiedEventModel", "load_checkpoint",
           "save_checkpoint", "sample_event", "sample_time", "sample_xy"]

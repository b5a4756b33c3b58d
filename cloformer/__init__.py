"""PyTorch CloFormer that loads official-format checkpoints unchanged (strict=True)."""

from .checkpoint import CheckpointMismatchError, read_state_dict
from .model import CloFormer
from .registry import SHIPPED, create_model, intermediates, list_models, model_card, pretrained_cfg

__all__ = ["SHIPPED", "CheckpointMismatchError", "CloFormer", "create_model", "intermediates",
           "list_models", "model_card", "pretrained_cfg", "read_state_dict"]

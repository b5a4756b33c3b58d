"""PyTorch CloFormer that loads official-format checkpoints unchanged (strict=True)."""

from .checkpoint import CheckpointError, CheckpointMismatchError, read_state_dict
from .deploy import DeployCloFormer
from .model import CloFormer
from .registry import SHIPPED, UnknownModelError, create_model, list_models, model_card, pretrained_cfg

__all__ = [
           "SHIPPED",
           "CheckpointError",
           "CheckpointMismatchError",
           "CloFormer",
           "DeployCloFormer",
           "UnknownModelError",
           "create_model",
           "list_models",
           "model_card",
           "pretrained_cfg",
           "read_state_dict",
]

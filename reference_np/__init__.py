"""Pure-NumPy golden reference of every CloFormer variant. Imports neither torch nor OpenVINO."""

from .init import random_weights
from .io import cast_weights, check_finite, clean_state_dict, load_weights, save_weights, weights_sha256
from .model import forward
from .specs import VARIANTS, BlockPlan, ModelPlan, VariantSpec, plan_from_spec, plan_from_weights

__all__ = ["VARIANTS", "BlockPlan", "ModelPlan", "VariantSpec", "cast_weights", "check_finite", "clean_state_dict",
           "forward",
           "load_weights", "plan_from_spec", "plan_from_weights", "random_weights", "save_weights", "weights_sha256"]

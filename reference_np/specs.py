"""CloFormer facts in one place: the variant table, per-block plans, input and preprocessing constants.

Torch-free on purpose: the NumPy reference, the PyTorch model, the data pipeline and the tools all
import from here (see ../shared/cloformer-architecture.md for where each number comes from).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

INPUT_MULTIPLE = 32  # the global branch reshapes assume H*W divisible by ws^2 at every stage
GN_EPS = 1e-5  # GroupNorm(1, C) and BatchNorm eps

# The authors' ImageNet evaluation transform (timm IMAGENET_DEFAULT_*, crop 0.875, PIL bicubic).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CROP_PCT = 0.875
INTERPOLATION = "bicubic"


@dataclass(frozen=True)
class VariantSpec:
    """The constructor arguments of one official CloFormer variant."""

    embed_dims: tuple[int, ...]
    num_heads: tuple[int, ...]
    group_splits: tuple[tuple[int, ...], ...]  # per stage: heads of each local group, then global heads
    kernel_sizes: tuple[tuple[int, ...], ...]  # per stage: one DWConv kernel per local group
    depths: tuple[int, ...] = (2, 2, 6, 2)
    window_sizes: tuple[int, ...] = (8, 4, 2, 1)
    mlp_kernel_sizes: tuple[int, ...] = (5, 5, 5, 5)
    mlp_ratios: tuple[int, ...] = (4, 4, 4, 4)
    params: int | None = None  # exact official parameter count at 1000 classes
    pretrained_cfg: Mapping[str, object] = field(default_factory=dict)

    @property
    def head_dims(self) -> tuple[int, ...]:
        return tuple(c // h for c, h in zip(self.embed_dims, self.num_heads, strict=True))


def _cfg(**overrides: object) -> dict[str, object]:
    """timm-style pretrained_cfg: everything an evaluator needs to feed the model."""
    cfg: dict[str, object] = dict(
        input_size=(3, 224, 224), crop_pct=CROP_PCT, interpolation=INTERPOLATION,
        mean=IMAGENET_MEAN, std=IMAGENET_STD, num_classes=1000,
    )
    cfg.update(overrides)
    return cfg


_LOCAL_K = ((3,), (5,), (7,), (9,))
VARIANTS: dict[str, VariantSpec] = {
    "cloformer_xxs": VariantSpec((32, 64, 128, 256), (4, 4, 8, 16), ((3, 1), (2, 2), (4, 4), (4, 12)),
                                 _LOCAL_K, params=4_166_728, pretrained_cfg=_cfg()),
    "cloformer_xs": VariantSpec((48, 96, 160, 352), (3, 6, 10, 22), ((2, 1), (3, 3), (5, 5), (7, 15)),
                                _LOCAL_K, params=7_172_216, pretrained_cfg=_cfg()),
    "cloformer_s": VariantSpec((64, 128, 224, 448), (4, 8, 14, 28), ((3, 1), (4, 4), (7, 7), (7, 21)),
                               _LOCAL_K, params=12_345_576, pretrained_cfg=_cfg()),
    # ablations from the authors' model_factory.py
    "cloformer_global": VariantSpec((32, 64, 128, 256), (4, 4, 8, 16), ((4,), (4,), (8,), (16,)),
                                    ((), (), (), ()), params=3_998_024, pretrained_cfg=_cfg()),
    "cloformer_no_global": VariantSpec((32, 64, 128, 256), (4, 4, 8, 16), ((4, 0), (4, 0), (8, 0), (16, 0)),
                                       _LOCAL_K, params=4_733_256, pretrained_cfg=_cfg()),
}


@dataclass(frozen=True)
class BlockPlan:
    """Every width one Clo block needs; derived from a variant or read off (possibly pruned) weights."""

    dim: int  # residual width C
    out_dim: int  # C' (differs from C only in a transition block)
    dim_head: int  # d: sets the attention scale d^-0.5 and the global head split
    local_channels: tuple[int, ...]  # c of each local AttnConv group (Q, K, V each c wide)
    kernel_sizes: tuple[int, ...]  # DWConv kernel of each local group
    global_heads: int  # heads in the global branch (0: no global branch)
    window_size: int  # AvgPool window for the global K/V
    hidden: int  # ConvFFN hidden width
    mlp_kernel_size: int
    stride: int  # 2 in a transition block


@dataclass(frozen=True)
class ModelPlan:
    stem_dim: int
    blocks: tuple[tuple[BlockPlan, ...], ...]  # [stage][block]
    num_classes: int

    @property
    def num_features(self) -> int:
        return self.blocks[-1][-1].out_dim


def plan_from_spec(spec: VariantSpec, num_classes: int = 1000) -> ModelPlan:
    stages = []
    n = len(spec.depths)
    for i, depth in enumerate(spec.depths):
        dim, d = spec.embed_dims[i], spec.head_dims[i]
        out_dim = spec.embed_dims[i + 1] if i < n - 1 else dim
        *local_heads, global_heads = spec.group_splits[i]
        # skip zero-head local groups, as the authors' constructor does (see spec §9.7)
        local = [(h * d, k) for h, k in zip(local_heads, spec.kernel_sizes[i], strict=True) if h > 0]
        blocks = []
        for j in range(depth):
            last = j == depth - 1
            blocks.append(BlockPlan(
                dim=dim, out_dim=out_dim if last else dim, dim_head=d,
                local_channels=tuple(c for c, _ in local), kernel_sizes=tuple(k for _, k in local),
                global_heads=global_heads, window_size=spec.window_sizes[i],
                hidden=dim * spec.mlp_ratios[i], mlp_kernel_size=spec.mlp_kernel_sizes[i],
                stride=2 if (last and i < n - 1) else 1))
        stages.append(tuple(blocks))
    return ModelPlan(stem_dim=spec.embed_dims[0], blocks=tuple(stages), num_classes=num_classes)


def head_dims_for(embed_dims: tuple[int, ...]) -> tuple[int, ...]:
    """Head dims of the official variant with these stage widths (all variants sharing widths agree)."""
    found = {v.head_dims for v in VARIANTS.values() if v.embed_dims == tuple(embed_dims)}
    if len(found) != 1:
        raise ValueError(
            f"stage widths {tuple(embed_dims)} match no CloFormer variant "
            f"({', '.join(f'{k}: {v.embed_dims}' for k, v in VARIANTS.items())}); pass head_dims explicitly")
    return found.pop()


def plan_from_weights(weights: Mapping[str, np.ndarray],
                      head_dims: tuple[int, ...] | None = None) -> ModelPlan:
    """Read every width off official-format weights, so pruned checkpoints run unchanged.

    The head dim d cannot be read off the weights (only c = heads * d is); it comes from the official
    variant with the same stage widths unless given. Pruning keeps whole heads, so d is unchanged.
    """
    def shape(key: str) -> tuple[int, ...]:
        if key not in weights:
            raise KeyError(f"weights lack key '{key}'")
        return tuple(weights[key].shape)

    depths = []
    while f"layers.{len(depths)}.blocks.0.norm1.weight" in weights:
        i = len(depths)
        j = 0
        while f"layers.{i}.blocks.{j}.norm1.weight" in weights:
            j += 1
        depths.append(j)
    if not depths:
        raise KeyError("weights have no 'layers.0.blocks.0.norm1.weight': not an official-format CloFormer")
    embed = tuple(shape(f"layers.{i}.blocks.0.norm1.weight")[0] for i in range(len(depths)))
    head_dims = tuple(head_dims) if head_dims is not None else head_dims_for(embed)
    window_sizes = VARIANTS["cloformer_xxs"].window_sizes
    stages = []
    for i, depth in enumerate(depths):
        blocks = []
        for j in range(depth):
            p = f"layers.{i}.blocks.{j}."
            local, kernels = [], []
            while f"{p}attn.qkvs.{len(local)}.weight" in weights:
                g = len(local)
                local.append(shape(f"{p}attn.qkvs.{g}.weight")[0] // 3)
                kernels.append(shape(f"{p}attn.convs.{g}.weight")[-1])
            c_g = shape(f"{p}attn.global_q.weight")[0] if f"{p}attn.global_q.weight" in weights else 0
            d = head_dims[i]
            if c_g % d:
                raise ValueError(f"'{p}attn.global_q.weight' has {c_g} channels, not a multiple of head dim {d}")
            blocks.append(BlockPlan(
                dim=shape(f"{p}norm1.weight")[0], out_dim=shape(f"{p}mlp.fc2.weight")[0], dim_head=d,
                local_channels=tuple(local), kernel_sizes=tuple(kernels), global_heads=c_g // d,
                window_size=window_sizes[i], hidden=shape(f"{p}mlp.fc1.weight")[0],
                mlp_kernel_size=shape(f"{p}mlp.dwconv.weight")[-1],
                stride=2 if f"{p}downsample.0.weight" in weights else 1))
        stages.append(tuple(blocks))
    return ModelPlan(stem_dim=shape("patch_embed.layernorm.weight")[0], blocks=tuple(stages),
                     num_classes=shape("head.weight")[0])


def intermediate_names(plan: ModelPlan, with_norm: bool = True) -> list[str]:
    """The named intermediates, in forward order; the one definition of the scheme (the NumPy reference,
    the torch model's forward_intermediates, the deploy graph's taps and the per-layer reports use it).
    Names are the torch module names: `patch_embed` (stem), `layers.i.blocks.j.attn` / `.mlp` (branch
    outputs before the residual add), `layers.i.blocks.j` (block output), `norm` (head GroupNorm, full map),
    `features` (pooled, pre-classifier)."""
    names = ["patch_embed"]
    for i, stage in enumerate(plan.blocks):
        for j in range(len(stage)):
            p = f"layers.{i}.blocks.{j}"
            names += [f"{p}.attn", f"{p}.mlp", p]
    return [*names, *(["norm"] if with_norm else []), "features"]


def check_input_size(height: int, width: int) -> None:
    """CloFormer needs both sides to be multiples of 32 (the authors' code fails in a reshape otherwise)."""
    if height % INPUT_MULTIPLE or width % INPUT_MULTIPLE or height <= 0 or width <= 0:
        raise ValueError(f"CloFormer input must be H x W with both sides positive multiples of "
                         f"{INPUT_MULTIPLE}; got {height} x {width}")

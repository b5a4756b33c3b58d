"""Per-channel equalisation of the ConvFFN's inner activation, folded into its weights (no node added).

A ConvFFN computes fc2(dwconv(gelu(fc1(x)))). Between the depthwise convolution and fc2 there is no non-linearity,
so for any positive per-channel s, dwconv with its weights and bias divided by s, then fc2 with its input columns
multiplied by s, is the same function. The activation that fc2's input quantizer sees is then dwconv's output
divided by s. Its channels' ranges differ many-fold (the largest over the median, ten and more in the later
stages), and a per-tensor quantizer sized for the largest leaves the others a few levels; choosing
s = a^alpha / w^(1 - alpha), as SmoothQuant does (a: a channel's largest |activation| on the calibration images,
w: the largest |weight| of its fc2 input column), moves that spread into fc2's weights, whose quantizers are per
output channel. Unlike NNCF's SmoothQuant the scales are folded into the preceding depthwise convolution, not
inserted as a Multiply: the graph keeps its nodes and per-tensor activation quantizers, and the FP32 function is
unchanged (the float64 reference and the deploy form agree on the folded weights as on the original ones)."""

from __future__ import annotations

import copy
import dataclasses
import re

import numpy as np
import torch

from ..loading import LoadedModel

FC2 = re.compile(r"(?P<block>layers\.\d+\.blocks\.\d+\.mlp)\.fc2")
BATCH = 50  # calibration images per forward pass (eval mode: batching does not change an image's activations)


def fc2_input_ranges(loaded: LoadedModel, calib: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Each ConvFFN's fc2 input (dwconv's output): the largest |value| per channel over the calibration images,
    by block (`layers.i.blocks.j.mlp`). float64 [hidden]."""
    model = loaded.model.eval()
    found: dict[str, torch.Tensor] = {}
    hooks = []
    for name, module in model.named_modules():
        if m := FC2.fullmatch(name):
            def record(_: torch.nn.Module, args: tuple[torch.Tensor, ...], block: str = m["block"]) -> None:
                a = args[0].detach().abs().amax(dim=(0, 2, 3))
                found[block] = torch.maximum(found[block], a) if block in found else a
            hooks.append(module.register_forward_pre_hook(record))
    xs = np.concatenate(calib)
    try:
        with torch.no_grad():
            for i in range(0, len(xs), BATCH):
                model(torch.from_numpy(xs[i:i + BATCH]))
    finally:
        for h in hooks:
            h.remove()
    return {b: a.double().numpy() for b, a in found.items()}


def scales(act: np.ndarray, fc2_weight: np.ndarray, alpha: float) -> np.ndarray:
    """s = a^alpha / w^(1-alpha) per channel, normalised to a geometric mean of 1 (a common factor would only move
    the whole activation range into the weights)."""
    w = np.abs(fc2_weight).max(axis=(0, 2, 3))  # [O, C, 1, 1] -> [C]: the largest weight each channel feeds
    s = np.maximum(act, 1e-6) ** alpha / np.maximum(w, 1e-6) ** (1.0 - alpha)
    return s / np.exp(np.mean(np.log(s)))


def fold_weights(weights: dict[str, np.ndarray], ranges: dict[str, np.ndarray], alpha: float,
                 dtype: type = np.float32) -> dict[str, np.ndarray]:
    """The official-key weights with each block of `ranges` (fc2_input_ranges) equalised at `alpha`: computed in
    float64, returned as `dtype` (float64: the exact same function, what the float64 reference checks)."""
    out = dict(weights)
    for block, act in ranges.items():
        fc2 = weights[f"{block}.fc2.weight"].astype(np.float64)
        s = scales(act, fc2, alpha)
        dw_w, dw_b = f"{block}.dwconv.weight", f"{block}.dwconv.bias"
        out[dw_w] = (weights[dw_w].astype(np.float64) / s[:, None, None, None]).astype(dtype)
        out[dw_b] = (weights[dw_b].astype(np.float64) / s).astype(dtype)
        out[f"{block}.fc2.weight"] = (fc2 * s[None, :, None, None]).astype(dtype)
    return out


def fold(loaded: LoadedModel, calib: list[np.ndarray], alpha: float) -> LoadedModel:
    """`loaded` with every ConvFFN equalised at `alpha` (0: by the weights' ranges only, 1: by the activation's
    only) on the calibration images: a copy, the same function, other float32 weights."""
    weights = fold_weights(loaded.weights, fc2_input_ranges(loaded, calib), alpha)
    model = copy.deepcopy(loaded.model)
    params = model.state_dict()  # (the model's own tensors: copying into them sets its weights)
    with torch.no_grad():
        for k, v in weights.items():
            if v is not loaded.weights[k]:
                params[k].copy_(torch.from_numpy(v))
    return dataclasses.replace(loaded, model=model.eval(), weights=weights)

"""ConvFFN: fc1 -> GELU(erf) -> depthwise k x k (stride s) -> fc2. Mirrors cloformer/convffn.py."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .ops import depthwise_conv2d, gelu, pointwise


def convffn(x: np.ndarray, w: Mapping[str, np.ndarray], p: str, stride: int) -> np.ndarray:
    x = gelu(pointwise(x, w[p + "fc1.weight"], w[p + "fc1.bias"]))  # [B,C,H,W] -> [B,4C,H,W]
    x = depthwise_conv2d(x, w[p + "dwconv.weight"], w[p + "dwconv.bias"], stride)  # -> [B,4C,H/s,W/s]
    return pointwise(x, w[p + "fc2.weight"], w[p + "fc2.bias"])  # -> [B,C',H/s,W/s]

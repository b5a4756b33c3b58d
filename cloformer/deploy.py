"""The deploy form of CloFormer: the same function as `CloFormer`, written so that OpenVINO executes few
nodes. Built from official-format weights (pruned ones included); the NumPy reference stays the judge
(tests: float64 agreement <= 1e-10 for every variant and a pruned checkpoint).

What changes against the training form, each exact up to float rounding:
- BatchNorm folded into the preceding convolution (stem, transition skip).
- GroupNorm(1, C) becomes a parameter-free normalisation (one MVN node over C, H, W); its per-channel
  affine is folded into every consumer: the 1x1 projections of the attention (pooling commutes with a
  per-channel affine), `fc1`, and the classifier (mean pooling commutes too). Only the stem's norm keeps
  its affine, because its output is the residual stream itself.
- The local branch's scale d^-1/2 is folded into the second act_block convolution (it sits inside the
  tanh, after FC-Swish-FC). The global branch keeps `q * scale` explicit: OpenVINO's CPU plugin fuses
  scale-MatMul-Softmax-MatMul into one attention kernel only in that form (measured: without the Multiply
  it runs MatMul, Softmax, MatMul as three nodes).
- AvgPool(ws) followed by the 1x1 `global_kv` is one ws x ws convolution with stride ws whose taps are
  W_kv / ws^2 (pooling and a 1x1 projection commute): one node instead of two.
- The global branch splits its heads off channels-last views of the projections (permute to [B,H,W,C], then
  [B,HW,heads,d]) and writes its output the same way: the same elements in the same order, but the CPU plugin
  holds convolution outputs channels-last, so no Reorder is needed, and its attention kernel absorbs the
  (0, 2, 1, 3) transposes (split off NCHW views, q, k|v and the output each took a Reorder and a Transpose).
Module names follow the official ones (`stem`, `layers.i.blocks.j.attn`, `.mlp`, `head`), so OpenVINO node
names stay readable and `--ignored-scope pattern:` entries can address them.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from reference_np.specs import GN_EPS, BlockPlan, ModelPlan, intermediate_names, plan_from_weights


def _conv(w: np.ndarray, b: np.ndarray, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    k = w.shape[-1]
    conv = nn.Conv2d(w.shape[1] * groups, w.shape[0], k, stride, k // 2, groups=groups)
    conv.weight.data = torch.from_numpy(np.ascontiguousarray(w))
    conv.bias.data = torch.from_numpy(np.ascontiguousarray(b))
    return conv


def fold_bn(w: Mapping[str, np.ndarray], conv: str, bn: str) -> tuple[np.ndarray, np.ndarray]:
    """Conv followed by eval-mode BatchNorm -> one conv: W' = W * s, b' = (b - mean) * s + beta."""
    s = w[bn + "weight"] / np.sqrt(w[bn + "running_var"] + GN_EPS)
    return w[conv + "weight"] * s[:, None, None, None], (w[conv + "bias"] - w[bn + "running_mean"]) * s + w[bn + "bias"]


def fold_affine(wt: np.ndarray, b: np.ndarray, gamma: np.ndarray, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A 1x1 conv reading gamma * u + beta (per channel) -> the same conv reading u."""
    return wt * gamma[None, :, None, None], b + wt[:, :, 0, 0] @ beta


def mvn(x: torch.Tensor) -> torch.Tensor:
    """GroupNorm(1, C) without affine: per sample over (C, H, W), biased variance (one MVN node)."""
    return F.layer_norm(x, x.shape[1:], eps=GN_EPS)


class DeployStem(nn.Module):
    def __init__(self, w: Mapping[str, np.ndarray], p: str = "patch_embed.") -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i, stride in ((1, 2), (2, 2), (3, 1), (4, 1)):
            layers += [_conv(*fold_bn(w, f"{p}conv{i}.conv.0.", f"{p}conv{i}.conv.1."), stride), nn.ReLU()]
        layers.append(_conv(w[p + "conv5.weight"], w[p + "conv5.bias"]))
        self.convs = nn.Sequential(*layers)
        self.gamma = nn.Parameter(torch.from_numpy(w[p + "layernorm.weight"].reshape(1, -1, 1, 1).copy()))
        self.beta = nn.Parameter(torch.from_numpy(w[p + "layernorm.bias"].reshape(1, -1, 1, 1).copy()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return mvn(self.convs(x)) * self.gamma + self.beta


class DeployAttention(nn.Module):
    """Local AttnConv groups beside the global branch, concatenated, then `proj`. Reads mvn(x)."""

    def __init__(self, w: Mapping[str, np.ndarray], p: str, plan: BlockPlan) -> None:
        super().__init__()
        g, b = w[p + "norm1.weight"], w[p + "norm1.bias"]
        a, d = p + "attn.", plan.dim_head
        scale = d ** -0.5
        self.local_channels = plan.local_channels
        self.qkvs = nn.ModuleList(_conv(*fold_affine(w[f"{a}qkvs.{i}.weight"], w[f"{a}qkvs.{i}.bias"], g, b))
                                  for i in range(len(plan.local_channels)))
        self.convs = nn.ModuleList(_conv(w[f"{a}convs.{i}.weight"], w[f"{a}convs.{i}.bias"], groups=3 * c)
                                   for i, c in enumerate(plan.local_channels))
        self.act_blocks = nn.ModuleList()  # FC -> Swish -> FC, the scale folded into the second FC
        for i in range(len(self.qkvs)):
            ab = f"{a}act_blocks.{i}.act_block."
            self.act_blocks.append(nn.Sequential(_conv(w[ab + "0.weight"], w[ab + "0.bias"]), nn.SiLU(),
                                                 _conv(w[ab + "2.weight"] * scale, w[ab + "2.bias"] * scale)))
        self.heads, self.d, self.ws = plan.global_heads, d, plan.window_size
        if self.heads:
            # a tensor, not a Python float: OpenVINO's PyTorch frontend stores Python scalars as float32 even in a
            # float64 graph (1/sqrt(8) would lose 1.7e-8 relative)
            self.register_buffer("scale", torch.tensor(scale, dtype=torch.float64))
            self.global_q = _conv(*fold_affine(w[a + "global_q.weight"], w[a + "global_q.bias"], g, b))
            wkv, bkv = fold_affine(w[a + "global_kv.weight"], w[a + "global_kv.bias"], g, b)
            pooled = np.repeat(np.repeat(wkv / self.ws ** 2, self.ws, axis=2), self.ws, axis=3)  # [2c_g, C, ws, ws]
            self.global_kv = nn.Conv2d(pooled.shape[1], pooled.shape[0], self.ws, self.ws)
            self.global_kv.weight.data, self.global_kv.bias.data = torch.from_numpy(pooled), torch.from_numpy(bkv)
        self.proj = _conv(w[a + "proj.weight"], w[a + "proj.bias"])

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        parts = []
        for qkv, dw, act in zip(self.qkvs, self.convs, self.act_blocks, strict=True):
            q, k, v = dw(qkv(u)).chunk(3, dim=1)
            parts.append(torch.tanh(act(q * k)) * v)
        if self.heads:
            bsz, _, h, wd = u.shape
            # heads split off channels-last views (module docstring). -1, not h * wd: traced, h * wd is an integer
            # multiply that would take the place (and the quantizer) of the element-wise products after it in
            # NNCF's op numbering (compress.quantize.qat exports traced)
            q = self.global_q(u).permute(0, 2, 3, 1).reshape(bsz, -1, self.heads, self.d).transpose(1, 2)
            kv = self.global_kv(u).permute(0, 2, 3, 1).reshape(bsz, -1, 2, self.heads, self.d)
            k, v = kv.permute(2, 0, 3, 1, 4).unbind(0)  # 2 x [B,heads,N,d]
            o = ((q * self.scale) @ k.transpose(-1, -2)).softmax(dim=-1) @ v  # one fused attention node
            parts.append(o.transpose(1, 2).reshape(bsz, h, wd, self.heads * self.d).permute(0, 3, 1, 2))
        return self.proj(torch.cat(parts, dim=1) if len(parts) > 1 else parts[0])


class DeployConvFFN(nn.Module):
    def __init__(self, w: Mapping[str, np.ndarray], p: str, plan: BlockPlan) -> None:
        super().__init__()
        m = p + "mlp."
        self.fc1 = _conv(*fold_affine(w[m + "fc1.weight"], w[m + "fc1.bias"], w[p + "norm2.weight"],
                                      w[p + "norm2.bias"]))
        self.dwconv = _conv(w[m + "dwconv.weight"], w[m + "dwconv.bias"], plan.stride, groups=plan.hidden)
        self.fc2 = _conv(w[m + "fc2.weight"], w[m + "fc2.bias"])

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.dwconv(F.gelu(self.fc1(u))))


class DeployBlock(nn.Module):
    def __init__(self, w: Mapping[str, np.ndarray], p: str, plan: BlockPlan) -> None:
        super().__init__()
        self.attn = DeployAttention(w, p, plan)
        self.mlp = DeployConvFFN(w, p, plan)
        self.downsample = nn.Sequential(
            _conv(*fold_bn(w, p + "downsample.0.", p + "downsample.1."), stride=2),
            _conv(w[p + "downsample.2.weight"], w[p + "downsample.2.bias"])) if plan.stride == 2 else nn.Identity()

    def forward(self, x: torch.Tensor, taps: list[torch.Tensor] | None = None) -> torch.Tensor:
        attn = self.attn(mvn(x))
        x = x + attn
        ffn = self.mlp(mvn(x))
        out = self.downsample(x) + ffn
        if taps is not None:
            taps += [attn, ffn, out]
        return out


class Chain(nn.ModuleList):
    """Modules called in turn with the taps list: a stage's blocks, and the stages. Called rather than iterated, so
    that a tracer naming ops by the module call stack (NNCF's torch backend) sees the whole path `layers/0/1/attn`
    that OpenVINO's node names and the ignored scope's patterns use."""

    def forward(self, x: torch.Tensor, taps: list[torch.Tensor] | None = None) -> torch.Tensor:
        for m in self:
            x = m(x, taps)
        return x


class DeployCloFormer(nn.Module):
    """forward(x) -> logits; forward_taps(x) -> (logits, *intermediates in `intermediate_names` order)."""

    def __init__(self, weights: Mapping[str, np.ndarray], plan: ModelPlan | None = None,
                 head_dims: tuple[int, ...] | None = None, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        # fold in float64 whatever the target dtype, then cast once
        w = {k: np.asarray(v, np.float64) for k, v in weights.items() if not k.endswith("num_batches_tracked")}
        self.plan = plan or plan_from_weights(weights, head_dims)
        self.stem = DeployStem(w)
        self.layers = Chain(
            Chain(DeployBlock(w, f"layers.{i}.blocks.{j}.", b) for j, b in enumerate(stage))
            for i, stage in enumerate(self.plan.blocks))
        wh, bh = fold_affine(w["head.weight"][:, :, None, None], w["head.bias"], w["norm.weight"], w["norm.bias"])
        self.head = nn.Linear(wh.shape[1], wh.shape[0])
        self.head.weight.data, self.head.bias.data = torch.from_numpy(wh[:, :, 0, 0].copy()), torch.from_numpy(bh)
        # the head norm's affine, kept only to report the `features` tap (the deploy path folds it into `head`)
        self.register_buffer("norm_gamma", torch.from_numpy(w["norm.weight"].copy()))
        self.register_buffer("norm_beta", torch.from_numpy(w["norm.bias"].copy()))
        self.tap_names = intermediate_names(self.plan, with_norm=False)
        self.to(dtype)
        self.eval()

    def _run(self, x: torch.Tensor, taps: list[torch.Tensor] | None) -> torch.Tensor:
        x = self.stem(x)
        if taps is not None:
            taps.append(x)
        x = self.layers(x, taps)
        f = mvn(x).mean(dim=(2, 3))
        if taps is not None:
            taps.append(f * self.norm_gamma + self.norm_beta)
        return self.head(f)

    def forward(self, x: torch.Tensor, with_taps: bool = False) -> torch.Tensor | tuple[torch.Tensor, ...]:
        if not with_taps:
            return self._run(x, None)
        taps: list[torch.Tensor] = []
        logits = self._run(x, taps)
        return (logits, *taps)

    def forward_taps(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self(x, with_taps=True)


class WithTaps(nn.Module):
    """forward = forward_taps, for exporting a graph whose extra outputs are the named intermediates."""

    def __init__(self, model: DeployCloFormer) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.model(x, with_taps=True)  # called, so module-stack tracers see `model/stem/...`

"""Structured pruning that really shrinks CloFormer (see compress.prune.job for the rule): rank the units of each
coupled group, select the kept ones, slice the weights into a smaller model of the same architecture."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

import cloformer
import reference_np as rn
from reference_np.specs import ModelPlan, plan_from_weights

from ..errors import InputError
from ..settings import check_ratio, check_round_to


# ------------------------------------------------------------------ structured pruning
@dataclass
class Keep:
    """Kept indices of one block: FFN hidden channels, channels of each local group, global heads."""

    hidden: np.ndarray
    local: list[np.ndarray]
    heads: np.ndarray


def _round_half_up(x: float) -> int:
    return int(np.floor(x + 0.5))


def importance(model: cloformer.CloFormer, batches: list[torch.Tensor]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per block: (FFN hidden scores, scores of proj's input channels Z = [local..., global])."""
    acts: dict[str, list[torch.Tensor]] = {}
    handles = []
    for name, mod in model.named_modules():
        block = name.rsplit(".", 2)[0]
        if name.endswith(".mlp.dwconv"):  # FFN hidden activations (fc2's input)
            handles.append(mod.register_forward_hook(
                lambda _m, _i, o, n=block: acts.setdefault(n + "/ffn", []).append(o.abs().mean(dim=(0, 2, 3)))))
        elif name.endswith(".attn.proj"):  # Z = [local groups..., global heads] (proj's input)
            handles.append(mod.register_forward_hook(
                lambda _m, i, _o, n=block: acts.setdefault(n + "/z", []).append(i[0].abs().mean(dim=(0, 2, 3)))))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for x in batches:
                model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    sd = model.state_dict()
    out = {}
    for prefix in {k.split("/")[0] for k in acts}:
        ffn = torch.stack(acts[prefix + "/ffn"]).mean(0) * sd[prefix + ".mlp.fc2.weight"][:, :, 0, 0].norm(dim=0)
        z = torch.stack(acts[prefix + "/z"]).mean(0) * sd[prefix + ".attn.proj.weight"][:, :, 0, 0].norm(dim=0)
        out[prefix] = (ffn.numpy(), z.numpy())
    return out


def _top(scores: np.ndarray, n_remove: int) -> np.ndarray:
    return np.sort(np.argsort(-scores, kind="stable")[:len(scores) - n_remove])


def _fits(total: int, n_remove: int, what: str, name: str = "ratio") -> int:
    if n_remove >= total:
        raise InputError(f"{what}: removing {n_remove} of {total} would remove the whole group; use a "
                         f"smaller {name}" + (" (it defaults to ratio)" if name == "head_ratio" else ""), field=name)
    return n_remove


def n_removed(total: int, ratio: float, multiple: int = 1) -> int:
    """Units removed from a group of `total`: ratio * total rounded half up, then adjusted so the kept count
    is the nearest multiple of `multiple` (kept channel counts off the CPU's SIMD block fall off the
    blocked kernels). A group smaller than `multiple` is kept whole, and at least `multiple` units stay."""
    remove = _round_half_up(ratio * total)
    if multiple <= 1:
        return remove
    if total <= multiple:
        return 0
    kept = max(multiple, min(total, multiple * _round_half_up((total - remove) / multiple)))
    return total - kept


@dataclass(frozen=True)
class Removed:
    """Units removed from one block's groups: FFN hidden channels, channels of each local group, global heads."""

    hidden: int
    local: list[int]
    heads: int


def removals(plan: ModelPlan, ratio: float, round_to: int = 1, head_ratio: float | None = None
             ) -> dict[str, Removed]:
    """How many units `ratio` removes from every group (counts depend on the plan alone, not on the scores): kept
    counts rounded to multiples of `round_to` channels (local channels, FFN hidden); whole heads for the global
    branch, of which `head_ratio` (default: `ratio`) is removed. A group that would empty is an InputError, so a
    job can refuse a ratio before any work."""
    check_ratio(ratio)
    head_ratio = ratio if head_ratio is None else check_ratio(head_ratio, "head_ratio")
    round_to = check_round_to(round_to)
    out = {}
    for i, stage in enumerate(plan.blocks):
        for j, b in enumerate(stage):
            p = f"layers.{i}.blocks.{j}"
            hidden = _fits(b.hidden, n_removed(b.hidden, ratio, round_to), f"{p}.mlp hidden width ({b.hidden})")
            local = [_fits(c, n_removed(c, ratio, round_to), f"{p}.attn local group {g} ({c} channels)")
                     for g, c in enumerate(b.local_channels)]
            d = b.dim_head
            head_multiple = max(1, round_to // d) if round_to > 1 and round_to % d == 0 else 1
            heads = _fits(b.global_heads, n_removed(b.global_heads, head_ratio, head_multiple),
                          f"{p}.attn global branch ({b.global_heads} heads)", "head_ratio") if b.global_heads else 0
            out[p] = Removed(hidden, local, heads)
    return out


def select(plan: ModelPlan, scores: dict[str, tuple[np.ndarray, np.ndarray]], ratio: float,
           round_to: int = 1, head_ratio: float | None = None) -> dict[str, Keep]:
    """Keep the highest-scoring units of every group, as many as `removals` leaves (blocks with one or two heads
    empty at a head ratio of 0.5, while the channel groups can lose more)."""
    removed = removals(plan, ratio, round_to, head_ratio)
    keep = {}
    for i, stage in enumerate(plan.blocks):
        for j, b in enumerate(stage):
            p = f"layers.{i}.blocks.{j}"
            r, (ffn, z) = removed[p], scores[p]
            local, off = [], 0
            for c, n in zip(b.local_channels, r.local, strict=True):
                local.append(_top(z[off:off + c], n))
                off += c
            d = b.dim_head
            head_scores = z[off:off + b.global_heads * d].reshape(b.global_heads, d).sum(1) if b.global_heads else z[:0]
            keep[p] = Keep(_top(ffn, r.hidden), local, _top(head_scores, r.heads) if b.global_heads else np.arange(0))
    return keep


def slice_weights(w: dict[str, np.ndarray], plan: ModelPlan, keep: dict[str, Keep]) -> dict[str, np.ndarray]:
    """Official-format weights with the pruned channels removed (coupled dimensions sliced together)."""
    w = dict(w)
    for i, stage in enumerate(plan.blocks):
        for j, b in enumerate(stage):
            p = f"layers.{i}.blocks.{j}."
            k = keep[p[:-1]]
            for name in ("fc1.weight", "fc1.bias", "dwconv.weight", "dwconv.bias"):
                w[p + "mlp." + name] = w[p + "mlp." + name][k.hidden]
            w[p + "mlp.fc2.weight"] = w[p + "mlp.fc2.weight"][:, k.hidden]
            z_keep, off = [], 0
            for g, c in enumerate(b.local_channels):
                idx = k.local[g]
                qkv = np.concatenate([idx, c + idx, 2 * c + idx])  # Q, K and V move together
                for name in (f"qkvs.{g}.weight", f"qkvs.{g}.bias", f"convs.{g}.weight", f"convs.{g}.bias"):
                    w[p + "attn." + name] = w[p + "attn." + name][qkv]
                for conv in (0, 2):
                    a = f"{p}attn.act_blocks.{g}.act_block.{conv}."
                    w[a + "weight"] = w[a + "weight"][idx][:, idx]
                    w[a + "bias"] = w[a + "bias"][idx]
                z_keep.append(off + idx)
                off += c
            if b.global_heads:
                d, c_g = b.dim_head, b.global_heads * b.dim_head
                rows = (k.heads[:, None] * d + np.arange(d)).ravel()  # whole heads, head dim kept
                for name in ("global_q.weight", "global_q.bias"):
                    w[p + "attn." + name] = w[p + "attn." + name][rows]
                for name in ("global_kv.weight", "global_kv.bias"):
                    w[p + "attn." + name] = w[p + "attn." + name][np.concatenate([rows, c_g + rows])]
                z_keep.append(off + rows)
            w[p + "attn.proj.weight"] = w[p + "attn.proj.weight"][:, np.concatenate(z_keep)]
    return {k: np.ascontiguousarray(v) if v.ndim else v for k, v in w.items()}


def structured_prune(model: cloformer.CloFormer, variant: str, ratio: float, batches: list[torch.Tensor],
                     round_to: int = 1, head_ratio: float | None = None) -> tuple[cloformer.CloFormer, dict[str, Keep]]:
    keep = select(model.plan, importance(model, batches), ratio, round_to, head_ratio)
    w = slice_weights({k: v.detach().numpy() for k, v in model.state_dict().items()}, model.plan, keep)
    return rebuilt(w, variant, model), keep


def rebuilt(w: dict[str, np.ndarray], variant: str, like: cloformer.CloFormer) -> cloformer.CloFormer:
    """A model of the shapes of the official-format weights `w` (read off them), holding them, with `like`'s card."""
    pruned = cloformer.CloFormer(plan_from_weights(w, rn.VARIANTS[variant].head_dims))
    pruned.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in w.items()}, strict=True)
    pruned.pretrained_cfg = dict(like.pretrained_cfg)
    return pruned

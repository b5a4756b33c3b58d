"""Pruning CloFormer as a library (compress.prune is the CLI on it): NNCF unstructured sparsity, or structured
pruning that really shrinks the network, then distillation fine-tuning, then the INT8 stages if asked.

    report = prune_model(loaded, PruneSettings("structured", 0.45), data, val, Path("outputs/p"), RunConfig())

Structured pruning keeps CloFormer's coupled dimensions consistent: the ConvFFN hidden width (fc1 rows,
dwconv channels, fc2 columns move together); the local AttnConv channels (Q, K and V rows of `qkvs`
and the shared depthwise conv move together, the act_block convs follow, and the matching `proj`
columns go); whole global heads (q, k and v rows of a head, head dim kept). The residual stream is
never pruned. Each unit is ranked by its expected contribution to the next dense layer:
E|activation_c| * ||W_next[:, c]||_2 (E over the fine-tuning images); `ratio` is the fraction of units
removed in every group (rounded half up, then to multiples of `round_to` kept channels), and a ratio that
would empty a group is an error.
"""

from __future__ import annotations

import copy
import gzip
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

import cloformer
import reference_np as rn
from reference_np.macs import count_macs, count_params
from reference_np.specs import ModelPlan, plan_from_weights

from . import pipeline as P
from .atomic import staging_dir
from .augment import augment
from .data import DataSource
from .errors import InputError
from .evaluate import evaluate, openvino_predictor, torch_predictor
from .int8 import finish, int8_stages
from .int8 import write_outputs as write_int8_outputs
from .pipeline import Check
from .report import ModelInfo, PruneReport, QuantReport, fmt, md_table, versions, write_report
from .runtime import cpu_isa
from .settings import DEFAULT_RUN, QuantSettings, RunConfig, check_count, check_ratio
from .sources import DataParts, shared_items
from .tolerances import FLOAT64_ATOL

METHODS = ("structured", "nncf-magnitude", "nncf-rb")


def simd_block() -> int:
    """Channels per SIMD register of f32 on this CPU: 16 with AVX-512, 8 with AVX2 (the --round-to default)."""
    return 16 if "avx512f" in cpu_isa().split() else 8


def check_round_to(n: int) -> int:
    if not isinstance(n, int) or isinstance(n, bool) or n < 1 or n > 256:
        raise InputError(f"--round-to must be an integer from 1 to 256 (1: no rounding); got {n}")
    return n


@dataclass
class PruneSettings:
    """What compress.prune does, validated at construction."""

    method: str = "structured"
    ratio: float = 0.45
    round_to: int | None = None  # structured only; None: the CPU's SIMD block (simd_block())
    finetune_steps: int = 600
    batch: int = 64
    lr: float = 5e-4
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise InputError(f"method '{self.method}': expected one of {', '.join(METHODS)}")
        check_ratio(self.ratio)
        if self.round_to is not None:
            check_round_to(self.round_to)
        check_count(self.finetune_steps, "--finetune-steps", 0)
        check_count(self.batch, "--batch")
        if not self.lr > 0:
            raise InputError(f"--lr must be > 0; got {self.lr}")
        if self.method == "nncf-rb" and self.finetune_steps == 0:
            raise InputError("--method nncf-rb learns its masks during fine-tuning: --finetune-steps must be > 0")

    @property
    def effective_round_to(self) -> int | None:
        if self.method != "structured":
            return None
        return self.round_to if self.round_to is not None else simd_block()


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


def _top(scores: np.ndarray, n_remove: int, what: str) -> np.ndarray:
    if n_remove >= len(scores):
        raise InputError(f"{what}: removing {n_remove} of {len(scores)} would remove the whole group; "
                         "use a smaller --ratio")
    return np.sort(np.argsort(-scores, kind="stable")[:len(scores) - n_remove])


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


def select(plan: ModelPlan, scores: dict[str, tuple[np.ndarray, np.ndarray]], ratio: float,
           round_to: int = 1) -> dict[str, Keep]:
    """Keep the highest-scoring (1 - ratio) of every group, kept counts rounded to multiples of `round_to`
    channels (local channels, FFN hidden); whole heads for the global branch (heads * head_dim channels)."""
    check_ratio(ratio)
    round_to = check_round_to(round_to)
    keep = {}
    for i, stage in enumerate(plan.blocks):
        for j, b in enumerate(stage):
            p = f"layers.{i}.blocks.{j}"
            ffn, z = scores[p]
            hidden = _top(ffn, n_removed(b.hidden, ratio, round_to), f"{p}.mlp hidden width ({b.hidden})")
            local, off = [], 0
            for g, c in enumerate(b.local_channels):
                what = f"{p}.attn local group {g} ({c} channels)"
                local.append(_top(z[off:off + c], n_removed(c, ratio, round_to), what))
                off += c
            d = b.dim_head
            head_scores = z[off:off + b.global_heads * d].reshape(b.global_heads, d).sum(1) if b.global_heads else z[:0]
            head_multiple = max(1, round_to // d) if round_to > 1 and round_to % d == 0 else 1
            heads = _top(head_scores, n_removed(b.global_heads, ratio, head_multiple),
                         f"{p}.attn global branch ({b.global_heads} heads)") if b.global_heads else np.arange(0)
            keep[p] = Keep(hidden, local, heads)
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
                     round_to: int = 1) -> tuple[cloformer.CloFormer, dict[str, Keep]]:
    keep = select(model.plan, importance(model, batches), ratio, round_to)
    w = slice_weights({k: v.detach().numpy() for k, v in model.state_dict().items()}, model.plan, keep)
    plan = plan_from_weights(w, rn.VARIANTS[variant].head_dims)
    pruned = cloformer.CloFormer(plan)
    pruned.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in w.items()}, strict=True)
    pruned.pretrained_cfg = dict(model.pretrained_cfg)
    return pruned, keep


# ------------------------------------------------------------------ NNCF unstructured pruning
def nncf_prune(model: cloformer.CloFormer, method: str, ratio: float, example: torch.Tensor, steps: int
               ) -> tuple[Any, Any, Any]:
    """(model with NNCF masks, magnitude scheduler or None, RB loss or None)."""
    import nncf
    from nncf.torch.function_hook.pruning.magnitude.schedulers import ExponentialMagnitudePruningScheduler
    from nncf.torch.function_hook.pruning.rb.losses import RBLoss

    check_ratio(ratio)
    if method == "nncf-magnitude":
        mode = nncf.PruneMode.UNSTRUCTURED_MAGNITUDE_GLOBAL
        pruned = nncf.prune(model, mode=mode, ratio=ratio if steps == 0 else ratio * 0.3, examples_inputs=example)
        sched = None
        if steps:
            sched = ExponentialMagnitudePruningScheduler(pruned, mode=mode, initial_ratio=ratio * 0.3,
                                                         target_ratio=ratio, target_epoch=SCHED_EPOCHS)
            sched.step()
        return pruned, sched, None
    if steps == 0:
        raise InputError("--method nncf-rb learns its masks during fine-tuning: --finetune-steps must be > 0")
    pruned = nncf.prune(model, mode=nncf.PruneMode.UNSTRUCTURED_REGULARIZATION_BASED, examples_inputs=example)
    return pruned, None, RBLoss(pruned, target_ratio=ratio, p=0.05)


SCHED_EPOCHS = 5  # the magnitude scheduler reaches the target after 5 of its epochs (60% of fine-tuning)


# ------------------------------------------------------------------ fine-tuning with distillation
def load_pool(source: DataSource) -> tuple[torch.Tensor, torch.Tensor | None]:
    xs, ys = [], []
    for x, y in tqdm(source, total=len(source), desc=f"load {source.name}", unit="img"):
        xs.append(x)
        ys.append(y)
    if not xs:
        raise InputError(f"fine-tuning source {source.name} yielded no readable images")
    labels = None if None in ys else torch.tensor(ys)
    return torch.from_numpy(np.stack(xs)), labels


def finetune(student: torch.nn.Module, teacher: torch.nn.Module, pool_x: torch.Tensor, pool_y: torch.Tensor | None,
             steps: int, batch: int = 64, lr: float = 5e-4, seed: int = 0, sched: Any = None, extra_loss: Any = None,
             temperature: float = 2.0) -> list[float]:
    """KL distillation from the unpruned teacher (plus label cross-entropy when labels exist)."""
    if steps == 0:
        return []
    g = torch.Generator().manual_seed(seed)
    mean = torch.tensor(rn.specs.IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(rn.specs.IMAGENET_STD).view(1, 3, 1, 1)
    params = [p for p in student.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    lr_at = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + np.cos(np.pi * s / steps)))
    sched_every = max(1, int(0.6 * steps) // (SCHED_EPOCHS + 1))
    teacher.eval()
    student.train()
    losses = []
    bar = tqdm(range(steps), desc="fine-tune (distillation)", unit="step")
    for step in bar:
        idx = torch.randint(0, len(pool_x), (min(batch, len(pool_x)),), generator=g)
        x = (augment(pool_x[idx] * std * 255 + mean * 255, g) / 255 - mean) / std  # augment in pixel space
        with torch.no_grad():
            t = teacher(x)
        s = student(x)
        loss = F.kl_div(F.log_softmax(s / temperature, -1), F.softmax(t / temperature, -1),
                        reduction="batchmean") * temperature ** 2
        if pool_y is not None:
            loss = 0.7 * loss + 0.3 * F.cross_entropy(s, pool_y[idx], label_smoothing=0.1)
        if extra_loss is not None:
            loss = loss + extra_loss()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
        lr_at.step()
        if sched is not None and (step + 1) % sched_every == 0:
            sched.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
    if sched is not None and sched.current_ratio < sched.target_ratio:
        sched.step(SCHED_EPOCHS)  # short runs end at the target sparsity all the same
    student.eval()
    return losses


def official_weights(sd: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """Official keys only: NNCF's mask buffers ('__nncf_hooks.post_hooks.<module:path:weight>__0.0.binary_mask')
    are applied to their weights (a no-op when nncf.strip already did) and dropped."""
    w = {k: v.detach().numpy().copy() for k, v in sd.items() if not k.startswith("__nncf_hooks")}
    for k, mask in sd.items():
        if k.startswith("__nncf_hooks") and k.endswith("binary_mask"):
            name = k.split(".post_hooks.", 1)[-1].split("__", 1)[0].replace(":", ".")
            if name not in w or w[name].shape != tuple(mask.shape):
                raise KeyError(f"NNCF mask {k} has no matching weight '{name}'")
            w[name] = w[name] * mask.detach().numpy().astype(w[name].dtype)
    return w


def numpy_agreement(weights: dict[str, np.ndarray], x: torch.Tensor) -> Check:
    """The pruned checkpoint in the NumPy reference vs torch, float64: shapes come from the weights."""
    err = P.twin_error(weights, x.numpy(), np.float64)
    return Check("pruned checkpoint: NumPy reference <-> torch, float64", "max|d|", err, FLOAT64_ATOL,
                 err <= FLOAT64_ATOL)


def layer_table(before: ModelPlan, after: ModelPlan) -> list[dict[str, Any]]:
    rows = []
    for i, (s0, s1) in enumerate(zip(before.blocks, after.blocks, strict=True)):
        for j, (b0, b1) in enumerate(zip(s0, s1, strict=True)):
            rows.append({"block": f"layers.{i}.blocks.{j}", "hidden": [b1.hidden, b0.hidden],
                         "local": [sum(b1.local_channels), sum(b0.local_channels)],
                         "global_heads": [b1.global_heads, b0.global_heads]})
    return rows


def prune_model(loaded: P.LoadedModel, settings: PruneSettings, data: DataSource, val: DataSource, out: Path,
                run: RunConfig = DEFAULT_RUN, quant: tuple[QuantSettings, DataParts] | None = None) -> PruneReport:
    """load -> prune -> fine-tune (distillation) -> save the pruned checkpoint -> export -> verify ->
    evaluate -> [INT8 stages] -> report, into the folder `out`."""
    lap = P.Timer()
    torch.manual_seed(settings.seed)
    val.check_labels(loaded.num_classes)
    shared = shared_items(data, val)  # the same rule as calibration vs validation
    if shared and not run.allow_overlap:
        raise InputError(f"fine-tuning data {data.name} shares {len(shared)} image(s) with the validation data "
                         f"{val.name} (e.g. {shared[0]}): the reported accuracy would be measured on images the model "
                         "was fine-tuned on. Give disjoint data, or pass --allow-overlap")
    if quant is not None:  # node names are the unpruned graph's: a scope typo stops the run before fine-tuning
        P.check_ignored_scope(P.convert_deploy(loaded, taps=True), quant[0])
    if data.labelled:  # fine-tuning against labels of other classes would train the wrong loss silently
        data.check_labels(loaded.num_classes)
    if settings.method == "structured":  # a ratio that would empty a group fails now, not after the data loads
        plan = loaded.model.plan
        select(plan, {f"layers.{i}.blocks.{j}": (np.zeros(b.hidden), np.zeros(sum(b.local_channels) +
                                                                            b.global_heads * b.dim_head))
                      for i, s in enumerate(plan.blocks) for j, b in enumerate(s)},
               settings.ratio, settings.effective_round_to)
    size = loaded.input_size
    with staging_dir(out, run.force, P.output_bytes(loaded, pruned=True)) as tmp:
        teacher = loaded.model
        base_eval = evaluate(torch_predictor(teacher), val, backend="torch unpruned")
        pool_x, pool_y = load_pool(data)
        lap("data")
        student = copy.deepcopy(teacher).train()
        sched, rb, stats = None, None, None
        if settings.method == "structured":
            batches = [pool_x[i:i + 64] for i in range(0, min(len(pool_x), 256), 64)]
            student, _ = structured_prune(student, loaded.variant, settings.ratio, batches,
                                             settings.effective_round_to)
        else:
            student, sched, rb = nncf_prune(student, settings.method, settings.ratio, pool_x[:1],
                                            settings.finetune_steps)
        lap("prune")
        losses = finetune(student, teacher, pool_x, pool_y, settings.finetune_steps, settings.batch, settings.lr,
                          settings.seed, sched, rb)
        lap("fine-tune")
        if settings.method != "structured":
            import nncf

            stats = nncf.pruning_statistic(student)
            student = nncf.strip(student, do_copy=True, example_input=pool_x[:1]).eval()
        weights = official_weights(student.state_dict())
        # the pruned checkpoint keeps the input size it was fine-tuned at (pretrained_cfg reads it)
        ckpt = rn.save_weights(weights, tmp / "pruned.safetensors", metadata={
            "variant": loaded.variant, "method": settings.method, "input_size": str(size)})
        pruned = P.LoadedModel(loaded.variant, ckpt.name, cloformer.create_model(
            loaded.variant, checkpoint=ckpt, allow_pruned=True).float().eval(), size, weights)
        lap("save pruned checkpoint")
        side = min(64, size)  # float64 on a 64x64 crop: the check is about the weights, and float64 is slow
        c = (size - side) // 2
        agree = numpy_agreement(weights, pool_x[:2, :, c:c + side, c:c + side].double())
        pruned_eval = evaluate(torch_predictor(pruned.model), val, backend="torch pruned")
        lap("verify and evaluate")
        int8_report = None
        if quant is not None:
            int8_report = int8_stages(pruned, quant[1], quant[0], tmp, lap, run=run, baseline=loaded)
        else:
            P.export(pruned, tmp)
            lap("export FP32 (deploy IR, ONNX)")
        ir_eval = evaluate(openvino_predictor(tmp / "model_fp32.xml", "CPU", "f32"), val, backend="pruned IR")
        lap("evaluate pruned IR")
        if run.batch > 1 and int8_report is None:  # (the INT8 stages set both IRs' batch themselves)
            batch_check = P.set_batch(tmp / "model_fp32.xml", run.batch, pool_x[:run.batch].numpy())
            if not batch_check.passed:
                raise RuntimeError(f"{batch_check.stage}: {batch_check.value:.2e} > {batch_check.tolerance:.0e}")
        report = build_report(run.command, settings, loaded, pruned, stats, losses, base_eval, pruned_eval, ir_eval,
                              agree, int8_report, tmp)
        if int8_report is not None:  # the INT8 stages' own report, beside the pruning report
            finish(int8_report, lap.times, tmp)
            write_int8_outputs(int8_report, tmp, "report_int8")
        finish(report, lap.times, tmp)
        write_outputs(report, tmp)
    return report


def build_report(command: str, settings: PruneSettings, loaded: P.LoadedModel, pruned: P.LoadedModel, stats: Any,
                 losses: list[float], base_eval: Any, pruned_eval: Any, ir_eval: Any, agree: Check,
                 int8_report: QuantReport | None, folder: Path) -> PruneReport:
    size = loaded.input_size
    macs0 = count_macs(loaded.model.plan, size, size)["total"]
    macs1 = count_macs(pruned.model.plan, size, size)["total"]
    bin_bytes = (folder / "model_fp32.bin").read_bytes()
    statistic = None
    if stats is not None:
        statistic = {"pruning_ratio": stats.pruning_ratio, "global_pruning_ratio": stats.global_pruning_ratio,
                     "tensors": [{"name": t.tensor_name, "shape": list(t.shape), "pruned_ratio": t.pruned_ratio}
                                 for t in stats.pruned_tensors]}
    return PruneReport(
        command=command, seed=settings.seed, versions=versions(), method=settings.method, ratio=settings.ratio,
        round_to=settings.effective_round_to, finetune_steps=settings.finetune_steps,
        model=ModelInfo(loaded.variant, loaded.checkpoint, size, loaded.num_classes,
                        pruned_checkpoint="pruned.safetensors"),
        macs={"before": macs0, "after": macs1, "reduction_pct": 100 * (1 - macs1 / macs0)},
        params={"before": count_params(loaded.weights), "after": count_params(pruned.weights),
                "nonzero_after": int(sum(np.count_nonzero(v) for k, v in pruned.weights.items() if
                                         v.dtype.kind == "f" and not k.endswith(("running_mean", "running_var"))))},
        accuracy={"source": base_eval.source, "n": base_eval.n, "unpruned_top1": base_eval.top1,
                  "pruned_top1": pruned_eval.top1, "pruned_ir_top1": ir_eval.top1, "unpruned_top5": base_eval.top5,
                  "pruned_top5": pruned_eval.top5,
                  "top1_drop": None if base_eval.top1 is None else base_eval.top1 - pruned_eval.top1},
        numpy_float64_agreement=agree,
        sizes={"model_fp32.bin": len(bin_bytes), "model_fp32.bin.gz": len(gzip.compress(bin_bytes, 6))},
        layers=layer_table(loaded.model.plan, pruned.model.plan),
        finetune_loss={"first": losses[0] if losses else None, "last": losses[-1] if losses else None},
        nncf_pruning_statistic=statistic, int8=int8_report)


def write_outputs(rep: PruneReport, folder: Path) -> None:
    a, m = rep.accuracy, rep.macs
    lines = [f"# CloFormer pruning report: {rep.method}, ratio {rep.ratio}"
             + (f", kept widths rounded to {rep.round_to}" if rep.round_to else ""), "", f"`{rep.command}`", "",
             md_table(["", "before", "after", "change"], [
                 ["MACs (M)", f"{m['before'] / 1e6:.1f}", f"{m['after'] / 1e6:.1f}", f"−{m['reduction_pct']:.1f}%"],
                 ["params", f"{rep.params['before']:,}", f"{rep.params['after']:,}",
                  f"nonzero {rep.params['nonzero_after']:,}"],
                 [f"top-1 on {a['source']} (%)", a["unpruned_top1"], a["pruned_top1"], fmt(a["top1_drop"])],
                 [f"top-5 on {a['source']} (%)", a["unpruned_top5"], a["pruned_top5"], "–"],
                 ["FP32 .bin bytes (gzip)", "–", f"{rep.sizes['model_fp32.bin']:,} "
                  f"({rep.sizes['model_fp32.bin.gz']:,})", "–"]]), "",
             f"Pruned IR top-1: {fmt(a['pruned_ir_top1'])}%. NumPy float64 vs torch on the pruned checkpoint: "
             f"max |Δlogit| {rep.numpy_float64_agreement.value:.1e} "
             f"(tolerance {rep.numpy_float64_agreement.tolerance:g}).", ""]
    if rep.nncf_pruning_statistic is not None:
        s = rep.nncf_pruning_statistic
        lines += [f"NNCF pruning statistic: prunable-parameter sparsity {s['pruning_ratio']:.3f}, all parameters "
                  f"{s['global_pruning_ratio']:.3f}.", ""]
    lines += ["## Kept channels per block (kept / original)", "",
              md_table(["block", "FFN hidden", "local channels", "global heads"],
                       [[r["block"], f"{r['hidden'][0]}/{r['hidden'][1]}", f"{r['local'][0]}/{r['local'][1]}",
                         f"{r['global_heads'][0]}/{r['global_heads'][1]}"] for r in rep.layers]), "",
              "![kept channels](pruning.png)", "", md_table(["stage", "seconds"],
                                                             [[k, v] for k, v in rep.seconds.items()]), ""]
    if rep.int8 is not None:
        c = rep.int8.int8_vs_fp32
        lines += ["## Pruned INT8", "", f"top-1 FP32 {fmt(c.fp32_top1)}%, INT8 {fmt(c.int8_top1)}%, "
                  f"agreement {c.top1_agreement:.2f}%, SQNR {c.sqnr_db:.1f} dB (details: report_int8.md)", ""]
    (folder / "report.md").write_text("\n".join(lines), errors="backslashreplace")
    write_report(rep, folder / "report.json")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = rep.layers
    xs = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(10, 4))
    for k, (key, color) in enumerate((("hidden", "#2980b9"), ("local", "#c0392b"), ("global_heads", "#27ae60"))):
        frac = [r[key][0] / r[key][1] if r[key][1] else np.nan for r in rows]
        ax.bar(xs + (k - 1) * 0.27, frac, 0.27, color=color, label={"hidden": "FFN hidden", "local": "local channels",
                                                                     "global_heads": "global heads"}[key])
    ax.set_xticks(xs)
    ax.set_xticklabels([r["block"].replace("layers.", "L").replace(".blocks.", ".b") for r in rows], fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("kept fraction")
    ax.set_title(f"{rep.method} ratio {rep.ratio}: MACs −{rep.macs['reduction_pct']:.1f}%", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(folder / "pruning.png", dpi=110)
    plt.close(fig)

"""Pruning CloFormer as a library (compress.prune.cli is the command on it): NNCF unstructured sparsity, or structured
pruning that really shrinks the network, then distillation fine-tuning, then the INT8 stages if asked.

    report = prune_model(PruneJob(loaded, PruneSettings("structured", 0.45), data, parts), Path("outputs/p"))

Structured pruning keeps CloFormer's coupled dimensions consistent: the ConvFFN hidden width (fc1 rows,
dwconv channels, fc2 columns move together); the local AttnConv channels (Q, K and V rows of `qkvs`
and the shared depthwise conv move together, the act_block convs follow, and the matching `proj`
columns go); whole global heads (q, k and v rows of a head, head dim kept). The residual stream is
never pruned. Each unit is ranked by its expected contribution to the next dense layer:
E|activation_c| * ||W_next[:, c]||_2 (E over the fine-tuning images); `ratio` is the fraction of units
removed in every group (rounded half up, then to multiples of `round_to` kept channels), and a ratio that
would empty a group is an error.

The rooms: compress.prune.structured (the structured algorithm), compress.prune.unstructured (NNCF's masks),
compress.distill (fine-tuning), compress.int8 (the INT8 stages, composed after pruning), compress.render (report.md,
plots).
"""

from __future__ import annotations

import copy
import gzip
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

import cloformer
import reference_np as rn
from reference_np.macs import count_macs, count_params
from reference_np.specs import ModelPlan

from .. import stages as S
from ..atomic import check_apart, staging_dir
from ..choice import prune_choice
from ..data import DataSource, Images
from ..data.sources import JobData, refuse_overlap
from ..distill import Hooks, finetune
from ..errors import InputError
from ..evaluate.job import EvalResult, evaluate, openvino_predictor, torch_predictor
from ..int8 import Int8State, int8_report, int8_stages, precheck, precheck_qat
from ..loading import LoadedModel, official_weights, output_bytes
from ..metrics import Paired, paired, student_gains, undertrained_teacher
from ..render import write_prune_outputs, write_quant_outputs
from ..report import (
    Check,
    Macs,
    ModelInfo,
    Params,
    PruneAccuracy,
    PruneReport,
    QuantReport,
    Timer,
    versions,
)
from ..settings import (
    DEFAULT_RUN,
    PruneSettings,
    QatSettings,
    QuantSettings,
    RunConfig,
)
from ..stages import Stage
from ..targets import fast_targets
from ..tolerances import FLOAT64_ATOL
from ..verification import float64_crop, twin_error
from .depth import check_depth, depth_prune
from .structured import removals, structured_prune
from .unstructured import nncf_prune


@dataclass(frozen=True)
class PruneJob:
    """One pruning job: the model, how to prune it, the fine-tuning images, the held-out data (`parts.validation`;
    with `quantize`, `parts` is also the INT8 stages' calibration data) and the run's options."""

    loaded: LoadedModel
    settings: PruneSettings
    data: DataSource
    parts: JobData
    quantize: QuantSettings | None = None  # then the INT8 stages on the pruned model
    run: RunConfig = DEFAULT_RUN
    qat: QatSettings | None = None  # with quantize: quantization-aware training on `data` (QAT_STAGES)


@dataclass
class PruneContext(S.Context):
    """The pruning job's state: the shared context (with `int8` when the INT8 stages follow) and what the pruning
    stages add. Until the pruned checkpoint is saved, `loaded` is the unpruned model; from then on it is the pruned
    one and `baseline` the unpruned, so the INT8 (or FP32) stages that follow run on the pruned model unchanged."""

    job: PruneJob | None = None
    unpruned: EvalResult | None = None  # the unpruned model in torch on the validation data
    images: Images | None = None  # the fine-tuning images
    student: Any = None  # the pruned model while it is fine-tuned
    hooks: Hooks | None = None  # what NNCF's masks add to fine-tuning
    losses: list[float] = field(default_factory=list)
    nncf_statistic: dict[str, Any] | None = None
    pruned_eval: EvalResult | None = None
    pruned_ir_eval: EvalResult | None = None
    numpy_agreement: Check | None = None
    dropped: list[str] = field(default_factory=list)  # blocks removed whole, in the unpruned numbering
    block_losses: dict[str, float] = field(default_factory=dict)  # the loss measured when each was chosen


def prune_model(job: PruneJob, out: Path) -> PruneReport:
    """The pruning job into `out`: its stages (prune_stages) then the report. Fine-tuning runs at the fine-tuning
    images' size (`job.data.size`); export, evaluation and timing at the model's input size, which may be larger
    (fine-tune at 64 px, deploy at 224: CloFormer runs at any multiple of 32)."""
    check_apart(out, {"data": job.data.root, "calib": job.parts.calibration.root, "val": job.parts.validation.root,
                      "checkpoint": job.loaded.checkpoint})
    check_job(job)
    run = job.run
    lap = Timer.since(run.started, "load")
    with staging_dir(out, run.force, output_bytes(job.loaded, pruned=True)) as tmp:
        int8 = Int8State(job.quantize, job.qat) if job.quantize is not None else None
        ctx = PruneContext(job.loaded, job.parts, tmp, run, int8=int8, job=job)
        S.run_stages(prune_stages(job), ctx, lap)
        int8 = None
        if job.quantize is not None:  # the INT8 stages' own report, beside the pruning report
            int8 = S.finish(int8_report(ctx), lap.times, tmp)
            write_quant_outputs(int8, tmp, "report_int8")
        report = S.finish(build_report(ctx, int8), lap.times, tmp)
        write_prune_outputs(report, tmp)
    return report


def prune_stages(job: PruneJob) -> list[Stage[PruneContext]]:
    """Prune and fine-tune; then the INT8 job's stages on the pruned model, or (without quantize) the FP32 stages
    they include (export, the twins, speed, static batch: the same functions); then the pruned model evaluated."""
    return [DATA, PRUNE, FINETUNE, SAVE, *(int8_stages(job.qat is not None) if job.quantize is not None
                                           else S.FP32_STAGES), EVALUATE_PRUNED]


def check_job(job: PruneJob) -> None:
    """Everything that can be refused before the first expensive step: labels, overlap, a ratio that would empty
    a group, and with quantize what the INT8 stages refuse (an ignored-scope entry is checked on the unpruned
    graph: pruning keeps every node's name, and fine-tuning should not run first)."""
    loaded, settings, data, val = job.loaded, job.settings, job.data, job.parts.validation
    val.check_labels(loaded.num_classes)
    refuse_overlap(data, val, job.run.allow_overlap, f"fine-tuning data {data.name}",
                   "the reported accuracy would be measured on images the model was fine-tuned on",
                   ("data", "allow_overlap"))
    if data.labelled:  # fine-tuning against labels of other classes would train the wrong loss silently
        data.check_labels(loaded.num_classes)
    if settings.method == "structured":
        removals(loaded.model.plan, settings.ratio, settings.effective_round_to, settings.head_ratio)
    if settings.depth:
        check_depth(loaded.model.plan, settings.depth)
    if job.qat is not None and job.quantize is None:
        raise InputError("qat trains the INT8 quantizers: it needs quantize", field=("qat", "quantize"))
    if job.quantize is not None:
        ctx = S.Context(loaded, job.parts, Path(), job.run, int8=Int8State(job.quantize, job.qat))
        (precheck_qat if job.qat is not None else precheck)(ctx)


# ------------------------------------------------------------------ the stages
def data_stage(ctx: PruneContext) -> None:
    """The validation data held out once (the unpruned model, the pruned one, its IR and the shared stages all read
    it) and the unpruned model's accuracy on it; the fine-tuning images decoded."""
    S.held_out_stage(ctx)
    ctx.unpruned = evaluate(torch_predictor(ctx.loaded.model), ctx.held_out.data, backend="torch unpruned")
    ctx.images = Images.of(ctx.job.data, role="fine-tuning source")
    if ctx.int8 is not None:
        ctx.int8.qat_data = ctx.images  # QAT fine-tunes on the same images


def prune_stage(ctx: PruneContext) -> None:
    """A copy of the model, pruned: whole blocks (depth), then channels and heads (structured), each ranked on the
    first 256 fine-tuning images; or NNCF's masks."""
    settings = ctx.job.settings
    torch.manual_seed(settings.seed)
    student, ctx.hooks = copy.deepcopy(ctx.loaded.model).train(), None
    x = torch.from_numpy(ctx.images.xs)
    batches = [x[i:i + 64] for i in range(0, min(len(x), 256), 64)]
    if settings.depth:  # blocks first, measured in the whole network; then channels of the blocks left
        student, ctx.dropped, ctx.block_losses = depth_prune(student, ctx.loaded.variant, settings.depth, batches)
    if settings.method == "structured":
        student, _ = structured_prune(student, ctx.loaded.variant, settings.ratio, batches,
                                      settings.effective_round_to, settings.head_ratio)
    elif settings.method != "depth":
        student, ctx.hooks = nncf_prune(student, settings.method, settings.ratio, x[:1], settings.finetune_steps)
    ctx.student = student


def finetune_stage(ctx: PruneContext) -> None:
    """Distillation from the unpruned model; NNCF's masks then report their statistic and are stripped."""
    ctx.losses = finetune(ctx.student, ctx.loaded.model, ctx.images, ctx.job.settings, ctx.hooks)
    if ctx.job.settings.method.startswith("nncf"):
        import nncf

        stats = nncf.pruning_statistic(ctx.student)
        ctx.nncf_statistic = {"pruning_ratio": stats.pruning_ratio, "global_pruning_ratio": stats.global_pruning_ratio,
                              "tensors": [{"name": t.tensor_name, "shape": list(t.shape),
                                           "pruned_ratio": t.pruned_ratio} for t in stats.pruned_tensors]}
        # IN_PLACE: the masks multiplied into the weights and the hooks removed (the default, NATIVE, keeps RB's
        # masks as hooks, so the saved weights would carry no sparsity)
        ctx.student = nncf.strip(ctx.student, do_copy=True, strip_format=nncf.StripFormat.IN_PLACE).eval()


def save_stage(ctx: PruneContext) -> None:
    """pruned.safetensors (official keys), loaded back: from here on the stages run on the pruned model. The
    checkpoint keeps the input size it was fine-tuned at (pretrained_cfg reads it); the job goes on at the
    model's input size."""
    loaded = ctx.loaded
    weights = official_weights(ctx.student.state_dict())
    ckpt = rn.save_weights(weights, ctx.folder / "pruned.safetensors", metadata={
        "variant": loaded.variant, "method": ctx.job.settings.method, "input_size": str(ctx.job.data.size)})
    model = cloformer.create_model(loaded.variant, checkpoint=ckpt, allow_pruned=True).float().eval()
    ctx.baseline, ctx.prefix, ctx.student = loaded, "pruned ", None
    ctx.loaded = LoadedModel(loaded.variant, ckpt.name, model, loaded.input_size, weights)


def evaluate_pruned_stage(ctx: PruneContext) -> None:
    """The pruned checkpoint in NumPy against torch (float64, on verification.float64_crop), and top-1 of the
    pruned model in torch and as its FP32 IR."""
    ctx.numpy_agreement = numpy_agreement(ctx.loaded.weights, torch.from_numpy(float64_crop(ctx.images.xs[:2])))
    val = ctx.held_out.data
    ctx.pruned_eval = evaluate(torch_predictor(ctx.loaded.model), val, backend="torch pruned")
    ctx.pruned_ir_eval = evaluate(openvino_predictor(ctx.folder / "model_fp32.xml", "CPU", "f32"), val,
                                  backend="pruned IR")


DATA = Stage("prune.data", "held-out data, the unpruned model on it, the fine-tuning images", data_stage)
PRUNE = Stage("prune.prune", "prune", prune_stage)
FINETUNE = Stage("prune.finetune", "fine-tune (distillation from the unpruned model)", finetune_stage)
SAVE = Stage("prune.save", "save the pruned checkpoint", save_stage)
EVALUATE_PRUNED = Stage("prune.evaluate", "evaluate the pruned model (NumPy float64, torch, FP32 IR)",
                        evaluate_pruned_stage)


# ------------------------------------------------------------------ the report
def numpy_agreement(weights: dict[str, np.ndarray], x: torch.Tensor) -> Check:
    """The pruned checkpoint in the NumPy reference vs torch, float64: shapes come from the weights."""
    err = twin_error(weights, x.numpy(), np.float64)
    return Check("pruned checkpoint: NumPy reference <-> torch, float64", "max|d|", err, FLOAT64_ATOL,
                 err <= FLOAT64_ATOL)


def layer_table(before: ModelPlan, after: ModelPlan, dropped: list[str]) -> list[dict[str, Any]]:
    """Kept widths per block of the unpruned model; a block removed whole keeps nothing."""
    rows = []
    for i, (s0, s1) in enumerate(zip(before.blocks, after.blocks, strict=True)):
        kept = iter(s1)
        for j, b0 in enumerate(s0):
            name = f"layers.{i}.blocks.{j}"
            b1 = None if name in dropped else next(kept)
            rows.append({"block": name, "hidden": [b1.hidden if b1 else 0, b0.hidden],
                         "local": [sum(b1.local_channels) if b1 else 0, sum(b0.local_channels)],
                         "global_heads": [b1.global_heads if b1 else 0, b0.global_heads], "removed": b1 is None})
    return rows


def build_report(ctx: PruneContext, int8: QuantReport | None) -> PruneReport:
    """The pruning report; with quantize, the INT8 stages' report inside it (their checks are there)."""
    job, after = ctx.job, ctx.loaded
    loaded, settings, size = job.loaded, job.settings, job.loaded.input_size
    macs0 = count_macs(loaded.model.plan, size, size)["total"]
    macs1 = count_macs(after.model.plan, size, size)["total"]
    bin_bytes = (ctx.folder / "model_fp32.bin").read_bytes()
    base, mine, losses = ctx.unpruned, ctx.pruned_eval, ctx.losses
    pair = pairing(base, mine)
    report = PruneReport(
        command=job.run.command, seed=settings.seed, versions=versions(), method=settings.method,
        ratio=settings.ratio, head_ratio=settings.head_ratio, round_to=settings.effective_round_to,
        finetune_steps=settings.finetune_steps,
        model=ModelInfo(loaded.variant, loaded.checkpoint, size, loaded.num_classes,
                        pruned_checkpoint="pruned.safetensors"),
        macs=Macs(macs0, macs1, 100 * (1 - macs1 / macs0)),
        params=Params(count_params(loaded.weights), count_params(after.weights),
                      int(sum(np.count_nonzero(v) for k, v in after.weights.items() if
                              v.dtype.kind == "f" and not k.endswith(("running_mean", "running_var"))))),
        accuracy=PruneAccuracy(base.source, base.n, base.top1, mine.top1, ctx.pruned_ir_eval.top1, base.top5,
                               mine.top5, None if base.top1 is None else base.top1 - mine.top1,
                               *((pair.lost, pair.gained, pair.p_value) if pair else ())),
        numpy_float64_agreement=ctx.numpy_agreement,
        sizes={"model_fp32.bin": len(bin_bytes), "model_fp32.bin.gz": len(gzip.compress(bin_bytes, 6))},
        layers=layer_table(loaded.model.plan, after.model.plan, ctx.dropped),
        depth=settings.depth, dropped_blocks=ctx.dropped, block_losses=ctx.block_losses,
        finetune_loss={"first": losses[0] if losses else None, "last": losses[-1] if losses else None},
        nncf_pruning_statistic=ctx.nncf_statistic, int8=int8, finetune_size=job.data.size,
        speed=None if int8 is not None else ctx.speed, checks=[] if int8 is not None else ctx.checks,
        targets=None if int8 is None else fast_targets(base.top1, base.source, base.n, int8),
        undertrained_teacher=pruned_beats_unpruned(base, mine, int8, pair))
    report.deploy = prune_choice(report)
    return report


def pairing(base: EvalResult, pruned: EvalResult) -> Paired | None:
    """The two models image by image on the validation data (None without labels)."""
    if base.labels is None or base.logits is None or pruned.logits is None:
        return None
    return paired(base.logits, pruned.logits, base.labels)


def pruned_beats_unpruned(base: EvalResult, pruned: EvalResult, int8: QuantReport | None,
                          pair: Paired | None) -> str | None:
    """The undertrained-teacher line: the pruned model classifies significantly more of the same images right than
    the unpruned one (the paired test), or the better of the pruned model and its INT8 IR lies above the unpruned
    model's 95% interval (the INT8 IR's logits are not kept, so it is compared by top-1 alone)."""
    if pair is not None and (line := student_gains(pair, "pruned model")):
        return line
    students = [("pruned model", pruned.top1)]
    if int8 is not None and int8.int8_vs_fp32.n == base.n and int8.int8_vs_fp32.source == base.source:
        students.append(("pruned INT8 IR", int8.int8_vs_fp32.int8_top1))
    name, top1 = max(((s, t) for s, t in students if t is not None), key=lambda st: st[1], default=(None, None))
    return undertrained_teacher(base.top1, top1, base.n, name) if name else None

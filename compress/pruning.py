"""Pruning CloFormer as a library (compress.prune is the CLI on it): NNCF unstructured sparsity, or structured
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

The rooms: compress.structured (the structured algorithm), compress.nncf_pruning (NNCF's masks),
compress.distill (fine-tuning), compress.quantization (the INT8 stages), compress.render (report.md, plots).
"""

from __future__ import annotations

import copy
import gzip
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import torch

import cloformer
import reference_np as rn
from reference_np.macs import count_macs, count_params
from reference_np.specs import ModelPlan

from . import export as E
from .atomic import check_apart, staging_dir
from .data import DataSource
from .distill import Pool, finetune, load_pool
from .errors import InputError
from .evaluation import EvalResult, evaluate, openvino_predictor, torch_predictor
from .loading import LoadedModel, output_bytes
from .nncf_pruning import NNCF_RB_NEEDS_STEPS, nncf_prune, official_weights
from .quantization import QuantJob, check_ignored_scope, finish, int8_stages
from .render import write_prune_outputs, write_quant_outputs
from .report import (
    Check,
    Macs,
    ModelInfo,
    Params,
    PruneAccuracy,
    PruneReport,
    QuantReport,
    SpeedReport,
    Timer,
    versions,
)
from .runtime import cpu_isa
from .settings import (
    DEFAULT_RUN,
    TARGET_FAST_MIN_FPS_BN_X,
    TARGET_FAST_MIN_LATENCY_X,
    TARGET_MAX_TOP1_DROP_PT,
    QuantSettings,
    RunConfig,
    check_choice,
    check_count,
    check_ratio,
)
from .sources import DataParts, shared_items
from .speed import BASELINE, measure_speed
from .structured import check_round_to, select, structured_prune
from .tolerances import FLOAT64_ATOL
from .verification import float64_crop, twin_error

Method = Literal["structured", "nncf-magnitude", "nncf-rb"]
METHODS: tuple[str, ...] = get_args(Method)


def simd_block() -> int:
    """Channels per SIMD register of f32 on this CPU: 16 with AVX-512, 8 with AVX2 (the --round-to default)."""
    return 16 if "avx512f" in cpu_isa().split() else 8


@dataclass
class PruneSettings:
    """What compress.prune does, validated at construction."""

    method: Method = "structured"
    ratio: float = 0.45
    head_ratio: float | None = None  # structured only: of the global heads; None: ratio
    round_to: int | None = None  # structured only; None: the CPU's SIMD block (simd_block())
    finetune_steps: int = 600
    finetune_batch: int = 64
    lr: float = 5e-4
    seed: int = 0

    def __post_init__(self) -> None:
        check_choice(self.method, METHODS, "method")
        check_ratio(self.ratio)
        if self.head_ratio is not None:
            check_ratio(self.head_ratio, "head_ratio")
            if self.method != "structured":
                raise InputError("head_ratio applies to method 'structured' only", field=("head_ratio", "method"))
        if self.round_to is not None:
            check_round_to(self.round_to)
        check_count(self.finetune_steps, "finetune_steps", 0)
        check_count(self.finetune_batch, "finetune_batch")
        if not self.lr > 0:
            raise InputError(f"lr must be > 0; got {self.lr}", field="lr")
        if self.method == "nncf-rb" and self.finetune_steps == 0:
            raise InputError(NNCF_RB_NEEDS_STEPS, field=("method", "finetune_steps"))

    @property
    def effective_round_to(self) -> int | None:
        if self.method != "structured":
            return None
        return self.round_to if self.round_to is not None else simd_block()


@dataclass(frozen=True)
class PruneJob:
    """One pruning job: the model, how to prune it, the fine-tuning images, the held-out data (`parts.validation`;
    with `quantize`, `parts` is also the INT8 stages' calibration data) and the run's options."""

    loaded: LoadedModel
    settings: PruneSettings
    data: DataSource
    parts: DataParts
    quantize: QuantSettings | None = None  # then the INT8 stages on the pruned model
    run: RunConfig = DEFAULT_RUN


@dataclass
class Pruned:
    """The pruned, fine-tuned model and what its fine-tuning recorded."""

    loaded: LoadedModel  # checkpoint: pruned.safetensors in the output folder
    losses: list[float]
    nncf_statistic: dict[str, Any] | None


@dataclass
class PrunedEvaluation:
    unpruned: EvalResult
    pruned: EvalResult
    pruned_ir: EvalResult
    numpy_agreement: Check


def prune_model(job: PruneJob, out: Path) -> PruneReport:
    """check -> evaluate the unpruned model -> load the fine-tuning images -> prune -> fine-tune (distillation)
    -> save the pruned checkpoint -> export (and the INT8 stages) -> verify and evaluate -> time -> report, into
    `out`. Fine-tuning runs at the fine-tuning images' size (`job.data.size`); export, evaluation and timing at
    the model's input size, which may be larger (fine-tune at 64 px, deploy at 224: CloFormer runs at any
    multiple of 32)."""
    check_apart(out, {"data": job.data.root, "calib": job.parts.calibration.root, "val": job.parts.validation.root,
                      "checkpoint": job.loaded.checkpoint})
    check_job(job)
    loaded, run = job.loaded, job.run
    lap = Timer.since(run.started, "load")
    with staging_dir(out, run.force, output_bytes(loaded, pruned=True)) as tmp:
        unpruned = evaluate(torch_predictor(loaded.model), job.parts.validation, backend="torch unpruned")
        pool = load_pool(job.data)
        lap("data")
        pruned = prune_and_finetune(job, pool, tmp, lap)
        int8 = speed = None
        if job.quantize is not None:
            int8 = int8_stages(QuantJob(pruned.loaded, job.parts, job.quantize, run, baseline=loaded), tmp, lap)
        else:
            E.export(pruned.loaded, tmp)
            lap("export FP32 (deploy IR, ONNX)")
        evaluation = evaluate_pruned(pruned.loaded, unpruned, job.parts.validation, pool, tmp / "model_fp32.xml")
        lap("verify and evaluate")
        if int8 is None and run.benchmark_seconds > 0:  # (the INT8 stages time all three IRs themselves)
            speed = measure_speed({BASELINE: partial(E.convert_plain, loaded), "pruned deploy FP32": tmp /
                                   "model_fp32.xml"}, loaded.input_size, batch=run.benchmark_batch,
                                  seconds=run.benchmark_seconds, device=run.device)
            lap("speed (plain FP32, pruned deploy FP32)")
        if run.batch > 1 and int8 is None:  # last, as in the INT8 stages, which set both IRs' batch themselves
            check = E.set_batch(tmp / "model_fp32.xml", run.batch, deploy_sample(pool, loaded.input_size))
            if not check.passed:
                raise RuntimeError(f"{check.stage}: {check.value:.2e} > {check.tolerance:.0e}")
        if int8 is not None:  # the INT8 stages' own report, beside the pruning report
            int8 = finish(int8, lap.times, tmp)
            write_quant_outputs(int8, tmp, "report_int8")
        report = finish(build_report(job, pruned, evaluation, int8, speed, tmp), lap.times, tmp)
        write_prune_outputs(report, tmp)
    return report


def check_job(job: PruneJob) -> None:
    """Everything that can be refused before the first expensive step: labels, overlap, the ignored scope (its
    node names are the unpruned graph's), and a ratio that would empty a group."""
    loaded, settings, data, val = job.loaded, job.settings, job.data, job.parts.validation
    val.check_labels(loaded.num_classes)
    shared = shared_items(data, val)  # the same rule as calibration vs validation
    if shared and not job.run.allow_overlap:
        raise InputError(f"fine-tuning data {data.name} shares {len(shared)} image(s) with the validation data "
                         f"{val.name} (e.g. {shared[0]}): the reported accuracy would be measured on images the "
                         "model was fine-tuned on. Give disjoint data, or pass allow_overlap=True",
                         field=("data", "allow_overlap"))
    if job.quantize is not None:
        check_ignored_scope(E.convert_deploy(loaded, taps=True), job.quantize)
    if data.labelled:  # fine-tuning against labels of other classes would train the wrong loss silently
        data.check_labels(loaded.num_classes)
    if settings.method == "structured":
        plan = loaded.model.plan
        select(plan, {f"layers.{i}.blocks.{j}": (np.zeros(b.hidden), np.zeros(sum(b.local_channels) +
                                                                            b.global_heads * b.dim_head))
                      for i, s in enumerate(plan.blocks) for j, b in enumerate(s)},
               settings.ratio, settings.effective_round_to, settings.head_ratio)


def prune_and_finetune(job: PruneJob, pool: Pool, folder: Path, lap: Timer) -> Pruned:
    """Prune a copy of the model, fine-tune it by distillation from the original, save pruned.safetensors."""
    loaded, settings = job.loaded, job.settings
    torch.manual_seed(settings.seed)
    student, masks = copy.deepcopy(loaded.model).train(), None
    if settings.method == "structured":
        batches = [pool.x[i:i + 64] for i in range(0, min(len(pool.x), 256), 64)]
        student, _ = structured_prune(student, loaded.variant, settings.ratio, batches, settings.effective_round_to,
                                      settings.head_ratio)
    else:
        student, masks = nncf_prune(student, settings.method, settings.ratio, pool.x[:1], settings.finetune_steps)
    lap("prune")
    losses = finetune(student, loaded.model, pool, settings, masks)
    lap("fine-tune")
    statistic = None
    if settings.method != "structured":
        import nncf

        stats = nncf.pruning_statistic(student)
        statistic = {"pruning_ratio": stats.pruning_ratio, "global_pruning_ratio": stats.global_pruning_ratio,
                     "tensors": [{"name": t.tensor_name, "shape": list(t.shape), "pruned_ratio": t.pruned_ratio}
                                 for t in stats.pruned_tensors]}
        student = nncf.strip(student, do_copy=True, example_input=pool.x[:1]).eval()
    weights = official_weights(student.state_dict())
    # the pruned checkpoint keeps the input size it was fine-tuned at (pretrained_cfg reads it); the job goes on at
    # the model's input size
    ckpt = rn.save_weights(weights, folder / "pruned.safetensors", metadata={
        "variant": loaded.variant, "method": settings.method, "input_size": str(job.data.size)})
    model = cloformer.create_model(loaded.variant, checkpoint=ckpt, allow_pruned=True).float().eval()
    lap("save pruned checkpoint")
    return Pruned(LoadedModel(loaded.variant, ckpt.name, model, loaded.input_size, weights), losses, statistic)


def deploy_sample(pool: Pool, size: int, n: int = 2) -> np.ndarray:
    """n fine-tuning images at the IRs' input size (bilinear, as a larger crop would be): the static-batch check's
    input when the fine-tuning size differs."""
    x = pool.x[:n]
    if x.shape[-1] != size:
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return x.numpy()


def evaluate_pruned(pruned: LoadedModel, unpruned: EvalResult, val: DataSource, pool: Pool,
                    fp32_xml: Path) -> PrunedEvaluation:
    """The pruned checkpoint in NumPy against torch (float64, on verification.float64_crop), and top-1 of the
    pruned model in torch and as its FP32 IR."""
    agree = numpy_agreement(pruned.weights, torch.from_numpy(float64_crop(pool.x[:2].numpy())))
    return PrunedEvaluation(unpruned, evaluate(torch_predictor(pruned.model), val, backend="torch pruned"),
                            evaluate(openvino_predictor(fp32_xml, "CPU", "f32"), val, backend="pruned IR"), agree)


def numpy_agreement(weights: dict[str, np.ndarray], x: torch.Tensor) -> Check:
    """The pruned checkpoint in the NumPy reference vs torch, float64: shapes come from the weights."""
    err = twin_error(weights, x.numpy(), np.float64)
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


def fast_targets(unpruned: EvalResult, int8: QuantReport) -> dict[str, Any]:
    """The fast model's targets (issue 19; reported, not enforced): pruned INT8 against the unpruned checkpoint,
    top-1 on the same validation data and speed against its plain FP32 in the same run."""
    c = int8.int8_vs_fp32
    same = c.source == unpruned.source and c.n == unpruned.n
    drop = unpruned.top1 - c.int8_top1 if same and unpruned.top1 is not None and c.int8_top1 is not None else None
    out: dict[str, Any] = {"max_top1_drop_pt": TARGET_MAX_TOP1_DROP_PT, "min_latency_x": TARGET_FAST_MIN_LATENCY_X,
                           "min_fps_bn_x": TARGET_FAST_MIN_FPS_BN_X, "top1_drop_pt": drop,
                           "top1_drop_met": None if drop is None else drop <= TARGET_MAX_TOP1_DROP_PT}
    sp = int8.speed
    if sp is not None:
        q = sp.ratios(sp.rows[-1].label)
        out |= {"latency_x": q["latency"], "fps_bn_x": q["fps_bn"], "batch": sp.batch,
                "latency_met": q["latency"] >= TARGET_FAST_MIN_LATENCY_X,
                "fps_bn_met": q["fps_bn"] >= TARGET_FAST_MIN_FPS_BN_X}
    return out


def build_report(job: PruneJob, pruned: Pruned, ev: PrunedEvaluation, int8: QuantReport | None,
                 speed: SpeedReport | None, folder: Path) -> PruneReport:
    loaded, settings, size = job.loaded, job.settings, job.loaded.input_size
    after = pruned.loaded
    macs0 = count_macs(loaded.model.plan, size, size)["total"]
    macs1 = count_macs(after.model.plan, size, size)["total"]
    bin_bytes = (folder / "model_fp32.bin").read_bytes()
    base, mine, losses = ev.unpruned, ev.pruned, pruned.losses
    return PruneReport(
        command=job.run.command, seed=settings.seed, versions=versions(), method=settings.method,
        ratio=settings.ratio, head_ratio=settings.head_ratio, round_to=settings.effective_round_to,
        finetune_steps=settings.finetune_steps,
        model=ModelInfo(loaded.variant, loaded.checkpoint, size, loaded.num_classes,
                        pruned_checkpoint="pruned.safetensors"),
        macs=Macs(macs0, macs1, 100 * (1 - macs1 / macs0)),
        params=Params(count_params(loaded.weights), count_params(after.weights),
                      int(sum(np.count_nonzero(v) for k, v in after.weights.items() if
                              v.dtype.kind == "f" and not k.endswith(("running_mean", "running_var"))))),
        accuracy=PruneAccuracy(base.source, base.n, base.top1, mine.top1, ev.pruned_ir.top1, base.top5, mine.top5,
                               None if base.top1 is None else base.top1 - mine.top1),
        numpy_float64_agreement=ev.numpy_agreement,
        sizes={"model_fp32.bin": len(bin_bytes), "model_fp32.bin.gz": len(gzip.compress(bin_bytes, 6))},
        layers=layer_table(loaded.model.plan, after.model.plan),
        finetune_loss={"first": losses[0] if losses else None, "last": losses[-1] if losses else None},
        nncf_pruning_statistic=pruned.nncf_statistic, int8=int8, finetune_size=job.data.size, speed=speed,
        targets=None if int8 is None else fast_targets(base, int8))

"""Typed, validated settings of the compression stages. Built by the CLIs from argv or by library users
directly; an unknown value raises at construction, whichever entry point built them.

Each field is declared with `compress.options.option(...)`: its help and how a command line spells it live beside
the field, and compress.cli derives the command from them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, get_args

from .errors import InputError
from .options import check_choice, check_count, option
from .runtime import ISA_LEVELS, cpu_isa
from .targets import TARGET_MAX_TOP1_DROP_PT

Preset = Literal["performance", "mixed"]
NNCFModelType = Literal["transformer"]  # nncf.ModelType, by lower-case name
ModelType = NNCFModelType | None
# NNCF's activation range estimators (RangeEstimatorParametersSet), by lower-case name. minmax: global min/max
# over the calibration set; mean_minmax (NNCF's default): the mean of per-sample min/max; mean_quantile: the
# mean of per-sample 0.01%/99.99% quantiles; histogram: an MSE-optimal range from a histogram.
ActivationRange = Literal["minmax", "mean_minmax", "mean_quantile", "mean_no_outliers_minmax", "median_minmax",
                          "histogram"]
ACTIVATION_RANGES: tuple[str, ...] = get_args(ActivationRange)
PRESETS: tuple[str, ...] = get_args(Preset)
MODEL_TYPES: tuple[str, ...] = ("none", *get_args(NNCFModelType))  # as the command line spells them
# NNCF's OverflowFix, by lower-case name: weights quantized to 7 bits (half the int8 range) in every convolution and
# MatMul (enable), in the first convolution only (first_layer, NNCF's default), or nowhere (disable). Without VNNI
# the CPU sums u8*s8 products pairwise in int16 with saturation; 7-bit weights cannot overflow it.
OverflowFix = Literal["enable", "first_layer", "disable"]
OVERFLOW_FIXES: tuple[str, ...] = get_args(OverflowFix)
# NNCF's TargetDevice, by lower-case name: the hardware whose quantization scheme NNCF follows (which ops get
# quantizers, and how); any = a scheme every Intel device runs
TargetDevice = Literal["any", "cpu", "gpu", "npu", "cpu_spr"]
TARGET_DEVICES: tuple[str, ...] = get_args(TargetDevice)
ScopeKind = Literal["type", "name", "pattern"]
Backend = Literal["torch", "numpy", "openvino"]  # what runs a model in compress.evaluate
BACKENDS: tuple[str, ...] = get_args(Backend)
Precision = Literal["f32", "bf16", "f16"]  # OpenVINO's INFERENCE_PRECISION_HINT; None where used: the device's default
PRECISIONS: tuple[str, ...] = get_args(Precision)
ISA_MATRIX_CHOICES = ("none", "default", "all")  # besides a comma-separated list of oneDNN ISA names


@dataclass(frozen=True)
class RunConfig:
    """Run-level options of a job, one frozen value (the stages read it; nothing mutates it)."""

    command: str = "library call"  # what the report records as the command that made it
    seed: int = option(0, "seed of the calibration/validation subsets", type=int)
    device: str = option("CPU", "OpenVINO device for the INT8 evaluation and the speed section: CPU, NPU, GPU, AUTO")
    max_drop: float = option(TARGET_MAX_TOP1_DROP_PT, "top-1 points (accuracy control)", type=float)
    allow_overlap: bool = option(False, "accept validation data that shares images with the calibration data "
                                 "(compress.prune: or with --data)", kind="flag")
    force: bool = option(False, "replace --out if it exists (the old one is kept until the new one is complete)",
                         kind="flag")
    batch: int = option(1, "static input batch of the IRs written (NPUs want static shapes). Every IR also reshapes "
                        "to any batch and any input size that is a multiple of 32", type=int)
    benchmark_seconds: float = option(
        15.0, "timing budget of the report's speed section: plain FP32 and every IR written at batch 1 (latency, "
        "throughput) and at --benchmark-batch (throughput), interleaved rounds; 0 skips it",
        type=float)
    benchmark_batch: int = option(8, "N of the speed section's batch-N throughput", type=int)
    isa_matrix: str = option(
        "default", "run the INT8 IR once per instruction set, each in a process under ONEDNN_MAX_CPU_ISA, and judge "
        "every target on each: default = AVX2 (a CPU without VNNI) and this CPU's own; all = every level this CPU "
        "allows; or a list of oneDNN names, e.g. AVX2,AVX512_CORE_VNNI", metavar="{none,default,all,ISA[,ISA...]}")
    advise: bool = option(False, "search per-layer fixes that keep int8 (SmoothQuant alphas, then float fallbacks "
                          "of the most sensitive layers), judged on data the report does not evaluate on, and "
                          "quantize with the best; the report gives the command line that reproduces it",
                          kind="flag")
    advise_seconds: float = option(480.0, "time budget of --advise (the candidates not reached are listed)",
                                   type=float)
    started: float | None = None  # time.perf_counter() when the run began (the job's first stage, loading, ends
    # when the job starts); None: the job's times begin with the job

    def __post_init__(self) -> None:
        for name in ("batch", "benchmark_batch"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise InputError(f"{name} must be an integer >= 1; got {getattr(self, name)!r}", field=name)
        if self.benchmark_seconds < 0:
            raise InputError(f"benchmark_seconds must be >= 0; got {self.benchmark_seconds}",
                             field="benchmark_seconds")
        names = [] if self.isa_matrix in ISA_MATRIX_CHOICES else [n.strip().upper() for n in self.isa_matrix.split(",")]
        if (self.isa_matrix not in ISA_MATRIX_CHOICES and not names) or any(n not in ISA_LEVELS for n in names):
            raise InputError(f"isa_matrix '{self.isa_matrix}': expected {', '.join(ISA_MATRIX_CHOICES)} or a "
                             f"comma-separated list of {', '.join(ISA_LEVELS)}", field="isa_matrix")
        if self.advise_seconds <= 0:
            raise InputError(f"advise_seconds must be > 0; got {self.advise_seconds}", field="advise_seconds")
        if self.max_drop < 0:
            raise InputError(f"max_drop must be >= 0; got {self.max_drop}", field="max_drop")


DEFAULT_RUN = RunConfig()


def check_ratio(ratio: float, name: str = "ratio") -> float:
    """A pruning ratio: the fraction removed, strictly between 0 and 1 (one definition for every caller)."""
    if not isinstance(ratio, (int, float)) or not 0 < ratio < 1:
        raise InputError(f"{name} must be in (0, 1); got {ratio}", field=name)
    return float(ratio)


def check_round_to(n: int) -> int:
    """structured pruning's channel multiple: 1 (no rounding) to 256."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1 or n > 256:
        raise InputError(f"round_to must be an integer from 1 to 256 (1: no rounding); got {n}", field="round_to")
    return n


@dataclass(frozen=True)
class ScopeEntry:
    """One --ignored-scope entry: keep ops in float by OpenVINO type, node name or node-name regex."""

    kind: ScopeKind
    value: str

    def __post_init__(self) -> None:
        check_choice(self.kind, get_args(ScopeKind), "ignored_scope")
        if not self.value:
            raise InputError(f"ignored_scope '{self}': empty {self.kind}", field="ignored_scope")
        if self.kind == "pattern":
            try:
                re.compile(self.value)
            except re.error as e:
                raise InputError(f"ignored_scope 'pattern:{self.value}': not a valid regex ({e})",
                                 field="ignored_scope") from None

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"

    @classmethod
    def parse(cls, spec: str) -> ScopeEntry:
        kind, sep, value = spec.partition(":")
        if not sep or kind not in get_args(ScopeKind):
            raise InputError(f"ignored_scope '{spec}': expected type:<OpType>, name:<node> or pattern:<regex>",
                             field="ignored_scope")
        return cls(kind, value)  # type: ignore[arg-type]


# kept in float: the stem (its input and ReLU ranges cost ~5 dB at every later layer); the attention's softmax
# path; the element-wise products (q*k, tanh(.)*v and q*scale: quantizing q*scale keeps the CPU plugin from
# fusing the attention into one kernel, 12 nodes more). The deploy graph names its stem nodes `stem.*`.
DEFAULT_IGNORED_SCOPE: tuple[ScopeEntry, ...] = (ScopeEntry("pattern", ".*stem.*"),
                                                 ScopeEntry("type", "ScaledDotProductAttention"),
                                                 ScopeEntry("type", "Multiply"))


# ------------------------------------------------------------------ quantization-aware training
@dataclass(frozen=True)
class QatSettings:
    """Quantization-aware training (compress.quantize.qat): NNCF's quantization of the torch deploy graph with the
    same QuantSettings as PTQ, then distillation from the FP32 model with the quantizers' ranges trainable. The
    qat_* fields are what distillation reads (compress.distill.FinetuneSettings, by the properties below)."""

    qat_steps: int = option(300, "QAT distillation steps (0: the torch PTQ exported as is)", type=int)
    qat_batch: int = option(16, "QAT distillation batch size", type=int)
    qat_lr: float = option(1e-5, "QAT peak learning rate (weights, biases and quantizer ranges)", type=float)
    seed: int = option(0, "seed of the calibration/validation subsets", type=int)

    def __post_init__(self) -> None:
        check_count(self.qat_steps, "qat_steps", 0)
        check_count(self.qat_batch, "qat_batch")
        if not self.qat_lr > 0:
            raise InputError(f"qat_lr must be > 0; got {self.qat_lr}", field="qat_lr")

    @property
    def finetune_steps(self) -> int:
        return self.qat_steps

    @property
    def finetune_batch(self) -> int:
        return self.qat_batch

    @property
    def lr(self) -> float:
        return self.qat_lr


# ------------------------------------------------------------------ pruning
Method = Literal["structured", "depth", "nncf-magnitude", "nncf-rb"]
METHODS: tuple[str, ...] = get_args(Method)
NNCF_RB_NEEDS_STEPS = "method nncf-rb learns its masks during fine-tuning: finetune_steps must be > 0"


def simd_block() -> int:
    """Channels per SIMD register of f32 on this CPU: 16 with AVX-512, 8 with AVX2 (the --round-to default)."""
    return 16 if "avx512f" in cpu_isa().split() else 8


@dataclass
class PruneSettings:
    """What compress.prune does, validated at construction."""

    method: Method = option("structured", "structured: remove whole channels and heads (a smaller, faster "
                            "network); depth: remove whole blocks only (--depth); nncf-*: NNCF's unstructured "
                            "sparsity", choices=METHODS)
    ratio: float = option(0.45, "structured: fraction of each group's channels/heads removed; nncf-*: weight "
                          "sparsity", type=float)
    head_ratio: float | None = option(
        None, "structured: fraction of each block's global heads removed (default: --ratio); blocks with one head "
        "empty at 0.5, so a --ratio of 0.5 or more needs --head-ratio below it", type=float)
    round_to: int | None = option(
        None, "structured: kept channel counts become multiples of N (default: the CPU's SIMD block, 16 with "
        "AVX-512, 8 with AVX2; 1: no rounding)", type=int)
    depth: int = option(0, "structured or depth: whole blocks removed first (stride-1 blocks, each stage keeping its "
                        "last; chosen greedily by the distillation loss with the block bypassed)", type=int)
    finetune_steps: int = option(600, "distillation steps after pruning (0: none)", type=int)
    finetune_batch: int = option(64, "distillation batch size (--batch is the IRs' input batch)", type=int)
    lr: float = option(5e-4, "distillation peak learning rate", type=float)
    seed: int = option(0, "seed of the calibration/validation subsets", type=int)

    def __post_init__(self) -> None:
        check_choice(self.method, METHODS, "method")
        check_ratio(self.ratio)
        if self.head_ratio is not None:
            check_ratio(self.head_ratio, "head_ratio")
            if self.method != "structured":
                raise InputError("head_ratio applies to method 'structured' only", field=("head_ratio", "method"))
        if self.round_to is not None:
            check_round_to(self.round_to)
        check_count(self.depth, "depth", 0)
        if self.method == "depth" and self.depth == 0:
            raise InputError("method 'depth' removes whole blocks: give their number with depth >= 1",
                             field=("method", "depth"))
        if self.method.startswith("nncf") and self.depth:
            raise InputError("depth applies to methods 'structured' and 'depth'", field=("depth", "method"))
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


@dataclass
class QuantSettings:
    """nncf.quantize settings of the deploy graph. The defaults were chosen by measurement, for speed and
    accuracy together (tools.sweep_quant on a selection set of held-out crops, never on the reported proxy-val;
    the figures: docs/results/int8-defaults.md): every convolution in int8 (dense, 1x1, depthwise); the stem, the
    attention's softmax path (ScaledDotProductAttention) and the element-wise products in float; MSE-optimal
    histogram ranges and full bias correction."""

    preset: Preset = option("performance", "NNCF preset: mixed = asymmetric activations", choices=PRESETS)
    model_type: ModelType = option(None, "NNCF model type (transformer: fewer quantizers on element-wise ops)",
                                   choices=MODEL_TYPES, to_cli=lambda v: v or "none",
                                   from_cli=lambda s: None if s == "none" else s)
    # None: no bias correction at all (NNCF's convention)
    fast_bias_correction: bool | None = option(
        False, "NNCF fast bias correction; off = full bias correction, which doubles the quantize time and keeps "
        "more images in their class", kind="toggle")
    activation_range: ActivationRange = option(
        "histogram", "NNCF activation range estimator: minmax = global min/max over the calibration set, "
        "mean_minmax = NNCF's default, histogram = MSE-optimal", choices=ACTIVATION_RANGES)
    ignored_scope: tuple[ScopeEntry, ...] = option(
        default_factory=lambda: DEFAULT_IGNORED_SCOPE, kind="append", metavar="KIND:VALUE",
        help="keep ops in float: type:Softmax, name:<node>, pattern:<regex> (repeatable; replaces the default "
        f"{' '.join(map(str, DEFAULT_IGNORED_SCOPE))}; 'none' quantizes everything). Every entry must match a node",
        to_cli=lambda v: None,
        from_cli=lambda specs: DEFAULT_IGNORED_SCOPE if specs is None else tuple(s for s in specs if s != "none"))
    # SmoothQuant (transformer type only) for convolutions and MatMuls; None: NNCF's default
    smooth_quant_alpha: float | None = option(
        None, "SmoothQuant alpha for convolutions and MatMuls, transformer type only; -1 disables (default: "
        "NNCF's)", type=float)
    # the inputs of fc2, proj and the gates' first FC equalised before NNCF (compress.int8.equalise); None: off
    equalise_alpha: float | None = option(
        None, "equalise per channel the input of every ConvFFN fc2, attention proj and local gate's first FC, "
        "folded into the weights around it (the same function, no node added): alpha 1 flattens the activation's "
        "channels, 0 the weights' (default: off)", type=float)
    subset_size: int = option(300, "calibration images (as NNCF)", type=int)
    overflow_fix: OverflowFix = option(
        "enable", "NNCF overflow fix: 7-bit weights in every convolution and MatMul (enable), in the first only "
        "(first_layer), or none (disable). CPUs without VNNI (AVX2, plain AVX-512) sum int8 products pairwise in "
        "int16 with saturation; 7-bit weights cannot overflow there. The report's ISA matrix shows what each ISA "
        "computes", choices=OVERFLOW_FIXES)
    target_device: TargetDevice = option(
        "any", "NNCF target device: the hardware whose quantization scheme NNCF follows (npu: the NPU's, for an IR "
        "deployed there); any = a scheme every device runs", choices=TARGET_DEVICES)

    def __post_init__(self) -> None:
        check_choice(self.preset, PRESETS, "preset")
        check_choice(self.model_type, (None, *get_args(NNCFModelType)), "model_type")
        check_choice(self.activation_range, ACTIVATION_RANGES, "activation_range")
        check_choice(self.overflow_fix, OVERFLOW_FIXES, "overflow_fix")
        check_choice(self.target_device, TARGET_DEVICES, "target_device")
        self.ignored_scope = tuple(e if isinstance(e, ScopeEntry) else ScopeEntry.parse(e) for e in self.ignored_scope)
        check_count(self.subset_size, "subset_size")
        if self.smooth_quant_alpha is not None and not (self.smooth_quant_alpha < 0 or
                                                        0 <= self.smooth_quant_alpha <= 1):
            raise InputError(f"smooth_quant_alpha must be in [0, 1] (negative disables it); "
                             f"got {self.smooth_quant_alpha}", field="smooth_quant_alpha")

        if self.equalise_alpha is not None and not 0 <= self.equalise_alpha <= 1:
            raise InputError(f"equalise_alpha must be in [0, 1]; got {self.equalise_alpha}",
                             field="equalise_alpha")

    def scope(self, kind: str) -> list[str]:
        return [e.value for e in self.ignored_scope if e.kind == kind]

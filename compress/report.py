"""Run reports: dataclasses, serialised in one place (JSON without NaN/Inf: they become null) and read back
through the same types (tools.benchmark reads every run folder with `read_report`); Markdown helpers and
the per-layer SQNR plot.
"""

from __future__ import annotations

import json
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from .atomic import write_text_atomic
from .choice import Choice
from .plain import from_plain, to_plain
from .profile import Profile
from .runtime import RuntimeGraph
from .settings import QuantSettings
from .targets import Metric, Target

PACKAGES = ("torch", "numpy", "nncf", "openvino", "onnx", "onnxruntime", "scipy", "pillow")


def versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0], "platform": platform.platform(), "cpu": platform.processor()}
    for p in PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            out[p] = "not installed"
    return out


@dataclass
class ModelInfo:
    variant: str
    checkpoint: str
    input_size: int
    num_classes: int
    device: str = "CPU"
    pruned_checkpoint: str | None = None  # file name inside the run folder (compress.prune)
    batch: int = 1  # the IRs' static input batch (they reshape to any)


@dataclass
class SpeedRow:
    """One model's timings, one value per interleaved round."""

    label: str
    latency_ms: list[float]  # batch 1, LATENCY hint, one request: median latency of each round
    fps_b1: list[float]  # batch 1, THROUGHPUT hint (the plugin's streams and requests)
    fps_bn: list[float]  # batch N, THROUGHPUT hint; images/s


@dataclass
class OpTime:
    """Per-op-type time of one inference at batch 1 (performance counters), ms and node count."""

    op: str  # layer type [exec precision]
    ms: float
    nodes: int


UNSTABLE_SPREAD = 0.15  # per-round speed ratios further apart than this (range / median): "unstable here"


def round_ratios(own: list[float], base: list[float], invert: bool) -> list[float]:
    """Per-round speed-ups of `own` over `base`, both timed in the same round (latency, `invert`: base/own;
    throughput: own/base)."""
    return [(y / x) if invert else (x / y) for x, y in zip(own, base, strict=True)]


@dataclass
class SpeedReport:
    """How fast the artifacts run on the evaluation device, against the plain FP32 baseline measured in the
    same run (compress.speed)."""

    device: str
    isa: str
    isa_short: str  # e.g. "AMX-INT8/BF16", "AVX-512 VNNI + BF16", "AVX2"
    openvino: str
    cores: int
    precision: str  # the device's default precision for float ops (bf16 on BF16 CPUs)
    batch: int  # N of the batch-N throughput
    window_s: float  # seconds per measurement
    rounds: int
    rows: list[SpeedRow]
    counters: dict[str, list[OpTime]] = field(default_factory=dict)  # label -> per-op-type time, batch 1
    baseline: str = "plain FP32"
    profiles: list[Profile] = field(default_factory=list)  # where each IR's time goes (compress.profile)

    def row(self, label: str) -> SpeedRow:
        return next(r for r in self.rows if r.label == label)

    def ratios(self, label: str, against: str | None = None) -> dict[str, float]:
        """Median and best speed-ups against the baseline (or the row `against`): latency base/own, throughput
        own/base. The median is of per-round ratios (both measured in the same round), robust to a machine that
        changes speed; `_spread` is their range over the median (UNSTABLE_SPREAD and above: the rounds disagree)."""
        own, base = self.row(label), self.row(against or self.baseline)
        out: dict[str, float] = {}
        for key, a, b, invert in (("latency", own.latency_ms, base.latency_ms, True),
                                  ("fps_b1", own.fps_b1, base.fps_b1, False),
                                  ("fps_bn", own.fps_bn, base.fps_bn, False)):
            per_round = round_ratios(a, b, invert)
            out[key] = statistics.median(per_round)
            out[f"{key}_best"] = (min(b) / min(a)) if invert else (max(a) / max(b))
            out[f"{key}_spread"] = (max(per_round) - min(per_round)) / out[key]
        return out

    def unstable(self, label: str) -> list[str]:
        """The ratios of `label` whose rounds disagree by more than UNSTABLE_SPREAD."""
        q = self.ratios(label)
        return [k for k in ("latency", "fps_b1", "fps_bn") if q[f"{k}_spread"] > UNSTABLE_SPREAD]


@dataclass
class DataPart:
    name: str
    n: int
    sha256_of_items: str
    skipped: int = 0
    exif: str = "ignore"  # compress.data.EXIF_MODES: EXIF orientation applied before preprocessing or not


@dataclass
class AccuracyControl:
    max_drop_pt: float
    tuning: DataPart
    tuning_drop_pt: float | None  # on the part NNCF tuned on: optimistic
    heldout_drop_pt: float | None  # on the held-out part: the number to trust


@dataclass
class QatRecord:
    """Quantization-aware training beside the PTQ of the same settings, measured in the same job."""

    steps: int
    batch: int
    lr: float
    data: DataPart  # the fine-tuning images (disjoint from the validation data)
    seconds: float  # the fine-tuning alone
    losses: list[float]  # the matching loss per step (each on its own augmented batch)
    probe_loss: tuple[float, float]  # the matching loss on fixed unaugmented QAT images, before and after training
    ranges_changed: int  # quantizer range tensors that training moved
    ranges: int
    max_range_change: float  # the largest relative change of one range value
    ptq_vs_fp32: Int8Comparison  # PTQ (model_int8_ptq.xml) at the device's default precision
    ptq_f32_hint_vs_fp32: Int8Comparison
    ptq_quantizers: int
    ptq_runtime: RuntimeGraph | None  # executed nodes of the PTQ IR (CPU only)


@dataclass
class Sensitivity:
    """One quantizer group of an INT8 IR, measured alone (compress.int8.advise)."""

    group: str  # layers.i.blocks.j.attn / .mlp / layers.i.blocks.j / head / other
    quantizers: int  # FakeQuantize nodes in the group
    float_only_db: float  # logit SQNR with this group alone in float
    quantized_only_db: float  # logit SQNR with this group alone quantized


@dataclass
class FixTried:
    """A candidate fix of --advise: its settings, the options that reproduce them, and what it measured."""

    name: str
    settings: QuantSettings
    command: str  # the options that reproduce it
    sqnr_db: float | None = None  # logits against FP32 on the advice data, f32 hint
    agreement: float | None = None  # top-1 agreement with FP32, %
    executed: int | None = None  # executed nodes of its IR
    seconds: float | None = None
    verdict: str = "not tried (time budget)"


@dataclass
class Advice:
    """What --advise measured and kept (compress.int8.advise)."""

    data: str  # the advice data's name and size
    budget_s: float
    sensitivity: list[Sensitivity]  # most sensitive first
    baseline: FixTried  # the settings as given
    candidates: list[FixTried]
    chosen: str  # a candidate's name, or the baseline's
    seconds: float
    command: str = ""  # the command line that reproduces the chosen settings without --advise


@dataclass
class QuantReport:
    """Everything compress.quantize measured; `seconds` and `file_bytes` are set once the folder is complete."""

    command: str
    seed: int
    versions: dict[str, str]
    model: ModelInfo
    settings: QuantSettings
    data_rule: str  # how calibration and validation data were formed (never the same images by default)
    calibration: DataPart
    calibration_items: list[dict[str, Any]]
    validation: DataPart
    allow_overlap: bool
    quantizers: int
    fp32_checks: list[Check]
    int8_vs_fp32: Int8Comparison  # at the device's default precision, as deployed
    int8_f32_hint_vs_fp32: Int8Comparison
    default_precision: str
    per_layer_sqnr: list[LayerSQNR]
    worst_layers: list[str]
    targets: list[Target]  # every target the report states, judged (on every ISA row too)
    runtime: list[RuntimeGraph]  # executed nodes of the FP32 and INT8 IRs at the device's default precision
    int8_runtime_vs_graph: list[GraphAgreement] = field(default_factory=list)  # OpenVINO vs reference_np.ir
    accuracy_control: AccuracyControl | None = None
    speed: SpeedReport | None = None  # None: skipped (--benchmark-seconds 0)
    isa_matrix: list[IsaRow] = field(default_factory=list)  # the INT8 IR under each imposed ISA (compress.isa)
    notes: list[str] = field(default_factory=list)  # expected messages of the tools, said here instead of on stderr
    qat: QatRecord | None = None  # quantization-aware training (then the INT8 IR is QAT's, PTQ's beside it)
    # the FP32 IR at the default precision against its f32 run (None where that is f32): what the float ops alone
    # cost there, the floor under int8_vs_fp32
    fp32_deployed_vs_f32: Int8Comparison | None = None
    undertrained_teacher: str | None = None  # QAT: metrics.undertrained_teacher's line (INT8 student, FP32 teacher)
    deploy: Choice | None = None  # what to deploy on this CPU (compress.choice); None: speed not measured
    advice: Advice | None = None  # --advise: sensitivity, the fixes tried, the one kept
    advice_plan: list[str] = field(default_factory=list)  # without --advise: the fixes it would try
    seconds: dict[str, float] = field(default_factory=dict)
    file_bytes: dict[str, int] = field(default_factory=dict)

    def missed(self) -> list[Target]:
        return [t for t in self.targets if t.met is False]

    def bound(self, metric: Metric) -> float | None:
        """The bound of a target the report states (every scope of a metric has the same one)."""
        return next((t.bound for t in self.targets if t.id == metric.id), None)

    def failed_checks(self) -> list[str]:
        """The checks (not targets) that failed: what makes a command exit 1."""
        return [ch.stage for ch in self.fp32_checks if ch.passed is False]
@dataclass
class Macs:
    before: float
    after: float
    reduction_pct: float


@dataclass
class Params:
    before: int
    after: int
    nonzero_after: int  # float weights that are not zero (what unstructured pruning changes)


@dataclass
class PruneAccuracy:
    source: str
    n: int
    unpruned_top1: float | None  # None: the data has no labels
    pruned_top1: float | None
    pruned_ir_top1: float | None
    unpruned_top5: float | None
    pruned_top5: float | None
    top1_drop: float | None
    # the pruned model against the unpruned one image by image (metrics.Paired): what the drop rests on
    lost: int | None = None  # images only the unpruned model classifies right
    gained: int | None = None  # images only the pruned model does
    paired_p: float | None = None  # exact McNemar test of lost against gained


@dataclass
class PruneReport:
    command: str
    seed: int
    versions: dict[str, str]
    method: str
    ratio: float
    round_to: int | None
    finetune_steps: int
    model: ModelInfo
    macs: Macs
    params: Params
    accuracy: PruneAccuracy
    numpy_float64_agreement: Check
    sizes: dict[str, int]
    layers: list[dict[str, Any]]
    finetune_loss: dict[str, float | None]
    nncf_pruning_statistic: dict[str, Any] | None = None
    int8: QuantReport | None = None
    head_ratio: float | None = None  # structured: of the global heads (None: ratio)
    finetune_size: int | None = None  # the fine-tuning images' side (model.input_size: the IRs' and evaluation's)
    speed: SpeedReport | None = None  # without int8: the pruned FP32 IR against the unpruned plain FP32
    targets: list[Target] | None = None  # the fast model's (pruned INT8 vs unpruned FP32), when there is one
    undertrained_teacher: str | None = None  # metrics.undertrained_teacher's line, when a student beats its teacher
    deploy: Choice | None = None  # what to deploy on this CPU (compress.choice); None: speed not measured
    checks: list[Check] = field(default_factory=list)  # without int8: the FP32 stages' (twins, static batch)
    depth: int = 0  # blocks removed whole (compress.prune.depth)
    dropped_blocks: list[str] = field(default_factory=list)  # their names in the unpruned model
    block_losses: dict[str, float] = field(default_factory=dict)  # the distillation loss when each was chosen
    seconds: dict[str, float] = field(default_factory=dict)
    file_bytes: dict[str, int] = field(default_factory=dict)


    @property
    def title(self) -> str:
        """What was removed, in words: the method, its ratio where it has one, the blocks removed whole."""
        what = self.method if self.method == "depth" else f"{self.method}, ratio {self.ratio}"
        return what + (f", {self.depth} blocks removed" if self.depth else "")
    def failed_checks(self) -> list[str]:
        """The checks that failed, the INT8 job's included: what makes a command exit 1."""
        own = [ch.stage for ch in [self.numpy_float64_agreement, *self.checks] if ch.passed is False]
        return own + (self.int8.failed_checks() if self.int8 is not None else [])

    @property
    def timings(self) -> SpeedReport | None:
        """The speed section: the INT8 stages' (plain, pruned deploy FP32, pruned INT8), or the FP32-only one."""
        return self.int8.speed if self.int8 is not None else self.speed


def write_report(report: QuantReport | PruneReport, path: Path) -> Path:
    return write_text_atomic(path, json.dumps(to_plain(report), indent=2, allow_nan=False) + "\n")


def read_report(path: Path) -> QuantReport | PruneReport:
    """A run folder's report.json (or the file itself) as its dataclass."""
    path = Path(path)
    if path.is_dir():
        path = path / "report.json"
    data = json.loads(path.read_text())
    cls = PruneReport if "method" in data else QuantReport
    try:
        return from_plain(cls, data)
    except (TypeError, KeyError) as e:
        raise ValueError(f"{path}: not a report written by this version of compress ({e})") from e


@dataclass
class Check:
    stage: str
    metric: str
    value: float
    tolerance: float | None  # None: informational
    passed: bool | None


@dataclass
class Int8Comparison:
    n: int
    source: str
    labelled: bool
    fp32_top1: float | None
    fp32_top5: float | None
    int8_top1: float | None
    int8_top5: float | None
    top1_drop: float | None  # points; negative: INT8 scored higher
    top1_agreement: float
    cosine: float
    sqnr_db: float
    disagreements: int  # images whose INT8 top-1 differs from FP32's
    agreement_ci95: tuple[float, float]  # Wilson interval, percent


@dataclass
class GraphAgreement:
    """An OpenVINO device's INT8 output against the NumPy run of the same IR (the graph's ideal semantics)."""

    device: str
    precision: str
    n: int
    max_abs: float
    sqnr_db: float
    top1_agreement: float
    disagreements: int
    layers: list[tuple[str, float]]  # per-layer SQNR of the device's taps against NumPy's, forward order
    worst_layer: str | None
    # the same graph run by NumPy in float32 against float64: how far arithmetic precision alone moves this
    # INT8 graph (values next to a FakeQuantize rounding threshold land one step away) - the yardstick
    graph_f32_sqnr_db: float | None = None


@dataclass
class IsaRow:
    """The INT8 IR run under one instruction set (ONEDNN_MAX_CPU_ISA in a subprocess of its own)."""

    isa: str  # oneDNN's name, e.g. AVX2, AVX512_CORE_VNNI, AVX512_CORE_AMX
    native: bool  # the run's own ISA (no variable imposed by the matrix)
    saturating: bool  # no int8 dot product (no VNNI): u8*s8 pairs are summed in int16 with saturation
    default_precision: str  # what the plugin runs the non-quantized ops in under this ISA
    kernels: dict[str, int]  # primitiveType of the executed convolutions and MatMuls -> count
    kernels_as_imposed: bool  # no kernel of a newer ISA ran (the variable really took effect)
    vs_graph: GraphAgreement  # f32 hint, against the NumPy run of the IR: the graph target
    vs_graph_default: GraphAgreement  # the same at this ISA's default precision
    vs_fp32: Int8Comparison  # INT8 at this ISA's default precision against FP32 (the run's own, f32 hint)
    seconds: float = 0.0

    @property
    def label(self) -> str:
        return f"{self.isa} (native)" if self.native else self.isa


@dataclass
class LayerSQNR:
    name: str
    int8_db: float  # INT8 IR activation vs the NumPy reference (float64)
    fp32_db: float  # FP32 IR activation vs the reference: shows the export itself is exact


@dataclass
class Timer:
    """Per-stage wall-clock seconds, as a report records them: call with a stage name when that stage ends."""

    times: dict[str, float] = field(default_factory=dict)
    start: float | None = None  # perf_counter of the first stage's start (default: now)

    def __post_init__(self) -> None:
        self._t = time.perf_counter() if self.start is None else self.start

    @classmethod
    def since(cls, start: float | None, stage: str) -> Timer:
        """A timer whose first stage, `stage`, began at `start` (a perf_counter value) and ends now; with no
        start, a timer starting now."""
        timer = cls(start=start)
        if start is not None:
            timer(stage)
        return timer

    def __call__(self, stage: str) -> None:
        now = time.perf_counter()
        self.times[stage] = round(self.times.get(stage, 0.0) + now - self._t, 2)
        self._t = now

"""The targets every report states: their bounds, their metrics (each with a stable id), judging a value against
one, and the likely cause of a miss, in words a user can act on. Targets are reported, not enforced: the exit
status is the checks'.

Pure Python (a report is read without torch or OpenVINO); the results it judges are the report's types.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from .runtime import SATURATING_LEVELS

if TYPE_CHECKING:  # the judged results: annotations only (compress.report imports this module)
    from .report import GraphAgreement, Int8Comparison, QuantReport
    from .runtime import RuntimeGraph
    from .settings import QuantSettings

# ------------------------------------------------------------------ bounds
# INT8 against FP32 on the run's validation data, at the device's default precision
TARGET_MAX_TOP1_DROP_PT = 0.3  # top-1 points (also --max-drop's default for accuracy control)
TARGET_MIN_AGREEMENT_PCT = 99.0  # top-1 agreement with FP32
TARGET_MIN_SQNR_DB = 28.0  # logit SQNR against FP32
# OpenVINO's INT8 run (f32 hint) against the NumPy run of the same IR: what the runtime adds to the graph
TARGET_MIN_GRAPH_SQNR_DB = 35.0
TARGET_MIN_GRAPH_AGREEMENT_PCT = 99.5
# The fast model (compress.prune --method structured --quantize): pruned INT8 against plain FP32 of the unpruned
# checkpoint, measured in the same run; its top-1 drop bound is TARGET_MAX_TOP1_DROP_PT
TARGET_FAST_MIN_LATENCY_X = 1.5  # batch 1, LATENCY hint
TARGET_FAST_MIN_FPS_BN_X = 2.0  # batch N (the speed section's --benchmark-batch), THROUGHPUT hint


# ------------------------------------------------------------------ metrics
Kind = Literal["int8", "graph", "qat", "fast"]


@dataclass(frozen=True)
class Metric:
    """What a target measures: `id` is its key in report.json (it never changes with a run's content), `label`
    the words the report prints, `kind` the family that decides how a miss is explained."""

    id: str
    label: str
    kind: Kind
    bound: float
    at_least: bool  # True: met when value >= bound; False: when value <= bound


INT8_DROP = Metric("int8_top1_drop", "INT8 vs FP32 top-1 drop (pt)", "int8", TARGET_MAX_TOP1_DROP_PT, False)
INT8_AGREEMENT = Metric("int8_top1_agreement", "INT8 vs FP32 top-1 agreement (%)", "int8", TARGET_MIN_AGREEMENT_PCT,
                        True)
INT8_SQNR = Metric("int8_sqnr", "INT8 vs FP32 logit SQNR (dB)", "int8", TARGET_MIN_SQNR_DB, True)
GRAPH_SQNR = Metric("graph_sqnr", "OpenVINO vs the IR's NumPy run: logit SQNR (dB)", "graph", TARGET_MIN_GRAPH_SQNR_DB,
                    True)
GRAPH_AGREEMENT = Metric("graph_top1_agreement", "OpenVINO vs the IR's NumPy run: top-1 agreement (%)", "graph",
                         TARGET_MIN_GRAPH_AGREEMENT_PCT, True)
# Reorders are left out: the plugin's layout choice moves one between compilations of one IR; an unfused
# FakeQuantize adds itself, not only Reorders
QAT_EXECUTED_NODES = Metric("qat_executed_nodes", "QAT IR executed nodes other than Reorder (bound: the PTQ IR's)",
                            "qat", float("nan"), False)  # the bound is the PTQ IR's own count, judged per run
FAST_DROP = Metric("fast_top1_drop", "top-1 drop against unpruned FP32 (pt)", "fast", TARGET_MAX_TOP1_DROP_PT, False)
FAST_LATENCY = Metric("fast_latency_x", "latency at batch 1 against unpruned plain FP32 (x)", "fast",
                      TARGET_FAST_MIN_LATENCY_X, True)
FAST_FPS_BN = Metric("fast_fps_bn_x", "throughput at batch N against unpruned plain FP32 (x)", "fast",
                     TARGET_FAST_MIN_FPS_BN_X, True)
METRICS = {m.id: m for m in (INT8_DROP, INT8_AGREEMENT, INT8_SQNR, GRAPH_SQNR, GRAPH_AGREEMENT, QAT_EXECUTED_NODES,
                             FAST_DROP, FAST_LATENCY, FAST_FPS_BN)}

STATES = {True: "met", False: "NOT MET", None: "not measured"}


@dataclass
class Target:
    """One target the report states, judged where it was measured: `value` against `bound`."""

    id: str  # Metric.id
    metric: str  # Metric.label: the words the report prints
    scope: str  # where: "this run (bf16)", "AVX2", "AVX512_CORE_AMX (native)"
    value: float | None  # None: not measured (e.g. no labels for a drop)
    bound: float
    at_least: bool
    met: bool | None
    cause: str | None = None  # when missed: the likely cause and what to try

    @classmethod
    def judge(cls, metric: Metric, scope: str, value: float | None, bound: float | None = None) -> Target:
        """`value` against the metric's bound (or `bound`, for a metric whose bound is measured in the run)."""
        bound = metric.bound if bound is None else bound
        met = None if value is None else (value >= bound if metric.at_least else value <= bound)
        return cls(metric.id, metric.label, scope, value, bound, metric.at_least, met)

    @property
    def kind(self) -> Kind:
        return METRICS[self.id].kind

    @property
    def state(self) -> str:
        """'met', 'NOT MET' or 'not measured'."""
        return STATES[self.met]

    @property
    def bound_text(self) -> str:
        return f"{'≥' if self.at_least else '≤'} {self.bound:g}"

    def __str__(self) -> str:
        value = "–" if self.value is None else f"{self.value:.2f}"
        return f"{self.scope}: {self.metric} {value} ({self.bound_text}) {self.state}"


# ------------------------------------------------------------------ the targets of a run
def int8_targets(cmp: Int8Comparison, scope: str) -> list[Target]:
    """INT8 against FP32: drop, agreement, SQNR."""
    return [Target.judge(INT8_DROP, scope, cmp.top1_drop), Target.judge(INT8_AGREEMENT, scope, cmp.top1_agreement),
            Target.judge(INT8_SQNR, scope, cmp.sqnr_db)]


def graph_targets(g: GraphAgreement, scope: str) -> list[Target]:
    """OpenVINO against the NumPy run of the same IR: SQNR, agreement."""
    return [Target.judge(GRAPH_SQNR, scope, g.sqnr_db), Target.judge(GRAPH_AGREEMENT, scope, g.top1_agreement)]


def qat_nodes_target(qat_ir: RuntimeGraph, ptq_ir: RuntimeGraph) -> Target:
    """QAT's IR must execute no more nodes than PTQ's: FakeQuantize placed where PTQ places none keeps the CPU
    plugin from fusions, which costs time the speed section would only show at some sizes."""
    t = Target.judge(QAT_EXECUTED_NODES, f"this run ({ptq_ir.precision})", qat_ir.executed - qat_ir.reorders,
                     ptq_ir.executed - ptq_ir.reorders)
    if t.met is False:
        extra = {k: v - ptq_ir.by_type.get(k, 0) for k, v in qat_ir.by_type.items()
                 if k != "Reorder" and v > ptq_ir.by_type.get(k, 0)}
        t.cause = ("the QAT IR holds FakeQuantize the CPU plugin does not fuse (more executed "
                   + ", ".join(f"{k} +{v}" for k, v in extra.items()) + f"; {qat_ir.reorders} Reorders against "
                   f"{ptq_ir.reorders}): compare the two IRs' executed nodes by type in the runtime table")
    return t


def fast_targets(unpruned_top1: float | None, source: str, n: int, int8: QuantReport) -> list[Target]:
    """The fast model's targets: pruned INT8 against the unpruned checkpoint (top-1 `unpruned_top1` on `n`
    images of `source`), top-1 on the same validation data and speed against its plain FP32 in the same run."""
    c = int8.int8_vs_fp32
    same = c.source == source and c.n == n
    drop = unpruned_top1 - c.int8_top1 if same and unpruned_top1 is not None and c.int8_top1 is not None else None
    out = [Target.judge(FAST_DROP, f"{c.source} ({c.n} images)", drop)]
    sp = int8.speed
    if sp is not None:
        q = sp.ratios(sp.rows[-1].label)
        out += [Target.judge(FAST_LATENCY, "LATENCY hint", q["latency"]),
                Target.judge(FAST_FPS_BN, f"batch {sp.batch}, THROUGHPUT hint", q["fps_bn"])]
    return out


# ------------------------------------------------------------------ why a target was missed
def blame(judged: list[Target], isa: str, settings: QuantSettings, f32_hint: Int8Comparison | None = None,
          floor: Int8Comparison | None = None) -> list[Target]:
    """`judged` (one scope's targets) with the likely cause written into each missed one; `f32_hint` is the same
    comparison at the f32 hint when the scope's own precision is lower (bf16), `floor` the FP32 IR's own run at
    that precision against f32."""
    graph_missed = any(t.met is False and t.kind == "graph" for t in judged)
    for t in judged:
        if t.met is False:
            t.cause = miss_cause(isa, settings, graph_missed, t, f32_hint, floor)
    return judged


def miss_cause(isa: str, settings: QuantSettings, graph_missed: bool, target: Target,
               f32_hint: Int8Comparison | None = None, floor: Int8Comparison | None = None) -> str:
    """The likely cause of a missed target on ISA `isa`, in words a user can act on."""
    if floor is not None and target.id in (INT8_AGREEMENT.id, INT8_SQNR.id):
        own = next(t for t in int8_targets(floor, "floor") if t.id == target.id)
        cause = miss_cause(isa, settings, graph_missed, target, f32_hint)
        return (f"the FP32 IR alone at the default precision scores {own.value:.2f} against its f32 run"
                + (f" ({floor.disagreements} differ)" if target.id == INT8_AGREEMENT.id else "")
                + ("; INT8 adds to that: " if own.met else ", already short of the target: ") + cause)
    if isa in SATURATING_LEVELS and graph_missed:
        if settings.overflow_fix != "enable":
            return (f"{isa} has no VNNI: int8 products are summed pairwise in int16 with saturation; quantize "
                    f"with --overflow-fix enable (7-bit weights cannot overflow; this IR: {settings.overflow_fix})")
        return f"{isa} has no VNNI and departs even with --overflow-fix enable: see tools.check_int8_ir"
    if target.kind == "graph" or graph_missed:
        return f"OpenVINO's {isa} int8 kernels depart from the IR's semantics (tools.check_int8_ir names the layers)"
    if f32_hint is not None:
        again = next(t for t in int8_targets(f32_hint, "f32 hint") if t.id == target.id)
        if again.met:
            return (f"the float ops at this ISA's default precision (bf16) add the rest: at the f32 hint it is "
                    f"{again.value:.2f}, met (deploy with INFERENCE_PRECISION_HINT=f32 to keep that)")
    return ("the quantization error of these settings (the runtime holds the graph target): try --accuracy-control, "
            "another --activation-range or a larger --ignored-scope (tools.sweep_quant compares them)")

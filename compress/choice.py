"""What to deploy on this CPU: the fastest artifact of a run whose accuracy holds its bound.

Every quantize and prune report ends with this line, and tools.frontier applies the same rule to many runs:

    choice = choose(speed, [Candidate("deploy FP32", "model_fp32.xml", 90.5), Candidate("INT8", "model_int8.xml",
                                                                                       90.4)])
    print(choice.line)

Candidates come simplest first (float before int8, unpruned before pruned). A later candidate replaces the choice
only when it is faster by FASTER_X: the geometric mean of its batch-1 latency and batch-N throughput ratios over the
choice, each measured in the same run (`pick`; the speed section gives medians of per-round ratios). A compression
that buys no measurable speed on this CPU is not deployed for nothing, and the line says so.

Pure Python: it reads reports (compress.report), as compress.targets does.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .targets import FAST_DROP, INT8_AGREEMENT, INT8_DROP

if TYPE_CHECKING:  # the reports it reads: annotations only (compress.report holds a Choice)
    from .report import PruneReport, QuantReport, SpeedReport

FASTER_X = 1.05  # a median speed ratio below this is "not faster here": rounds of one run move ratios by a few %


@dataclass
class Candidate:
    """An artifact a run wrote, as its speed row and its accuracy."""

    label: str  # its row in the speed section
    artifact: str  # the file to deploy (in the run folder)
    top1: float | None  # on the run's validation data; None: no labels
    miss: str | None = None  # the accuracy bound it misses, in words; None: it holds its bounds


@dataclass
class Choice:
    """The artifact to deploy, its speed against the plain baseline, and why each other candidate was not chosen."""

    label: str  # the speed section's row; the baseline when no candidate holds its accuracy bound
    artifact: str | None  # None: the user's model unchanged (no artifact of the run holds its bound)
    top1: float | None
    source: str  # the data top-1 is measured on
    latency_ms: float  # batch 1, median over the rounds
    fps_bn: float  # batch N, images/s, median over the rounds
    latency_x: float  # against the plain baseline (median of per-round ratios)
    fps_bn_x: float
    isa: str
    precision: str
    batch: int
    passed_over: list[str] = field(default_factory=list)

    @property
    def line(self) -> str:
        """One sentence: on this CPU, deploy this, at this speed and this accuracy (and why not the others)."""
        what = f"{self.artifact} ({self.label})" if self.artifact else f"the model unchanged ({self.label})"
        top1 = "" if self.top1 is None else f", top-1 {self.top1:.2f}% on {self.source}"
        line = (f"deploy on this CPU ({self.isa}, {self.precision}): {what}: {self.latency_ms:.2f} ms at batch 1 "
                f"({self.latency_x:.2f}x plain FP32), {self.fps_bn:.0f} images/s at batch {self.batch} "
                f"({self.fps_bn_x:.2f}x){top1}")
        return line + "".join(f"; {p}" for p in self.passed_over)


Speedup = Callable[[str, str], tuple[float, float]]  # (a, b) -> a's latency and batch-N throughput ratios over b


def pick(candidates: list[Candidate], speedup: Speedup, batch: int) -> tuple[Candidate | None, list[str]]:
    """The rule: the first candidate that holds its accuracy bound, replaced by a later one only when the geometric
    mean of its two speed ratios over the current choice reaches FASTER_X; and why each other one was passed over."""
    passed_over = [f"{c.label} ({c.artifact}) misses its accuracy bound: {c.miss}" for c in candidates if c.miss]
    best: Candidate | None = None
    for c in (c for c in candidates if c.miss is None):
        if best is None:
            best = c
            continue
        lat, fps = speedup(c.label, best.label)
        if math.sqrt(lat * fps) >= FASTER_X:
            passed_over.append(f"{best.label} is slower ({lat:.2f}x latency, {fps:.2f}x batch {batch} in "
                               f"{c.label}'s favour)")
            best = c
        else:
            passed_over.append(f"{c.label} ({c.artifact}) is not faster here ({lat:.2f}x latency, {fps:.2f}x batch "
                               f"{batch} against {best.label})")
    return best, passed_over


def choose(speed: SpeedReport, candidates: list[Candidate], source: str) -> Choice:
    """`pick` over the candidates the speed section timed, with the speed section's per-round ratios."""
    def speedup(a: str, b: str) -> tuple[float, float]:
        q = speed.ratios(a, b)
        return q["latency"], q["fps_bn"]

    timed = {r.label for r in speed.rows}
    best, passed_over = pick([c for c in candidates if c.label in timed], speedup, speed.batch)
    label = best.label if best is not None else speed.baseline
    row = speed.row(label)
    q = speed.ratios(label)
    return Choice(label, best.artifact if best else None, best.top1 if best else None, source,
                  statistics.median(row.latency_ms), statistics.median(row.fps_bn), q["latency"], q["fps_bn"],
                  speed.isa_short, speed.precision, speed.batch, passed_over)


def accuracy_miss(drop: float | None, drop_bound: float, agreement: float | None = None) -> str | None:
    """The accuracy bounds an artifact misses, in words: its top-1 drop (None: not judged) against `drop_bound`, and
    for an INT8 IR its top-1 agreement with its own FP32 IR."""
    misses = []
    if drop is not None and drop > drop_bound:
        misses.append(f"top-1 drop {drop:.2f} pt > {drop_bound:g}")
    if agreement is not None and agreement < INT8_AGREEMENT.bound:
        misses.append(f"agreement with FP32 {agreement:.2f}% < {INT8_AGREEMENT.bound:g}")
    return "; ".join(misses) or None


def quant_choice(report: QuantReport) -> Choice | None:
    """compress.quantize's line: the deploy FP32 IR, PTQ's IR beside QAT, the INT8 IR."""
    if report.speed is None:
        return None
    c = report.int8_vs_fp32
    # a prune job's INT8 stages name their rows "pruned ..."
    prefix = next((r.label.removesuffix("deploy FP32") for r in report.speed.rows if r.label.endswith("deploy FP32")),
                  "")
    candidates = [Candidate(f"{prefix}deploy FP32", "model_fp32.xml", c.fp32_top1)]
    if report.qat is not None:
        p = report.qat.ptq_vs_fp32
        candidates.append(Candidate(f"{prefix}INT8 PTQ", "model_int8_ptq.xml", p.int8_top1,
                                    accuracy_miss(p.top1_drop, INT8_DROP.bound, p.top1_agreement)))
    candidates.append(Candidate(f"{prefix}INT8", "model_int8.xml", c.int8_top1,
                                accuracy_miss(c.top1_drop, INT8_DROP.bound, c.top1_agreement)))
    return choose(report.speed, candidates, f"{c.source} ({c.n} images)")


def prune_choice(report: PruneReport) -> Choice | None:
    """compress.prune's line: the pruned FP32 IR and the pruned INT8 IR, each against the unpruned model's top-1
    (an artifact with no measured drop is not chosen: pruning's cost is unknown)."""
    speed = report.int8.speed if report.int8 is not None else report.speed
    if speed is None:
        return None
    a = report.accuracy

    def drop(top1: float | None) -> float | None:
        return None if a.unpruned_top1 is None or top1 is None else a.unpruned_top1 - top1

    def miss(d: float | None, agreement: float | None = None) -> str | None:
        if d is None:
            return "top-1 not measured (no labels): what pruning costs is unknown"
        return accuracy_miss(d, FAST_DROP.bound, agreement)

    candidates = [Candidate("pruned deploy FP32", "model_fp32.xml", a.pruned_ir_top1, miss(drop(a.pruned_ir_top1)))]
    if report.int8 is not None:
        c = report.int8.int8_vs_fp32
        d = drop(c.int8_top1) if c.source == a.source and c.n == a.n else None
        candidates.append(Candidate("pruned INT8", "model_int8.xml", c.int8_top1, miss(d, c.top1_agreement)))
    return choose(speed, candidates, f"{a.source} ({a.n} images)")

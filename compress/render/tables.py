"""Formatting shared by every report: numbers, Markdown tables, the speed section and its one-line verdict."""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any

from ..report import (
    UNSTABLE_SPREAD,
    Check,
    SpeedReport,
)
from ..runtime import RuntimeGraph


def fmt(v: Any, spec: str = ".2f") -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if isinstance(v, float):
        return format(v, spec)
    return str(v)


def md_table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(c) if not isinstance(c, str) else c for c in r) + " |" for r in rows]
    return "\n".join(lines)


def checks_table(checks: list[Check]) -> str:
    return md_table(["stage", "metric", "value", "tolerance", "pass"],
                    [[ch.stage, ch.metric, f"{ch.value:.2e}", fmt(ch.tolerance, ".0e"), fmt(ch.passed)]
                     for ch in checks])


def runtime_table(graphs: list[RuntimeGraph]) -> str:
    """Executed nodes by type [precision], one column per graph."""
    keys: list[str] = []
    for g in graphs:
        keys += [k for k in g.by_type_precision if k not in keys]
    rows = [[k, *(g.by_type_precision.get(k, 0) or "–" for g in graphs)] for k in keys]
    rows.append(["**executed nodes**", *(f"**{g.executed}**" for g in graphs)])
    rows.append(["**of which Reorders**", *(f"**{g.reorders}**" for g in graphs)])
    return md_table(["node [precision]", *(g.label for g in graphs)], rows)


def ratio_cell(q: dict[str, float], key: str) -> str:
    """A speed ratio of SpeedReport.ratios, with its rounds' spread when they disagree (unstable here)."""
    spread = q[f"{key}_spread"]
    return f"{q[key]:.2f}x" + (f" (±{spread / 2:.0%}: unstable here)" if spread > UNSTABLE_SPREAD else "")


def speed_section(sp: SpeedReport) -> list[str]:
    """report.md's speed section: the table, the ratios, and in plain words when a model is not faster here."""
    def cell(values: list[float], spec: str, best: float) -> str:
        return f"{statistics.median(values):{spec}} (best {best:{spec}})"

    rows = []
    for r in sp.rows:
        q = sp.ratios(r.label)
        rows.append([r.label, cell(r.latency_ms, ".2f", min(r.latency_ms)), cell(r.fps_b1, ".0f", max(r.fps_b1)),
                     cell(r.fps_bn, ".0f", max(r.fps_bn)),
                     *(ratio_cell(q, k) for k in ("latency", "fps_b1", "fps_bn"))])
    return ["## Speed on this machine", "",
            f"{sp.device}: {sp.isa_short} ({sp.isa}), {sp.cores} cores, OpenVINO {sp.openvino}, default precision "
            f"{sp.precision}. Medians of {sp.rounds} interleaved rounds of {sp.window_s:.2f} s per measurement (best "
            "of rounds in brackets); ratios are medians of per-round ratios against "
            f"{sp.baseline} (`ov.convert_model` of the unpruned checkpoint, the device's defaults), measured in the "
            "same run. Latency: batch 1, LATENCY hint; throughput: THROUGHPUT hint, images/s. A ratio whose rounds "
            f"disagree by more than {UNSTABLE_SPREAD:.0%} is marked unstable here: time it with "
            "`python -m tools.benchmark` before relying on it.", "",
            md_table(["model", "latency ms", "throughput b1", f"throughput b{sp.batch}", "latency vs plain",
                      "thr. b1 vs plain", f"thr. b{sp.batch} vs plain"], rows), "",
            *[f"- {verdict(sp, r.label)}" for r in sp.rows if r.label != sp.baseline], "",
            "![speed](speed.png)", ""]


def verdict(speed: SpeedReport, label: str) -> str:
    """One line a user can act on: the ratios, and when the model is not faster, what bounds it."""
    r = speed.ratios(label)
    line = (f"{label}: {r['latency']:.2f}x latency, {r['fps_b1']:.2f}x throughput at batch 1, {r['fps_bn']:.2f}x at "
            f"batch {speed.batch} vs {speed.baseline} on this CPU ({speed.isa_short}, default precision "
            f"{speed.precision})")
    if min(r["latency"], r["fps_b1"]) < 1.05:
        ref = next((k for k in speed.counters if k.endswith("deploy FP32") and k != label), None)
        counters = bound(speed, label, ref)
        line += "; not faster here at batch 1" + (f" ({counters})" if counters else "")
    shaky = speed.unstable(label)
    if shaky:
        line += f"; unstable here ({', '.join(shaky)}: the rounds disagree by more than {UNSTABLE_SPREAD:.0%})"
    return line


def bound(speed: SpeedReport, label: str, reference: str | None) -> str:
    """What the counters say bounds `label`: its op types that take the most time at batch 1, each beside the
    same op types in the `reference` model (ms, nodes)."""
    own, ref = speed.counters.get(label), speed.counters.get(reference or "", [])
    if not own:
        return ""

    def family(op: str) -> str:
        return op.split(" [")[0]

    ref_by = defaultdict(float)
    for o in ref:
        ref_by[family(o.op)] += o.ms
    parts = [f"{o.op} {o.ms:.2f} ms ({o.nodes} nodes)" + (f" vs {ref_by[family(o.op)]:.2f} in {reference}"
                                                          if family(o.op) in ref_by else "") for o in own[:3]]
    return f"counters at batch 1, {sum(o.ms for o in own):.2f} ms in all: {'; '.join(parts)}"

"""Formatting shared by every report: numbers, Markdown tables, the speed section with its one-line verdict and
where the time goes (compress.profile; tools.profile prints the same)."""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any

from ..choice import FASTER_X, Choice
from ..profile import Profile
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
            "![speed](speed.png)", "", *profiles_section(sp.profiles)]


def verdict(speed: SpeedReport, label: str) -> str:
    """One line a user can act on: the ratios, and when the model is not faster, what bounds it."""
    r = speed.ratios(label)
    line = (f"{label}: {r['latency']:.2f}x latency, {r['fps_b1']:.2f}x throughput at batch 1, {r['fps_bn']:.2f}x at "
            f"batch {speed.batch} vs {speed.baseline} on this CPU ({speed.isa_short}, default precision "
            f"{speed.precision})")
    if min(r["latency"], r["fps_b1"]) < FASTER_X:
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


# ------------------------------------------------------------------ where the time goes (compress.profile)
def profile_head(p: Profile) -> str:
    return (f"**{p.ir}** on {p.device} ({p.isa}), {p.precision}, batch 1, LATENCY hint, {p.runs} inferences: "
            f"{p.wall_ms:.2f} ms median; {p.nodes} executed nodes, {p.node_ms:.2f} ms by the counters; layout "
            f"{p.layout_nodes} nodes, {p.layout_ms:.2f} ms ({100 * p.layout_ms / max(p.node_ms, 1e-9):.0f}%); "
            f"{p.macs / 1e9:.3f} GMACs at the measured peak ("
            + ", ".join(f"{k} {v:.0f} GMAC/s" for k, v in p.peak_gmacs.items()) + f"): {p.bound_ms:.2f} ms.")


def profile_lines(p: Profile) -> list[str]:
    """One IR: its figures, its node types, its stages (int8 against float), the verdict."""
    types = md_table(["node type", "nodes", "ms", "µs a node"],
                     [[t.type, t.nodes, f"{t.ms:.3f}", f"{t.us_per_node:.1f}"] for t in p.by_type])
    return [profile_head(p), "", types, "", stage_table([p]), "", f"Verdict: {p.verdict}."]


def stage_table(profiles: list[Profile]) -> str:
    """Per stage of the network, each IR's int8 and float time (ms, nodes)."""
    stages = list(dict.fromkeys(s.stage for p in profiles for s in p.by_stage))
    cols = []
    for p in profiles:
        cols += [f"{p.ir}: int8 ms (nodes)", f"{p.ir}: float ms (nodes)"]
    rows = []
    for stage in stages:
        row = [stage]
        for p in profiles:
            s = next((s for s in p.by_stage if s.stage == stage), None)
            row += (["–", "–"] if s is None else
                    [f"{s.int8_ms:.3f} ({s.int8_nodes})", f"{s.float_ms:.3f} ({s.float_nodes})"])
        rows.append(row)
    return md_table(["stage", *cols], rows)


def profiles_section(profiles: list[Profile]) -> list[str]:
    """The speed section's profile: the IRs' node types side by side, their stages, and each one's verdict."""
    if not profiles:
        return []
    types = list(dict.fromkeys(t.type for p in profiles for t in p.by_type))
    rows = []
    for kind in types:
        row = [kind]
        for p in profiles:
            t = next((t for t in p.by_type if t.type == kind), None)
            row.append("–" if t is None else f"{t.nodes}, {t.ms:.3f} ms, {t.us_per_node:.0f} µs")
        rows.append(row)
    rows.append(["all executed", *(f"{p.nodes}, {p.node_ms:.3f} ms (wall {p.wall_ms:.2f})" for p in profiles)])
    rows.append(["of them layout", *(f"{p.layout_nodes}, {p.layout_ms:.3f} ms" for p in profiles)])
    return ["### Where the time goes (batch 1, performance counters)", "",
            md_table(["node type", *(f"{p.ir}: nodes, ms, µs a node" for p in profiles)], rows), "",
            stage_table(profiles), "", *[f"- {profile_head(p)} Verdict: {p.verdict}." for p in profiles], ""]


def deploy_line(choice: Choice | None) -> str:
    """The last line of every report and summary: what to deploy on this CPU (compress.choice)."""
    if choice is None:
        return "deploy: no choice made: speed not measured (--benchmark-seconds 0)"
    return choice.line


def deploy_section(choice: Choice | None) -> list[str]:
    return ["## What to deploy on this CPU", "", deploy_line(choice) + ".", ""]

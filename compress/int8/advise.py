"""Per-layer advice that acts: which quantized layers cost accuracy, which fixes keep the most of it, and the settings
that reproduce the best (compress.quantize --advise).

1. Sensitivity, measured on the IR without quantizing again. The INT8 IR's quantizers are grouped by the block
   branch their consumers belong to (`layers.i.blocks.j.attn`, `.mlp`, the block's own ops, the head). For each
   group, the logits' SQNR against the FP32 IR (both at the f32 hint, on the advice data) with only that group in
   float (its FakeQuantize nodes bypassed and its convolutions given the FP32 IR's weights), and with only that
   group quantized. The first says what a float fallback of the group would recover, the second what the group
   costs alone; groups are ranked by the first.
2. Candidates, each a QuantSettings (so one command line reproduces it): the inputs of fc2, proj and the gates'
   first FC equalised into the weights around them at two alphas (compress.int8.equalise: no node added),
   SmoothQuant at several alphas (NNCF's, with the transformer model type it needs), and float fallbacks of the 1,
   2, 4 and 8 most sensitive groups (an ignored-scope pattern each, appended to the settings' own).
3. The search: each candidate quantized by NNCF with the run's calibration data and judged on the advice data at the
   f32 hint (logit SQNR and top-1 agreement against FP32) and by its executed nodes, in order, until the time budget
   is spent. The best SQNR that keeps executed nodes within NODES_TOLERANCE of the settings' own IR and agreement no
   lower wins; none winning keeps the settings.

The advice data is never the data the report evaluates on: the proxy's selection crops, or the calibration images
for other checkpoints (compress.int8.stages picks it).
"""

from __future__ import annotations

import re
import shlex
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from .. import export as E
from ..loading import LoadedModel
from ..metrics import sqnr_db, top1_changes
from ..progress import Progress
from ..report import Advice, FixTried, Sensitivity
from ..runtime import NODE_COMPILES, runtime_graph
from ..settings import QuantSettings, ScopeEntry
from .steps import Calibration, quantize_deploy

EQUALISE_ALPHAS = (0.5, 0.75)  # compress.int8.equalise: no node added, so tried first
SMOOTH_QUANT_ALPHAS = (0.15, 0.3, 0.5)  # NNCF's convolution default is off; its MatMul default 0.95
FALLBACK_SIZES = (1, 2, 4, 8)  # float fallbacks of the most sensitive groups, the last resort
NODES_TOLERANCE = 0.02  # executed nodes a fix may add, against the settings' own INT8 IR
# at the f32 hint the CPU plugin picks AMX int8 convolution kernels from batch 16 up, and on the strided global
# key/value convolution they depart from the IR's semantics (docs/results/isa-matrix.md); below that, the kernels
# every batch-1 measurement of the report uses
RUN_BATCH = 8
_BLOCK = re.compile(r"layers\.(\d+)\.(\d+)(?:\.(attn|mlp))?[./]")
WEIGHTED = ("Convolution", "GroupConvolution", "MatMul")  # the op types whose input 1 is a weight


# ------------------------------------------------------------------ the IR's quantizer groups
def group_of(names: list[str]) -> str:
    """The block branch a quantizer serves, from its consumers' node names (module paths of the deploy graph)."""
    found = [m for n in names if (m := _BLOCK.search(n))]
    if found:
        branch = next((m for m in found if m[3]), found[0])
        return f"layers.{branch[1]}.blocks.{branch[2]}" + (f".{branch[3]}" if branch[3] else "")
    return "head" if any("head" in n for n in names) else "other"


def quantizer_groups(model: Any) -> dict[str, list[Any]]:
    """FakeQuantize nodes of an ov.Model by group, in graph order."""
    groups: dict[str, list[Any]] = defaultdict(list)
    for op in model.get_ordered_ops():
        if op.get_type_name() == "FakeQuantize":
            consumers = [t.get_node().get_friendly_name() for t in op.output(0).get_target_inputs()]
            groups[group_of(consumers)].append(op)
    return dict(groups)


def bypass(fq: Any) -> list[Any]:
    """The FakeQuantize's consumers read its input instead (it is gone from the function); returns them."""
    consumers = []
    for target in list(fq.output(0).get_target_inputs()):
        consumers.append(target.get_node())
        target.replace_source_output(fq.input_value(0))
    return consumers


def in_float(int8: Any, fp32: Any, groups: set[str]) -> Any:
    """A copy of the INT8 ov.Model with `groups` in float: their FakeQuantize nodes bypassed, and the weighted ops
    they feed given the FP32 model's weights (an INT8 IR's weights are int8 constants, not behind a FakeQuantize)."""
    import openvino as ov

    model = int8.clone()
    fp32_ops = {op.get_friendly_name(): op for op in fp32.get_ordered_ops()}
    for name, fqs in quantizer_groups(model).items():
        if name not in groups:
            continue
        for fq in fqs:
            for consumer in bypass(fq):
                twin = fp32_ops.get(consumer.get_friendly_name())
                if consumer.get_type_name() in WEIGHTED and twin is not None:
                    weight = twin.input_value(1).get_node()
                    if weight.get_type_name() == "Constant":
                        consumer.input(1).replace_source_output(
                            ov.opset13.constant(weight.get_data().copy()).output(0))
    model.validate_nodes_and_infer_types()
    return model


def sensitivity(int8_xml: Path, fp32_xml: Path, x: np.ndarray, fp32_logits: np.ndarray) -> list[Sensitivity]:
    """Each group in float alone and quantized alone, most sensitive (largest float-alone gain) first."""
    int8, fp32 = _read(int8_xml), _read(fp32_xml)  # read once; each variant is a copy
    counts = {k: len(v) for k, v in quantizer_groups(int8).items()}
    names = list(counts)
    out = []
    for name in Progress(names, desc="advice: sensitivity per layer group"):
        alone_float = run_f32(in_float(int8, fp32, {name}), x)
        alone_int8 = run_f32(in_float(int8, fp32, set(names) - {name}), x)
        out.append(Sensitivity(name, counts[name], round(sqnr_db(alone_float, fp32_logits), 3),
                               round(sqnr_db(alone_int8, fp32_logits), 3)))
    return sorted(out, key=lambda s: -s.float_only_db)


def run_f32(model: Any, x: np.ndarray) -> np.ndarray:
    """Logits of an ov.Model at the f32 hint, RUN_BATCH images a request."""
    import openvino as ov

    model.reshape([RUN_BATCH, *x.shape[1:]])
    compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    padded = np.concatenate([x, np.zeros((-len(x) % RUN_BATCH, *x.shape[1:]), x.dtype)])
    return np.concatenate([compiled({0: padded[i:i + RUN_BATCH]})[0]
                           for i in range(0, len(padded), RUN_BATCH)])[:len(x)]


# ------------------------------------------------------------------ candidates
def fallback_entry(group: str) -> ScopeEntry:
    """The ignored-scope pattern that keeps a group's ops in float (its node names carry layers.i.j[.branch])."""
    m = re.fullmatch(r"layers\.(\d+)\.blocks\.(\d+)(?:\.(attn|mlp))?", group)
    if m is None:
        return ScopeEntry("pattern", rf".*{re.escape(group)}[./].*")
    if m[3]:  # a branch: its modules' ops (layers.i.j.attn.qkvs.0/..., layers.i.j.attn/...)
        return ScopeEntry("pattern", rf".*\.layers\.{m[1]}\.{m[2]}\.{m[3]}[./].*")
    return ScopeEntry("pattern", rf".*\.layers\.{m[1]}\.{m[2]}/.*")  # the block's own ops: its norms and sums


def option_text(settings: QuantSettings, base: QuantSettings) -> str:
    """The command-line options that turn `base` into `settings`."""
    parts = []
    if settings.model_type != base.model_type:
        parts.append(f"--model-type {settings.model_type or 'none'}")
    if settings.equalise_alpha != base.equalise_alpha:
        parts.append(f"--equalise-alpha {settings.equalise_alpha:g}")
    if settings.smooth_quant_alpha != base.smooth_quant_alpha:
        parts.append(f"--smooth-quant-alpha {settings.smooth_quant_alpha:g}")
    if settings.ignored_scope != base.ignored_scope:
        parts += [f"--ignored-scope '{e}'" for e in settings.ignored_scope]
    return " ".join(parts)


def candidates(base: QuantSettings, ranked: list[str]) -> list[FixTried]:
    """The equalisations (compress.int8.equalise; unless the settings have one), SmoothQuant alphas, then
    float fallbacks of the most sensitive groups (`ranked`, most first)."""
    out = []
    for a in EQUALISE_ALPHAS if base.equalise_alpha is None else ():
        s = replace(base, equalise_alpha=a)
        out.append(FixTried(f"equalisation alpha {a:g}", s, option_text(s, base)))
    for a in SMOOTH_QUANT_ALPHAS:
        s = replace(base, model_type="transformer", smooth_quant_alpha=a)
        out.append(FixTried(f"SmoothQuant alpha {a:g}", s, option_text(s, base)))
    groups = [g for g in ranked if g != "other"]
    for n in FALLBACK_SIZES:
        if n > len(groups):
            break
        s = replace(base, ignored_scope=(*base.ignored_scope, *(fallback_entry(g) for g in groups[:n])))
        out.append(FixTried(f"float fallback of {', '.join(groups[:n])}", s, option_text(s, base)))
    return out


def plan(base: QuantSettings, worst_layers: list[str]) -> list[str]:
    """What --advise would try, named from the report's worst layers (no measurement)."""
    return [c.name for c in candidates(base, worst_layers)]


# ------------------------------------------------------------------ the search
def judge(c: FixTried, loaded: LoadedModel, exported: E.Exported, calibration: Calibration, x: np.ndarray,
          fp32_logits: np.ndarray, name: str) -> None:
    """Quantize with the candidate's settings (saved as `name` beside the FP32 IR) and measure it."""
    t = time.perf_counter()
    q = quantize_deploy(exported, calibration, c.settings, name=name, loaded=loaded)
    logits = run_f32(_read(q.xml), x)
    c.sqnr_db = round(sqnr_db(logits, fp32_logits), 3)
    c.agreement = round(100 * (1 - top1_changes(logits, fp32_logits) / len(x)), 3)
    c.executed = runtime_graph(q.xml, c.name, compiles=NODE_COMPILES).executed
    c.seconds = round(time.perf_counter() - t, 1)


def _read(xml: Path) -> Any:
    import openvino as ov

    return ov.Core().read_model(str(xml))


def search(loaded: LoadedModel, exported: E.Exported, calibration: Calibration, base: QuantSettings, int8_xml: Path,
           x: np.ndarray, data: str, budget_s: float) -> tuple[Advice, FixTried | None]:
    """The advice, and the candidate it keeps (None: no candidate beat the settings as given)."""
    t0 = time.perf_counter()
    fp32_logits = run_f32(_read(exported.fp32_xml), x)
    ranked = sensitivity(int8_xml, exported.fp32_xml, x, fp32_logits)
    logits = run_f32(_read(int8_xml), x)
    baseline = FixTried("the settings as given", base, "", round(sqnr_db(logits, fp32_logits), 3),
                        round(100 * (1 - top1_changes(logits, fp32_logits) / len(x)), 3),
                        runtime_graph(int8_xml, "baseline", compiles=NODE_COMPILES).executed, None, "baseline")
    tried = candidates(base, [s.group for s in ranked])
    scratch = int8_xml.with_name("advice_candidate.xml")
    for c in Progress(tried, desc="advice: candidates"):
        last = max((t.seconds for t in tried if t.seconds), default=0.0)  # a candidate costs about as much as one
        if time.perf_counter() - t0 + last > budget_s:
            break
        judge(c, loaded, exported, calibration, x, fp32_logits, scratch.name)
        c.verdict = verdict(c, baseline)
    for path in (scratch, scratch.with_suffix(".bin")):
        path.unlink(missing_ok=True)
    kept = [c for c in tried if c.verdict.startswith("+")]
    best = max(kept, key=lambda c: c.sqnr_db) if kept else None
    advice = Advice(data, budget_s, ranked, baseline, tried, best.name if best else baseline.name,
                    round(time.perf_counter() - t0, 1))
    return advice, best


def verdict(c: FixTried, baseline: FixTried) -> str:
    """A measured candidate against the settings as given: kept ("+N dB") only with more SQNR, no lower agreement
    and executed nodes within NODES_TOLERANCE."""
    if c.executed > baseline.executed * (1 + NODES_TOLERANCE):
        return f"more executed nodes ({c.executed} against {baseline.executed})"
    if c.agreement < baseline.agreement:
        return f"lower agreement ({c.agreement:.2f}% against {baseline.agreement:.2f}%)"
    if c.sqnr_db <= baseline.sqnr_db:
        return f"no gain ({c.sqnr_db:.2f} dB against {baseline.sqnr_db:.2f})"
    return f"+{c.sqnr_db - baseline.sqnr_db:.2f} dB"


def reproduce(command: str, options: str) -> str:
    """`command` without --advise (and its budget), with the chosen options."""
    words = shlex.split(command)
    out, skip = [], False
    for w in words:
        if skip:
            skip = False
            continue
        if w == "--advise" or w.startswith("--advise-seconds="):
            continue
        if w == "--advise-seconds":
            skip = True
            continue
        out.append(w)
    return " ".join([shlex.join(out), options]).strip()

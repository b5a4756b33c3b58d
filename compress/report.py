"""Run reports: dataclasses, serialised in one place (JSON without NaN/Inf: they become null) and read back
through the same types (tools.benchmark reads every run folder with `read_report`); Markdown helpers and
the per-layer SQNR plot.
"""

from __future__ import annotations

import json
import math
import platform
import statistics
import sys
import types
import typing
from dataclasses import dataclass, field, fields, is_dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from .atomic import write_text_atomic
from .pipeline import Check, GraphAgreement, Int8Comparison, LayerSQNR
from .runtime import RuntimeGraph
from .settings import QuantSettings, ScopeEntry

PACKAGES = ("torch", "numpy", "nncf", "openvino", "onnx", "onnxruntime", "scipy", "pillow")


def versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0], "platform": platform.platform(), "cpu": platform.processor()}
    for p in PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            out[p] = "not installed"
    return out


# ------------------------------------------------------------------ report types
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

    def row(self, label: str) -> SpeedRow:
        return next(r for r in self.rows if r.label == label)

    def ratios(self, label: str) -> dict[str, float]:
        """Median and best speed-ups against the baseline: latency base/own, throughput own/base. The median is
        of per-round ratios (both measured in the same round), robust to a machine that changes speed."""
        own, base = self.row(label), self.row(self.baseline)
        out: dict[str, float] = {}
        for key, a, b, invert in (("latency", own.latency_ms, base.latency_ms, True),
                                  ("fps_b1", own.fps_b1, base.fps_b1, False),
                                  ("fps_bn", own.fps_bn, base.fps_bn, False)):
            per_round = [(y / x) if invert else (x / y) for x, y in zip(a, b, strict=True)]
            out[key] = statistics.median(per_round)
            out[f"{key}_best"] = (min(b) / min(a)) if invert else (max(a) / max(b))
        return out


@dataclass
class DataPart:
    name: str
    n: int
    sha256_of_items: str
    skipped: int = 0


@dataclass
class AccuracyControl:
    max_drop_pt: float
    tuning: DataPart
    tuning_drop_pt: float | None  # on the part NNCF tuned on: optimistic
    heldout_drop_pt: float | None  # on the held-out part: the number to trust


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
    targets: dict[str, Any]
    runtime: list[RuntimeGraph]  # executed nodes of the FP32 and INT8 IRs at the device's default precision
    int8_runtime_vs_graph: list[GraphAgreement] = field(default_factory=list)  # OpenVINO vs reference_np.ir
    accuracy_control: AccuracyControl | None = None
    speed: SpeedReport | None = None  # None: skipped (--benchmark-seconds 0)
    seconds: dict[str, float] = field(default_factory=dict)
    file_bytes: dict[str, int] = field(default_factory=dict)

    kind = "quantize"


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
    macs: dict[str, float]
    params: dict[str, int]
    accuracy: dict[str, Any]
    numpy_float64_agreement: Check
    sizes: dict[str, int]
    layers: list[dict[str, Any]]
    finetune_loss: dict[str, float | None]
    nncf_pruning_statistic: dict[str, Any] | None = None
    int8: QuantReport | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    file_bytes: dict[str, int] = field(default_factory=dict)

    kind = "prune"


# ------------------------------------------------------------------ JSON, both ways
def to_plain(obj: Any) -> Any:
    """Dataclasses -> dicts, tuples -> lists, Paths -> str, NaN/Inf -> None (JSON has neither)."""
    if isinstance(obj, ScopeEntry):
        return str(obj)
    if is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_plain(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if hasattr(obj, "item") and callable(obj.item):  # NumPy scalars
        return to_plain(obj.item())
    return obj


def from_plain(tp: Any, data: Any) -> Any:
    """Rebuild a value of type `tp` (dataclasses, lists, tuples, dicts, optionals) from to_plain's output."""
    if data is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        for a in options:
            try:
                return from_plain(a, data)
            except (TypeError, ValueError, KeyError):
                continue
        return data
    if tp is ScopeEntry:
        return ScopeEntry.parse(data)
    if is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        kwargs = {f.name: from_plain(hints[f.name], data[f.name]) for f in fields(tp) if f.init and f.name in data}
        return tp(**kwargs)
    if origin is list:
        (arg,) = typing.get_args(tp)
        return [from_plain(arg, v) for v in data]
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(from_plain(args[0], v) for v in data)
        return tuple(from_plain(a, v) for a, v in zip(args, data, strict=True))
    if origin is dict:
        _, arg = typing.get_args(tp)
        return {k: from_plain(arg, v) for k, v in data.items()}
    if origin is typing.Literal:
        return data
    if tp in (float,) and isinstance(data, int):
        return float(data)
    return data


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


# ------------------------------------------------------------------ Markdown and plots
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


def runtime_table(graphs: list[RuntimeGraph]) -> str:
    """Executed nodes by type [precision], one column per graph."""
    keys: list[str] = []
    for g in graphs:
        keys += [k for k in g.by_type_precision if k not in keys]
    rows = [[k, *(g.by_type_precision.get(k, 0) or "–" for g in graphs)] for k in keys]
    rows.append(["**executed nodes**", *(f"**{g.executed}**" for g in graphs)])
    rows.append(["**of which Reorders**", *(f"**{g.reorders}**" for g in graphs)])
    return md_table(["node [precision]", *(g.label for g in graphs)], rows)


def plot_layers(layers: list[LayerSQNR], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    names = [d.name for d in layers]
    vals = [d.int8_db for d in layers]
    cap = 60.0  # layers left in float read ~130 dB; cap them so the quantized ones stay readable
    fig, ax = plt.subplots(figsize=(max(8, 0.28 * len(names)), 4.5))
    colors = ["#c0392b" if ("attn" in n) else "#2980b9" if n.endswith("mlp") else "#7f8c8d" for n in names]
    ax.bar(range(len(names)), [min(v, cap) for v in vals], color=colors)
    for i, v in enumerate(vals):
        if v > cap:
            ax.text(i, cap - 1, "float", rotation=90, ha="center", va="top", fontsize=7, color="white")
    ax.set_ylim(0, cap + 2 if max(vals) > cap else max(vals) + 5)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=90, fontsize=7)
    ax.set_ylabel("SQNR vs NumPy reference (dB)")
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(handles=[Patch(color="#c0392b", label="attention branch output"),
                       Patch(color="#2980b9", label="ConvFFN output"),
                       Patch(color="#7f8c8d", label="block / stem / features")], fontsize=8,
              loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)



def speed_section(sp: SpeedReport) -> list[str]:
    """report.md's speed section: the table, the ratios, and in plain words when a model is not faster here."""
    from .speed import verdict

    def cell(values: list[float], spec: str, best: float) -> str:
        return f"{statistics.median(values):{spec}} (best {best:{spec}})"

    rows = []
    for r in sp.rows:
        q = sp.ratios(r.label)
        rows.append([r.label, cell(r.latency_ms, ".2f", min(r.latency_ms)), cell(r.fps_b1, ".0f", max(r.fps_b1)),
                     cell(r.fps_bn, ".0f", max(r.fps_bn)), f"{q['latency']:.2f}x", f"{q['fps_b1']:.2f}x",
                     f"{q['fps_bn']:.2f}x"])
    return ["## Speed on this machine", "",
            f"{sp.device}: {sp.isa_short} ({sp.isa}), {sp.cores} cores, OpenVINO {sp.openvino}, default precision "
            f"{sp.precision}. Medians of {sp.rounds} interleaved rounds of {sp.window_s:.2f} s per measurement (best "
            "of rounds in brackets); ratios are medians of per-round ratios against "
            f"{sp.baseline} (`ov.convert_model` of the unpruned checkpoint, the device's defaults), measured in the "
            "same run. Latency: batch 1, LATENCY hint; throughput: THROUGHPUT hint, images/s.", "",
            md_table(["model", "latency ms", "throughput b1", f"throughput b{sp.batch}", "latency vs plain",
                      "thr. b1 vs plain", f"thr. b{sp.batch} vs plain"], rows), "",
            *[f"- {verdict(sp, r.label)}" for r in sp.rows if r.label != sp.baseline], "",
            "![speed](speed.png)", ""]


def plot_speed(sp: SpeedReport, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    others = [r.label for r in sp.rows if r.label != sp.baseline]
    keys = [("latency", "latency, batch 1"), ("fps_b1", "throughput, batch 1"),
            ("fps_bn", f"throughput, batch {sp.batch}")]
    fig, ax = plt.subplots(figsize=(7.5, 3.2))
    width = 0.8 / max(len(others), 1)
    for i, label in enumerate(others):
        q = sp.ratios(label)
        vals = [q[k] for k, _ in keys]
        pos = np.arange(len(keys)) + (i - (len(others) - 1) / 2) * width
        bars = ax.bar(pos, vals, width, label=label)
        ax.bar_label(bars, [f"{v:.2f}x" for v in vals], fontsize=7)
    ax.axhline(1.0, color="k", lw=0.8, ls="--")
    ax.set_xticks(range(len(keys)), [k[1] for k in keys])
    ax.set_ylabel(f"speed-up vs {sp.baseline}")
    ax.set_title(f"{title}: {sp.isa_short}, {sp.cores} cores, OpenVINO {sp.openvino}", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

"""The reports' plots (matplotlib, Agg): per-layer SQNR, the speed section, the QAT loss curve, kept channels per
block. compress.render writes the Markdown and calls these."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .report import LayerSQNR, PruneReport, Sensitivity, SpeedReport


def pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend (no display; the reports are files)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig: Any, path: Path, dpi: int = 110) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    pyplot().close(fig)


def plot_layers(layers: list[LayerSQNR], path: Path, title: str) -> None:
    plt = pyplot()
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
    save(fig, path)


def plot_speed(sp: SpeedReport, path: Path, title: str) -> None:
    plt = pyplot()
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
    save(fig, path)


def plot_loss(losses: list[float], path: Path, title: str) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot(range(1, len(losses) + 1), losses, lw=0.8, alpha=0.5, label="per step")
    k = max(1, len(losses) // 20)
    smooth = [sum(losses[max(0, i - k + 1):i + 1]) / len(losses[max(0, i - k + 1):i + 1]) for i in range(len(losses))]
    ax.plot(range(1, len(losses) + 1), smooth, lw=1.6, label=f"mean of {k}")
    ax.set(xlabel="step", ylabel="loss", title=title, yscale="log")  # noise ratios: decades matter
    ax.legend()
    save(fig, path)


def plot_pruning(rep: PruneReport, path: Path) -> None:
    """Kept fraction of each block's FFN hidden width, local channels and global heads."""
    plt = pyplot()
    rows = rep.layers
    xs = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(10, 4))
    for k, (key, color) in enumerate((("hidden", "#2980b9"), ("local", "#c0392b"), ("global_heads", "#27ae60"))):
        frac = [r[key][0] / r[key][1] if r[key][1] else np.nan for r in rows]
        ax.bar(xs + (k - 1) * 0.27, frac, 0.27, color=color, label={"hidden": "FFN hidden", "local": "local channels",
                                                                     "global_heads": "global heads"}[key])
    ax.set_xticks(xs)
    ax.set_xticklabels([r["block"].replace("layers.", "L").replace(".blocks.", ".b") for r in rows], fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("kept fraction")
    ax.set_title(f"{rep.title}: MACs −{rep.macs.reduction_pct:.1f}% (a removed block keeps 0)", fontsize=10)
    ax.legend(fontsize=8)
    save(fig, path)


def plot_advice(rows: list[Sensitivity], path: Path, title: str) -> None:
    """Per quantizer group: logit SQNR with it alone in float and with it alone quantized (compress.int8.advise)."""
    plt = pyplot()
    rows = sorted(rows, key=lambda r: r.group)
    xs = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(max(8, 0.3 * len(rows)), 4))
    ax.bar(xs - 0.2, [r.float_only_db for r in rows], 0.4, label="alone in float (the rest int8)", color="#2980b9")
    ax.bar(xs + 0.2, [r.quantized_only_db for r in rows], 0.4, label="alone quantized (the rest float)",
           color="#c0392b")
    ax.set_xticks(xs)
    ax.set_xticklabels([r.group.replace("layers.", "L").replace(".blocks.", ".b") for r in rows], rotation=90,
                       fontsize=7)
    low = min(min(r.float_only_db, r.quantized_only_db) for r in rows)
    ax.set_ylim(low - 3, max(max(r.float_only_db, r.quantized_only_db) for r in rows) + 1)
    ax.set_ylabel("logit SQNR against FP32 (dB)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    save(fig, path)

"""report.json, report.md and the per-layer SQNR plot for a compression run."""

from __future__ import annotations

import json
import platform
import sys
from dataclasses import asdict, is_dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("torch", "numpy", "nncf", "openvino", "onnx", "onnxruntime", "scipy", "pillow")


def versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0], "platform": platform.platform(), "cpu": platform.processor()}
    for p in PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            out[p] = "not installed"
    return out


def _plain(obj: Any) -> Any:
    if is_dataclass(obj):
        return _plain(asdict(obj))
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float) and obj in (float("inf"), float("-inf")):
        return str(obj)
    return obj


def write_json(report: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(_plain(report), indent=2) + "\n")


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


def plot_layers(layers: list[dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [d["name"] for d in layers]
    vals = [d["int8_db"] for d in layers]
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
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(color="#c0392b", label="attention branch output"),
                       Patch(color="#2980b9", label="ConvFFN output"),
                       Patch(color="#7f8c8d", label="block / stem / features")], fontsize=8,
              loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

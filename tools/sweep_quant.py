"""Measure INT8 settings side by side on one model, to choose compress.quantize's defaults for speed and
accuracy together.

    python -m tools.sweep_quant [--checkpoint proxy] [--input-size 64] [--latency-size 224] [-t 5] [--rounds 3]

Exports the deploy graph once, then for each setting: nncf.quantize, INT8 (at the device's default
precision, as deployed) vs FP32 on the held-out set (top-1 drop, agreement, logit SQNR), the worst
per-layer SQNR against the NumPy reference, the quantize time, the executed nodes and Reorders of the
INT8 runtime graph, with --isa-matrix the agreement under each imposed ISA (compress.isa), and benchmark_app
latency (the same settings applied to an export at --latency-size, since the proxy model's own 64 px input is
too small to show CPU kernel differences). Latencies are
measured after all quantizations, in --rounds alternating rounds together with the plain FP32 baseline
(`ov.convert_model` of the training form at the device default); the table gives medians and ratios.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from compress import export, isa, loading, metrics, verification
from compress.cli import configure_logging
from compress.data import Images, proxy
from compress.data.sources import resolve_source
from compress.evaluate.job import AS_DEPLOYED, F32, evaluate_openvino
from compress.int8 import ptq
from compress.int8 import steps as quantization
from compress.render import md_table
from compress.runtime import runtime_graph
from compress.settings import QuantSettings, ScopeEntry
from tools.bench_targets import Target
from tools.benchmark import measure


def _scope(*entries: str) -> tuple[ScopeEntry, ...]:
    return tuple(ScopeEntry.parse(e) for e in entries)


_STEM, _SDPA, _DW, _MVN = "pattern:.*stem.*", "type:ScaledDotProductAttention", "type:GroupConvolution", "type:MVN"
_MUL = "type:Multiply"
# Every row is built from one explicit base, so a row states every setting it depends on and never inherits
# the library's defaults (which moved after the sweep that chose them). The base is the sweep's starting point:
# global min/max ranges (NNCF's mean-of-per-sample ranges clip the input image), fast bias correction, no model
# type, everything int8.
BASE = QuantSettings(preset="performance", model_type=None, fast_bias_correction=True, activation_range="minmax",
                     ignored_scope=(), smooth_quant_alpha=None, equalise_alpha=None, subset_size=300,
                     overflow_fix="first_layer")
_HIST, _FULL_BC = {"activation_range": "histogram"}, {"fast_bias_correction": False}
_TF = {"model_type": "transformer"}


def _row(*scope: str, **changes: object) -> QuantSettings:
    return replace(BASE, ignored_scope=_scope(*scope), **changes)


SETTINGS: dict[str, QuantSettings] = {
    "NNCF defaults (mean min/max ranges)": _row(activation_range="mean_minmax"),
    "global min/max, everything int8": _row(),
    "+ float stem": _row(_STEM),
    "+ float stem, float attention (SDPA)": _row(_STEM, _SDPA),
    "+ float stem, SDPA, depthwise": _row(_STEM, _SDPA, _DW),
    "+ float stem, SDPA, MVN": _row(_STEM, _SDPA, _MVN),
    "+ float stem, SDPA, Multiply": _row(_STEM, _SDPA, _MUL),
    "float stem + SDPA, transformer type": _row(_STEM, _SDPA, **_TF),
    "float stem + SDPA, transformer, SmoothQuant 0.8": _row(_STEM, _SDPA, **_TF, smooth_quant_alpha=0.8),
    "float stem + SDPA, histogram ranges": _row(_STEM, _SDPA, **_HIST),
    "float stem + SDPA, full bias correction": _row(_STEM, _SDPA, **_FULL_BC),
    "float stem, SDPA, Multiply + histogram": _row(_STEM, _SDPA, _MUL, **_HIST),
    "float stem, SDPA, Multiply + full bias correction": _row(_STEM, _SDPA, _MUL, **_FULL_BC),
    "float stem, SDPA, Multiply + transformer, SmoothQuant 0.8": _row(_STEM, _SDPA, _MUL, **_TF,
                                                                      smooth_quant_alpha=0.8),
    "float stem, SDPA, Multiply + histogram + full bias correction": _row(_STEM, _SDPA, _MUL, **_HIST, **_FULL_BC),
    # the overflow fix (7-bit weights), which decides what CPUs without VNNI compute (--isa-matrix all)
    "float stem, SDPA, Multiply + histogram + full bias correction + overflow fix (default)":
        _row(_STEM, _SDPA, _MUL, **_HIST, **_FULL_BC, overflow_fix="enable"),
    "float stem, SDPA, Multiply + histogram + full bias correction, no overflow fix":
        _row(_STEM, _SDPA, _MUL, **_HIST, **_FULL_BC, overflow_fix="disable"),
    # the default with an int8 stem (the first convolution's input range from the normalised image,
    # per-channel weights as everywhere): kept only if it holds agreement >= 99.5% and drop <= 0.3 pt
    "int8 stem; SDPA, Multiply float + histogram + full bias correction": _row(_SDPA, _MUL, **_HIST, **_FULL_BC),
    # the inputs of fc2, proj and the gates' first FC equalised into the weights around them
    # (compress.int8.equalise), on the default
    **{f"default + equalisation {a:g}": _row(_STEM, _SDPA, _MUL, **_HIST, **_FULL_BC, overflow_fix="enable",
                                                     equalise_alpha=a) for a in (0.5, 0.75, 1.0)},
}


def _ir(label: str, xml: Path, precision: str, size: int) -> Target:
    return Target(label, "openvino", precision, str(xml), "sweep", size, macs=0)


def main(argv: list[str] | None = None) -> int:
    import openvino as ov

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="cloformer_xxs")
    ap.add_argument("--checkpoint", default="proxy")
    ap.add_argument("--input-size", type=int, default=None)
    ap.add_argument("--calib", default="sample")
    ap.add_argument("--val", default="proxy-val")
    ap.add_argument("--selection", type=int, default=0, metavar="N",
                    help="evaluate on N held-out crops per class drawn with another seed instead of --val, to "
                         "choose settings without tuning on the reported proxy-val (the README's choice: 200)")
    ap.add_argument("--latency-size", type=int, default=224, help="0: skip the latency column")
    ap.add_argument("-t", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3, help="alternating latency rounds (median)")
    ap.add_argument("--only", nargs="*", default=None, help="names of SETTINGS to run")
    ap.add_argument("--isa-matrix", default="none", metavar="{none,default,all,ISA[,ISA...]}",
                    help="also run each INT8 IR under these ISAs (compress.isa): OpenVINO against the IR's NumPy run "
                         "on 32 images and INT8 against FP32 on the evaluation set, per ISA (default: %(default)s)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    configure_logging(False)
    loaded = loading.load(args.model, args.checkpoint, args.input_size)
    big = loading.load(args.model, args.checkpoint, args.latency_size) if args.latency_size else None
    calib = quantization.calibration_data(resolve_source(args.calib, loaded.input_size).subset(300))
    calib_big = (quantization.calibration_data(resolve_source(args.calib, args.latency_size).subset(300))
                 if big else None)
    val_src = proxy.selection_source(loaded.input_size, args.selection) if args.selection else \
        resolve_source(args.val, loaded.input_size)
    val = Images.of(val_src)
    diag_x = val.xs[-32:]
    levels = isa.resolve(args.isa_matrix)
    rows, results, per_isa = [], {}, {}
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        (tmp / "s").mkdir()
        (tmp / "b").mkdir()
        exported = export.export(loaded, tmp / "s")
        fp32 = evaluate_openvino(exported.fp32_xml, val, F32, "fp32")
        timed: list[Target] = []
        if big:
            exported_big = export.export(big, tmp / "b")
            plain = tmp / "b" / "plain.xml"
            ov.save_model(export.convert_plain(big), str(plain), compress_to_fp16=False)
            timed = [_ir("plain FP32 default", plain, "default", args.latency_size),
                     _ir("deploy FP32 default", exported_big.fp32_xml, "default", args.latency_size)]
        for name, s in SETTINGS.items():
            if args.only and name not in args.only:
                continue
            t0 = time.perf_counter()
            q = ptq.quantize(quantization.quantize_source(exported, calib, s, loaded), calib, s)
            q_s = time.perf_counter() - t0
            export.save_deployable(q, tmp / "int8.xml")
            int8 = evaluate_openvino(tmp / "int8.xml", val, AS_DEPLOYED, name)  # as deployed
            c = metrics.compare_int8(fp32.logits, int8.logits, fp32.labels, val.name)
            worst = min(verification.diagnose(loaded, exported, q, diag_x), key=lambda d: d.int8_db)
            if levels:
                graph = verification.graph_run(tmp / "int8.xml", None, [], diag_x, tmp)
                per_isa[name] = isa.isa_matrix(tmp / "int8.xml", levels, graph.x, graph.logits, graph.f32_sqnr_db,
                                               val.xs, fp32.logits, fp32.labels, val.name)
            nodes = None
            if big:
                qb = ptq.quantize(quantization.quantize_source(exported_big, calib_big, s, big), calib_big, s)
                xml = tmp / f"int8b_{len(timed)}.xml"
                export.save_deployable(qb, xml)
                timed.append(_ir(name, xml, "int8", args.latency_size))
                nodes = runtime_graph(xml, name)
            results[name] = {"top1_drop": c.top1_drop, "agreement": c.top1_agreement, "sqnr_db": c.sqnr_db,
                             "worst_layer": worst.name, "worst_db": worst.int8_db, "quantize_s": q_s,
                             "fake_quantize": ptq.count_fake_quantize(q), "differ": c.disagreements,
                             "executed": nodes.executed if nodes else None,
                             "reorders": nodes.reorders if nodes else None}
            print(name, results[name], flush=True)
        measure(timed, args.rounds, args.t, "latency", "CPU", None)
        lat = {t.label: t.latency_ms for t in timed}
    base = lat.get("plain FP32 default", float("nan"))
    for name, r in results.items():
        r["latency_ms"] = lat.get(name, float("nan"))
        rows.append([name, f"{r['top1_drop']:+.2f}", f"{r['agreement']:.2f}", f"{r['differ']}/{len(val)}",
                     f"{r['sqnr_db']:.1f}", f"{r['worst_layer']} ({r['worst_db']:.1f})", r["fake_quantize"],
                     f"{r['quantize_s']:.0f}", *([f"{r['executed']} ({r['reorders']})", f"{r['latency_ms']:.2f}",
                                                  f"{base / r['latency_ms']:.2f}x"] if big else [])])
    print(f"\nFP32 top-1 {fp32.top1:.2f}% on {val.name} ({loaded.input_size}px)" + (
        f"; median latency at {args.latency_size}px over {args.rounds} alternating rounds: plain FP32 {base:.2f} ms, "
        f"deploy FP32 {lat['deploy FP32 default']:.2f} ms (device default precision)" if big else "") + "\n")
    print(md_table(["setting", "top-1 drop (pt)", "agreement %", "differ", "logit SQNR dB", "worst layer (dB)",
                    "FQ nodes", "quantize s", *(["executed nodes (Reorders)", f"INT8 ms @{args.latency_size}",
                                                 "vs plain FP32"] if big else [])], rows))
    if per_isa:
        print(f"\nEach INT8 IR under each ISA: OpenVINO (f32 hint) vs the IR's NumPy run on {len(diag_x)} images "
              f"(SQNR dB, agreement %); INT8 (the ISA's default precision) vs FP32 on {val.name} (agreement %, "
              "images that differ, SQNR dB)\n")
        print(md_table(["setting", *[f"{lv}{' (native)' if r.native else ''}" for lv, r in
                                      zip(levels, next(iter(per_isa.values())), strict=True)]],
                       [[name, *[f"graph {r.vs_graph.sqnr_db:.1f} dB {r.vs_graph.top1_agreement:.1f}%; FP32 "
                                 f"{r.vs_fp32.top1_agreement:.2f}% ({r.vs_fp32.disagreements}) "
                                 f"{r.vs_fp32.sqnr_db:.1f} dB"
                                 for r in matrix]] for name, matrix in per_isa.items()]))
        for name, matrix in per_isa.items():
            results[name]["isa"] = {r.isa: {"graph_sqnr_db": r.vs_graph.sqnr_db,
                                            "graph_agreement": r.vs_graph.top1_agreement,
                                            "agreement": r.vs_fp32.top1_agreement, "differ": r.vs_fp32.disagreements,
                                            "sqnr_db": r.vs_fp32.sqnr_db, "top1_drop": r.vs_fp32.top1_drop,
                                            "default_precision": r.default_precision, "kernels": r.kernels}
                                    for r in matrix}
    if args.json:
        args.json.write_text(json.dumps({"fp32_top1": fp32.top1, "plain_latency_ms": base, "settings": results},
                                        indent=2, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

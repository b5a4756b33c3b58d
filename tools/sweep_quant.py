"""Measure INT8 settings side by side on one model, to choose compress.quantize's defaults.

    python -m tools.sweep_quant [--checkpoint proxy] [--input-size 64] [--latency-size 224] [-t 5] [--rounds 3]

Exports the FP32 model once, then for each setting: nncf.quantize, INT8 vs FP32 on the held-out set
(top-1 drop, agreement, logit SQNR), the worst per-layer SQNR against the NumPy reference, the
quantize time, and benchmark_app latency (the same settings applied to an export at --latency-size,
since the proxy model's own 64 px input is too small to show CPU kernel differences). Latencies are
measured after all quantizations, in --rounds alternating rounds over the FP32 IR and every INT8 IR;
the table gives medians and the speed-up against true FP32 measured in the same rounds.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from compress import pipeline as P
from compress import proxy
from compress.data import resolve_source
from compress.evaluate import evaluate, openvino_predictor
from compress.report import md_table
from tools.benchmark import Target, measure

# Every row spells out what it changes against NNCF's own behaviour, so the table stays reproducible when the
# project default (compress.pipeline.QuantSettings) moves. _BASE: no transformer type, no SmoothQuant.
_BASE: dict = {"model_type": None, "smooth_quant_alpha": None}
_NONE: dict = {**_BASE, "ignored_types": [], "ignored_patterns": []}
_STEM = [".*patch_embed.*"]
_FLOAT3 = {**_BASE}  # global min/max, float stem + MVN + Multiply: QuantSettings' ignored scope
_MM = ["MVN", "Multiply", "MatMul"]
_TSQ = {"model_type": "transformer", "smooth_quant_alpha": 0.8}
_PROJ, _STAGE0_ATTN = r".*/attn/proj/.*", r".*layers\.0/blocks\.[01]/attn/.*"  # OpenVINO node-name regexes
SETTINGS: dict[str, P.QuantSettings] = {
    "NNCF defaults (performance, mean min/max, fast BC)": P.QuantSettings(activation_range="mean_minmax", **_NONE),
    "mixed, mean min/max, full BC": P.QuantSettings(preset="mixed", activation_range="mean_minmax",
                                                    fast_bias_correction=False, **_NONE),
    "global min/max": P.QuantSettings(**_NONE),
    "global min/max, transformer type": P.QuantSettings(**{**_NONE, "model_type": "transformer"}),
    "global min/max, float stem": P.QuantSettings(**{**_NONE, "ignored_patterns": _STEM}),
    "global min/max, float stem+MVN": P.QuantSettings(**{**_NONE, "ignored_types": ["MVN"], "ignored_patterns": _STEM}),
    "global min/max, float stem+MVN+Multiply (F3)": P.QuantSettings(**_FLOAT3),
    "F3 + mixed preset": P.QuantSettings(preset="mixed", **_FLOAT3),
    "F3 + full BC": P.QuantSettings(fast_bias_correction=False, **_FLOAT3),
    "F3 + float MatMul": P.QuantSettings(ignored_types=_MM, **_FLOAT3),
    "F3 + float MatMul, full BC": P.QuantSettings(ignored_types=_MM, fast_bias_correction=False, **_FLOAT3),
    "F3 + histogram ranges": P.QuantSettings(activation_range="histogram", **_FLOAT3),
    "F3, quantized stem": P.QuantSettings(ignored_patterns=[], **_FLOAT3),
    "F3 + stage-0 attention float": P.QuantSettings(ignored_patterns=[*_STEM, _STAGE0_ATTN], **_FLOAT3),
    "F3 + attention proj float": P.QuantSettings(ignored_patterns=[*_STEM, _PROJ], **_FLOAT3),
    "F3 + proj + stage-0 attention float": P.QuantSettings(ignored_patterns=[*_STEM, _PROJ, _STAGE0_ATTN], **_FLOAT3),
    "F3 + transformer type": P.QuantSettings(**{**_FLOAT3, "model_type": "transformer"}),
    "F3 + transformer type, SmoothQuant 0.8, proj float": P.QuantSettings(ignored_patterns=[*_STEM, _PROJ], **_TSQ),
    "F3 + transformer type, SmoothQuant 0.8 (default)": P.QuantSettings(**_TSQ),
}


def _ir(label: str, xml: Path, precision: str, size: int) -> Target:
    return Target(label, "openvino", precision, str(xml), "sweep", size, macs=0)


def main(argv: list[str] | None = None) -> int:
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
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    loaded = P.load(args.model, args.checkpoint, args.input_size)
    big = P.load(args.model, args.checkpoint, args.latency_size) if args.latency_size else None
    calib = P.calibration_data(resolve_source(args.calib, loaded.input_size), 300)
    calib_big = P.calibration_data(resolve_source(args.calib, args.latency_size), 300) if big else None
    val = proxy.selection_source(loaded.input_size, args.selection) if args.selection else \
        resolve_source(args.val, loaded.input_size)
    diag_x = np.stack([x for x, _ in val.subset(32, 1)])
    rows, results = [], {}
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        (tmp / "s").mkdir()
        (tmp / "b").mkdir()
        exported = P.export(loaded, tmp / "s")
        exported_big = P.export(big, tmp / "b") if big else None
        fp32 = evaluate(openvino_predictor(exported.fp32_xml, "CPU", "f32"), val, backend="fp32")
        # timed together at the end, in tools.benchmark's alternating rounds: FP32 twice, then every INT8 IR
        timed = [_ir("FP32 f32", exported_big.fp32_xml, "f32", args.latency_size),
                 _ir("FP32 default", exported_big.fp32_xml, "default", args.latency_size)] if big else []
        import openvino as ov

        for name, s in SETTINGS.items():
            if args.only and name not in args.only:
                continue
            t0 = time.perf_counter()
            q = P.quantize(exported.taps_model, calib, s)
            q_s = time.perf_counter() - t0
            ov.save_model(P.single_output(q), str(tmp / "int8.xml"), compress_to_fp16=False)
            int8 = evaluate(openvino_predictor(tmp / "int8.xml", "CPU", None), val, backend=name)  # as deployed
            c = P.compare_int8(fp32.logits, int8.logits, fp32.labels, val.name)
            layers = P.diagnose(loaded, exported, q, diag_x)
            worst = min(layers, key=lambda d: d.int8_db)
            if big:
                qb = P.quantize(exported_big.taps_model, calib_big, s)
                xml = tmp / f"int8b_{len(timed)}.xml"
                ov.save_model(P.single_output(qb), str(xml), compress_to_fp16=False)
                timed.append(_ir(name, xml, "int8", args.latency_size))
            results[name] = {"top1_drop": c.top1_drop, "agreement": c.top1_agreement, "sqnr_db": c.sqnr_db,
                             "worst_layer": worst.name, "worst_db": worst.int8_db, "quantize_s": q_s,
                             "fake_quantize": P.count_fake_quantize(q), "differ": c.disagreements}
            print(name, results[name], flush=True)
        measure(timed, args.rounds, args.t, "latency", "CPU", None)
        lat = {t.label: t.latency_ms for t in timed}
    base = lat.get("FP32 f32", float("nan"))
    for name, r in results.items():
        r["latency_ms"] = lat.get(name, float("nan"))
        rows.append([name, f"{r['top1_drop']:+.2f}", f"{r['agreement']:.2f}", f"{r['differ']}/{len(val)}",
                     f"{r['sqnr_db']:.1f}", f"{r['worst_layer']} ({r['worst_db']:.1f})", r["fake_quantize"],
                     f"{r['quantize_s']:.0f}", *([f"{r['latency_ms']:.2f}", f"{base / r['latency_ms']:.2f}x"]
                                                 if big else [])])
    print(f"\nFP32 top-1 {fp32.top1:.2f}% on {val.name} ({val.size}px)" + (
        f"; median latency at {args.latency_size}px over {args.rounds} alternating rounds: FP32 f32 {base:.2f} ms, "
        f"FP32 default {lat['FP32 default']:.2f} ms" if big else "") + "\n")
    print(md_table(["setting", "top-1 drop (pt)", "agreement %", "differ", "logit SQNR dB", "worst layer (dB)",
                    "FQ nodes", "quantize s", *([f"INT8 ms @{args.latency_size}", "vs FP32 f32"] if big else [])],
                   rows))
    if args.json:
        args.json.write_text(json.dumps({"fp32_top1": fp32.top1, "fp32_latency_ms": base,
                                         "bf16_latency_ms": lat.get("FP32 default"), "settings": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

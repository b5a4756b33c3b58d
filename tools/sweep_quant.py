"""Measure INT8 settings side by side on one model, to choose compress.quantize's defaults.

    python -m tools.sweep_quant [--checkpoint proxy] [--input-size 64] [--latency-size 224] [-t 5]

Exports the FP32 model once, then for each setting: nncf.quantize, INT8 vs FP32 on the held-out set
(top-1 drop, agreement, logit SQNR), the worst per-layer SQNR against the NumPy reference, the
quantize time, and benchmark_app latency (the same settings applied to an export at --latency-size,
since the proxy model's own 64 px input is too small to show CPU kernel differences).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from compress import pipeline as P
from compress.data import resolve_source
from compress.evaluate import evaluate, openvino_predictor
from compress.report import md_table
from tools.benchmark import benchmark_app_cmd, run_benchmark_app

_NONE: dict = {"ignored_types": [], "ignored_patterns": []}
_STEM = [".*patch_embed.*"]
SETTINGS: dict[str, P.QuantSettings] = {
    "NNCF defaults (performance, mean min/max, fast BC)": P.QuantSettings(activation_range="mean_minmax", **_NONE),
    "mixed, mean min/max, full BC": P.QuantSettings(preset="mixed", activation_range="mean_minmax",
                                                    fast_bias_correction=False, **_NONE),
    "global min/max": P.QuantSettings(**_NONE),
    "global min/max, transformer type": P.QuantSettings(model_type="transformer", **_NONE),
    "global min/max, float stem": P.QuantSettings(ignored_types=[], ignored_patterns=_STEM),
    "global min/max, float stem+MVN": P.QuantSettings(ignored_types=["MVN"], ignored_patterns=_STEM),
    "global min/max, float stem+MVN+Multiply (default)": P.QuantSettings(),
    "default + mixed preset": P.QuantSettings(preset="mixed"),
    "default + full BC": P.QuantSettings(fast_bias_correction=False),
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="cloformer_xxs")
    ap.add_argument("--checkpoint", default="proxy")
    ap.add_argument("--input-size", type=int, default=None)
    ap.add_argument("--calib", default="sample")
    ap.add_argument("--val", default="proxy-val")
    ap.add_argument("--latency-size", type=int, default=224, help="0: skip the latency column")
    ap.add_argument("-t", type=int, default=5)
    ap.add_argument("--only", nargs="*", default=None, help="names of SETTINGS to run")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    loaded = P.load(args.model, args.checkpoint, args.input_size)
    big = P.load(args.model, args.checkpoint, args.latency_size) if args.latency_size else None
    calib = P.calibration_data(resolve_source(args.calib, loaded.input_size), 300)
    calib_big = P.calibration_data(resolve_source(args.calib, args.latency_size), 300) if big else None
    val = resolve_source(args.val, loaded.input_size)
    diag_x = np.stack([x for x, _ in val.subset(32, 1)])
    rows, results = [], {}
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        (tmp / "s").mkdir()
        (tmp / "b").mkdir()
        exported = P.export(loaded, tmp / "s")
        exported_big = P.export(big, tmp / "b") if big else None
        fp32 = evaluate(openvino_predictor(exported.fp32_xml, "CPU", "f32"), val, backend="fp32")
        lat = {"f32": float("nan"), None: float("nan")}
        for prec in ("f32", None) if big else ():
            stats, _ = run_benchmark_app(benchmark_app_cmd(str(exported_big.fp32_xml), args.latency_size, args.t,
                                                           "latency", prec))
            lat[prec] = stats["median_ms"]
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
            stats = {"median_ms": float("nan")}
            if big:
                qb = P.quantize(exported_big.taps_model, calib_big, s)
                ov.save_model(P.single_output(qb), str(tmp / "int8b.xml"), compress_to_fp16=False)
                stats, _ = run_benchmark_app(benchmark_app_cmd(str(tmp / "int8b.xml"), args.latency_size, args.t,
                                                               "latency", None))
            results[name] = {"top1_drop": c.top1_drop, "agreement": c.top1_agreement, "sqnr_db": c.sqnr_db,
                             "worst_layer": worst.name, "worst_db": worst.int8_db, "quantize_s": q_s,
                             "fake_quantize": P.count_fake_quantize(q), "latency_ms": stats["median_ms"]}
            r = results[name]
            rows.append([name, f"{r['top1_drop']:+.2f}", f"{r['agreement']:.2f}", f"{r['sqnr_db']:.1f}",
                         f"{r['worst_layer']} ({r['worst_db']:.1f})", r["fake_quantize"], f"{r['quantize_s']:.0f}",
                         f"{r['latency_ms']:.2f}"])
            print(rows[-1], flush=True)
    print(f"\nFP32 top-1 {fp32.top1:.2f}% on {val.name} ({val.size}px); latency at {args.latency_size}px: "
          f"FP32 f32 {lat['f32']:.2f} ms, FP32 default {lat[None]:.2f} ms\n")
    print(md_table(["setting", "top-1 drop (pt)", "agreement %", "logit SQNR dB", "worst layer (dB)", "FQ nodes",
                    "quantize s", f"INT8 latency ms @{args.latency_size}"], rows))
    if args.json:
        args.json.write_text(json.dumps({"fp32_top1": fp32.top1, "fp32_latency_ms": lat["f32"],
                                         "bf16_latency_ms": lat[None], "settings": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

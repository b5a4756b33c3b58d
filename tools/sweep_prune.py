"""Speed of structured pruning at deployment size, side by side in one run, to choose compress.prune's default
--ratio and --round-to by measurement:

    python -m tools.sweep_prune [--input-size 224] [--ratios 0.3 0.45 0.6] [--round-to 8 16] [--head-ratio 0.45]
                               [--seconds 24]

For each (ratio, round_to) the proxy model is structured-pruned (importance from `sample` images), exported as the
deploy graph and quantized with the default ignored scope (min/max ranges and fast bias correction: the runtime
graph depends on where the quantizers are, not on their ranges; no fine-tuning: speed does not depend on the
weights' values). Every IR is then timed with the reports' speed section (compress.speed: batch-1 latency,
batch-1 and batch-N throughput, interleaved rounds) against plain FP32 of the unpruned model. Accuracy is not
measured here: it needs the distillation that compress.prune runs.
"""

from __future__ import annotations

import argparse
import copy
import tempfile
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import torch

from compress import export, loading
from compress.cli import configure_logging
from compress.data.sources import resolve_source
from compress.errors import InputError
from compress.int8 import ptq
from compress.int8 import steps as quantization
from compress.prune.structured import structured_prune
from compress.render import md_table
from compress.settings import QuantSettings
from compress.speed import BASELINE, measure_speed
from reference_np.macs import count_macs

FAST = QuantSettings(subset_size=16, activation_range="minmax", fast_bias_correction=True)


def int8_ir(loaded: loading.LoadedModel, folder: Path, calib: list[np.ndarray]) -> Path:

    folder.mkdir()
    exported = export.export(loaded, folder)
    q = ptq.quantize(exported.taps_model, calib, FAST)
    xml = folder / "model_int8.xml"
    export.save_deployable(q, xml)
    return xml


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input-size", type=int, default=224)
    ap.add_argument("--ratios", type=float, nargs="+", default=[0.25, 0.35, 0.45],
                    help="(with --round-to 8, XXS's one-head blocks refuse 0.5 and more: a ratio may not empty a "
                         "group; --head-ratio gives the heads their own)")
    ap.add_argument("--round-to", type=int, nargs="+", default=[8, 16])
    ap.add_argument("--head-ratio", type=float, default=None,
                    help="of the global heads (default: each ratio; 0.45 lets XXS go past 0.5)")
    ap.add_argument("--seconds", type=float, default=24.0, help="timing budget of the speed section")
    ap.add_argument("--batch", type=int, default=8, help="N of the batch-N throughput")
    args = ap.parse_args(argv)
    configure_logging(False)
    size = args.input_size
    base = loading.load("cloformer_xxs", "proxy", size)
    images = resolve_source("sample", size).subset(64)
    batches = [torch.from_numpy(np.stack([x for x, _ in images]))]
    calib = quantization.calibration_data(resolve_source("sample", size).subset(FAST.subset_size, 1))
    macs0 = count_macs(base.model.plan, size, size)["total"]
    models: dict[str, object] = {BASELINE: partial(export.convert_plain, base)}
    macs: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        models["INT8 (unpruned)"] = int8_ir(base, tmp / "unpruned", calib)
        macs["INT8 (unpruned)"] = 0.0
        for ratio in args.ratios:
            for round_to in args.round_to:
                label = f"pruned {ratio}{'' if args.head_ratio is None else f' (heads {args.head_ratio})'} " \
                        f"/{round_to} INT8"
                try:
                    model, _ = structured_prune(copy.deepcopy(base.model), base.variant, ratio, batches, round_to,
                                                args.head_ratio)
                except InputError as e:
                    print(f"{label}: refused ({e})", flush=True)
                    continue
                weights = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
                pruned = replace(base, checkpoint=label, model=model.eval(), weights=weights)
                models[label] = int8_ir(pruned, tmp / f"r{ratio}_{round_to}", calib)
                macs[label] = 100 * (1 - count_macs(model.plan, size, size)["total"] / macs0)
                print(f"{label}: MACs −{macs[label]:.1f}%", flush=True)
        sp = measure_speed(models, size, batch=args.batch, seconds=args.seconds)
    rows = []
    for label in list(models)[1:]:
        r = sp.ratios(label)
        row = sp.row(label)
        rows.append([label, f"−{macs[label]:.1f}%", f"{np.median(row.latency_ms):.2f}", f"{r['latency']:.2f}x",
                     f"{r['fps_b1']:.2f}x", f"{r['fps_bn']:.2f}x"])
    base_row = sp.row(BASELINE)
    print(f"\n{sp.isa_short}, OpenVINO {sp.openvino}, {sp.cores} cores, {size}x{size}, default precision "
          f"{sp.precision}; plain FP32 (unpruned) {np.median(base_row.latency_ms):.2f} ms; medians of "
          f"{sp.rounds} interleaved rounds of per-round ratios\n")
    print(md_table(["model", "MACs", "latency ms", "latency vs plain", "FPS b1 vs plain",
                    f"FPS b{args.batch} vs plain"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

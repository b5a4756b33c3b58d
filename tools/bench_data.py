"""Data-path benchmarks at ImageNet scale (issue targets, measured side by side in one run):

    python -m tools.bench_data [--ir outputs/RUN/model_int8.xml] [--images 2000] [--rounds 3]

1. `resolve_source` on a 50,000-file ImageNet-layout folder (1000 WordNet-id folders x 50 symlinks to one
   image): median seconds over --rounds (target <= 2 s), and the time to hash the 300 files a run uses.
2. End-to-end evaluation: `compress.evaluate`'s OpenVINO path (parallel decoding, AsyncInferQueue,
   THROUGHPUT hint) on a folder of --images JPEGs (500x375, the typical ILSVRC2012 validation size), in
   images/s, against `benchmark_app -hint throughput` on the same IR (the target: >= 0.7x), with uint8
   crops normalised inside the model (the default) and with float32 arrays normalised in Python, interleaved.
   Without --ir, the proxy model's deploy FP32 IR at 224 is exported into the temporary folder.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from compress import export, loading, runtime
from compress.data import imagenet_synsets
from compress.data.sources import resolve_source
from compress.evaluate.job import AS_DEPLOYED, OVRun, evaluate_openvino
from compress.runtime import cpu_isa
from tools.benchmark_app import benchmark_app_cmd, run_benchmark_app


def link_folder(root: Path, per_class: int = 50) -> Path:
    img = root / "one.JPEG"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (375, 500, 3), np.uint8)).save(img, quality=90)
    val = root / "val50k"
    for w in imagenet_synsets():
        (val / w).mkdir(parents=True)
        for i in range(per_class):
            os.symlink(img, val / w / f"ILSVRC2012_val_{w}_{i:02d}.JPEG")
    return val


def jpeg_folder(root: Path, n: int) -> Path:
    """n distinct 500x375 JPEGs (crops of the proxy photographs, so they compress like photographs)."""
    from compress.data import proxy

    out = root / "jpegs"
    out.mkdir()
    rng = np.random.default_rng(1)
    photos = proxy.photos()
    for i in range(n):
        img = photos[i % len(photos)]
        w, h = img.size
        x0, y0 = int(rng.integers(0, max(1, w - 300))), int(rng.integers(0, max(1, h - 225)))
        img.crop((x0, y0, min(w, x0 + 300), min(h, y0 + 225))).resize((500, 375), Image.BICUBIC).save(
            out / f"{i:05d}.JPEG", quality=90)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ir", type=Path, default=None, help="IR to evaluate (default: the proxy deploy FP32 IR at 224)")
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("-t", type=int, default=10, help="benchmark_app seconds")
    args = ap.parse_args(argv)
    print(f"CPU ISA: {cpu_isa()}; {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        val = link_folder(tmp)
        times, hash_times = [], []
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            src = resolve_source(val, 224)
            times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            src.subset(300).manifest()
            hash_times.append(time.perf_counter() - t0)
        print(f"resolve_source on {len(src):,} files: median {statistics.median(times):.2f} s "
              f"(rounds {', '.join(f'{t:.2f}' for t in times)}; target <= 2 s); hashing the 300 used: "
              f"{statistics.median(hash_times):.2f} s")
        ir = args.ir
        if ir is None:
            loaded = loading.load("cloformer_xxs", "proxy", 224)
            ir = export.export(loaded, tmp).fp32_xml
        size = int(runtime.compile_ov(ir, "CPU", None).input(0).get_shape()[-1])
        folder = jpeg_folder(tmp, args.images)
        rates, floats, fps = [], [], []
        for r in range(args.rounds):  # alternate the three measurements, medians of each
            for runs, how in ((rates, AS_DEPLOYED), (floats, OVRun(pixels=False))):
                res = evaluate_openvino(ir, resolve_source(folder, size), how, ir.name, progress=False)
                runs.append(res.images_per_s)
            stats, _ = run_benchmark_app(benchmark_app_cmd(str(ir), size, args.t, "throughput", None))
            fps.append(stats["throughput_fps"])
            print(f"  round {r + 1}: compress.evaluate {rates[-1]:.1f} images/s (uint8 crops), {floats[-1]:.1f} "
                  f"(float32 arrays); benchmark_app {fps[-1]:.1f} FPS")
        e2e, flt, ba = statistics.median(rates), statistics.median(floats), statistics.median(fps)
        print(f"end-to-end evaluation of {args.images} JPEGs (500x375 -> {size}), medians: uint8 crops normalised "
              f"in the model {e2e:.1f} images/s ({e2e / ba:.2f}x), float32 arrays {flt:.1f} ({flt / ba:.2f}x); "
              f"benchmark_app -hint throughput {ba:.1f} FPS (target >= 0.7x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

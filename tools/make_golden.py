"""Regenerate the golden-output fixtures under tests/golden/ FROM THE NUMPY REFERENCE ONLY.

    python -m tools.make_golden            # all variants
    python -m tools.make_golden --check    # recompute and compare with the files, write nothing

tests/golden/preprocess.npz holds a real photo crop and its evaluation transform at two sizes, made from PIL
and literal constants (preprocess_case). tests/golden/proxy_val.npz holds the shipped proxy checkpoint's float64
argmax and top-2 margin on each proxy-val image (proxy_case). tests/golden/input.npz holds the shared input
(float32 values, run in float64). Each tests/golden/<variant>.npz holds the seed that makes the weights
(reference_np.random_weights), the sha256 of those weights, the float64 logits, and the first TAP_CHANNELS
channels of every named intermediate (all of them, sliced, to keep the fixtures under 2 MB in all).

tests/golden/int8_cloformer_xxs.npz is the INT8 golden: the golden XXS weights at 64 px, quantized through
the pipeline (compress: deploy export, nncf.quantize with the default QuantSettings) on a fixed seeded
calibration set, then run by the NumPy IR executor (reference_np.ir, not OpenVINO) on the golden input.
It stores those INT8 logits and every FakeQuantize's ranges and levels (small), plus the NNCF/OpenVINO
versions that made them: an upgrade that changes INT8 numerics fails tests/compress/quantize/test_int8_golden.py loudly.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

import reference_np as rn
from compress.tolerances import GOLDEN_ATOL, INT8_FQ_RTOL, INT8_LOGIT_ATOL
from reference_np.specs import VARIANTS, plan_from_spec

GOLDEN_DIR = Path(__file__).resolve().parent.parent / "tests" / "golden"
GOLDEN_SHAPE = (2, 3, 64, 64)
WEIGHT_SEED = 20230330  # CloFormer's arXiv date; + variant index
INPUT_SEED = 7
TAP_CHANNELS = 2  # channels kept of each intermediate: tap[:, :TAP_CHANNELS]


def golden_input() -> np.ndarray:
    return np.random.default_rng(INPUT_SEED).standard_normal(GOLDEN_SHAPE).astype(np.float32)


def golden_weights(name: str) -> tuple[int, dict[str, np.ndarray]]:
    seed = WEIGHT_SEED + sorted(VARIANTS).index(name)
    return seed, rn.random_weights(plan_from_spec(VARIANTS[name]), seed)


def golden_case(name: str) -> dict[str, np.ndarray]:
    seed, w = golden_weights(name)
    logits, taps = rn.forward(w, golden_input().astype(np.float64), return_intermediates=True)
    case = {"weight_seed": np.array(seed), "weights_sha256": np.array(rn.weights_sha256(w)), "logits": logits}
    case.update({f"tap/{k}": v[:, :TAP_CHANNELS] for k, v in taps.items()})
    return case


# The preprocessing golden: a real photo (scikit-image's `chelsea`, 300x451, bundled with the package), a 200x150
# crop of it stored in the file, and what the evaluation transform must make of it, computed here from PIL and
# literal constants, not from compress.data: 64 px (shorter side 150 -> 73, a downscale) and 160 px (150 -> 182, an
# upscale), each a bicubic resize of the shorter side to int(size / 0.875) and a centre crop; the 64 px crop also
# normalised with timm's IMAGENET_DEFAULT_MEAN/STD written out.
PHOTO_ROWS, PHOTO_COLS = slice(40, 190), slice(100, 300)
PREPROCESS_SIZES = (64, 160)


def preprocess_case() -> dict[str, np.ndarray]:
    from PIL import Image
    from skimage import data as skdata

    photo = np.ascontiguousarray(skdata.chelsea()[PHOTO_ROWS, PHOTO_COLS])  # [150, 200, 3] uint8
    out: dict[str, np.ndarray] = {"photo": photo}
    h, w = photo.shape[:2]
    for size in PREPROCESS_SIZES:
        short = int(size / 0.875)
        new = (int(short * w / h), short) if h <= w else (short, int(short * h / w))
        resized = Image.fromarray(photo).resize(new, Image.BICUBIC)
        left, top = round((new[0] - size) / 2), round((new[1] - size) / 2)
        out[f"crop_{size}"] = np.asarray(resized.crop((left, top, left + size, top + size)))
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    out["x_64"] = ((out["crop_64"] / 255.0 - mean) / std).transpose(2, 0, 1)  # float64 [3, 64, 64]
    return out


def proxy_case() -> dict[str, np.ndarray]:
    """The shipped proxy checkpoint on proxy-val (800 images), run by the NumPy reference in float64: each image's
    label, argmax and margin (its best logit minus the runner-up). tests/compress/evaluate/test_proxy_model.py holds
    every image whose margin is above float32 noise to this argmax, so flips that cancel in the accuracy count still
    fail. The images come through compress's evaluation transform, which preprocess.npz pins on its own."""
    import cloformer
    from cloformer.registry import SHIPPED
    from compress.data.sources import resolve_source

    card = cloformer.model_card("proxy")
    w = rn.load_weights(SHIPPED["proxy"][1])
    logits, labels = [], []
    for x, y in resolve_source("proxy-val", card["input_size"]).batches(50):
        logits.append(rn.forward(w, x.astype(np.float64)))
        labels.append(np.asarray(y))
    z = np.concatenate(logits)
    top2 = -np.sort(-z, axis=1)[:, :2]
    return {"labels": np.concatenate(labels).astype(np.int64), "argmax": z.argmax(1).astype(np.int64),
            "margin": top2[:, 0] - top2[:, 1]}


INT8_VARIANT, INT8_SIZE, INT8_CALIB_SEED, INT8_CALIB_N = "cloformer_xxs", 64, 11, 32


def int8_calibration() -> list[np.ndarray]:
    """The fixed calibration set of the INT8 golden: seeded normal images in the normalised-input range."""
    rng = np.random.default_rng(INT8_CALIB_SEED)
    return [rng.standard_normal((1, 3, INT8_SIZE, INT8_SIZE)).astype(np.float32) for _ in range(INT8_CALIB_N)]


def fake_quantize_params(model) -> dict[str, np.ndarray]:
    """Every FakeQuantize of an ov.Model (sorted by name): names, levels, and the four ranges flattened with
    their offsets (per-tensor ranges have one value, per-channel ones C)."""
    rows = []
    for op in model.get_ops():
        if op.get_type_name() == "FakeQuantize":
            ranges = [op.input_value(i).get_node().get_data().astype(np.float64).ravel() for i in range(1, 5)]
            rows.append((op.get_friendly_name(), op.get_levels(), ranges))
    rows.sort(key=lambda r: r[0])
    sizes = np.array([len(r[2][0]) for r in rows])
    return {"fq_names": np.array([r[0] for r in rows]), "fq_levels": np.array([r[1] for r in rows]),
            "fq_offsets": np.concatenate([[0], np.cumsum(sizes)]),
            **{f"fq_{k}": np.concatenate([r[2][i] for r in rows])
               for i, k in enumerate(("input_low", "input_high", "output_low", "output_high"))}}


def int8_weight_params(model) -> dict[str, np.ndarray]:
    """Every int8 weight constant NNCF wrote (Constant i8 -> Convert -> Multiply by its scales), named by the op
    that consumes it (the constants' own names are generated anew each run), sorted: a sha256 of its bytes and
    shape, and its scales flattened with their offsets."""
    import hashlib

    rows = []
    for op in model.get_ops():
        if op.get_type_name() != "Constant" or op.get_element_type().get_type_name() not in ("i8", "u8"):
            continue
        node, scales = op, None
        while node.get_type_name() not in ("Convolution", "GroupConvolution", "MatMul"):
            node = next(iter(node.output(0).get_target_inputs())).get_node()
            if node.get_type_name() == "Multiply" and scales is None:
                scales = next(v.get_node() for v in node.input_values() if v.get_node().get_type_name() == "Constant")
        data = op.get_data()
        digest = hashlib.sha256(f"{data.dtype}{data.shape}".encode() + data.tobytes()).hexdigest()
        rows.append((node.get_friendly_name(), digest, scales.get_data().astype(np.float64).ravel()))
    rows.sort(key=lambda r: r[0])
    return {"w_names": np.array([r[0] for r in rows]), "w_sha256": np.array([r[1] for r in rows]),
            "w_offsets": np.concatenate([[0], np.cumsum([len(r[2]) for r in rows])]),
            "w_scales": np.concatenate([r[2] for r in rows])}


def quantize_golden(folder: Path):
    """(the quantized taps model, model_int8.xml) of the golden XXS weights, through the library's stages."""

    from compress import export, loading
    from compress.int8 import ptq
    from compress.settings import QuantSettings

    _, w = golden_weights(INT8_VARIANT)
    rn.save_weights(rn.cast_weights(w, np.float32), folder / "golden.safetensors")
    loaded = loading.load(INT8_VARIANT, folder / "golden.safetensors", INT8_SIZE)
    exported = export.export(loaded, folder)
    # No bias correction: NNCF computes it by running the model in OpenVINO float32 on this CPU, and kernels of
    # other ISAs sum in other orders, so the corrected biases (and through FakeQuantize thresholds, the logits:
    # 0.165 of 2.5 between an AVX-512 VNNI CPU and an AMX CPU, with identical ranges) depend on the machine.
    # Global min/max ranges, not the default histogram: the statistics are float32 activations of this CPU's
    # kernels, and the histogram's MSE search turns their last-digit differences into bin-sized steps (measured:
    # one quantizer 3.2% apart between AMX and imposed AVX2), where min/max ranges move by summation order alone
    # (1.1e-5, tolerances.INT8_FQ_RTOL). The int8 weights and their scales do not depend on the CPU at all.
    q = ptq.quantize(exported.taps_model, int8_calibration(),
                              QuantSettings(subset_size=INT8_CALIB_N, fast_bias_correction=None,
                                            activation_range="minmax"))
    xml = folder / "model_int8.xml"
    export.save_deployable(q, xml)
    return q, xml


def with_golden_ranges(model, gold: dict[str, np.ndarray]):
    """A copy of a quantized ov.Model whose FakeQuantize ranges are the golden's stored ones (matched by name):
    the re-quantized graph with the golden's numbers, so that running it reproduces the stored logits on a CPU
    whose float32 statistics moved the ranges within INT8_FQ_RTOL (a value next to a rounding threshold then
    lands one step away, which would move the logits far more than the ranges)."""
    import openvino as ov

    model = model.clone()
    fqs = {op.get_friendly_name(): op for op in model.get_ops() if op.get_type_name() == "FakeQuantize"}
    if sorted(fqs) != list(gold["fq_names"]):
        raise ValueError("the quantizers moved: the model's FakeQuantize names are not the golden's")
    off = gold["fq_offsets"]
    for j, name in enumerate(gold["fq_names"]):
        op = fqs[str(name)]
        for i, key in enumerate(("input_low", "input_high", "output_low", "output_high"), start=1):
            old = op.input_value(i).get_node()
            data = gold[f"fq_{key}"][off[j]:off[j + 1]].reshape(old.get_data().shape).astype(old.get_data().dtype)
            op.input(i).replace_source_output(ov.op.Constant(data).output(0))
    model.validate_nodes_and_infer_types()
    return model


def int8_case() -> dict[str, np.ndarray]:
    import tempfile
    from importlib import metadata

    from reference_np import ir

    with tempfile.TemporaryDirectory() as tmp:
        q, xml = quantize_golden(Path(tmp))
        graph = ir.load(xml)
        x = int8_input()
        logits = np.concatenate([graph(x[i:i + 1]) for i in range(len(x))])
    return {"input_seed": np.array(INPUT_SEED), "calib_seed": np.array(INT8_CALIB_SEED), "logits": logits,
            "versions": np.array([f"nncf {metadata.version('nncf')}", f"openvino {metadata.version('openvino')}"]),
            **fake_quantize_params(q), **int8_weight_params(q)}


def int8_input() -> np.ndarray:
    """The golden input at the INT8 golden's size (its first INT8_SIZE x INT8_SIZE)."""
    return golden_input()[:, :, :INT8_SIZE, :INT8_SIZE]


def compare(old: dict[str, np.ndarray], new: dict[str, np.ndarray], int8: bool = False) -> tuple[bool, str]:
    """Stored vs recomputed golden: float64 cases to GOLDEN_ATOL; the INT8 case's FakeQuantize ranges to
    INT8_FQ_RTOL and its NumPy-executor logits to INT8_LOGIT_ATOL (tolerances.py says why)."""
    if set(old) != set(new):
        return False, f"keys differ: {sorted(set(old) ^ set(new))}"
    same = all(np.array_equal(old[k], new[k]) for k in new if new[k].dtype.kind not in "f" and k != "versions")
    shapes = {k for k in new if old[k].shape != new[k].shape}
    if shapes:
        return False, f"shapes differ ({', '.join(sorted(shapes))}): the quantizers moved or the model changed"
    if not int8:
        diff = max(float(np.abs(old[k] - new[k]).max()) for k in new if new[k].dtype.kind == "f")
        return same and diff <= GOLDEN_ATOL, f"max |delta| {diff:.2e}, keys/sha {'match' if same else 'DIFFER'}"
    fq = max(float(np.max(np.abs(old[k] - new[k]) / np.maximum(np.abs(old[k]), 1e-12)))
             for k in new if k.startswith(("fq_", "w_")) and new[k].dtype.kind == "f")
    lg = float(np.abs(old["logits"] - new["logits"]).max())
    ok = same and fq <= INT8_FQ_RTOL and lg <= INT8_LOGIT_ATOL
    return ok, (f"FakeQuantize ranges and weight scales max rel delta {fq:.2e} (tol {INT8_FQ_RTOL:g}), logits max "
                f"|delta| {lg:.2e} (tol {INT8_LOGIT_ATOL:g}), names/levels/int8 weight digests "
                f"{'match' if same else 'DIFFER'}; stored by "
                f"{', '.join(map(str, old['versions']))}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=GOLDEN_DIR)
    ap.add_argument("--check", action="store_true", help="compare with existing files, write nothing")
    ap.add_argument("--int8", action=argparse.BooleanOptionalAction, default=True,
                    help="also the INT8 golden (quantizes with NNCF; --no-int8 to skip)")
    ap.add_argument("variants", nargs="*", default=sorted(VARIANTS))
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    bad = 0
    cases = [("input", {"input": golden_input()}), ("preprocess", preprocess_case()), ("proxy_val", proxy_case())]
    cases += [(n, golden_case(n)) for n in args.variants]
    if args.int8:
        cases.append((f"int8_{INT8_VARIANT}", int8_case()))
    for name, case in cases:
        path = args.out / f"{name}.npz"
        if args.check:
            with np.load(path) as old:
                ok, msg = compare({k: old[k] for k in old.files}, case, int8=name.startswith("int8_"))
            print(f"{name}: {msg}")
            bad += not ok
            continue
        if path.is_file():
            with np.load(path) as old:
                if compare({k: old[k] for k in old.files}, case, int8=name.startswith("int8_"))[0]:
                    print(f"{path}: unchanged")  # rewriting would only churn the zip's timestamps
                    continue
        tmp = path.with_name(path.stem + ".tmp.npz")
        np.savez_compressed(tmp, **case)
        os.replace(tmp, path)
        print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

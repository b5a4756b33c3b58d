"""compress.evaluate on IRs: OpenVINO's parallel requests agree with a serial run; the NumPy IR executor as a
backend."""

from __future__ import annotations

import numpy as np

from compress import evaluate
from compress.evaluate import job as ev


def test_evaluate_openvino_parallel_matches_serial(bad_files) -> None:
    """The AsyncInferQueue + worker-process path gives the same logits, in order, as one-by-one inference (on
    the FP32 IR in f32: int8 kernels may round differently under the throughput hint's streams)."""
    from compress.data.sources import resolve_source

    xml = bad_files["run"] / "model_fp32.xml"
    src = resolve_source("proxy-val", 32, limit=24)
    par = ev.evaluate_openvino(xml, src, ev.OVRun("CPU", "f32", 2), progress=False)
    ser = ev.evaluate(ev.openvino_predictor(xml, "CPU", "f32"), resolve_source("proxy-val", 32, 24),
                            progress=False)
    assert par.n == ser.n == 24 and np.array_equal(par.labels, ser.labels)
    assert np.abs(par.logits - ser.logits).max() <= 1e-5 * np.abs(ser.logits).max()
    assert par.top1 == ser.top1 == 100 * float(np.mean(ser.logits.argmax(1) == ser.labels))
    # the streamed source goes as uint8 crops, normalised inside the model (PrePostProcessor); the
    # float path (pixels=False) and the serial float path are the references
    flt = ev.evaluate_openvino(xml, resolve_source("proxy-val", 32, 24), ev.OVRun("CPU", "f32", 2,
                                                                                                   pixels=False),
                                       progress=False)
    assert np.abs(par.logits - flt.logits).max() <= 1e-5 * np.abs(flt.logits).max()  # normalised in f32 either way

def test_evaluate_an_ir_with_the_numpy_executor(bad_files, tmp_path) -> None:
    """--backend numpy runs an IR with reference_np.ir: same images, top-1 as OpenVINO's f32 run of the FP32 IR."""
    import json

    xml = bad_files["run"] / "model_fp32.xml"
    for backend in ("numpy", "openvino"):
        assert evaluate.main(["--checkpoint", str(xml), "--backend", backend, "--data", "proxy-val", "--limit", "12",
                              "--json", str(tmp_path / f"{backend}.json")]) == 0
    a, b = (json.loads((tmp_path / f"{k}.json").read_text()) for k in ("numpy", "openvino"))
    assert a["n"] == b["n"] == 12 and a["top1"] == b["top1"] and "NumPy" in a["backend"]

"""Every producer of a check can fail, and a failed check from any of them makes the command exit 1 through the
one exit rule (compress.cli.exit_status) and the report that holds it. Each row puts in a real departure: the
reference's weights and the graph's no longer the same function, or a graph whose images leak into each other."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import openvino as ov
import pytest
import torch

from cloformer import convffn
from compress import cli, export, loading
from compress import verification as V
from compress.data.sources import resolve_source
from compress.prune.job import numpy_agreement
from compress.report import Check, PruneReport, QuantReport

SIZE = 32


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> tuple[loading.LoadedModel, export.Exported, np.ndarray, Path]:
    loaded = loading.load("cloformer_xxs", "proxy", SIZE)
    folder = tmp_path_factory.mktemp("checks")
    x = np.stack([x for x, _ in resolve_source("proxy-val", SIZE).subset(4, seed=3)]).astype(np.float32)
    return loaded, export.export(loaded, folder), x, folder


def departed(loaded: loading.LoadedModel) -> loading.LoadedModel:
    """The weights the NumPy reference runs no longer those the exported graph and the torch model hold."""
    w = dict(loaded.weights)
    w["layers.0.blocks.0.mlp.fc2.bias"] = w["layers.0.blocks.0.mlp.fc2.bias"] + 0.5
    return replace(loaded, weights=w)


def batch_mixing_ir(path: Path) -> Path:
    """x + (x - mean over the batch): the identity at batch 1, not at a batch of different images."""
    import openvino.opset13 as ops

    p = ops.parameter([1, 3, SIZE, SIZE], np.float32, name="input")
    y = ops.add(p, ops.subtract(p, ops.reduce_mean(p, [0], True)))
    ov.save_model(ov.Model([y], [p], "mixing"), str(path), compress_to_fp16=False)
    return path


def fp32_twins(s) -> list[Check]:
    loaded, exported, x, _ = s
    return V.verify_fp32(departed(loaded), exported, x[:2])


def numpy_ir(s) -> list[Check]:
    loaded, exported, x, folder = s
    return V.numpy_ir_checks(departed(loaded), exported, x[:1], folder)


def static_batch_fp32(s) -> list[Check]:
    _, _, x, folder = s
    return [export.set_batch(batch_mixing_ir(folder / "mix32.xml"), 4, x)]


def static_batch_int8(s) -> list[Check]:  # the INT8 form of the check: an SQNR floor instead of FLOAT32_REL
    _, _, x, folder = s
    return [export.set_batch(batch_mixing_ir(folder / "mix8.xml"), 4, x, min_sqnr_db=30.0)]


def pruned_checkpoint(s, monkeypatch) -> list[Check]:
    loaded, _, x, _ = s
    orig = convffn.ConvFFN.forward
    monkeypatch.setattr(convffn.ConvFFN, "forward", lambda self, u: -orig(self, u))  # torch departs from NumPy
    return [numpy_agreement(loaded.weights, torch.from_numpy(V.float64_crop(x[:1])))]


PRODUCERS: dict[str, Callable[..., list[Check]]] = {
    "verification.verify_fp32": fp32_twins, "verification.numpy_ir_checks": numpy_ir,
    "export.set_batch (FP32)": static_batch_fp32, "export.set_batch (INT8)": static_batch_int8,
    "prune.job.numpy_agreement": pruned_checkpoint}


def reports(checks: list[Check]) -> dict[str, object]:
    """Each report a check of that kind lands in, as the real classes' failed_checks read it."""
    ok = Check("passing", "max|d|", 0.0, 1.0, True)
    quant = SimpleNamespace(fp32_checks=checks)
    quant.failed_checks = lambda: QuantReport.failed_checks(quant)
    out: dict[str, object] = {"quantize": quant}
    for name, own, int8 in (("prune", checks, None), ("prune (own check)", [], None),
                            ("prune --quantize", [], quant)):
        r = SimpleNamespace(numpy_float64_agreement=checks[0] if name == "prune (own check)" else ok, checks=own,
                            int8=int8)
        r.failed_checks = lambda r=r: PruneReport.failed_checks(r)
        out[name] = r
    return out


@pytest.mark.parametrize("producer", list(PRODUCERS))
def test_every_check_producer_can_fail_and_its_command_exits_1(setup, monkeypatch, capsys, tmp_path,
                                                              producer: str) -> None:
    fn = PRODUCERS[producer]
    checks = fn(setup, monkeypatch) if producer.startswith("prune") else fn(setup)
    failed = [c for c in checks if c.passed is False]
    assert failed, [(c.stage, c.value, c.tolerance) for c in checks]
    assert all(c.tolerance is not None for c in failed)  # informational rows never fail
    for name, report in reports(failed).items():
        assert cli.exit_status("cmd", report, tmp_path) == 1, name
        assert failed[0].stage in capsys.readouterr().err


def test_a_failed_int8_static_batch_check_names_the_default_precision(setup, monkeypatch) -> None:
    """Where the device runs FP32 IRs in another precision by default, a static batch that fails at the f32 hint
    is measured at that precision too and the check says what it gave (the batch-mixing IR departs in both)."""
    _, _, x, folder = setup
    monkeypatch.setattr(export, "default_precision", lambda: "bf16")
    check = export.set_batch(batch_mixing_ir(folder / "mix8d.xml"), 4, x, min_sqnr_db=30.0)
    said = re.search(r"at the default precision \(bf16\) (-?[\d.]+) dB$", check.stage)
    assert check.passed is False and said, check.stage
    assert float(said[1]) < 30.0  # the IR mixes images at any precision

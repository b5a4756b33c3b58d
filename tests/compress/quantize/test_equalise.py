"""compress.int8.equalise: the inputs of fc2, proj and the gates' first FC equalised into the weights around them are
the same function (float64 reference), flatten the channels they are meant to, add no node, and OpenVINO still
agrees with the NumPy run of the IR they give."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import reference_np as rn
from compress import export as E
from compress import loading
from compress import verification as V
from compress.data import Images, proxy
from compress.errors import InputError
from compress.int8 import equalise
from compress.int8.steps import Calibration, quantize_deploy
from compress.report import DataPart
from compress.runtime import runtime_graph
from compress.settings import QuantSettings
from compress.tolerances import EQ_GRAPH_MARGIN_DB, FLOAT64_ATOL

SIZE = 64  # the proxy's own size (at 32 px even the plain INT8 IR departs from its NumPy run on AMX)
FAST = QuantSettings(subset_size=16, activation_range="minmax", fast_bias_correction=True)


@pytest.fixture(scope="module")
def setup() -> tuple[loading.LoadedModel, list[np.ndarray], dict[str, np.ndarray]]:
    loaded = loading.load("cloformer_xxs", "proxy", SIZE)
    calib = [x[None] for x in Images.of(proxy.sample_source(SIZE).subset(16)).xs]
    return loaded, calib, equalise.input_ranges(loaded, calib)


def test_every_consumer_is_measured(setup) -> None:
    loaded, _, ranges = setup
    consumers = {k.removesuffix(".weight") for k in loaded.weights
                 if k.endswith(("mlp.fc2.weight", "attn.proj.weight", "act_block.0.weight"))}
    assert set(ranges) == consumers and len(consumers) == 3 * 12  # cloformer_xxs: 12 blocks, one local group each
    for c, a in ranges.items():
        assert a.shape == (loaded.weights[f"{c}.weight"].shape[1],) and np.all(a >= 0)


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_folding_is_the_same_function_in_float64(setup, alpha: float) -> None:
    """The float64 reference on the folded float64 weights gives the original model's logits and intermediates:
    the scale leaves dwconv's output and comes back in fc2, which nothing non-linear separates."""
    loaded, calib, ranges = setup
    w64 = {k: v.astype(np.float64) for k, v in loaded.weights.items()}
    folded = equalise.fold_weights(w64, ranges, alpha, np.float64)
    changed = {k for k in w64 if not np.array_equal(folded[k], w64[k])}
    producers = {f"{p}.{t}" for c in ranges for p, _ in equalise.producers(w64, c) for t in ("weight", "bias")}
    assert changed == producers | {f"{c}.weight" for c in ranges}  # nothing else
    x = np.concatenate(calib[:2]).astype(np.float64)
    want, want_acts = rn.forward(w64, x, return_intermediates=True)
    got, got_acts = rn.forward(folded, x, return_intermediates=True)
    assert np.max(np.abs(got - want)) <= FLOAT64_ATOL
    assert got_acts.keys() == want_acts.keys()
    for name, a in want_acts.items():  # every branch and block output: the scales cancel inside each branch
        assert np.max(np.abs(got_acts[name] - a)) <= FLOAT64_ATOL, name


def test_alpha_one_gives_every_channel_the_same_range(setup) -> None:
    """At alpha 1 the scales are the activation's own ranges: after folding, every live channel of each consumer's
    input (fc2, proj, each gate's first FC) has the same largest |value| on the calibration images (float32 rounding
    aside), where before the largest channel was many times the median."""
    loaded, calib, before = setup
    after = equalise.input_ranges(equalise.fold(loaded, calib, 1.0), calib)
    spreads = []
    for b, a in after.items():
        live = before[b] > 1e-5
        spreads.append(float(np.max(before[b][live]) / np.median(before[b][live])))
        assert np.max(a[live]) / np.min(a[live]) == pytest.approx(1.0, abs=1e-4), b
    assert max(spreads) > 5  # what is being equalised: the channels of some block differ more than 5-fold


def test_alpha_outside_the_unit_interval_is_refused() -> None:
    with pytest.raises(InputError, match="equalise_alpha must be in"):
        QuantSettings(equalise_alpha=1.5)


def test_the_equalised_int8_ir_adds_no_node_and_openvino_runs_it_as_the_plain_one(setup, tmp_path: Path) -> None:
    """Quantized with the equalisation, the IR has as many FakeQuantize and executed nodes as without, and OpenVINO
    (f32 hint) agrees with the NumPy run of it no worse than with the NumPy run of the plain IR, measured in the same
    run (the yardstick: what this CPU's int8 kernels do to this graph), less EQ_GRAPH_MARGIN_DB."""
    loaded, calib, _ = setup
    exported = E.export(loaded, tmp_path)
    cal = Calibration(calib, DataPart("sample", len(calib), ""), [])
    x = Images.of(proxy.val_source(SIZE).subset(16)).xs
    got = {}
    for name, settings in (("plain", FAST), ("eq", replace(FAST, equalise_alpha=0.5))):
        q = quantize_deploy(exported, cal, settings, name=f"{name}.xml", loaded=loaded)
        graph = V.graph_run(q.xml, None, [], x, tmp_path)
        got[name] = (q.fake_quantize, runtime_graph(q.xml).executed,
                     V.runtime_vs_graph(graph, q.xml, None, "CPU", "f32").sqnr_db)
    assert got["eq"][:2] == got["plain"][:2]
    assert got["eq"][2] >= got["plain"][2] - EQ_GRAPH_MARGIN_DB, got
    with pytest.raises(ValueError, match="pass the loaded model"):
        quantize_deploy(exported, cal, QuantSettings(equalise_alpha=0.5), name="x.xml")

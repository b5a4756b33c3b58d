"""The shipped proxy checkpoint: its model card, and exact reproduction of the card's held-out accuracy
by torch and by the NumPy reference."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

import cloformer
import reference_np as rn
from cloformer.registry import SHIPPED
from compress import evaluate
from compress.data.sources import resolve_source
from compress.evaluate import job as ev
from compress.tolerances import FLOAT32_REL
from tools.make_golden import GOLDEN_DIR

CARD = cloformer.model_card("proxy")


def test_model_card_fields_and_hashes() -> None:
    for key in ("input_size", "num_classes", "heldout_top1", "heldout_top5", "sha256", "training",
                "classes", "task", "heldout_n"):
        assert key in CARD, key
    path = SHIPPED["proxy"][1]
    assert path.stat().st_size <= 20 * 1024 * 1024
    assert rn.weights_sha256(rn.load_weights(path)) == CARD["sha256"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == CARD["file_sha256"]
    assert CARD["num_classes"] == len(CARD["classes"]) == 16 and CARD["input_size"] % 32 == 0
    assert CARD["heldout_top1"] > 5 * 100 / CARD["num_classes"]  # far above chance


def test_create_model_proxy() -> None:
    model = cloformer.create_model("cloformer_xxs", checkpoint="proxy")
    assert model.num_classes == 16 and model.pretrained_cfg["input_size"] == (3, 64, 64)


@pytest.fixture(scope="module")
def proxy_val():
    return resolve_source("proxy-val", CARD["input_size"])


def near_ties(logits: np.ndarray, labels: np.ndarray, k: int, eps: float) -> int:
    """Images whose top-k hit could flip under a logit perturbation of at most eps: the label's logit lies
    within eps of the best logit it must beat (the k-th largest of the other classes)."""
    others = np.where(np.eye(logits.shape[1], dtype=bool)[labels], -np.inf, logits)
    kth = -np.sort(-others, axis=1)[:, k - 1]
    return int(np.sum(np.abs(logits[np.arange(len(labels)), labels] - kth) <= eps))


@pytest.mark.parametrize("backend", ["torch", "numpy"])
@pytest.mark.isa_bound
def test_heldout_accuracy_reproduced(proxy_val, backend: str) -> None:
    """The card's accuracy as image counts, and every image's prediction as the float64 NumPy reference's
    (tests/golden/proxy_val.npz, by tools/make_golden.py). Float32 summation order differs between CPUs (AVX2,
    AVX-512), so an image may change only where its margin is within float32 noise (FLOAT32_REL x max |logit|
    on each of the two logits); every other image must score exactly as the reference."""
    predict, size = ev.load_predictor("proxy", backend=backend)
    assert size == CARD["input_size"]
    res = ev.evaluate(predict, proxy_val, backend=backend, progress=False)
    assert res.n == CARD["heldout_n"] == 800
    eps = FLOAT32_REL * float(np.abs(res.logits).max())
    with np.load(GOLDEN_DIR / "proxy_val.npz") as gold:
        assert np.array_equal(res.labels, gold["labels"]), "proxy-val's images or their order changed"
        decided = gold["margin"] > 2 * eps
        moved = np.flatnonzero(decided & (res.logits.argmax(1) != gold["argmax"]))
        assert moved.size == 0, f"{moved.size} images predicted otherwise than the reference: {moved[:10].tolist()}"
        assert decided.mean() >= 0.95, f"only {decided.mean():.1%} of images outside float32 noise: margin too wide"
    for k, got, card in ((1, res.top1, CARD["heldout_top1"]), (5, res.top5, CARD["heldout_top5"])):
        hits, card_hits = round(got * res.n / 100), round(card * res.n / 100)
        assert abs(hits - card_hits) <= near_ties(res.logits, res.labels, k, eps), (k, hits, card_hits)


def test_evaluate_cli_json(tmp_path) -> None:
    out = tmp_path / "e.json"
    assert evaluate.main(["--checkpoint", "proxy", "--data", "proxy-val", "--limit", "64", "--json", str(out)]) == 0
    d = json.loads(out.read_text())
    assert d["n"] == 64 and {"top1", "top5", "n"} <= set(d) and 0 <= d["top1"] <= 100


def test_evaluate_cli_bad_data(tmp_path, capsys) -> None:
    assert evaluate.main(["--checkpoint", "proxy", "--data", str(tmp_path / "missing")]) == 2
    assert "not found" in capsys.readouterr().err


@pytest.mark.isa_bound
def test_numpy_and_torch_logits_agree_on_proxy(proxy_val) -> None:
    x = np.stack([x for x, _ in proxy_val.subset(8)])
    t, _ = ev.load_predictor("proxy", backend="torch")
    n, _ = ev.load_predictor("proxy", backend="numpy")
    a, b = t(x), n(x)
    assert np.abs(a - b).max() <= 1e-4 * np.abs(b).max()

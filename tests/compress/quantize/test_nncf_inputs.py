"""What NNCF receives, seen by a spy on nncf's own entry points (the job's code path unchanged up to the call):
calibration arrays normalised with the published ImageNet constants from whole uint8 pixels, and bias correction
on, in plain PTQ and in accuracy control. The spy stops the job there: nothing after quantization is the subject."""

from __future__ import annotations

import nncf
import numpy as np
import pytest

from compress import quantize

# written out, not imported from the code under test
MEAN = np.array([0.485, 0.456, 0.406])[:, None, None]
STD = np.array([0.229, 0.224, 0.225])[:, None, None]
SIZE, N_CALIB = 32, 8
ARGS = ["--input-size", str(SIZE), "--subset-size", str(N_CALIB), "--val-limit", "32", "--isa-matrix", "none",
        "--benchmark-seconds", "0"]


class Seen(Exception):
    """Raised by the spy once it has recorded the call."""


def pixels(x: np.ndarray) -> np.ndarray:
    """The uint8 pixel values a normalised image came from (float64 arithmetic)."""
    return (x.astype(np.float64) * STD + MEAN) * 255


def assert_golden_normalised(arrays: list[np.ndarray]) -> None:
    for x in arrays:
        assert x.shape == (1, 3, SIZE, SIZE) and x.dtype == np.float32
        p = pixels(x[0])
        # float32 rounding of values up to 2.7 moves a pixel by < 1e-4; another mean, std or scale by far more
        assert np.abs(p - np.rint(p)).max() < 1e-3 and p.min() > -1e-3 and p.max() < 255 + 1e-3
    assert len({x.tobytes() for x in arrays}) == len(arrays)  # distinct images


@pytest.fixture
def calls(monkeypatch) -> list[tuple[str, tuple, dict]]:
    seen: list[tuple[str, tuple, dict]] = []

    def spy(name: str):
        def record(*args: object, **kw: object) -> None:
            seen.append((name, args, kw))
            raise Seen

        return record

    monkeypatch.setattr(nncf, "quantize", spy("quantize"))
    monkeypatch.setattr(nncf, "quantize_with_accuracy_control", spy("quantize_with_accuracy_control"))
    return seen


def test_ptq_gets_normalised_pixels_and_full_bias_correction(calls, tmp_path) -> None:
    assert quantize.main([*ARGS, "--out", str(tmp_path / "q")]) == 1  # the spy's stop is an internal error
    ((name, args, kw),) = calls
    assert name == "quantize"
    calib = list(args[1].get_inference_data())
    assert len(calib) == N_CALIB
    assert_golden_normalised(calib)
    assert kw["fast_bias_correction"] is False and kw["advanced_parameters"].disable_bias_correction is False
    assert kw["subset_size"] == N_CALIB


def test_accuracy_control_gets_the_same_and_labelled_tuning_images(calls, tmp_path) -> None:
    assert quantize.main([*ARGS, "--accuracy-control", "--out", str(tmp_path / "ac")]) == 1
    ((name, args, kw),) = calls
    assert name == "quantize_with_accuracy_control"
    calib, tuning = list(args[1].get_inference_data()), list(args[2].get_data())
    assert len(calib) == N_CALIB
    assert_golden_normalised(calib)
    assert 10 <= len(tuning) <= 22  # about half of the 32 validation images: the other half is reported on
    assert_golden_normalised([x for x, _ in tuning])
    assert all(isinstance(y, int) and 0 <= y < 16 for _, y in tuning)
    adv = kw["advanced_quantization_parameters"]
    assert kw["fast_bias_correction"] is False and adv.disable_bias_correction is False

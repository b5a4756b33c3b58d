"""NNCF's post-training quantization of the deploy graph (the INT8 job's quantize stage): the ignored scope
checked against the graph, nncf.quantize with or without accuracy control, NNCF's expected messages counted."""

from __future__ import annotations

import logging
import re
from typing import Any

import numpy as np

from ..errors import InputError
from ..settings import QuantSettings


def nncf_kwargs(settings: QuantSettings) -> dict[str, Any]:
    """nncf.quantize's keywords for these settings (each field's Literal names NNCF's enum member)."""
    import nncf
    from nncf.quantization.advanced_parameters import (
        AdvancedQuantizationParameters,
        AdvancedSmoothQuantParameters,
    )
    from nncf.quantization.advanced_parameters import OverflowFix as NNCFOverflowFix
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    kw: dict[str, Any] = dict(
        preset=nncf.QuantizationPreset.MIXED if settings.preset == "mixed" else nncf.QuantizationPreset.PERFORMANCE,
        model_type=nncf.ModelType.TRANSFORMER if settings.model_type == "transformer" else None,
        fast_bias_correction=settings.fast_bias_correction is not False, subset_size=settings.subset_size,
        target_device=getattr(nncf.TargetDevice, settings.target_device.upper()))
    if settings.ignored_scope:
        # entries were checked against the graph already (quantization.check_ignored_scope) with clear errors
        kw["ignored_scope"] = nncf.IgnoredScope(names=settings.scope("name"), patterns=settings.scope("pattern"),
                                                types=settings.scope("type"), validate=False)
    adv: dict[str, Any] = {"activations_range_estimator_params":
                           getattr(RangeEstimatorParametersSet, settings.activation_range.upper()),
                           "disable_bias_correction": settings.fast_bias_correction is None,
                           "overflow_fix": {"enable": NNCFOverflowFix.ENABLE, "disable": NNCFOverflowFix.DISABLE,
                                            "first_layer": NNCFOverflowFix.FIRST_LAYER}[settings.overflow_fix]}
    if settings.smooth_quant_alpha is not None:
        a = settings.smooth_quant_alpha
        adv["smooth_quant_alphas"] = AdvancedSmoothQuantParameters(convolution=a, matmul=a)
    kw["advanced_parameters"] = AdvancedQuantizationParameters(**adv)
    return kw


def check_ignored_scope(model: Any, settings: QuantSettings) -> None:
    """Every ignored_scope entry must match a node of the graph (as NNCF's IgnoredScope(validate=True)),
    or a typo would silently quantize what the user meant to keep in float."""
    ops = [op for op in model.get_ops() if op.get_type_name() not in ("Constant", "Parameter", "Result")]
    types = {op.get_type_name() for op in ops}
    names = [op.get_friendly_name() for op in ops]
    for e in settings.ignored_scope:
        if e.kind == "type":
            hit = e.value in types
        elif e.kind == "name":
            hit = e.value in names
        else:
            rx = re.compile(e.value)
            hit = any(rx.fullmatch(n) for n in names)
        if not hit:
            hint = f" (op types here: {', '.join(sorted(types))})" if e.kind == "type" else \
                " (node names look like __module.layers.0.0.attn.qkvs.0/aten::_convolution/Convolution)"
            raise InputError(f"ignored_scope '{e}' matches no node of the model{hint}", field="ignored_scope")


# NNCF's known, expected messages (one per quantizer): counted into the report's notes while NNCF runs, not printed
NNCF_EXPECTED = {"Rollback to RangeEstimatorParametersSet.MINMAX":
                 "histogram ranges fell back to min/max for {n} per-channel activation quantizer(s) (NNCF's "
                 "histogram aggregator is per-tensor only); expected"}


class ExpectedMessages(logging.Filter):
    """Counts NNCF_EXPECTED on the 'nncf' logger while installed; they reach the console only with --verbose (the
    logger at INFO), and the report gets one note each (`notes`)."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[str, int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        for key in NNCF_EXPECTED:
            if key in record.getMessage():
                self.counts[key] = self.counts.get(key, 0) + 1
                return logging.getLogger("nncf").isEnabledFor(logging.INFO)
        return True

    def __enter__(self) -> ExpectedMessages:
        logging.getLogger("nncf").addFilter(self)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger("nncf").removeFilter(self)

    @property
    def notes(self) -> list[str]:
        return [NNCF_EXPECTED[k].format(n=n) for k, n in self.counts.items()]


def quantize(taps_model: Any, calib: list[np.ndarray], settings: QuantSettings) -> Any:
    """Post-training INT8 quantization with NNCF's OpenVINO backend."""
    import nncf

    return nncf.quantize(taps_model, nncf.Dataset(calib), **nncf_kwargs(settings))


def quantize_with_accuracy_control(taps_model: Any, calib: list[np.ndarray], tuning: list[tuple[np.ndarray, int]],
                                   settings: QuantSettings, max_drop_pt: float) -> Any:
    """nncf.quantize_with_accuracy_control: reverts the most harmful quantizers until the top-1 drop on the
    *tuning* part is at most max_drop_pt (the caller reports the drop on a separate held-out part)."""
    import nncf


    def validate(compiled: Any, data: Any) -> float:
        out = compiled.output(0)
        hits = [int(np.argmax(compiled(x)[out]) == y) for x, y in data]
        return float(np.mean(hits))

    kw = nncf_kwargs(settings)
    kw["advanced_quantization_parameters"] = kw.pop("advanced_parameters", None)
    return nncf.quantize_with_accuracy_control(
        taps_model, nncf.Dataset(calib), nncf.Dataset(tuning, lambda item: item[0]), validate,
        max_drop=max_drop_pt / 100.0, drop_type=nncf.DropType.ABSOLUTE, **kw)


def count_fake_quantize(model: Any) -> int:
    return sum(op.get_type_name() == "FakeQuantize" for op in model.get_ops())



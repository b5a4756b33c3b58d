"""What the INT8 stages call: calibrate, quantize the deploy graph (NNCF), evaluate INT8 against FP32, diagnose it
(per layer, against the NumPy run of the same IR, the runtime graph), run it under each ISA, judge the targets.
Each takes and returns plain values; compress.int8.stages binds them to a job's context."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import export as E
from .. import isa
from .. import stages as S
from .. import verification as V
from ..data import DataSource, Images
from ..evaluate.job import F32, OVRun, evaluate_openvino
from ..loading import LoadedModel
from ..metrics import compare_int8
from ..report import AccuracyControl, DataPart, GraphAgreement, Int8Comparison, IsaRow, LayerSQNR
from ..runtime import NODE_COMPILES, RuntimeGraph, default_precision, own_isa, runtime_graph
from ..settings import DEFAULT_RUN, QuantSettings, RunConfig
from ..targets import Target, blame, graph_targets, int8_targets
from . import equalise, ptq

log = logging.getLogger("compress")
N_IR_INT8 = 32  # images for OpenVINO's INT8 against the NumPy run of the same IR (a whole set: tools.check_int8_ir)
ISA_MAX_IMAGES = 1000  # held-out images each ISA row runs INT8 on against FP32


# ------------------------------------------------------------------ results
@dataclass
class Calibration:
    arrays: list[np.ndarray]  # [1,3,S,S] each
    part: DataPart
    items: list[dict[str, Any]]  # the images used, as the report records them


@dataclass
class Quantized:
    taps_model: Any  # ov.Model: the quantized deploy graph with its named intermediates
    xml: Path  # model_int8.xml: the same graph with only the logits
    fake_quantize: int
    notes: list[str] = field(default_factory=list)  # NNCF's expected messages, counted (ptq.ExpectedMessages)


@dataclass
class Evaluation:
    int8_vs_fp32: Int8Comparison  # INT8 at the device's default precision, as deployed
    int8_f32_hint_vs_fp32: Int8Comparison  # the non-quantized ops in f32: the quantizers' own error
    accuracy_control: AccuracyControl | None
    fp32_logits: np.ndarray  # the FP32 IR (f32 hint) on the held-out data, in its order
    fp32_deployed_vs_f32: Int8Comparison | None = None  # the FP32 IR at the default precision (None: that is f32)


@dataclass
class Diagnosis:
    layers: list[LayerSQNR]  # forward order
    vs_graph: list[GraphAgreement]  # OpenVINO against the NumPy run of model_int8.xml, per device/precision
    graph: V.GraphRun  # that NumPy run (its f32_sqnr_db: the yardstick of the INT8 batch check)
    runtime: list[RuntimeGraph]  # of the FP32 and INT8 IRs (CPU only)

    @property
    def graph_f32_sqnr_db(self) -> float:
        return self.graph.f32_sqnr_db


# ------------------------------------------------------------------ steps
def quantize_source(exported: E.Exported, calib: list[np.ndarray], settings: QuantSettings,
                    loaded: LoadedModel | None) -> Any:
    """The deploy graph (with taps) NNCF quantizes: the exported one, or with equalise_alpha the same function
    with the inputs of fc2, proj and the gates' first FC equalised on the calibration images
    (compress.int8.equalise)."""
    if settings.equalise_alpha is None:
        return exported.taps_model
    if loaded is None:
        raise ValueError("equalise_alpha folds scales into the checkpoint's weights: pass the loaded model")
    folded = equalise.fold(loaded, calib, settings.equalise_alpha)
    taps = E.convert_deploy(folded, taps=True)
    E.name_taps(taps, folded)  # the exported taps model's output names, which the diagnosis reads
    return taps


def quantize_deploy(exported: E.Exported, calibration: Calibration, settings: QuantSettings,
                    tuning: Images | None = None, max_drop: float = DEFAULT_RUN.max_drop,
                    name: str = "model_int8.xml", loaded: LoadedModel | None = None) -> Quantized:
    """nncf.quantize of the deploy graph (with accuracy control on `tuning` when given), saved as `name` beside the
    FP32 IR. `loaded`: the checkpoint, which settings that change the weights before NNCF need."""
    source = quantize_source(exported, calibration.arrays, settings, loaded)
    with ptq.ExpectedMessages() as expected:
        if tuning is not None:
            taps = ptq.quantize_with_accuracy_control(source, calibration.arrays,
                                                      [(x[None], int(y)) for x, y in tuning], settings, max_drop)
        else:
            taps = ptq.quantize(source, calibration.arrays, settings)
    taps = E.as_read_back(taps)  # as compiled from disk (E.as_read_back says why)
    xml = exported.fp32_xml.with_name(name)
    E.save_deployable(taps, xml)
    return Quantized(taps, xml, ptq.count_fake_quantize(taps), expected.notes)


def evaluate_int8(fp32_xml: Path, int8_xml: Path, held_out: S.HeldOut, tuning: Images | None,
                  run: RunConfig, floor: bool = True) -> Evaluation:
    """FP32 (f32 hint) against INT8 on the held-out data: as deployed (the device's default precision) and with
    the f32 hint; with accuracy control, the drop on its tuning part too."""
    data, device = held_out.data, run.device
    deployed = OVRun(device)
    fp32 = evaluate_openvino(fp32_xml, data, F32, "FP32 IR (f32)")
    int8 = evaluate_openvino(int8_xml, data, deployed, f"INT8 IR ({device})")
    int8_f32 = evaluate_openvino(int8_xml, data, F32, "INT8 (f32)")
    cmp = compare_int8(fp32.logits, int8.logits, fp32.labels, data.name)
    fp32_deployed = None
    if floor and default_precision(device) != "f32":  # the float ops at bf16 alone, no quantizer: INT8's floor
        fp32_dep = evaluate_openvino(fp32_xml, data, deployed, f"FP32 IR ({device})")
        fp32_deployed = compare_int8(fp32.logits, fp32_dep.logits, fp32.labels, data.name)
    ac = None
    if tuning is not None:
        fp32_t = evaluate_openvino(fp32_xml, tuning, F32, "FP32 (tuning part)")
        int8_t = evaluate_openvino(int8_xml, tuning, deployed, "INT8 (tuning part)")
        ac = AccuracyControl(run.max_drop, S.data_part(tuning), fp32_t.top1 - int8_t.top1, cmp.top1_drop)
    return Evaluation(cmp, compare_int8(fp32.logits, int8_f32.logits, fp32.labels, data.name), ac, fp32.logits,
                      fp32_deployed)


def diagnose_int8(loaded: LoadedModel, exported: E.Exported, quantized: Quantized, x: np.ndarray,
                  device: str = "CPU") -> Diagnosis:
    """Per-layer SQNR against the NumPy reference; OpenVINO's INT8 against the NumPy run of the same IR (f32
    hint, default precision, and `device`); the executed nodes of both IRs."""
    taps_f32 = V.compiled(quantized.taps_model, "CPU", "f32")  # the per-layer comparison's and the f32 row's
    layers = V.diagnose(loaded, exported, taps_f32, x)
    graph_x = x[:N_IR_INT8]
    with tempfile.TemporaryDirectory() as scratch:
        graph = V.graph_run(quantized.xml, quantized.taps_model, exported.tap_names, graph_x, Path(scratch))
    configs = [("CPU", "f32"), ("CPU", None)] + ([(device, None)] if device.upper() != "CPU" else [])
    vs_graph = [V.runtime_vs_graph(graph, quantized.xml, taps_f32 if (dev, prec) == ("CPU", "f32") else
                                   quantized.taps_model, dev, prec) for dev, prec in configs]
    runtime = ([runtime_graph(exported.fp32_xml, "FP32 deploy IR", device),
                runtime_graph(quantized.xml, "INT8 IR", device, compiles=NODE_COMPILES)]
               if device.upper() == "CPU" else [])
    return Diagnosis(layers, vs_graph, graph, runtime)


def isa_rows(int8_xml: Path, levels: list[str], graph: V.GraphRun, held_out: S.HeldOut, evaluation: Evaluation,
             seed: int = 0) -> list[IsaRow]:
    """The INT8 IR under each ISA level (compress.isa): against the graph on the diagnosis images, and against FP32
    on the held-out data (at most ISA_MAX_IMAGES of it: the first ones when preloaded, else a seeded subset)."""
    if not levels:
        return []
    data = held_out.data
    if isinstance(data, Images):
        n = min(len(data), ISA_MAX_IMAGES)
        ys = data.ys[:n]
        labels = None if any(y is None for y in ys) else np.asarray(ys)
        xs, fp32 = data.xs[:n], evaluation.fp32_logits[:n]
        source = data.name if n == len(data) else f"{data.name} (first {n})"
    else:
        sub = Images.of(data.subset(ISA_MAX_IMAGES, seed + 2))
        res = evaluate_openvino(int8_xml.with_name("model_fp32.xml"), sub, F32, "FP32 (ISA matrix images)")
        xs, labels, fp32, source = sub.xs, res.labels, res.logits, f"{data.name} ({len(sub)}, seeded subset)"
    return isa.isa_matrix(int8_xml, levels, graph.x, graph.logits, graph.f32_sqnr_db, xs, fp32, labels, source)


def targets(evaluation: Evaluation, diagnosis: Diagnosis, rows: list[IsaRow], settings: QuantSettings,
            precision: str) -> list[Target]:
    """Every target the report states, judged: INT8 against FP32 (drop, agreement, SQNR) at the device's default
    precision, and OpenVINO against the graph (SQNR, agreement; f32 hint), in this run and on every ISA row; a
    missed one carries its likely cause. Reported, not enforced (the exit status is the checks')."""
    graph = next((g for g in diagnosis.vs_graph if g.device.upper() == "CPU" and g.precision == "f32"), None)
    f32 = evaluation.int8_f32_hint_vs_fp32  # this process's ISA at the f32 hint: what BF16 adds, by difference
    out = blame(int8_targets(evaluation.int8_vs_fp32, f"this run ({precision})")
                + (graph_targets(graph, "this run (f32 hint)") if graph is not None else []), own_isa(), settings,
                f32 if precision != "f32" else None, evaluation.fp32_deployed_vs_f32)
    for row in rows:
        out += blame(graph_targets(row.vs_graph, f"{row.label} (f32 hint)")
                     + int8_targets(row.vs_fp32, f"{row.label} ({row.default_precision})"), row.isa, settings,
                     f32 if row.native and row.default_precision != "f32" else None)
    return out


def calibration_images(source: DataSource) -> Images:
    """A calibration source (already sized and subset by the caller), decoded."""
    return Images.of(source, role="calibration source", desc=f"calibration ({source.name})")


def calibration_data(source: DataSource) -> list[np.ndarray]:
    """Preprocessed [1,3,S,S] arrays of a calibration source, as nncf.Dataset takes them."""
    return [x[None] for x in calibration_images(source).xs]


def calibrate(source: DataSource, settings: QuantSettings, seed: int = 0) -> Calibration:
    """The calibration stage: `settings.subset_size` images of `source` (seeded), decoded, with the record of
    which images were used (unreadable ones are skipped and counted)."""
    images = calibration_images(source.subset(settings.subset_size, seed))
    if len(images) < settings.subset_size:
        log.warning("calibration: %d usable image(s) in %s, fewer than the %d asked for (subset_size); NNCF "
                    "calibrates on these", len(images), images.name, settings.subset_size)
    return Calibration([x[None] for x in images.xs], S.data_part(images), images.manifest()["items"])

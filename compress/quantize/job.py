"""The INT8 job, read top to bottom as its list of stages (compress.quantize and compress.prune --quantize are
thin commands on it):

    report = quantize_model(loaded, parts, QuantSettings(), Path("outputs/run"), RunConfig(command="..."))

INT8_STAGES: convert the deploy graph (and refuse what can be refused) -> calibrate -> hold out the validation
data -> export -> quantize (NNCF) -> verify the FP32 twins -> evaluate FP32 and INT8 -> diagnose (per layer,
against the graph's own semantics, runtime graph) -> time -> static batch -> ISA matrix; then the report. Each
stage is one function on the job's `Int8Context` (compress.stages); nothing here sees argv.
"""

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
from ..atomic import check_apart, staging_dir
from ..data import DataSource, Images
from ..data.sources import JobData, refuse_overlap
from ..errors import InputError
from ..evaluate.job import F32, OVRun, evaluate_openvino
from ..loading import LoadedModel, output_bytes
from ..metrics import compare_int8, undertrained_teacher
from ..render import write_quant_outputs
from ..report import (
    AccuracyControl,
    DataPart,
    GraphAgreement,
    Int8Comparison,
    IsaRow,
    LayerSQNR,
    ModelInfo,
    QatRecord,
    QuantReport,
    Timer,
    versions,
)
from ..runtime import RuntimeGraph, default_precision, own_isa, runtime_graph
from ..settings import (
    DEFAULT_RUN,
    QatSettings,
    QuantSettings,
    RunConfig,
)
from ..stages import Stage
from ..targets import Target, blame, graph_targets, int8_targets, qat_nodes_target
from ..tolerances import INT8_RUNTIME_MARGIN_DB
from . import ptq, qat

log = logging.getLogger("compress")
NODE_COMPILES = 3  # compilations counted for executed nodes (the plugin's layout choice moves one or two Reorders)
N_IR_INT8 = 32  # images for OpenVINO's INT8 against the NumPy run of the same IR (a whole set: tools.check_int8_ir)
ISA_MAX_IMAGES = 1000  # held-out images each ISA row runs INT8 on against FP32


# ------------------------------------------------------------------ the stages' results
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


@dataclass
class Ptq:
    """PTQ beside QAT: the same settings and calibration, model_int8_ptq.xml, evaluated on the same data."""

    quantized: Quantized
    evaluation: Evaluation
    runtime: RuntimeGraph | None  # its executed nodes (CPU only)


@dataclass
class Int8Context(S.Context):
    """The INT8 job's state: the shared context, the NNCF settings, and what the INT8 stages add."""

    settings: QuantSettings = field(default_factory=QuantSettings)
    levels: list[str] = field(default_factory=list)  # the ISA matrix's oneDNN levels (compress.isa)
    calibration: Calibration | None = None
    tuning: Images | None = None  # accuracy control's tuning part
    quantized: Quantized | None = None
    evaluation: Evaluation | None = None
    diagnosis: Diagnosis | None = None
    matrix: list[IsaRow] = field(default_factory=list)
    qat: QatSettings | None = None  # quantization-aware training (QAT_STAGES)
    qat_data: DataSource | Images | None = None  # its fine-tuning images (pruning's own, decoded already)
    qat_model: Any = None  # the torch deploy graph with NNCF's quantizers, while it trains
    qat_notes: list[str] = field(default_factory=list)  # NNCF's expected messages while quantizing in torch
    trained: qat.Trained | None = None
    ptq: Ptq | None = None  # the PTQ of the same settings, beside QAT


# ------------------------------------------------------------------ the job
def quantize_model(loaded: LoadedModel, parts: JobData, settings: QuantSettings | None = None,
                   out: Path = Path("outputs/int8"), run: RunConfig = DEFAULT_RUN, qat: QatSettings | None = None,
                   qat_data: DataSource | None = None) -> QuantReport:
    """Quantize `loaded` to INT8 into the folder `out` (built under a temporary name, renamed when complete); with
    `qat`, by quantization-aware training on `qat_data` (QAT_STAGES), the PTQ of the same settings beside it."""
    check_apart(out, {"calib": parts.calibration.root, "val": parts.validation.root, "checkpoint": loaded.checkpoint,
                      **({"qat_data": qat_data.root} if qat_data is not None else {})})
    if qat is not None:
        check_qat(parts, qat_data, run)
    lap = Timer.since(run.started, "load")
    with staging_dir(out, run.force, output_bytes(loaded)) as tmp:
        ctx = Int8Context(loaded, parts, tmp, run, settings=settings or QuantSettings(), qat=qat, qat_data=qat_data)
        ctx = S.run_stages(int8_stages(qat is not None), ctx, lap)
        report = S.finish(int8_report(ctx), lap.times, tmp)  # the model files' sizes; reports follow
        write_quant_outputs(report, tmp)
    return report


def int8_report(ctx: Int8Context) -> QuantReport:
    """The INT8 stages' results as one report (no report files; S.finish adds the times and file sizes)."""
    loaded, settings, run, evaluation = ctx.loaded, ctx.settings, ctx.run, ctx.evaluation
    diagnosis, quantized = ctx.diagnosis, ctx.quantized
    precision = default_precision(run.device)
    return QuantReport(
        command=run.command, seed=run.seed, versions=versions(),
        model=ModelInfo(loaded.variant, loaded.checkpoint, loaded.input_size, loaded.num_classes, run.device,
                        batch=run.batch),
        settings=settings, data_rule=ctx.parts.rule, calibration=ctx.calibration.part,
        calibration_items=ctx.calibration.items, validation=S.data_part(ctx.held_out.data),
        allow_overlap=run.allow_overlap, quantizers=quantized.fake_quantize, fp32_checks=ctx.checks,
        int8_vs_fp32=evaluation.int8_vs_fp32, int8_f32_hint_vs_fp32=evaluation.int8_f32_hint_vs_fp32,
        default_precision=precision, per_layer_sqnr=diagnosis.layers,
        worst_layers=[w.name for w in sorted(diagnosis.layers, key=lambda d: d.int8_db)[:5]],
        targets=targets(evaluation, diagnosis, ctx.matrix, settings, precision) + qat_targets(ctx),
        runtime=diagnosis.runtime, int8_runtime_vs_graph=diagnosis.vs_graph,
        accuracy_control=evaluation.accuracy_control, speed=ctx.speed, isa_matrix=ctx.matrix, notes=quantized.notes,
        qat=qat_record(ctx), fp32_deployed_vs_f32=evaluation.fp32_deployed_vs_f32,
        undertrained_teacher=None if ctx.qat is None else undertrained_teacher(
            evaluation.int8_vs_fp32.fp32_top1, evaluation.int8_vs_fp32.int8_top1, evaluation.int8_vs_fp32.n,
            "QAT INT8 IR"))


def qat_record(ctx: Int8Context) -> QatRecord | None:
    if ctx.qat is None:
        return None
    ptq_, trained, q = ctx.ptq, ctx.trained, ctx.qat
    return QatRecord(q.qat_steps, q.qat_batch, q.qat_lr, S.data_part(ctx.qat_data), trained.seconds,
                     [round(v, 6) for v in trained.losses], trained.probe_loss, trained.ranges_changed, trained.ranges,
                     trained.max_range_change, ptq_.evaluation.int8_vs_fp32, ptq_.evaluation.int8_f32_hint_vs_fp32,
                     ptq_.quantized.fake_quantize, ptq_.runtime)


def check_qat(parts: JobData, data: DataSource | Images | None, run: RunConfig) -> None:
    """QAT's fine-tuning images: given, and disjoint from the validation data (the rule compress.prune holds its
    fine-tuning data to); accuracy control is PTQ's, not QAT's."""
    if data is None:
        raise InputError("qat needs fine-tuning images (qat_data)", field="qat_data")
    if parts.tuning is not None:
        raise InputError("accuracy_control reverts PTQ's quantizers; QAT trains them instead: choose one",
                         field=("accuracy_control", "qat"))
    if isinstance(data, DataSource):
        refuse_overlap(data, parts.validation, run.allow_overlap, f"qat_data {data.name}",
                       "the reported agreement would be measured on images QAT trained on",
                       ("qat_data", "allow_overlap"))


# ------------------------------------------------------------------ the stages
def precheck(ctx: Int8Context) -> None:
    """What the INT8 stages refuse before any data is read: labels the model cannot score, an ISA this CPU cannot
    run, an ignored-scope entry that matches no node (of the converted deploy graph, which export reuses)."""
    ctx.parts.validation.check_labels(ctx.loaded.num_classes)
    ctx.levels = isa.resolve(ctx.run.isa_matrix)
    ctx.taps_model = E.convert_deploy(ctx.loaded, taps=True)
    ptq.check_ignored_scope(ctx.taps_model, ctx.settings)


def precheck_qat(ctx: Int8Context) -> None:
    """PRECHECK, and the ignored scope translated to the torch graph QAT quantizes (compress.quantize.qat)."""
    precheck(ctx)
    qat.check_torch_scope(ctx.settings, ctx.loaded)


def calibrate_stage(ctx: Int8Context) -> None:
    ctx.calibration = calibrate(ctx.parts.calibration, ctx.settings, ctx.run.seed)


def quantize_stage(ctx: Int8Context) -> None:
    """nncf.quantize of the deploy graph (with accuracy control on the tuning part when there is one), saved as
    model_int8.xml beside the FP32 IR."""
    ctx.tuning = Images.of(ctx.parts.tuning) if ctx.parts.tuning is not None else None
    ctx.quantized = quantize_deploy(ctx.exported, ctx.calibration, ctx.settings, ctx.tuning, ctx.run.max_drop)
    ctx.irs[ctx.label("INT8")] = S.WrittenIR(ctx.quantized.xml, ctx.held_out.diagnose_x[:N_IR_INT8])


def evaluate_stage(ctx: Int8Context) -> None:
    ctx.evaluation = evaluate_int8(ctx.exported.fp32_xml, ctx.quantized.xml, ctx.held_out, ctx.tuning, ctx.run)


def diagnose_stage(ctx: Int8Context) -> None:
    ctx.diagnosis = diagnose_int8(ctx.loaded, ctx.exported, ctx.quantized, ctx.held_out.diagnose_x, ctx.run.device)
    # the INT8 IR's static-batch check: kernels differ per shape, so its yardstick is the graph's float32 run
    ctx.irs[ctx.label("INT8")].min_sqnr_db = ctx.diagnosis.graph_f32_sqnr_db - INT8_RUNTIME_MARGIN_DB


def isa_stage(ctx: Int8Context) -> None:
    ctx.matrix = isa_rows(ctx.quantized.xml, ctx.levels, ctx.diagnosis.graph, ctx.held_out, ctx.evaluation,
                          ctx.run.seed)


def ptq_beside_stage(ctx: Int8Context) -> None:
    """PTQ with the same settings and calibration, as model_int8_ptq.xml, evaluated as the INT8 IR will be: the
    report's PTQ column (timed beside it; not rewritten to the static batch: it is a comparison, not the product)."""
    quantized = quantize_deploy(ctx.exported, ctx.calibration, ctx.settings, name="model_int8_ptq.xml")
    evaluation = evaluate_int8(ctx.exported.fp32_xml, quantized.xml, ctx.held_out, None, ctx.run,
                               floor=False)  # the same FP32 IR and data as the INT8 IR's: its floor is that one
    runtime = (runtime_graph(quantized.xml, "INT8 PTQ IR", ctx.run.device, compiles=NODE_COMPILES)
               if ctx.run.device.upper() == "CPU" else None)
    ctx.ptq = Ptq(quantized, evaluation, runtime)
    ctx.irs[ctx.label("INT8 PTQ")] = S.WrittenIR(quantized.xml, ctx.held_out.diagnose_x[:N_IR_INT8], static=False)


def qat_quantize_stage(ctx: Int8Context) -> None:
    with ptq.ExpectedMessages() as expected:
        ctx.qat_model = qat.quantize(ctx.loaded, ctx.calibration.arrays, ctx.settings)
    ctx.qat_notes = expected.notes
    if ctx.settings.fast_bias_correction is not None:  # None: no bias correction, in PTQ nor here
        n = qat.start_from_ptq_biases(ctx.qat_model, ctx.ptq.quantized.taps_model)
        ctx.qat_notes.append(qat.PTQ_BIASES_NOTE.format(n=n))


def qat_train_stage(ctx: Int8Context) -> None:
    """Distillation from the FP32 deploy graph, the quantizers' ranges trained with the weights."""
    if not isinstance(ctx.qat_data, Images):
        ctx.qat_data = Images.of(ctx.qat_data, role="QAT source")
    ctx.trained = qat.train(ctx.qat_model, ctx.loaded, ctx.qat_data, ctx.qat)


def qat_export_stage(ctx: Int8Context) -> None:
    """The trained graph converted (FakeQuantize nodes), saved as model_int8.xml: from here on, the PTQ stages."""
    taps = qat.convert(ctx.qat_model, ctx.loaded)
    xml = E.save_deployable(taps, ctx.exported.fp32_xml.with_name("model_int8.xml"))
    ctx.quantized, ctx.qat_model = Quantized(taps, xml, ptq.count_fake_quantize(taps), ctx.qat_notes), None
    ctx.irs[ctx.label("INT8")] = S.WrittenIR(xml, ctx.held_out.diagnose_x[:N_IR_INT8])


PRECHECK = Stage("convert deploy graph, check the ignored scope", precheck)
CALIBRATE = Stage("calibration data", calibrate_stage)
QUANTIZE = Stage("quantize (nncf), save INT8 IR", quantize_stage)
EVALUATE = Stage("evaluate FP32 and INT8", evaluate_stage)
DIAGNOSE = Stage("per-layer diagnosis, INT8 runtime vs NumPy IR executor, runtime graph", diagnose_stage)
ISA_MATRIX = Stage(lambda ctx: f"ISA matrix ({', '.join(ctx.levels) or 'none'})", isa_stage)  # the IR as shipped
INT8_STAGES: list[Stage[Int8Context]] = [PRECHECK, CALIBRATE, S.HOLD_OUT, S.EXPORT, QUANTIZE, S.VERIFY, EVALUATE,
                                         DIAGNOSE, S.SPEED, S.STATIC_BATCH, ISA_MATRIX]
PRECHECK_QAT = Stage("convert deploy graph, check the ignored scope (OpenVINO and torch graphs)", precheck_qat)
PTQ_BESIDE = Stage("PTQ beside QAT (nncf), save and evaluate model_int8_ptq.xml", ptq_beside_stage)
QAT_QUANTIZE = Stage("QAT: quantize the torch deploy graph (nncf), biases from the PTQ IR", qat_quantize_stage)
QAT_TRAIN = Stage("QAT: fine-tune (distillation)", qat_train_stage)
QAT_EXPORT = Stage("QAT: convert, save INT8 IR", qat_export_stage)
# QAT is the INT8 job with its quantize stage replaced (and the PTQ of the same settings beside it)
QAT_STAGES: list[Stage[Int8Context]] = [
    s2 for s in INT8_STAGES
    for s2 in ({PRECHECK: [PRECHECK_QAT], QUANTIZE: [PTQ_BESIDE, QAT_QUANTIZE, QAT_TRAIN, QAT_EXPORT]}.get(s, [s]))]


def int8_stages(with_qat: bool = False) -> list[Stage[Int8Context]]:
    return QAT_STAGES if with_qat else INT8_STAGES


# ------------------------------------------------------------------ what the stages call
def quantize_deploy(exported: E.Exported, calibration: Calibration, settings: QuantSettings,
                    tuning: Images | None = None, max_drop: float = DEFAULT_RUN.max_drop,
                    name: str = "model_int8.xml") -> Quantized:
    """nncf.quantize of the deploy graph (with accuracy control on `tuning` when given), saved as `name` beside the
    FP32 IR."""
    with ptq.ExpectedMessages() as expected:
        if tuning is not None:
            taps = ptq.quantize_with_accuracy_control(exported.taps_model, calibration.arrays,
                                                      [(x[None], int(y)) for x, y in tuning], settings, max_drop)
        else:
            taps = ptq.quantize(exported.taps_model, calibration.arrays, settings)
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
    layers = V.diagnose(loaded, exported, quantized.taps_model, x)
    graph_x = x[:N_IR_INT8]
    with tempfile.TemporaryDirectory() as scratch:
        graph = V.graph_run(quantized.xml, quantized.taps_model, exported.tap_names, graph_x, Path(scratch))
    configs = [("CPU", "f32"), ("CPU", None)] + ([(device, None)] if device.upper() != "CPU" else [])
    vs_graph = [V.runtime_vs_graph(graph, quantized.xml, quantized.taps_model, dev, prec) for dev, prec in configs]
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


def qat_targets(ctx: Int8Context) -> list[Target]:
    """QAT's IR against PTQ's: no more executed nodes (targets.qat_nodes_target)."""
    if ctx.qat is None or ctx.ptq.runtime is None or not ctx.diagnosis.runtime:
        return []
    return [qat_nodes_target(ctx.diagnosis.runtime[-1], ctx.ptq.runtime)]


# ------------------------------------------------------------------ calibration
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

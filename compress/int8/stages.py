"""The INT8 stages, as lists a job composes (compress.quantize runs them alone; compress.prune after pruning):

    INT8_STAGES: convert the deploy graph (and refuse what can be refused) -> calibrate -> hold out the validation
    data -> export -> quantize (NNCF) -> verify the FP32 twins -> evaluate FP32 and INT8 -> diagnose (per layer,
    against the graph's own semantics, runtime graph) -> time -> static batch -> ISA matrix.
    QAT_STAGES: the same, with quantization-aware training where INT8_STAGES quantizes, the PTQ of the same
    settings beside it.

Each stage is one function on a job's context (compress.stages.Context), whose `int8` holds an Int8State: what
these stages read and add. `int8_report` turns it into the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import export as E
from .. import isa
from .. import stages as S
from ..choice import quant_choice
from ..data import DataSource, Images, proxy
from ..data.sources import SELECTION_PER_CLASS, JobData, refuse_overlap
from ..errors import InputError
from ..metrics import undertrained_teacher
from ..report import Advice, IsaRow, ModelInfo, QatRecord, QuantReport, versions
from ..runtime import NODE_COMPILES, RuntimeGraph, default_precision, runtime_graph
from ..settings import QatSettings, QuantSettings, RunConfig
from ..stages import Context, Stage
from ..targets import Target, qat_nodes_target
from ..tolerances import INT8_RUNTIME_MARGIN_DB
from . import advise, equalise, ptq, qat
from .steps import (
    N_IR_INT8,
    Calibration,
    Diagnosis,
    Evaluation,
    Quantized,
    calibrate,
    diagnose_int8,
    evaluate_int8,
    isa_rows,
    quantize_deploy,
    targets,
)

ADVICE_IMAGES = 256  # crops --advise judges each fix on

@dataclass
class Ptq:
    """PTQ beside QAT: the same settings and calibration, model_int8_ptq.xml, evaluated on the same data."""

    quantized: Quantized
    evaluation: Evaluation
    runtime: RuntimeGraph | None  # its executed nodes (CPU only)


@dataclass
class Int8State:
    """What the INT8 stages read and add, held by a job's context as `ctx.int8` (composed: the quantize job and the
    prune job each hold one)."""

    settings: QuantSettings = field(default_factory=QuantSettings)
    qat: QatSettings | None = None  # quantization-aware training (QAT_STAGES)
    qat_data: DataSource | Images | None = None  # its fine-tuning images (pruning's own, decoded already)
    levels: list[str] = field(default_factory=list)  # the ISA matrix's oneDNN levels (compress.isa)
    calibration: Calibration | None = None
    tuning: Images | None = None  # accuracy control's tuning part
    quantized: Quantized | None = None
    evaluation: Evaluation | None = None
    diagnosis: Diagnosis | None = None
    matrix: list[IsaRow] = field(default_factory=list)
    qat_model: Any = None  # the torch deploy graph with NNCF's quantizers, while it trains
    qat_notes: list[str] = field(default_factory=list)  # NNCF's expected messages while quantizing in torch
    trained: qat.Trained | None = None
    ptq: Ptq | None = None  # the PTQ of the same settings, beside QAT
    advice: Advice | None = None  # --advise


# ------------------------------------------------------------------ refusals before any work
def precheck(ctx: Context) -> None:
    """What the INT8 stages refuse before any data is read: labels the model cannot score, an ISA this CPU cannot
    run, an ignored-scope entry that matches no node (of the converted deploy graph, which export reuses)."""
    ctx.parts.validation.check_labels(ctx.loaded.num_classes)
    ctx.int8.levels = isa.resolve(ctx.run.isa_matrix)
    ctx.taps_model = E.convert_deploy(ctx.loaded, taps=True)
    ptq.check_ignored_scope(ctx.taps_model, ctx.int8.settings)


def precheck_qat(ctx: Context) -> None:
    """precheck, and the ignored scope translated to the torch graph QAT quantizes (compress.int8.qat)."""
    precheck(ctx)
    qat.check_torch_scope(ctx.int8.settings, ctx.loaded)


def check_qat(parts: JobData, data: DataSource | Images | None, run: RunConfig) -> None:
    """QAT's fine-tuning images: given, and disjoint from the validation data (the rule compress.prune holds its
    fine-tuning data to); accuracy control is PTQ's, not QAT's."""
    if data is None:
        raise InputError("qat needs fine-tuning images (qat_data)", field="qat_data")
    if run.advise:
        raise InputError("advise searches PTQ's settings; QAT trains the quantizers instead: choose one",
                         field=("advise", "qat"))
    if parts.tuning is not None:
        raise InputError("accuracy_control reverts PTQ's quantizers; QAT trains them instead: choose one",
                         field=("accuracy_control", "qat"))
    if isinstance(data, DataSource):
        refuse_overlap(data, parts.validation, run.allow_overlap, f"qat_data {data.name}",
                       "the reported agreement would be measured on images QAT trained on",
                       ("qat_data", "allow_overlap"))


# ------------------------------------------------------------------ the stages
def calibrate_stage(ctx: Context) -> None:
    ctx.int8.calibration = calibrate(ctx.parts.calibration, ctx.int8.settings, ctx.run.seed)


def quantize_stage(ctx: Context) -> None:
    """nncf.quantize of the deploy graph (with accuracy control on the tuning part when there is one), saved as
    model_int8.xml beside the FP32 IR."""
    q = ctx.int8
    q.tuning = Images.of(ctx.parts.tuning) if ctx.parts.tuning is not None else None
    q.quantized = quantize_deploy(ctx.exported, q.calibration, q.settings, q.tuning, ctx.run.max_drop,
                                  loaded=ctx.loaded)
    ctx.irs[ctx.label("INT8")] = S.WrittenIR(q.quantized.xml, ctx.held_out.diagnose_x[:N_IR_INT8])


def advice_data(ctx: Context) -> tuple[np.ndarray, str]:
    """Images --advise judges on, never those the report evaluates on: the proxy's selection crops (unless they are
    the validation data), else the calibration images."""
    if ctx.loaded.checkpoint == "proxy" and not ctx.parts.validation.name.startswith("proxy-selection"):
        src = proxy.selection_source(ctx.loaded.input_size, SELECTION_PER_CLASS).subset(ADVICE_IMAGES, ctx.run.seed)
        images = Images.of(src, role="advice data")
        return images.xs, f"{images.name} ({len(images)} crops)"
    xs = np.concatenate(ctx.int8.calibration.arrays[:ADVICE_IMAGES])
    return xs, f"the calibration images ({len(xs)})"


def advise_stage(ctx: Context) -> None:
    """Sensitivity per quantizer group, the candidate fixes within the budget, and the INT8 IR quantized again with
    the best (compress.int8.advise)."""
    q = ctx.int8
    x, name = advice_data(ctx)
    q.advice, best = advise.search(ctx.loaded, ctx.exported, q.calibration, q.settings, q.quantized.xml, x, name,
                                   ctx.run.advise_seconds)
    q.advice.command = advise.reproduce(ctx.run.command, best.command if best else "")
    if best is not None:
        q.settings = best.settings
        q.quantized = quantize_deploy(ctx.exported, q.calibration, q.settings, loaded=ctx.loaded)
        ctx.irs[ctx.label("INT8")] = S.WrittenIR(q.quantized.xml, ctx.held_out.diagnose_x[:N_IR_INT8])


def evaluate_stage(ctx: Context) -> None:
    q = ctx.int8
    q.evaluation = evaluate_int8(ctx.exported.fp32_xml, q.quantized.xml, ctx.held_out, q.tuning, ctx.run)


def diagnose_stage(ctx: Context) -> None:
    q = ctx.int8
    q.diagnosis = diagnose_int8(ctx.loaded, ctx.exported, q.quantized, ctx.held_out.diagnose_x, ctx.run.device)
    # the INT8 IR's static-batch check: kernels differ per shape, so its yardstick is the graph's float32 run
    ctx.irs[ctx.label("INT8")].min_sqnr_db = q.diagnosis.graph_f32_sqnr_db - INT8_RUNTIME_MARGIN_DB


def isa_stage(ctx: Context) -> None:
    q = ctx.int8
    q.matrix = isa_rows(q.quantized.xml, q.levels, q.diagnosis.graph, ctx.held_out, q.evaluation, ctx.run.seed)


def ptq_beside_stage(ctx: Context) -> None:
    """PTQ with the same settings and calibration, as model_int8_ptq.xml, evaluated as the INT8 IR will be: the
    report's PTQ column (timed beside it; not rewritten to the static batch: it is a comparison, not the product)."""
    q = ctx.int8
    quantized = quantize_deploy(ctx.exported, q.calibration, q.settings, name="model_int8_ptq.xml",
                                loaded=ctx.loaded)
    evaluation = evaluate_int8(ctx.exported.fp32_xml, quantized.xml, ctx.held_out, None, ctx.run,
                               floor=False)  # the same FP32 IR and data as the INT8 IR's: its floor is that one
    runtime = (runtime_graph(quantized.xml, "INT8 PTQ IR", ctx.run.device, compiles=NODE_COMPILES)
               if ctx.run.device.upper() == "CPU" else None)
    q.ptq = Ptq(quantized, evaluation, runtime)
    ctx.irs[ctx.label("INT8 PTQ")] = S.WrittenIR(quantized.xml, ctx.held_out.diagnose_x[:N_IR_INT8], static=False)


def qat_quantize_stage(ctx: Context) -> None:
    q = ctx.int8
    with ptq.ExpectedMessages() as expected:
        # the graph the PTQ beside quantized (equalised the same way, so that its biases fit this one)
        source = (ctx.loaded if q.settings.equalise_alpha is None else
                  equalise.fold(ctx.loaded, q.calibration.arrays, q.settings.equalise_alpha))
        q.qat_model = qat.quantize(source, q.calibration.arrays, q.settings)
    q.qat_notes = expected.notes
    if q.settings.fast_bias_correction is not None:  # None: no bias correction, in PTQ nor here
        n = qat.start_from_ptq_biases(q.qat_model, q.ptq.quantized.taps_model)
        q.qat_notes.append(qat.PTQ_BIASES_NOTE.format(n=n))


def qat_train_stage(ctx: Context) -> None:
    """Distillation from the FP32 deploy graph, the quantizers' ranges trained with the weights."""
    q = ctx.int8
    if not isinstance(q.qat_data, Images):
        q.qat_data = Images.of(q.qat_data, role="QAT source")
    q.trained = qat.train(q.qat_model, ctx.loaded, q.qat_data, q.qat)


def qat_export_stage(ctx: Context) -> None:
    """The trained graph converted (FakeQuantize nodes), saved as model_int8.xml: from here on, the PTQ stages."""
    q = ctx.int8
    taps = qat.convert(q.qat_model, ctx.loaded)
    xml = E.save_deployable(taps, ctx.exported.fp32_xml.with_name("model_int8.xml"))
    q.quantized, q.qat_model = Quantized(taps, xml, ptq.count_fake_quantize(taps), q.qat_notes), None
    ctx.irs[ctx.label("INT8")] = S.WrittenIR(xml, ctx.held_out.diagnose_x[:N_IR_INT8])


PRECHECK = Stage("int8.precheck", "convert deploy graph, check the ignored scope", precheck)
CALIBRATE = Stage("int8.calibrate", "calibration data", calibrate_stage)
QUANTIZE = Stage("int8.quantize", "quantize (nncf), save INT8 IR", quantize_stage)
ADVISE = Stage("int8.advise", "advice: sensitivity per layer group, fixes tried, the best kept", advise_stage,
               when=lambda ctx: ctx.run.advise)
EVALUATE = Stage("int8.evaluate", "evaluate FP32 and INT8", evaluate_stage)
DIAGNOSE = Stage("int8.diagnose", "per-layer diagnosis, INT8 runtime vs NumPy IR executor, runtime graph",
                 diagnose_stage)
ISA_MATRIX = Stage("int8.isa_matrix", "the INT8 IR as shipped under each ISA", isa_stage)
PRECHECK_QAT = Stage("qat.precheck", "convert deploy graph, check the ignored scope (OpenVINO and torch graphs)",
                     precheck_qat)
PTQ_BESIDE = Stage("qat.ptq_beside", "PTQ beside QAT (nncf), save and evaluate model_int8_ptq.xml", ptq_beside_stage)
QAT_QUANTIZE = Stage("qat.quantize", "QAT: quantize the torch deploy graph (nncf), biases from the PTQ IR",
                     qat_quantize_stage)
QAT_TRAIN = Stage("qat.train", "QAT: fine-tune (distillation)", qat_train_stage)
QAT_EXPORT = Stage("qat.export", "QAT: convert, save INT8 IR", qat_export_stage)

INT8_STAGES: list[Stage[Context]] = [PRECHECK, CALIBRATE, S.HOLD_OUT, S.EXPORT, QUANTIZE, ADVISE, S.VERIFY, EVALUATE,
                                     DIAGNOSE, S.SPEED, S.STATIC_BATCH, ISA_MATRIX]
QAT_STAGES: list[Stage[Context]] = [PRECHECK_QAT, CALIBRATE, S.HOLD_OUT, S.EXPORT, PTQ_BESIDE, QAT_QUANTIZE,
                                    QAT_TRAIN, QAT_EXPORT, S.VERIFY, EVALUATE, DIAGNOSE, S.SPEED, S.STATIC_BATCH,
                                    ISA_MATRIX]


def int8_stages(with_qat: bool = False) -> list[Stage[Context]]:
    return QAT_STAGES if with_qat else INT8_STAGES


# ------------------------------------------------------------------ the report
def int8_report(ctx: Context) -> QuantReport:
    """The INT8 stages' results as one report (no report files; compress.stages.finish adds the times and file
    sizes)."""
    loaded, run, q = ctx.loaded, ctx.run, ctx.int8
    evaluation, diagnosis, quantized = q.evaluation, q.diagnosis, q.quantized
    precision = default_precision(run.device)
    report = QuantReport(
        command=run.command, seed=run.seed, versions=versions(),
        model=ModelInfo(loaded.variant, loaded.checkpoint, loaded.input_size, loaded.num_classes, run.device,
                        batch=run.batch),
        settings=q.settings, data_rule=ctx.parts.rule, calibration=q.calibration.part,
        calibration_items=q.calibration.items, validation=S.data_part(ctx.held_out.data),
        allow_overlap=run.allow_overlap, quantizers=quantized.fake_quantize, fp32_checks=ctx.checks,
        int8_vs_fp32=evaluation.int8_vs_fp32, int8_f32_hint_vs_fp32=evaluation.int8_f32_hint_vs_fp32,
        default_precision=precision, per_layer_sqnr=diagnosis.layers,
        worst_layers=[w.name for w in sorted(diagnosis.layers, key=lambda d: d.int8_db)[:5]],
        targets=targets(evaluation, diagnosis, q.matrix, q.settings, precision) + qat_targets(q),
        runtime=diagnosis.runtime, int8_runtime_vs_graph=diagnosis.vs_graph,
        accuracy_control=evaluation.accuracy_control, speed=ctx.speed, isa_matrix=q.matrix, notes=quantized.notes,
        qat=qat_record(q), fp32_deployed_vs_f32=evaluation.fp32_deployed_vs_f32,
        undertrained_teacher=None if q.qat is None else undertrained_teacher(
            evaluation.int8_vs_fp32.fp32_top1, evaluation.int8_vs_fp32.int8_top1, evaluation.int8_vs_fp32.n,
            "QAT INT8 IR"))
    report.deploy = quant_choice(report)
    report.advice = q.advice
    if q.advice is None:
        report.advice_plan = advise.plan(q.settings, report.worst_layers)
    return report


def qat_targets(q: Int8State) -> list[Target]:
    """QAT's IR against PTQ's: no more executed nodes (targets.qat_nodes_target)."""
    if q.qat is None or q.ptq.runtime is None or not q.diagnosis.runtime:
        return []
    return [qat_nodes_target(q.diagnosis.runtime[-1], q.ptq.runtime)]


def qat_record(q: Int8State) -> QatRecord | None:
    if q.qat is None:
        return None
    p, trained, s = q.ptq, q.trained, q.qat
    return QatRecord(s.qat_steps, s.qat_batch, s.qat_lr, S.data_part(q.qat_data), trained.seconds,
                     [round(v, 6) for v in trained.losses], trained.probe_loss, trained.ranges_changed, trained.ranges,
                     trained.max_range_change, p.evaluation.int8_vs_fp32, p.evaluation.int8_f32_hint_vs_fp32,
                     p.quantized.fake_quantize, p.runtime)

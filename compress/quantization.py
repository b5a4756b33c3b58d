"""The INT8 job, read top to bottom as its pipeline (compress.quantize and compress.prune --quantize are thin
CLIs on it):

    report = quantize_model(loaded, parts, QuantSettings(), Path("outputs/run"), RunConfig(command="..."))

convert the deploy graph (and check the ignored scope) -> calibrate -> export -> quantize (NNCF) -> verify the FP32
twins -> evaluate FP32 and INT8 -> diagnose (per layer, against the graph's own semantics, runtime graph) -> time
-> report. Each stage is one call with a typed result; nothing here sees argv.
"""

from __future__ import annotations

import logging
import re
import tempfile
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from . import export as E
from . import isa
from . import verification as V
from .atomic import check_apart, staging_dir
from .data import DataSource, no_images
from .errors import InputError
from .evaluation import F32, OVRun, Preloaded, evaluate_openvino
from .loading import LoadedModel, output_bytes
from .metrics import compare_int8
from .progress import Progress
from .render import write_quant_outputs
from .report import (
    AccuracyControl,
    Check,
    DataPart,
    GraphAgreement,
    Int8Comparison,
    IsaRow,
    LayerSQNR,
    ModelInfo,
    PruneReport,
    QuantReport,
    SpeedReport,
    Target,
    Timer,
    versions,
)
from .runtime import SATURATING_LEVELS, RuntimeGraph, default_precision, own_isa, runtime_graph
from .settings import (
    DEFAULT_RUN,
    TARGET_MAX_TOP1_DROP_PT,
    TARGET_MIN_AGREEMENT_PCT,
    TARGET_MIN_GRAPH_AGREEMENT_PCT,
    TARGET_MIN_GRAPH_SQNR_DB,
    TARGET_MIN_SQNR_DB,
    QuantSettings,
    RunConfig,
)
from .sources import DataParts
from .speed import BASELINE, measure_speed
from .tolerances import INT8_RUNTIME_MARGIN_DB

log = logging.getLogger("compress")
R = TypeVar("R", QuantReport, PruneReport)
N_VERIFY = 8  # images for the FP32 twin checks
N_DIAGNOSE = 32  # images for the per-layer SQNR diagnosis
N_IR_FP32 = 2  # images the NumPy IR executor runs the FP32 IRs on (float64)
N_IR_INT8 = 32  # images for OpenVINO's INT8 against the NumPy run of the same IR (a whole set: tools.check_int8_ir)
GRAPH_METRIC = "OpenVINO vs the IR's NumPy run:"  # the graph targets' metrics begin so
ISA_MAX_IMAGES = 1000  # held-out images each ISA row runs INT8 on against FP32
PRELOAD_BYTES = 1 << 30  # validation images are preprocessed once when they fit in this much memory


# ------------------------------------------------------------------ the stages' inputs and results
@dataclass(frozen=True)
class QuantJob:
    """One INT8 job: the model, its data, the NNCF settings and the run's options. `baseline` is what the speed
    section's plain FP32 is made of (default: the model itself; the unpruned model of a pruned one)."""

    loaded: LoadedModel
    parts: DataParts
    settings: QuantSettings = field(default_factory=QuantSettings)
    run: RunConfig = DEFAULT_RUN
    baseline: LoadedModel | None = None


@dataclass
class Calibration:
    arrays: list[np.ndarray]  # [1,3,S,S] each
    part: DataPart
    items: list[dict[str, Any]]  # the images used, as the report records them


@dataclass
class HeldOut:
    """The validation data as the stages read it: preloaded when it fits in memory, and two fixed samples."""

    data: Preloaded | DataSource
    verify_x: np.ndarray  # N_VERIFY images: the FP32 twin checks
    diagnose_x: np.ndarray  # N_DIAGNOSE other images: the per-layer diagnosis and OpenVINO against the graph


@dataclass
class Quantized:
    taps_model: Any  # ov.Model: the quantized deploy graph with its named intermediates
    xml: Path  # model_int8.xml: the same graph with only the logits
    fake_quantize: int
    notes: list[str] = field(default_factory=list)  # NNCF's expected messages, counted (ExpectedMessages)


@dataclass
class Evaluation:
    int8_vs_fp32: Int8Comparison  # INT8 at the device's default precision, as deployed
    int8_f32_hint_vs_fp32: Int8Comparison  # the non-quantized ops in f32: the quantizers' own error
    accuracy_control: AccuracyControl | None
    fp32_logits: np.ndarray  # the FP32 IR (f32 hint) on the held-out data, in its order


@dataclass
class Diagnosis:
    layers: list[LayerSQNR]  # forward order
    vs_graph: list[GraphAgreement]  # OpenVINO against the NumPy run of model_int8.xml, per device/precision
    graph: V.GraphRun  # that NumPy run (its f32_sqnr_db: the yardstick of the INT8 batch check)
    runtime: list[RuntimeGraph]  # of the FP32 and INT8 IRs (CPU only)

    @property
    def graph_f32_sqnr_db(self) -> float:
        return self.graph.f32_sqnr_db


# ------------------------------------------------------------------ the job
def quantize_model(loaded: LoadedModel, parts: DataParts, settings: QuantSettings | None = None,
                   out: Path = Path("outputs/int8"), run: RunConfig = DEFAULT_RUN) -> QuantReport:
    """Quantize `loaded` to INT8 into the folder `out` (built under a temporary name, renamed when complete)."""
    job = QuantJob(loaded, parts, settings or QuantSettings(), run)
    check_apart(out, {"calib": parts.calibration.root, "val": parts.validation.root, "checkpoint": loaded.checkpoint})
    lap = Timer.since(run.started, "load")
    with staging_dir(out, run.force, output_bytes(loaded)) as tmp:
        report = finish(int8_stages(job, tmp, lap), lap.times, tmp)  # the model files' sizes; reports follow
        write_quant_outputs(report, tmp)
    return report


def int8_stages(job: QuantJob, folder: Path, lap: Timer) -> QuantReport:
    """Every INT8 stage, writing model_fp32.* and model_int8.* into `folder`; returns the report (no report files).
    Both IRs take a static batch `run.batch` input (verified image by image against batch 1); they reshape freely."""
    loaded, settings, run = job.loaded, job.settings, job.run
    job.parts.validation.check_labels(loaded.num_classes)  # scoring against labels the model lacks is meaningless
    levels = isa.resolve(run.isa_matrix)  # an ISA this CPU cannot run is refused before any work
    taps_model = E.convert_deploy(loaded, taps=True)
    check_ignored_scope(taps_model, settings)  # a scope typo stops the run before any data is read
    lap("convert deploy graph, check the ignored scope")
    calibration = calibrate(job.parts.calibration, settings, run.seed)
    lap("calibration data")
    exported = E.export(loaded, folder, taps_model)
    lap("export FP32 (deploy IR, ONNX)")
    held_out = hold_out(job.parts.validation, loaded.input_size, run.seed)
    tuning = Preloaded.of(job.parts.tuning) if job.parts.tuning is not None else None
    quantized = quantize_deploy(exported, calibration, settings, tuning, run.max_drop)
    lap("quantize (nncf), save INT8 IR")
    checks = verify(loaded, exported, held_out.verify_x)
    lap("verify FP32 twins (torch, ONNX Runtime, OpenVINO, NumPy IR executor)")
    evaluation = evaluate_int8(exported.fp32_xml, quantized.xml, held_out, tuning, run)
    lap("evaluate FP32 and INT8")
    diagnosis = diagnose_int8(loaded, exported, quantized, held_out.diagnose_x, run.device)
    lap("per-layer diagnosis, INT8 runtime vs NumPy IR executor, runtime graph")
    speed = time_models(job, exported.fp32_xml, quantized.xml)
    lap("speed (plain FP32, deploy FP32, INT8)")
    if run.batch > 1:  # last: every stage above runs the batch-1 IRs
        checks += set_batch(exported.fp32_xml, quantized.xml, run.batch, held_out, diagnosis.graph_f32_sqnr_db)
        lap(f"static batch {run.batch}")
    matrix = isa_rows(quantized.xml, levels, diagnosis.graph, held_out, evaluation, run.seed)  # the IR as shipped
    lap(f"ISA matrix ({', '.join(levels) or 'none'})")
    cmp = evaluation.int8_vs_fp32
    return QuantReport(
        command=run.command, seed=run.seed, versions=versions(),
        model=ModelInfo(loaded.variant, loaded.checkpoint, loaded.input_size, loaded.num_classes, run.device,
                        batch=run.batch),
        settings=settings, data_rule=job.parts.rule, calibration=calibration.part,
        calibration_items=calibration.items, validation=data_part(job.parts.validation),
        allow_overlap=run.allow_overlap, quantizers=quantized.fake_quantize, fp32_checks=checks, int8_vs_fp32=cmp,
        int8_f32_hint_vs_fp32=evaluation.int8_f32_hint_vs_fp32, default_precision=default_precision(run.device),
        per_layer_sqnr=diagnosis.layers,
        worst_layers=[w.name for w in sorted(diagnosis.layers, key=lambda d: d.int8_db)[:5]],
        targets=targets(evaluation, diagnosis, matrix, settings, default_precision(run.device)),
        runtime=diagnosis.runtime, int8_runtime_vs_graph=diagnosis.vs_graph,
        accuracy_control=evaluation.accuracy_control, speed=speed, isa_matrix=matrix, notes=quantized.notes)


# ------------------------------------------------------------------ the stages
def data_part(src: DataSource | Preloaded) -> DataPart:
    return DataPart(src.name, len(src), src.digest(), len(src.skipped), src.exif)


def hold_out(val: DataSource, input_size: int, seed: int) -> HeldOut:
    """The validation data, preloaded when it fits in PRELOAD_BYTES, with the verification and diagnosis samples."""
    if len(val) * 3 * input_size ** 2 * 4 <= PRELOAD_BYTES:
        data = Preloaded.of(val)
        return HeldOut(data, data.xs[:N_VERIFY], data.xs[-N_DIAGNOSE:])
    return HeldOut(val, np.stack([x for x, _ in val.subset(N_VERIFY, seed)]),
                   np.stack([x for x, _ in val.subset(N_DIAGNOSE, seed + 1)]))


def quantize_deploy(exported: E.Exported, calibration: Calibration, settings: QuantSettings,
                    tuning: Preloaded | None = None, max_drop: float = DEFAULT_RUN.max_drop) -> Quantized:
    """nncf.quantize of the deploy graph (with accuracy control on `tuning` when given), saved as model_int8.xml
    beside the FP32 IR."""

    with ExpectedMessages() as expected:
        if tuning is not None:
            taps = quantize_with_accuracy_control(exported.taps_model, calibration.arrays,
                                                  [(x[None], int(y)) for x, y in tuning], settings, max_drop)
        else:
            taps = quantize(exported.taps_model, calibration.arrays, settings)
    taps = E.as_read_back(taps)  # as compiled from disk (E.as_read_back says why)
    xml = exported.fp32_xml.with_name("model_int8.xml")
    E.save_deployable(taps, xml)
    return Quantized(taps, xml, count_fake_quantize(taps), expected.notes)


def verify(loaded: LoadedModel, exported: E.Exported, x: np.ndarray) -> list[Check]:
    """The FP32 twins on `x`: torch, ONNX Runtime and OpenVINO against the NumPy reference, and the NumPy IR
    executor on the exported graphs."""
    checks = V.verify_fp32(loaded, exported, x)
    with tempfile.TemporaryDirectory() as scratch:
        checks += V.numpy_ir_checks(loaded, exported, x[:N_IR_FP32], Path(scratch))
    return checks


def evaluate_int8(fp32_xml: Path, int8_xml: Path, held_out: HeldOut, tuning: Preloaded | None,
                  run: RunConfig) -> Evaluation:
    """FP32 (f32 hint) against INT8 on the held-out data: as deployed (the device's default precision) and with
    the f32 hint; with accuracy control, the drop on its tuning part too."""
    data, device = held_out.data, run.device
    deployed = OVRun(device)
    fp32 = evaluate_openvino(fp32_xml, data, F32, "FP32 IR (f32)")
    int8 = evaluate_openvino(int8_xml, data, deployed, f"INT8 IR ({device})")
    int8_f32 = evaluate_openvino(int8_xml, data, F32, "INT8 (f32)")
    cmp = compare_int8(fp32.logits, int8.logits, fp32.labels, data.name)
    ac = None
    if tuning is not None:
        fp32_t = evaluate_openvino(fp32_xml, tuning, F32, "FP32 (tuning part)")
        int8_t = evaluate_openvino(int8_xml, tuning, deployed, "INT8 (tuning part)")
        ac = AccuracyControl(run.max_drop, data_part(tuning), fp32_t.top1 - int8_t.top1, cmp.top1_drop)
    return Evaluation(cmp, compare_int8(fp32.logits, int8_f32.logits, fp32.labels, data.name), ac, fp32.logits)


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
                runtime_graph(quantized.xml, "INT8 IR", device)] if device.upper() == "CPU" else [])
    return Diagnosis(layers, vs_graph, graph, runtime)


def time_models(job: QuantJob, fp32_xml: Path, int8_xml: Path) -> SpeedReport | None:
    """The speed section: plain FP32 of the baseline, the deploy FP32 IR and the INT8 IR, side by side (None when
    run.benchmark_seconds is 0)."""
    run = job.run
    if run.benchmark_seconds <= 0:
        return None
    pruned = "pruned " if job.baseline is not None and job.baseline is not job.loaded else ""
    return measure_speed({BASELINE: partial(E.convert_plain, job.baseline or job.loaded),
                          f"{pruned}deploy FP32": fp32_xml, f"{pruned}INT8": int8_xml},
                         job.loaded.input_size, batch=run.benchmark_batch, seconds=run.benchmark_seconds,
                         device=run.device)


def set_batch(fp32_xml: Path, int8_xml: Path, batch: int, held_out: HeldOut, graph_f32_sqnr_db: float) -> list[Check]:
    """Both IRs rewritten with a static input batch, each checked image by image against batch 1."""
    return [E.set_batch(fp32_xml, batch, held_out.verify_x),
            E.set_batch(int8_xml, batch, held_out.diagnose_x[:N_IR_INT8], graph_f32_sqnr_db - INT8_RUNTIME_MARGIN_DB)]


def isa_rows(int8_xml: Path, levels: list[str], graph: V.GraphRun, held_out: HeldOut, evaluation: Evaluation,
             seed: int = 0) -> list[IsaRow]:
    """The INT8 IR under each ISA level (compress.isa): against the graph on the diagnosis images, and against FP32
    on the held-out data (at most ISA_MAX_IMAGES of it: the first ones when preloaded, else a seeded subset)."""
    if not levels:
        return []
    data = held_out.data
    if isinstance(data, Preloaded):
        n = min(len(data), ISA_MAX_IMAGES)
        ys = data.ys[:n]
        labels = None if any(y is None for y in ys) else np.asarray(ys)
        xs, fp32 = data.xs[:n], evaluation.fp32_logits[:n]
        source = data.name if n == len(data) else f"{data.name} (first {n})"
    else:
        sub = Preloaded.of(data.subset(ISA_MAX_IMAGES, seed + 2))
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
    out = blame(fp32_targets(evaluation.int8_vs_fp32, f"this run ({precision})")
                + (graph_targets(graph, "this run (f32 hint)") if graph is not None else []), own_isa(), settings,
                f32 if precision != "f32" else None)
    for row in rows:
        out += blame(graph_targets(row.vs_graph, f"{row.label} (f32 hint)")
                     + fp32_targets(row.vs_fp32, f"{row.label} ({row.default_precision})"), row.isa, settings,
                     f32 if row.native and row.default_precision != "f32" else None)
    return out


def blame(judged: list[Target], level: str, settings: QuantSettings,
          f32_hint: Int8Comparison | None = None) -> list[Target]:
    """`judged` (one scope's targets) with the likely cause written into each missed one; `f32_hint` is the same
    comparison at the f32 hint when the scope's own precision is lower (bf16)."""
    graph_missed = any(t.met is False and t.metric.startswith(GRAPH_METRIC) for t in judged)
    for t in judged:
        if t.met is False:
            t.cause = miss_cause(level, settings, graph_missed, t, f32_hint)
    return judged


def fp32_targets(cmp: Int8Comparison, scope: str) -> list[Target]:
    return [Target.judge("INT8 vs FP32 top-1 drop (pt)", scope, cmp.top1_drop, TARGET_MAX_TOP1_DROP_PT, False),
            Target.judge("INT8 vs FP32 top-1 agreement (%)", scope, cmp.top1_agreement, TARGET_MIN_AGREEMENT_PCT,
                         True),
            Target.judge("INT8 vs FP32 logit SQNR (dB)", scope, cmp.sqnr_db, TARGET_MIN_SQNR_DB, True)]


def graph_targets(g: GraphAgreement, scope: str) -> list[Target]:
    return [Target.judge(f"{GRAPH_METRIC} logit SQNR (dB)", scope, g.sqnr_db, TARGET_MIN_GRAPH_SQNR_DB, True),
            Target.judge(f"{GRAPH_METRIC} top-1 agreement (%)", scope, g.top1_agreement,
                         TARGET_MIN_GRAPH_AGREEMENT_PCT, True)]


def miss_cause(level: str, settings: QuantSettings, graph_missed: bool, target: Target,
               f32_hint: Int8Comparison | None = None) -> str:
    """The likely cause of a missed target on ISA `level`, in words a user can act on."""
    graph_target = target.metric.startswith(GRAPH_METRIC)
    if level in SATURATING_LEVELS and graph_missed:
        if settings.overflow_fix != "enable":
            return (f"{level} has no VNNI: int8 products are summed pairwise in int16 with saturation; quantize "
                    f"with --overflow-fix enable (7-bit weights cannot overflow; this IR: {settings.overflow_fix})")
        return f"{level} has no VNNI and departs even with --overflow-fix enable: see tools.check_int8_ir"
    if graph_target or graph_missed:
        return f"OpenVINO's {level} int8 kernels depart from the IR's semantics (tools.check_int8_ir names the layers)"
    if f32_hint is not None:
        again = next(t for t in fp32_targets(f32_hint, "f32 hint") if t.metric == target.metric)
        if again.met:
            return (f"the float ops at this ISA's default precision (bf16) add the rest: at the f32 hint it is "
                    f"{again.value:.2f}, met (deploy with INFERENCE_PRECISION_HINT=f32 to keep that)")
    return ("the quantization error of these settings (the runtime holds the graph target): try --accuracy-control, "
            "another --activation-range or a larger --ignored-scope (tools.sweep_quant compares them)")


def finish(report: R, times: dict[str, float], folder: Path) -> R:
    """The report with its stage times and the folder's file sizes, once every model file is written."""
    return replace(report, seconds={**times, "total": round(sum(times.values()), 2)},
                   file_bytes={p.name: p.stat().st_size for p in sorted(folder.iterdir())
                               if p.is_file() and not p.name.startswith(".")})


# ------------------------------------------------------------------ NNCF
def calibration_data(source: DataSource) -> list[np.ndarray]:
    """Preprocessed [1,3,S,S] arrays of a calibration source (already sized by the caller)."""
    out = [x[None] for x, _ in Progress(source, total=len(source), desc=f"calibration ({source.name})", unit="img")]
    if not out:
        raise no_images("calibration source", source.name)
    return out


def calibrate(source: DataSource, settings: QuantSettings, seed: int = 0) -> Calibration:
    """The calibration stage: `settings.subset_size` images of `source` (seeded), decoded, with the record of
    which images were used (unreadable ones are skipped and counted)."""
    subset = source.subset(settings.subset_size, seed)
    arrays = calibration_data(subset)
    if len(arrays) < settings.subset_size:
        log.warning("calibration: %d usable image(s) in %s, fewer than the %d asked for (subset_size); NNCF "
                    "calibrates on these", len(arrays), subset.name, settings.subset_size)
    return Calibration(arrays, data_part(subset), subset.manifest()["items"])


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

    check_ignored_scope(taps_model, settings)
    return nncf.quantize(taps_model, nncf.Dataset(calib), **settings.nncf_kwargs())


def quantize_with_accuracy_control(taps_model: Any, calib: list[np.ndarray], tuning: list[tuple[np.ndarray, int]],
                                   settings: QuantSettings, max_drop_pt: float) -> Any:
    """nncf.quantize_with_accuracy_control: reverts the most harmful quantizers until the top-1 drop on the
    *tuning* part is at most max_drop_pt (the caller reports the drop on a separate held-out part)."""
    import nncf

    check_ignored_scope(taps_model, settings)

    def validate(compiled: Any, data: Any) -> float:
        out = compiled.output(0)
        hits = [int(np.argmax(compiled(x)[out]) == y) for x, y in data]
        return float(np.mean(hits))

    kw = settings.nncf_kwargs()
    kw["advanced_quantization_parameters"] = kw.pop("advanced_parameters", None)
    return nncf.quantize_with_accuracy_control(
        taps_model, nncf.Dataset(calib), nncf.Dataset(tuning, lambda item: item[0]), validate,
        max_drop=max_drop_pt / 100.0, drop_type=nncf.DropType.ABSOLUTE, **kw)


def count_fake_quantize(model: Any) -> int:
    return sum(op.get_type_name() == "FakeQuantize" for op in model.get_ops())



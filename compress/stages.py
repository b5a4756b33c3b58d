"""The stages jobs are made of, and the one runner: a job is its list of stages.

    run_stages(INT8_STAGES, Context(loaded, parts, folder, run, int8=Int8State(settings)), lap)   # compress.quantize

A `Stage` has a stable id (the report's `seconds` key, whatever the run's content) and runs one function on the
job's `Context`, which it reads and adds to. Jobs compose the stage lists: the INT8 stages (compress.int8) keep
their state in `ctx.int8`; export, the FP32 twins, the speed section and the static batch (here) are the same
functions in every job. `observe` is the seam through which a test (or a tool) sees each stage start, by id, and
can fail one on purpose.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np

from . import export as E
from . import verification as V
from .data import DataSource, Images
from .data.sources import JobData
from .loading import LoadedModel
from .report import Check, DataPart, PruneReport, QuantReport, SpeedReport, Timer
from .settings import DEFAULT_RUN, RunConfig
from .speed import BASELINE, measure_speed

N_VERIFY = 8  # validation images of the FP32 twin checks (and of the FP32 IR's static-batch check)
N_DIAGNOSE = 32  # other validation images: the INT8 diagnosis and the INT8 IR's static-batch check
N_IR_FP32 = 2  # images the NumPy IR executor runs the FP32 IRs on (float64)
PRELOAD_BYTES = 1 << 30  # validation images are preprocessed once when they fit in this much memory


# ------------------------------------------------------------------ what the stages share
@dataclass
class HeldOut:
    """The validation data as the stages read it: preloaded when it fits in memory, and two fixed samples."""

    data: Images | DataSource
    verify_x: np.ndarray  # N_VERIFY images: the FP32 twin checks
    diagnose_x: np.ndarray  # N_DIAGNOSE other images: the per-layer diagnosis and OpenVINO against the graph


@dataclass
class WrittenIR:
    """An IR the job wrote into its folder, as the speed and static-batch stages read it."""

    xml: Path
    sample: np.ndarray  # images its static-batch form is checked on, image by image against batch 1
    min_sqnr_db: float | None = None  # None: the float tolerance; INT8: the graph's float32 yardstick less a margin
    static: bool = True  # rewritten to the run's static batch (a comparison IR, PTQ's beside QAT, is not)


@dataclass
class Context:
    """One job's state: its inputs, then what each stage adds. Jobs with more stages extend it."""

    loaded: LoadedModel  # the model the IRs are made of
    parts: JobData
    folder: Path  # the staging folder the job writes into
    run: RunConfig = DEFAULT_RUN
    baseline: LoadedModel | None = None  # the speed section's plain FP32 (None: `loaded`; a pruned job: unpruned)
    prefix: str = ""  # of the IRs' labels ("pruned ")
    taps_model: Any = None  # the converted deploy graph with its named intermediates (export reuses it)
    held_out: HeldOut | None = None
    exported: E.Exported | None = None
    irs: dict[str, WrittenIR] = field(default_factory=dict)  # label -> IR, in the order written
    checks: list[Check] = field(default_factory=list)  # a failed one makes the command exit 1 (cli.exit_status)
    speed: SpeedReport | None = None
    int8: Any = None  # compress.int8.Int8State, when the job runs the INT8 stages

    def label(self, what: str) -> str:
        return self.prefix + what


C = TypeVar("C", bound=Context)


@dataclass(frozen=True)
class Stage(Generic[C]):
    """One step of a job: `id` is stable (the report's times are keyed by it), `title` says what it does; `when`
    (default: always) skips the stage for a run that does not want it."""

    id: str
    title: str
    run: Callable[[C], None]
    when: Callable[[C], bool] | None = None


_observers: list[Callable[[str], None]] = []


@contextmanager
def observe(callback: Callable[[str], None]) -> Iterator[None]:
    """Within the block, `callback(stage_id)` is called as each stage starts: a test records which stages ran (or
    that none did), or raises from one to fail that stage."""
    _observers.append(callback)
    try:
        yield
    finally:
        _observers.remove(callback)


def run_stages(stages: Sequence[Stage[C]], ctx: C, lap: Timer) -> C:
    """Run `stages` in order on `ctx`, timing each into `lap` under its id."""
    for stage in stages:
        if stage.when is not None and not stage.when(ctx):
            continue
        for callback in list(_observers):
            callback(stage.id)
        stage.run(ctx)
        lap(stage.id)
    return ctx


R = TypeVar("R", QuantReport, PruneReport)


def finish(report: R, times: dict[str, float], folder: Path) -> R:
    """The report with its stage times and the folder's file sizes, once every model file is written."""
    return replace(report, seconds={**times, "total": round(sum(times.values()), 2)},
                   file_bytes={p.name: p.stat().st_size for p in sorted(folder.iterdir())
                               if p.is_file() and not p.name.startswith(".")})


def data_part(src: DataSource | Images) -> DataPart:
    """The report's record of a data part: the images decoded (Images), or a plan not decoded here (DataSource: its
    planned images, none skipped yet)."""
    skipped = len(src.skipped) if isinstance(src, Images) else 0
    return DataPart(src.name, len(src), src.digest(), skipped, src.exif)


def hold_out(val: DataSource, input_size: int, seed: int) -> HeldOut:
    """The validation data, preloaded when it fits in PRELOAD_BYTES, with the verification and diagnosis samples."""
    if len(val) * 3 * input_size ** 2 * 4 <= PRELOAD_BYTES:
        data = Images.of(val)
        return HeldOut(data, data.xs[:N_VERIFY], data.xs[-N_DIAGNOSE:])
    return HeldOut(val, np.stack([x for x, _ in val.subset(N_VERIFY, seed)]),
                   np.stack([x for x, _ in val.subset(N_DIAGNOSE, seed + 1)]))


# ------------------------------------------------------------------ the shared stages
def held_out_stage(ctx: Context) -> None:
    ctx.held_out = hold_out(ctx.parts.validation, ctx.loaded.input_size, ctx.run.seed)


def export_stage(ctx: Context) -> None:
    """model_fp32.xml/.bin (the deploy graph) and model_fp32.onnx (the training form)."""
    ctx.exported = E.export(ctx.loaded, ctx.folder, ctx.taps_model)
    ctx.irs[ctx.label("deploy FP32")] = WrittenIR(ctx.exported.fp32_xml, ctx.held_out.verify_x)


def verify_stage(ctx: Context) -> None:
    """The FP32 twins: torch, ONNX Runtime and OpenVINO against the NumPy reference, and the NumPy IR executor on
    the exported graphs."""
    x = ctx.held_out.verify_x
    ctx.checks += V.verify_fp32(ctx.loaded, ctx.exported, x)
    with tempfile.TemporaryDirectory() as scratch:
        ctx.checks += V.numpy_ir_checks(ctx.loaded, ctx.exported, x[:N_IR_FP32], Path(scratch))


def speed_stage(ctx: Context) -> None:
    """Plain FP32 of the baseline and every IR written, side by side (compress.speed), and where each IR's time
    goes (compress.profile)."""
    run = ctx.run
    ctx.speed = measure_speed({BASELINE: partial(E.convert_plain, ctx.baseline or ctx.loaded),
                               **{label: ir.xml for label, ir in ctx.irs.items()}},
                              ctx.loaded.input_size, batch=run.benchmark_batch, seconds=run.benchmark_seconds,
                              device=run.device)


def static_batch_stage(ctx: Context) -> None:
    """Every IR rewritten with a static input batch, each checked image by image against batch 1 (last: the
    stages before it run the batch-1 IRs)."""
    ctx.checks += [E.set_batch(ir.xml, ctx.run.batch, ir.sample, ir.min_sqnr_db) for ir in ctx.irs.values()
                   if ir.static]


# (a job that read the validation data earlier, as pruning does for the unpruned model's accuracy, holds it already)
HOLD_OUT = Stage("held_out", "held-out data", held_out_stage, when=lambda ctx: ctx.held_out is None)
EXPORT = Stage("export", "export FP32 (deploy IR, ONNX)", export_stage)
VERIFY = Stage("verify", "verify FP32 twins (torch, ONNX Runtime, OpenVINO, NumPy IR executor)", verify_stage)
SPEED = Stage("speed", "plain FP32 and every IR written, timed side by side", speed_stage,
              when=lambda ctx: ctx.run.benchmark_seconds > 0)
STATIC_BATCH = Stage("static_batch", "every IR rewritten to the run's static batch", static_batch_stage,
                     when=lambda ctx: ctx.run.batch > 1)
# what a job that writes only FP32 IRs runs (compress.prune without --quantize); the INT8 job lists the same ones
FP32_STAGES: list[Stage[Any]] = [HOLD_OUT, EXPORT, VERIFY, SPEED, STATIC_BATCH]

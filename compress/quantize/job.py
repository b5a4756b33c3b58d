"""The INT8 job: the INT8 stages (compress.int8) on one model, then the report. compress.quantize is the command
on it; nothing here sees argv.

    report = quantize_model(loaded, parts, QuantSettings(), Path("outputs/run"), RunConfig(command="..."))
"""

from __future__ import annotations

from pathlib import Path

from .. import stages as S
from ..atomic import check_apart, staging_dir
from ..data import DataSource
from ..data.sources import JobData
from ..int8 import Int8State, check_qat, int8_report, int8_stages
from ..loading import LoadedModel, output_bytes
from ..render import write_quant_outputs
from ..report import QuantReport, Timer
from ..settings import DEFAULT_RUN, QatSettings, QuantSettings, RunConfig


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
        int8 = Int8State(settings or QuantSettings(), qat, qat_data)
        ctx = S.run_stages(int8_stages(qat is not None), S.Context(loaded, parts, tmp, run, int8=int8), lap)
        report = S.finish(int8_report(ctx), lap.times, tmp)  # the model files' sizes; reports follow
        write_quant_outputs(report, tmp)
    return report

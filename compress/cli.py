"""The CLI layer every command shares: argparse types that validate before any work, the INT8 options of
compress.quantize and compress.prune --quantize (argv -> QuantSettings / DataParts), quiet-by-default
logging, and one mapping from outcomes to exit statuses (0 done, 1 failed check or internal error with its
traceback, 2 bad input with one line naming it, 130 interrupted, 143 terminated by SIGTERM). Library code
below never sees argv."""

from __future__ import annotations

import argparse
import logging
import os
import re
import shlex
import signal
import sys
import threading
import time
import traceback
import typing
import warnings
from collections.abc import Callable

from tqdm.contrib.logging import logging_redirect_tqdm

from reference_np.specs import INPUT_MULTIPLE

from .data import DEFAULT_EXIF, EXIF_MODES
from .errors import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    DiskError,
    InputError,
    Terminated,
)
from .runtime import isa_levels
from .settings import (
    ACTIVATION_RANGES,
    DEFAULT_IGNORED_SCOPE,
    DEFAULT_RUN,
    MODEL_TYPES,
    OVERFLOW_FIXES,
    PRESETS,
    QuantSettings,
    RunConfig,
    ScopeEntry,
)
from .sources import DataParts, DataSpec, quant_parts, source_help

# Library errors name settings by their field; a command line names them by its flags. The one table between them.
FLAGS: dict[str, str] = {
    "out": "--out", "force": "--force", "calib": "--calib", "val": "--val", "val_fraction": "--val-fraction",
    "allow_overlap": "--allow-overlap", "accuracy_control": "--accuracy-control", "subset_size": "--subset-size",
    "preset": "--preset", "model_type": "--model-type", "activation_range": "--activation-range",
    "smooth_quant_alpha": "--smooth-quant-alpha", "overflow_fix": "--overflow-fix", "isa_matrix": "--isa-matrix",
    "ignored_scope": "--ignored-scope", "max_drop": "--max-drop",
    "batch": "--batch", "benchmark_seconds": "--benchmark-seconds", "benchmark_batch": "--benchmark-batch",
    "ratio": "--ratio", "head_ratio": "--head-ratio", "method": "--method", "round_to": "--round-to",
    "finetune_steps": "--finetune-steps", "finetune_batch": "--finetune-batch", "lr": "--lr", "data": "--data",
    "input_size": "--input-size", "finetune_size": "--finetune-size", "exif": "--exif",
    "backend": "--backend", "precision": "--precision", "checkpoint": "--checkpoint", "model": "--model",
    "src": "--src", "labels": "--labels",
}


def cli_message(e: InputError) -> str:
    """An InputError's message in the command line's words: each field it names becomes its flag."""
    text = str(e)
    for name in e.fields:
        flag = FLAGS.get(name, name)
        for pattern in (rf"{re.escape(name)}=True", re.escape(name)):  # `force=True` first, then `force`
            text, n = re.subn(rf"(?<![\w\-./]){pattern}(?![\w\-])", flag, text, count=1)
            if n:
                break
        if not n:
            text = f"{flag}: {text}"
    return text


def int_in(lo: int, hi: int | None = None, hint: str = "") -> Callable[[str], int]:
    """An argparse type: an integer in [lo, hi], with a message naming the range."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not an integer") from None
        if v < lo or (hi is not None and v > hi):
            raise argparse.ArgumentTypeError(f"{v}: must be " + (f"from {lo} to {hi}" if hi else f">= {lo}") + hint)
        return v
    return parse


positive_int = int_in(1)


def input_size(text: str) -> int:
    """--input-size: a positive multiple of 32 (0 is not 'default': omit the option for that), at most 2048
    (CloFormer's attention memory grows with (H*W)^2/ws^2)."""
    v = int_in(-(2 ** 31))(text)
    if v <= 0 or v % INPUT_MULTIPLE:
        raise argparse.ArgumentTypeError(f"{v}: must be a positive multiple of {INPUT_MULTIPLE} (e.g. 64, 224); "
                                         "omit the option for the checkpoint's own size")
    if v > 2048:
        raise argparse.ArgumentTypeError(f"{v}: larger than 2048 px; CloFormer's attention memory grows with "
                                         "(H*W)^2/ws^2, so such sizes do not fit in memory")
    return v


def add_exif_option(ap: argparse.ArgumentParser) -> None:
    """--exif, on every command that preprocesses images (data.EXIF_MODES)."""
    ap.add_argument("--exif", choices=EXIF_MODES, default=DEFAULT_EXIF,
                    help="EXIF orientation of image files: ignore = preprocess the pixels as stored (timm, torchvision "
                         "ImageFolder: what published ImageNet accuracies assume), apply = turn each image upright "
                         "first, as a photo viewer shows it (default: %(default)s)")


def add_quant_options(ap: argparse.ArgumentParser) -> None:
    """The INT8 options, shared with `compress.prune --quantize`."""
    d = QuantSettings()
    ap.add_argument("--calib", default="sample", help=f"calibration data: {source_help()} (default: %(default)s)")
    ap.add_argument("--subset-size", type=positive_int, default=d.subset_size,
                    help="calibration images (default: %(default)s, as NNCF)")
    ap.add_argument("--preset", choices=PRESETS, default=d.preset,
                    help="NNCF preset: mixed = asymmetric activations (default: %(default)s)")
    ap.add_argument("--model-type", choices=MODEL_TYPES, default=d.model_type or "none",
                    help="NNCF model type (transformer: fewer quantizers on element-wise ops; default: %(default)s)")
    ap.add_argument("--fast-bias-correction", action=argparse.BooleanOptionalAction, default=d.fast_bias_correction,
                    help="NNCF fast bias correction; off = full bias correction, which doubles the quantize time and "
                         "saved 19 of 3200 images from changing class on the selection set (default: %(default)s)")
    ap.add_argument("--activation-range", choices=ACTIVATION_RANGES, default=d.activation_range,
                    help="NNCF activation range estimator: minmax = global min/max over the calibration set, "
                         "mean_minmax = NNCF's default, histogram = MSE-optimal (default: %(default)s)")
    ap.add_argument("--overflow-fix", choices=OVERFLOW_FIXES, default=d.overflow_fix,
                    help="NNCF overflow fix: 7-bit weights in every convolution and MatMul (enable), in the first "
                         "only (first_layer), or none (disable). CPUs without VNNI (AVX2, plain AVX-512) sum int8 "
                         "products pairwise in int16 with saturation; 7-bit weights cannot overflow there. The "
                         "report's ISA matrix shows what each ISA computes (default: %(default)s)")
    ap.add_argument("--smooth-quant-alpha", type=float, default=d.smooth_quant_alpha,
                    help="SmoothQuant alpha for convolutions and MatMuls, transformer type only; -1 disables "
                         "(default: NNCF's)")
    ap.add_argument("--ignored-scope", action="append", default=None, metavar="KIND:VALUE",
                    help="keep ops in float: type:Softmax, name:<node>, pattern:<regex> (repeatable; replaces the "
                    f"default {' '.join(map(str, DEFAULT_IGNORED_SCOPE))}; 'none' quantizes everything). Every "
                    "entry must match a node")
    ap.add_argument("--accuracy-control", action="store_true",
                    help="nncf.quantize_with_accuracy_control: tunes on one half of the validation data, reports "
                         "the drop on the other half")
    ap.add_argument("--val", default=None, help="held-out data for INT8 vs FP32 (default: the checkpoint's held-out "
                    "set, proxy-val for the proxy checkpoint; else a disjoint split of --calib)")
    ap.add_argument("--val-fraction", type=float, default=0.5,
                    help="without --val: the fraction of --calib kept for validation (default: %(default)s)")
    ap.add_argument("--allow-overlap", action="store_true",
                    help="accept a --val that shares images with --calib (compress.prune: or with --data)")
    ap.add_argument("--val-limit", type=positive_int, default=None, help="evaluate a seeded subset of --val")
    add_exif_option(ap)
    ap.add_argument("--max-drop", type=float, default=DEFAULT_RUN.max_drop,
                    help="top-1 points (accuracy control; default: %(default)s)")
    ap.add_argument("--device", default=DEFAULT_RUN.device,
                    help="OpenVINO device for the INT8 evaluation and the speed section: CPU, NPU, GPU, AUTO "
                         "(default: %(default)s)")
    ap.add_argument("--seed", type=int, default=DEFAULT_RUN.seed,
                    help="seed of the calibration/validation subsets (default: %(default)s)")
    r = DEFAULT_RUN
    ap.add_argument("--benchmark-seconds", type=float, default=r.benchmark_seconds,
                    help="timing budget of the report's speed section: plain FP32, deploy FP32 and INT8 at batch 1 "
                         "(latency, throughput) and at --benchmark-batch (throughput), interleaved rounds; 0 skips "
                         "it (default: %(default)s)")
    ap.add_argument("--benchmark-batch", type=positive_int, default=r.benchmark_batch,
                    help="N of the speed section's batch-N throughput (default: %(default)s)")
    ap.add_argument("--isa-matrix", default=r.isa_matrix, metavar="{none,default,all,ISA[,ISA...]}",
                    help="run the INT8 IR once per instruction set, each in a process under ONEDNN_MAX_CPU_ISA, and "
                         "judge every target on each: default = AVX2 (a CPU without VNNI) and this CPU's own; all = "
                         f"every level this CPU allows ({', '.join(isa_levels()) or 'none here'}); or a list of "
                         "oneDNN names, e.g. AVX2,AVX512_CORE_VNNI (default: %(default)s)")
    ap.add_argument("--batch", type=positive_int, default=r.batch,
                    help="static input batch of the IRs written (default: %(default)s; NPUs want static shapes). "
                         "Every IR also reshapes to any batch and any input size that is a multiple of 32")


def settings_from_args(args: argparse.Namespace) -> QuantSettings:
    """argv -> QuantSettings; every value is validated by QuantSettings itself."""
    specs = [str(e) for e in DEFAULT_IGNORED_SCOPE] if args.ignored_scope is None else args.ignored_scope
    alpha = args.smooth_quant_alpha
    return QuantSettings(preset=args.preset, model_type=None if args.model_type == "none" else args.model_type,
                         fast_bias_correction=args.fast_bias_correction, subset_size=args.subset_size,
                         smooth_quant_alpha=alpha, activation_range=args.activation_range,
                         overflow_fix=args.overflow_fix,
                         ignored_scope=tuple(ScopeEntry.parse(s) for s in specs if s != "none"))


def data_spec_from_args(args: argparse.Namespace) -> DataSpec:
    return DataSpec(args.calib, args.val, args.val_fraction, args.val_limit, args.accuracy_control,
                    args.allow_overlap, args.seed, args.exif)


def data_parts_from_args(args: argparse.Namespace, checkpoint: str, size: int) -> DataParts:
    return quant_parts(data_spec_from_args(args), size, "proxy-val" if checkpoint == "proxy" else None)


def run_config_from_args(args: argparse.Namespace, prog: str, argv: list[str]) -> RunConfig:
    return RunConfig(command=command_line(prog, argv), seed=args.seed, device=args.device, max_drop=args.max_drop,
                     allow_overlap=args.allow_overlap, force=args.force, batch=args.batch,
                     benchmark_seconds=args.benchmark_seconds, benchmark_batch=args.benchmark_batch,
                     isa_matrix=args.isa_matrix, started=time.perf_counter())


def command_line(prog: str, argv: list[str]) -> str:
    return f"python -m {prog} " + " ".join(shlex.quote(a) for a in argv)


def add_common(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--verbose", action="store_true", help="show NNCF/OpenVINO INFO messages")


def _warning_as_log(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                    file: object = None, line: str | None = None) -> None:
    # one line in the tool's words, through logging (and so above the progress bars), not "file:line: ..."
    logging.getLogger("compress").warning("%s", message)


def configure_logging(verbose: bool) -> None:
    """Quiet by default: NNCF's INFO lines (~160 per run) only with --verbose. Progress bars stay."""
    level = logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    logging.getLogger("compress").setLevel(logging.INFO)
    for name in ("nncf", "openvino", "matplotlib"):  # matplotlib: "generated new fontManager" is INFO
        logging.getLogger(name).setLevel(level)
    try:
        from nncf.common.logging.logger import set_log_level

        set_log_level(level)
    except ImportError:
        pass
    if not verbose:
        warnings.filterwarnings("ignore", module=r"torch\.onnx.*")
        warnings.filterwarnings("ignore", category=UserWarning, module=r"nncf.*")
        warnings.filterwarnings("ignore", message=r".*TracerWarning.*")
        os.environ.setdefault("TQDM_MININTERVAL", "0.5")


def exit_status(prog: str, report: typing.Any, out: os.PathLike | str) -> int:
    """The one exit rule of every command, once its report is written: 1 when a check of any stage failed (the
    report and the output are kept, to see why), else 0. Targets are reported, never exit codes."""
    failed = report.failed_checks()
    if failed:
        print(f"{prog}: error: {len(failed)} check(s) failed ({'; '.join(failed)}); see {out}/report.md",
              file=sys.stderr)
        return EXIT_FAILED
    return 0


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def _default_sigterm_in_child() -> None:
    # a Python-level handler runs only when the main thread executes bytecode: a forked child blocked in C would
    # ignore its parent's terminate(), so a child gets the default action back
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


os.register_at_fork(after_in_child=_default_sigterm_in_child)


def run_main(prog: str, job: Callable[[], int], verbose: bool = False) -> int:
    """Run a CLI's job and map what happens to an exit status. SIGTERM unwinds like Ctrl-C (cleanup, one line)."""
    configure_logging(verbose)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
    shown = warnings.showwarning
    warnings.showwarning = _warning_as_log
    try:
        # the loggers with console handlers (compress's messages propagate to the root's): messages are written
        # above the progress bars, not glued to them
        with logging_redirect_tqdm(loggers=[logging.getLogger(), logging.getLogger("nncf")]):
            status = job()
        return status
    except InputError as e:
        print(f"{prog}: error: {cli_message(e)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except DiskError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return EXIT_FAILED
    except Terminated:
        print(f"{prog}: terminated (SIGTERM); partial output removed", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except MemoryError:
        print(f"{prog}: error: out of memory (try a smaller --input-size or --batch)", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception:
        traceback.print_exc()
        print(f"{prog}: internal error (traceback above); please report it", file=sys.stderr)
        return EXIT_FAILED
    finally:
        warnings.showwarning = shown
        if main_thread:
            signal.signal(signal.SIGTERM, previous)

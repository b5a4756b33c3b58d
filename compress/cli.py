"""The CLI layer every command shares: argparse types that validate before any work, the INT8 options of
compress.quantize and compress.prune --quantize (argv -> QuantSettings / JobData), quiet-by-default
logging, and one mapping from outcomes to exit statuses (0 done, 1 failed check or internal error with its
traceback, 2 bad input with one line naming it, 130 interrupted, 143 terminated by SIGTERM). Library code
below never sees argv."""

from __future__ import annotations

import argparse
import dataclasses
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
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from tqdm.contrib.logging import logging_redirect_tqdm

from reference_np.specs import INPUT_MULTIPLE

from .atomic import check_target
from .data import DEFAULT_EXIF, EXIF_HELP, EXIF_MODES, Preprocess
from .data.sources import DataSpec, JobData, quant_parts
from .errors import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    DiskError,
    InputError,
    Terminated,
)
from .loading import LoadedModel, load
from .options import flag, options
from .process import prepare_process
from .settings import QatSettings, QuantSettings, RunConfig

T = TypeVar("T")


def cli_message(e: InputError) -> str:
    """An InputError's message in the command line's words: each field it names becomes its flag (compress.options.flag:
    one rule for every command, so no table to keep)."""
    text = str(e)
    for name in e.fields:
        flagged = flag(name)
        for pattern in (rf"{re.escape(name)}=True", re.escape(name)):  # `force=True` first, then `force`
            text, n = re.subn(rf"(?<![\w\-./]){pattern}(?![\w\-])", flagged, text, count=1)
            if n:
                break
        if not n:
            text = f"{flagged}: {text}"
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


def command_parser(verb: str, doc: str | None) -> argparse.ArgumentParser:
    """The parser of `python -m compress.<verb>`, its module docstring as the description."""
    return argparse.ArgumentParser(prog=f"python -m compress.{verb}", description=doc,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def add_model_options(ap: argparse.ArgumentParser, input_size_help: str) -> None:
    """--model (the variant), --checkpoint (its weights) and --input-size: every command that loads a model speaks
    this one vocabulary."""
    ap.add_argument("--model", default="cloformer_xxs", help="variant (default: %(default)s)")
    ap.add_argument("--checkpoint", default="proxy", help="checkpoint path (.pth/.safetensors/.npz) or 'proxy', the "
                    "shipped weights (default: %(default)s)")
    ap.add_argument("--input-size", type=input_size, default=None, help=input_size_help)


def add_exif_option(ap: argparse.ArgumentParser) -> None:
    """--exif, on every command that preprocesses images (data.EXIF_MODES)."""
    ap.add_argument("--exif", choices=EXIF_MODES, default=DEFAULT_EXIF, help=f"{EXIF_HELP} (default: %(default)s)")


_KINDS = {"flag": {"action": "store_true"}, "toggle": {"action": argparse.BooleanOptionalAction},
          "append": {"action": "append"}, "value": {}}


def add_options(ap: argparse.ArgumentParser, cls: type) -> None:
    """The options of a settings class (compress.options.option fields) as argparse options, `--field-name`, with the
    field's default and help; an option another class already added (seed, allow_overlap) is added once."""
    for f, opt in options(cls):
        name = flag(f.name)
        if name in ap._option_string_actions:
            continue
        default = f.default_factory() if f.default is dataclasses.MISSING else f.default
        default = opt.to_cli(default) if opt.to_cli is not None else default
        kw: dict[str, typing.Any] = dict(_KINDS[opt.kind])
        kw.update({k: v for k, v in (("type", opt.type), ("choices", opt.choices), ("metavar", opt.metavar))
                   if v is not None})
        text = opt.help if "(default" in opt.help or opt.kind in ("flag", "append") else \
            f"{opt.help} (default: %(default)s)"
        ap.add_argument(name, default=default, help=text, **kw)


def from_args(cls: type[T], args: argparse.Namespace, **given: typing.Any) -> T:
    """A settings object from parsed argv (its option fields; `given` for the rest); each value is validated by
    the class itself, so an error names the field and cli_message turns it into the flag."""
    kw = {f.name: (opt.from_cli or (lambda v: v))(getattr(args, f.name)) for f, opt in options(cls)}
    return cls(**kw, **given)


def add_quant_options(ap: argparse.ArgumentParser) -> None:
    """The INT8 job's options (compress.quantize, compress.prune --quantize): NNCF's settings, the data, the run."""
    for cls in (QuantSettings, DataSpec, RunConfig):
        add_options(ap, cls)


def add_qat_options(ap: argparse.ArgumentParser, data: bool = True) -> None:
    """--qat and its settings (compress.quantize, compress.prune --quantize); `data`: --qat-data too (pruning
    fine-tunes QAT on its own --data)."""
    ap.add_argument("--qat", action="store_true", help="quantization-aware training: NNCF's PTQ of the torch deploy "
                    "graph, then distillation from FP32 with the quantizer ranges trained; the PTQ of the same "
                    "settings is measured beside it (model_int8_ptq.xml)")
    add_options(ap, QatSettings)
    if data:
        ap.add_argument("--qat-data", default="proxy-train", help="QAT fine-tuning images (labels used when present), "
                        "disjoint from the validation data (default: %(default)s)")


def qat_from_args(args: argparse.Namespace) -> QatSettings | None:
    """QatSettings with --qat; without it, a --qat-* option given is refused rather than ignored."""
    qat = from_args(QatSettings, args)
    if args.qat:
        return qat
    changed = [f.name for f, _ in options(QatSettings) if f.name.startswith("qat_")
               and getattr(qat, f.name) != getattr(QatSettings(), f.name)]
    if changed or getattr(args, "qat_data", "proxy-train") != "proxy-train":
        raise InputError(f"{flag((changed or ['qat_data'])[0])} applies with --qat only", field="qat")
    return None


def data_parts_from_args(args: argparse.Namespace, checkpoint: str, transform: Preprocess) -> JobData:
    """The INT8 job's data, preprocessed by the model card's transform (LoadedModel.transform)."""
    return quant_parts(from_args(DataSpec, args), transform, "proxy-val" if checkpoint == "proxy" else None)


def run_config_from_args(args: argparse.Namespace, prog: str, argv: list[str]) -> RunConfig:
    return from_args(RunConfig, args, command=command_line(prog, argv), started=time.perf_counter())


def target_and_model(args: argparse.Namespace, out_name: str) -> tuple[Path, LoadedModel]:
    """A job command's first steps: --out (default outputs/<out_name>-<time>) checked, then --model/--checkpoint
    loaded at --input-size."""
    out = args.out or Path("outputs") / f"{out_name}-{datetime.now():%Y%m%d-%H%M%S}"
    check_target(out, args.force)
    return out, load(args.model, args.checkpoint, args.input_size)


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
    # imported by nncf.strip (QAT): torchao's CUDA kernels and Triton are absent on a CPU build, and torch's
    # pytree deprecation concerns torchao's enums; none of it is the user's to act on
    for name in ("torchao", "torch.utils._pytree"):
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.ERROR)
    try:
        from nncf.common.logging.logger import set_log_level

        set_log_level(level)
    except ImportError:
        pass
    if not verbose:
        import torch

        warnings.filterwarnings("ignore", module=r"torch\.onnx.*")
        warnings.filterwarnings("ignore", category=UserWarning, module=r"nncf.*")
        warnings.filterwarnings("ignore", message=r".*TracerWarning.*")
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)  # nncf.strip traces the QAT graph
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


def run_main(prog: str, job: Callable[[], int], verbose: bool = False) -> int:
    """Run a CLI's job and map what happens to an exit status. SIGTERM unwinds like Ctrl-C (cleanup, one line)."""
    prepare_process()
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

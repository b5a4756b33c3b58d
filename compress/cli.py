"""What every CLI shares: argparse types that validate before any work, quiet-by-default logging, and
one mapping from outcomes to exit statuses (0 done, 1 failed check or internal error with its
traceback, 2 bad input with one line naming it, 130 interrupted)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
import warnings
from collections.abc import Callable

from reference_np.specs import INPUT_MULTIPLE

from .errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INTERRUPTED, InputError


def input_size(text: str) -> int:
    """--input-size: a positive multiple of 32 (0 is not 'default': omit the option for that)."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not an integer") from None
    if v <= 0 or v % INPUT_MULTIPLE:
        raise argparse.ArgumentTypeError(f"{v}: must be a positive multiple of {INPUT_MULTIPLE} (e.g. 64, 224); "
                                         "omit the option for the checkpoint's own size")
    if v > 2048:
        raise argparse.ArgumentTypeError(f"{v}: larger than 2048 px; CloFormer's attention memory grows with "
                                         "(H*W)^2/ws^2, so such sizes do not fit in memory")
    return v


def positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not an integer") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"{v}: must be >= 1")
    return v


def nonnegative_int(text: str) -> int:
    v = positive_int(text) if text.strip() != "0" else 0
    return v


def add_common(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--verbose", action="store_true", help="show NNCF/OpenVINO INFO messages")


def configure_logging(verbose: bool) -> None:
    """Quiet by default: NNCF's INFO lines (~160 per run) only with --verbose. Progress bars stay."""
    level = logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    logging.getLogger("compress").setLevel(logging.INFO)
    for name in ("nncf", "openvino"):
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


def run_main(prog: str, job: Callable[[], int], verbose: bool = False) -> int:
    """Run a CLI's job and map what happens to an exit status."""
    configure_logging(verbose)
    try:
        return job()
    except InputError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
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

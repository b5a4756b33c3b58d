"""Runs that several test files read, made once per test session: the README's library example and the quickest
INT8 run.

Under pytest-xdist each worker is a process of its own, so a session fixture would run them once per worker; `once`
runs each in whichever worker asks first, under a file lock in the workers' shared temporary folder, and the others
read what it left (the returned objects pickled beside the outputs). The example's INT8 job is the default run that
tests/compress/quantize/test_quantize.py checks: the default settings on 16 calibration images and 48 proxy-val
crops, with the speed section and the ISA matrix. The quick run (tests.stories.helpers.FAST) is the IRs that the
benchmark tests time and the bad-input tests break; readers must not write into either folder."""

from __future__ import annotations

import contextlib
import os
import pickle
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock

from tests.helpers import ROOT
from tests.stories.helpers import FAST

README = ROOT / "README.md"

# the README's words -> the same call, smaller (calibration and validation images, fine-tuning, timing). The INT8
# job keeps the default settings, speed section (5 rounds in 6 s) and ISA matrix: test_quantize's subject. The
# pruned model's INT8 stages take the quick NNCF settings (fast bias correction, min/max ranges) and no matrix.
SHRINK = {
    'compress.DataSpec(calib="sample", val="proxy-val")': 'compress.DataSpec(calib="sample", val="proxy-val", '
                                                          'val_limit=48)',
    'compress.RunConfig(command="my script")': 'compress.RunConfig(command="my script", benchmark_seconds=6)',
    "quantize=compress.QuantSettings())": 'quantize=compress.QuantSettings(subset_size=16, fast_bias_correction=True, '
                                          'activation_range="minmax"), '
                                          'run=compress.RunConfig(command="my script", benchmark_seconds=1, '
                                          'isa_matrix="none"))',
    "compress.QuantSettings()": "compress.QuantSettings(subset_size=16)",
    'compress.PruneSettings("structured", ratio=0.45)': 'compress.PruneSettings("structured", ratio=0.45, '
                                                        'finetune_steps=2, finetune_batch=8)',
    'compress.resolve_source("proxy-train", loaded.input_size)': 'compress.resolve_source("proxy-train", '
                                                                 'loaded.input_size, limit=64)',
    'data="proxy-val")': 'data="proxy-val", limit=48)',  # the same 48 images as val_limit (seed 0 both)
}
RESULTS = ("report", "result", "pruned")  # the example's names whose values the tests read


def readme_block() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert len(blocks) == 1, "the README has one Python block (the library example)"
    return blocks[0]


def shrunk_block() -> str:
    code = readme_block()
    for old, new in SHRINK.items():
        assert old in code, f"the README's example no longer says {old!r}"
        code = code.replace(old, new)
    return code


@dataclass
class ReadmeRun:
    folder: Path  # the example's working directory: outputs/lib-int8, outputs/lib-pruned
    values: dict[str, Any]  # RESULTS, as the example left them

    @property
    def int8(self) -> Path:
        return self.folder / "outputs" / "lib-int8"


def shared_folder(factory: pytest.TempPathFactory) -> Path:
    """The temporary folder every worker of this session sees (each worker's base folder is a child of it)."""
    base = factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def once(factory: pytest.TempPathFactory, name: str, make: Callable[[Path], dict[str, Any]]) -> tuple[Path, dict]:
    """make(folder) run once per session across workers; its picklable result, read back by every caller. A run
    that failed is not cached: the next caller runs it again and sees the error itself."""
    folder = shared_folder(factory) / name
    done = folder.with_suffix(".pkl")
    with FileLock(str(folder.with_suffix(".lock"))):
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)  # what a failed run left
            folder.mkdir()
            values = make(folder)
            done.write_bytes(pickle.dumps(values))
    return folder, pickle.loads(done.read_bytes())


def run_readme(folder: Path) -> dict[str, Any]:
    scope: dict[str, object] = {"__name__": "readme"}
    with contextlib.chdir(folder):
        exec(compile(shrunk_block(), str(README), "exec"), scope)  # our own README
    return {k: scope[k] for k in RESULTS}


def readme_run(factory: pytest.TempPathFactory) -> ReadmeRun:
    folder, values = once(factory, "readme-example", run_readme)
    return ReadmeRun(folder, values)


def run_quick(folder: Path) -> dict[str, Any]:
    from compress import quantize

    assert quantize.main([*FAST, "--out", str(folder / "q32")]) == 0
    return {}


def quick_run(factory: pytest.TempPathFactory) -> Path:
    """The output folder of one FAST `compress.quantize` run (32 px)."""
    folder, _ = once(factory, "quick", run_quick)
    return folder / "q32"

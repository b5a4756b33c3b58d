"""Quiet commands: no third-party noise in a log, NNCF's expected fallbacks counted into the report."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.helpers import ROOT


def test_no_third_party_noise_with_an_unwritable_home(tmp_path) -> None:
    """With HOME where nothing can be created, onnxruntime's coloured telemetry line and matplotlib's
    cache warnings ("generated new fontManager") are not printed; the temporary matplotlib folder goes at exit."""
    script = """
import logging, sys, numpy as np
import compress
from compress.cli import configure_logging
compress.prepare_process()  # what every command does first
configure_logging(False)
import onnxruntime as ort
from onnx import TensorProto, helper
g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                      [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
m.ir_version = 8
s = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
assert s.run(None, {"x": np.ones(1, np.float32)})[0][0] == 1
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
plt.figure().savefig(sys.argv[1])
print(matplotlib.get_configdir())
"""
    env = {k: v for k, v in os.environ.items() if k not in ("MPLCONFIGDIR", "XDG_CONFIG_HOME", "XDG_CACHE_HOME",
                                                            "ORT_DISABLE_TELEMETRY")}
    r = subprocess.run([sys.executable, "-c", script, str(tmp_path / "p.png")], cwd=ROOT, capture_output=True,
                       text=True, timeout=120, env={**env, "HOME": "/proc/no-home"})
    assert r.returncode == 0 and r.stderr == "", r.stderr
    config = Path(r.stdout.strip())
    assert config.name.startswith("cloformer-matplotlib-") and not config.exists()
    assert (tmp_path / "p.png").stat().st_size > 0

def test_expected_fallbacks_go_to_the_report_and_warnings_are_one_line() -> None:
    """NNCF's 24 identical rollback warnings become one note for the report
    (quantization.ExpectedMessages) and nothing on stderr, so the summary stays last; a Python warning raised
    during a job is one log line, not 'file.py:NN: UserWarning' glued to a progress bar. Run as a CLI process would
    (its own stderr, not a terminal, no test-runner handlers): no progress bar redraws ('\\r'), one line for the
    bar's stage."""
    script = """
import json, logging, sys, warnings
from compress.cli import run_main
from compress.progress import Progress
from compress.int8.ptq import ExpectedMessages

def job():
    with ExpectedMessages() as expected:
        for i in Progress(range(24), desc="calibrate", unit="img"):
            logging.getLogger("nncf").warning(f"Rollback to RangeEstimatorParametersSet.MINMAX for the target point: "
                                              f"'{i}' as HistogramAggregator does not support per-channel activations.")
            if i == 12:
                warnings.warn("synthetic: skipped 1 unreadable image(s); used 7", UserWarning, stacklevel=1)
    print(json.dumps(expected.notes))
    print("summary", file=sys.stderr)
    return 0

sys.exit(run_main("test", job))
"""
    import json

    r = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "\r" not in r.stderr
    lines = r.stderr.splitlines()
    assert not any("Rollback to" in ln or "fell back" in ln for ln in lines), lines
    assert json.loads(r.stdout) == ["histogram ranges fell back to min/max for 24 per-channel activation "
                                    "quantizer(s) (NNCF's histogram aggregator is per-tensor only); expected"]
    assert [ln for ln in lines if "unreadable" in ln] == ["WARNING: synthetic: skipped 1 unreadable image(s); used 7"]
    assert [ln for ln in lines if ln.startswith("calibrate")] == [lines[-2]] and lines[-1] == "summary"
    assert re.fullmatch(r"calibrate: 24 img in \d+\.\d s", lines[-2]), lines

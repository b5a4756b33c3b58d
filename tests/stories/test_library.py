"""The library as the README shows it: the README's Python block runs as written, with only its sizes and costs
shrunk (tests/shared_runs.py; each shrink must match the block, or the README changed and this test says so), and
`compress.report` reads a report without torch or OpenVINO."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.helpers import FAST_INT8_MIN_AGREEMENT, FAST_INT8_MIN_SQNR_DB
from tests.shared_runs import RESULTS, ReadmeRun, readme_block


def test_readme_library_example_uses_the_front_door() -> None:
    """The README's library example reaches compress only through `import compress` (its front door),
    and every name it uses there is one the front door gives."""
    import compress

    code = readme_block()
    assert "import compress\n" in code and not re.search(r"from compress\b|import compress\.", code), code
    code_only = "\n".join(line.split("#")[0] for line in code.splitlines())  # (comments name commands)
    used = set(re.findall(r"\bcompress\.(\w+)", code_only))
    assert used and used <= set(compress.__all__), used - set(compress.__all__)


@pytest.mark.slow
def test_readme_library_example_runs(readme_example: ReadmeRun) -> None:
    report, result, pruned = (readme_example.values[k] for k in RESULTS)
    # what the example prints is real: the INT8 job, its evaluation, and the pruned INT8 job
    assert report.validation.n == 48 and report.calibration.n == 16 and report.int8_vs_fp32.n == 48
    c = report.int8_vs_fp32  # measured 48 of 48, 22.3 dB (AVX-512 VNNI/BF16, bf16 as deployed)
    assert c.top1_agreement >= FAST_INT8_MIN_AGREEMENT and c.sqnr_db >= FAST_INT8_MIN_SQNR_DB
    assert set(report.speed.ratios("INT8")) >= {"latency", "fps_b1"}
    # compress.evaluate's f32 run of the INT8 IR on the same images is the report's f32-hint column
    assert result.n == 48 and result.top1 == pytest.approx(report.int8_f32_hint_vs_fp32.int8_top1, abs=100 / 48)
    assert pruned.macs.reduction_pct > 20 and pruned.int8 is not None
    assert "pruned INT8" in [r.label for r in pruned.int8.speed.rows]
    for folder in ("outputs/lib-int8", "outputs/lib-pruned"):
        assert (readme_example.folder / folder / "report.json").is_file()
        assert (readme_example.folder / folder / "model_int8.xml").is_file()


def test_reading_a_report_imports_neither_torch_nor_openvino(tmp_path) -> None:
    """Result types live with the report, so reading report.json needs only the standard library and
    NumPy; rendering it needs matplotlib, not torch or OpenVINO."""
    code = ("import sys, compress.report, compress.render\n"
            "print(sorted(m for m in ('torch', 'openvino', 'nncf', 'onnx') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr

"""The README's two set-up commands stay what .ci/run and users run."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _command(marker: str) -> str:
    lines = (ROOT / "README.md").read_text().splitlines()
    return lines[lines.index(next(ln for ln in lines if ln.startswith(marker))) + 1]


def test_ci_runs_the_readme_test_command() -> None:
    out = subprocess.run(["awk", r"/^# 2\. tests/{getline; print; exit}", "README.md"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == _command("# 2. tests")
    assert "pytest" in out and "pip install torch==2.13.0" in out
    assert 'bash -c "$cmd"' in (ROOT / ".ci" / "run").read_text()


def test_main_job_command_installs_then_runs() -> None:
    cmd = _command("# 1. main job")
    assert cmd.startswith("python3 -m venv .venv && . .venv/bin/activate && pip install torch==2.13.0")
    assert "python -m " in cmd

"""The README's two set-up commands stay what .ci/run and users run: checked against literal expectations and
against .ci/run and pyproject.toml, not against the README itself."""

from __future__ import annotations

import importlib.util
import re
import shlex
import subprocess

from tests.helpers import ROOT

SETUP = "python3 -m venv .venv && . .venv/bin/activate && pip install torch==2.13.0 && "
# pytest options of the test command -> the package of the [test] extra that provides them
PLUGIN_OPTIONS = {"-n": "pytest-xdist", "--dist": "pytest-xdist", "--timeout": "pytest-timeout"}


def _after(marker: str) -> str:
    lines = (ROOT / "README.md").read_text().splitlines()
    starts = [i for i, ln in enumerate(lines) if ln.startswith(marker)]
    assert len(starts) == 1, f"README.md has {len(starts)} lines starting {marker!r}"
    return lines[starts[0] + 1]


def test_ci_runs_the_readme_test_command() -> None:
    """.ci/run's own extraction (its awk program, read from the script) yields the test command, which installs the
    [test] extra into a fresh venv and runs pytest with options that extra provides."""
    ci = (ROOT / ".ci" / "run").read_text()
    program = re.search(r"awk '([^']+)' README\.md", ci)
    assert program and 'bash -c "$cmd"' in ci and "rm -rf .venv" in ci
    cmd = subprocess.run(["awk", program.group(1), "README.md"], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout.strip()
    assert cmd == _after("# 2. tests")
    assert cmd.startswith(SETUP + 'pip install -e ".[test]" && python -m pytest'), cmd
    extra = re.search(r'^test = \[(.*)\]$', (ROOT / "pyproject.toml").read_text(), re.M)  # no tomllib on 3.10
    assert extra, "pyproject.toml has no one-line [test] extra"
    have = {re.split(r"[<>=!~ \[]", req.strip(' "'), maxsplit=1)[0] for req in extra.group(1).split(",")}
    args = shlex.split(cmd.split("python -m pytest", 1)[1])
    for opt, package in PLUGIN_OPTIONS.items():
        if any(a == opt or a.startswith(opt + "=") for a in args):
            assert package in have, f"the test command uses {opt}, but the [test] extra lacks {package}"


def test_main_job_command_installs_then_runs() -> None:
    cmd = _after("# 1. main job")
    assert cmd.startswith(SETUP + "pip install -e . && python -m compress.quantize"), cmd
    assert importlib.util.find_spec("compress.quantize") is not None


def test_readme_is_a_guide_and_every_relative_link_resolves_inside_the_repository() -> None:
    """The README stays a user's guide (at most 250 lines); every relative link in it and in docs/ names a file or
    folder of this repository (a clone has nothing beside it)."""
    readme = ROOT / "README.md"
    assert len(readme.read_text().splitlines()) <= 250
    pages = [readme, *sorted((ROOT / "docs").rglob("*.md"))]
    assert len(pages) > 8
    bad = []
    for page in pages:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if re.match(r"[a-z]+://|mailto:", target):
                continue
            path = (page.parent / target).resolve()
            if not path.exists() or ROOT.resolve() not in path.parents:
                bad.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not bad, bad
    assert not [p for p in pages if "../shared" in p.read_text()]

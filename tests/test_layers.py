"""The layering of the packages, enforced: import-linter's contracts in pyproject.toml, checked on the
source tree as it is. reference_np imports neither the model nor the toolkit; cloformer does not import compress;
in compress, the packages by verb (prune over quantize over evaluate) sit over the shared command and stage layers
(cli | stages | distill), which sit over the shared modules, and nothing imports upwards; jobs never import a
command; no package has an import circle."""

from __future__ import annotations

import subprocess
import sys

import tomllib

from tests.helpers import ROOT


def test_import_contracts_are_kept() -> None:
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    assert {c["type"] for c in contracts} >= {"layers", "forbidden", "acyclic_siblings"}
    r = subprocess.run([sys.executable, "-c", "from importlinter.cli import lint_imports_command as c; c()",
                        "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and f"Contracts: {len(contracts)} kept, 0 broken." in r.stdout, r.stdout[-3000:] + r.stderr

"""The ISA matrix's process plumbing, on any CPU: each child runs under its own ONEDNN_MAX_CPU_ISA (the native row
inherits the parent's environment), and a row is read back from what its child wrote. The kernels that really
ran are checked by the report's own `kernels_as_imposed`, which this test also holds to its rule."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from compress import isa
from compress.metrics import compare_int8, graph_agreement
from compress.plain import to_plain
from compress.report import IsaRow
from compress.runtime import ISA_ENV, ISA_LEVELS

AMX_CPU = list(ISA_LEVELS)  # a CPU that can run every level


def fake_child(seen: list[tuple[str, str | None]]):
    """Stands in for `python -m compress.isa ...`: records the level and the ISA variable it was started with,
    and writes the row a child on that level would."""

    def run(cmd: list[str], env: dict[str, str], **_kw: object) -> subprocess.CompletedProcess:
        _xml, _data, out, level, kind = cmd[3:]
        seen.append((level, env.get(ISA_ENV)))
        logits = np.eye(4)
        row = IsaRow(level, kind == "native", False, "f32", {f"brgconv_{level.lower()}_I8": 3}, True,
                     graph_agreement(logits, logits, "CPU", "f32"), graph_agreement(logits, logits, "CPU", "f32"),
                     compare_int8(logits, logits, None, "x"))
        Path(out).write_text(json.dumps(to_plain(row)))
        return subprocess.CompletedProcess(cmd, 0, "", "")

    return run


def matrix(levels: list[str]) -> list[IsaRow]:
    z = np.zeros((1, 4))
    return isa.isa_matrix(Path("m.xml"), levels, z, z, 40.0, z, z, None, "x")


@pytest.mark.parametrize("imposed", [None, "AVX512_CORE_VNNI"])
def test_each_child_runs_under_its_own_isa(monkeypatch, imposed: str | None) -> None:
    """On an AMX CPU, natively: every imposed row gets its level, the native row no variable (it runs what the
    parent runs). Under an imposed ISA (the suite run as AVX512_CORE_VNNI): that is the native row, and it says so
    explicitly to its child."""
    monkeypatch.setattr(isa, "isa_levels", lambda: AMX_CPU)
    if imposed:
        monkeypatch.setenv(ISA_ENV, imposed)
    else:
        monkeypatch.delenv(ISA_ENV, raising=False)
    own = imposed or "AVX512_CORE_AMX"
    monkeypatch.setattr(isa, "own_isa", lambda: own)
    seen: list[tuple[str, str | None]] = []
    monkeypatch.setattr(isa.subprocess, "run", fake_child(seen))
    levels = isa.resolve("all")
    assert levels == AMX_CPU  # resolve() under the fake CPU: every level, oldest first, the own one included
    rows = matrix(levels)
    assert [r.isa for r in rows] == levels and [lv for lv, _ in seen] == levels
    for level, env in seen:
        assert env == (imposed if level == own else level), (level, env)
    assert [r.native for r in rows] == [lv == own for lv in levels]
    assert isa.resolve("default") == ["AVX2", own]


def test_a_row_whose_kernels_are_newer_than_imposed_is_flagged() -> None:
    assert isa.as_imposed("AVX2", {"jit_avx2_I8": 5})
    assert not isa.as_imposed("AVX2", {"brgconv_avx512_core_vnni_I8": 5, "jit_avx2_I8": 1})
    assert not isa.as_imposed("AVX512_CORE_BF16", {"brgconv_avx512_core_amx_I8": 1})
    assert isa.as_imposed("AVX512_CORE_AMX", {"brgconv_avx512_core_amx_I8": 1})


def test_a_level_this_cpu_lacks_is_refused(monkeypatch) -> None:
    from compress.errors import InputError

    monkeypatch.setattr(isa, "isa_levels", lambda: ["AVX2"])
    with pytest.raises(InputError, match="cannot run AVX512_CORE_AMX"):
        isa.resolve("AVX2,AVX512_CORE_AMX")

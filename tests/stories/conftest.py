"""Fixtures of the command tests: files a new user gets wrong, the stages a test saw start."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

import reference_np as rn
from cloformer.registry import SHIPPED
from compress import stages
from tests.helpers import write_images


@pytest.fixture(scope="session")
def bad_files(tmp_path_factory, quick_run: Path) -> dict[str, Path]:
    """Broken inputs, made once a session (a worker's): checkpoints, data folders, IRs; "run" is the session's quick
    run (tests/shared_runs.py)."""
    d = tmp_path_factory.mktemp("bad")
    w = rn.load_weights(SHIPPED["proxy"][1])
    nan = dict(w)
    nan["layers.2.blocks.3.mlp.fc1.weight"] = np.full_like(w["layers.2.blocks.3.mlp.fc1.weight"], np.nan)
    rn.save_weights(nan, d / "allnan.safetensors")
    miss = {k: v for k, v in w.items() if k != "norm.weight"}
    miss["extra.weight"] = np.zeros(1, np.float32)
    miss["head.bias"] = np.zeros(3, np.float32)
    torch.save({k: torch.from_numpy(np.array(v)) for k, v in miss.items()}, d / "keys.pth")
    (d / "random.pth").write_bytes(os.urandom(4096))
    rn.save_weights(w, d / "good.npz")
    (d / "truncated.npz").write_bytes((d / "good.npz").read_bytes()[:5000])
    (d / "empty").mkdir()
    write_images(d / "mixed" / "n01440764", ["a.jpg", "b.jpg"])
    write_images(d / "mixed" / "cats", ["c.jpg", "d.jpg"])
    write_images(d / "wnid" / "n01440764", ["a.jpg", "b.jpg"])
    write_images(d / "wnid" / "n15075141", ["c.jpg", "d.jpg"])
    (d / "afile").write_text("not a folder")
    (d / "alink").symlink_to(d / "empty")
    run = quick_run  # read, never written: other files read it too
    (d / "nobin").mkdir()
    (d / "nobin" / "m.xml").write_bytes((run / "model_fp32.xml").read_bytes())
    (d / "trunc").mkdir()
    (d / "trunc" / "m.xml").write_bytes((run / "model_fp32.xml").read_bytes())
    (d / "trunc" / "m.bin").write_bytes((run / "model_fp32.bin").read_bytes()[:1000])
    return {p.name.split(".")[0]: p for p in d.iterdir()} | {"run": run}

@pytest.fixture
def stages_seen():
    """The ids of the stages that started in this test (compress.stages.observe): 'before any work' is then a
    fact of the run, not a time."""
    seen: list[str] = []
    with stages.observe(seen.append):
        yield seen

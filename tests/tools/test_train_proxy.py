"""tools.train_proxy in sittings: a run stopped and resumed ends bit for bit where an uninterrupted one does, and a
resume with another recipe is refused."""

from __future__ import annotations

import json

import pytest

from tools import train_proxy

TINY = ["--size", "32", "--steps", "4", "--batch", "4", "--pool-per-class", "2", "--checkpoint-every", "100",
        "--ema", "0.9", "--mix-prob", "0.5", "--threads", "1"]


def test_a_resumed_run_ends_where_an_uninterrupted_one_does(tmp_path, capsys) -> None:
    whole, split = tmp_path / "whole" / "w.safetensors", tmp_path / "split" / "w.safetensors"
    assert train_proxy.main([*TINY, "--out", str(whole)]) == 0
    assert train_proxy.main([*TINY, "--out", str(split), "--stop-after", "2"]) == 0
    assert "stopped at step 2 of 4" in capsys.readouterr().err and not split.exists()
    assert train_proxy.main([*TINY, "--out", str(split), "--resume"]) == 0
    a, b = (json.loads(p.with_suffix(".json").read_text()) for p in (whole, split))
    assert a["sha256"] == b["sha256"] and a["heldout_top1"] == b["heldout_top1"]
    assert b["training"][-1]["command"].endswith(f"--out {split}")  # sittings are not part of the recipe
    assert "--resume" not in b["training"][-1]["command"] and "--stop-after" not in b["training"][-1]["command"]


def test_resume_with_another_recipe_is_refused(tmp_path) -> None:
    out = tmp_path / "w.safetensors"
    assert train_proxy.main([*TINY, "--out", str(out), "--stop-after", "1"]) == 0
    with pytest.raises(SystemExit, match=r"another recipe.*'lr'"):
        train_proxy.main([*TINY, "--out", str(out), "--resume", "--lr", "1e-4"])


def test_check_converged_prints_the_change_and_exits_by_it(tmp_path, capsys) -> None:
    """tools.check_converged on a few steps of the prune recipe: the printed change is after - before on the same
    800 proxy-val crops, and the exit status says whether it is within MAX_CHANGE_PT."""
    from tools import check_converged

    out = tmp_path / "c.json"
    rc = check_converged.main(["--steps", "2", "--batch", "4", "--json", str(out)])
    r = json.loads(out.read_text())
    assert r["n"] == 800 and r["steps"] == 2 and r["change_pt"] == pytest.approx(r["top1_after"] - r["top1_before"])
    assert rc == (0 if abs(r["change_pt"]) <= check_converged.MAX_CHANGE_PT else 1)
    assert f"change {r['change_pt']:+.2f} pt" in capsys.readouterr().out

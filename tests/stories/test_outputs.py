"""What a run leaves on disk: a failed run's folder, --force, a locked or concurrent target, a killed or stale run,
a full disk, a failed check's exit 1."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from compress import prune, quantize, stages
from compress.errors import InputError
from tests.helpers import ROOT
from tests.stories.helpers import FAST, fail_at, leftovers


def test_internal_error_exits_1_and_keeps_a_failed_folder(tmp_path, capsys) -> None:
    """An NNCF/OpenVINO failure (here injected) is not bad input: exit 1, the traceback, and the partial
    output kept as <out>.failed/ with error.log; a ValueError inside the run is not reported as exit 2."""
    out = tmp_path / "out"
    with stages.observe(fail_at("int8.quantize", ValueError("injected failure inside nncf"))):
        assert quantize.main([*FAST, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "injected failure inside nncf" in err and "internal error" in err
    failed = tmp_path / "out.failed"
    assert not out.exists() and failed.is_dir() and "injected failure" in (failed / "error.log").read_text()
    assert (failed / "model_fp32.xml").is_file()  # what was done before the failure, for diagnosis
    assert leftovers(tmp_path) == ["out.failed"]

@pytest.mark.slow
def test_force_keeps_the_old_output_until_the_new_one_is_complete(tmp_path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("previous run")
    with stages.observe(fail_at("int8.quantize", RuntimeError("fails late"))):
        assert quantize.main([*FAST, "--out", str(out), "--force"]) == 1
    assert (out / "keep.txt").read_text() == "previous run"  # a failed --force run loses nothing
    assert quantize.main([*FAST, "--out", str(out), "--force"]) == 0
    assert not (out / "keep.txt").exists() and (out / "model_int8.xml").is_file()
    assert leftovers(tmp_path) == ["out.failed"]  # from the failed run; no .old-* or .partial-* remain
    assert (out.stat().st_mode & 0o777) == 0o777 & ~_umask()  # follows the umask, not mkdtemp's 0700

def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m

def test_existing_output_refused_without_force(tmp_path, capsys) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("user data")
    assert quantize.main([*FAST, "--out", str(out)]) == 2
    assert "exists; pass --force" in capsys.readouterr().err and (out / "keep.txt").exists()

def test_stale_partial_folder_of_a_dead_run_is_removed(tmp_path, caplog) -> None:
    """The staging step every command goes through removes a dead run's staging folder, with a warning naming it,
    and leaves a live one alone (end to end, after a real SIGKILL: test_killed_run_then_next_run)."""
    from compress.atomic import staging_dir

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / ".out.partial-abc123"
    stale.mkdir()
    (stale / ".staging-pid").write_text(f"{dead.pid}\n")
    (stale / "model_fp32.bin").write_bytes(b"x" * 1000)
    alive = tmp_path / ".out.partial-alive"
    alive.mkdir()
    (alive / ".staging-pid").write_text(f"{os.getpid()}\n")  # a run still going on: not touched
    with staging_dir(tmp_path / "out") as tmp:
        assert not stale.exists() and alive.exists()  # removed before the new run writes anything
        (tmp / "report.json").write_text("{}")
    assert (tmp_path / "out" / "report.json").is_file() and alive.exists()
    assert "removing stale partial output" in caplog.text and str(stale) in caplog.text

@pytest.mark.slow
def test_killed_run_then_next_run(tmp_path) -> None:
    """SIGKILL mid-quantize in a subprocess (as an OOM kill would), then a normal run on the same --out: it
    removes the dead run's staging folder, says so, and completes. The killed run was --verbose and showed NNCF's
    messages; the default output has no INFO lines."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "compress.quantize", *FAST, "--out", str(out)]
    log = tmp_path / "killed.log"
    with log.open("w") as f:  # unbuffered: a SIGKILL must not lose what the run printed
        proc = subprocess.Popen([*cmd, "--verbose"], cwd=ROOT, stdout=f, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    # killed inside NNCF's quantization (its first INFO line is in the log), with every later stage still to come:
    # stopped first (SIGSTOP), so that it cannot finish between the check and the kill
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and "INFO:nncf" not in log.read_text():
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGSTOP)
    assert proc.poll() is None, "the run ended before it could be killed"
    assert any(tmp_path.glob(".run.partial-*")), "no staging folder: killed before the run began writing"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert "INFO" in log.read_text()  # --verbose shows NNCF's messages
    assert [p.name[:13] for p in tmp_path.glob(".run.partial-*")] == [".run.partial-"]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "removing stale partial output" in r.stderr
    assert not list(tmp_path.glob(".run.partial-*")) and (out / "model_int8.xml").is_file()
    assert "INFO:nncf" not in r.stdout + r.stderr and "INFO" not in r.stdout + r.stderr  # quiet by default

def test_second_run_on_a_locked_target_stops_naming_the_first(tmp_path, capsys, stages_seen) -> None:
    """While a run writes --out (it holds the lock), another run on the same --out exits 2 before
    any work, naming the first one's PID; afterwards nothing is left but what the first run wrote."""
    from compress.atomic import staging_dir

    out = tmp_path / "out"
    with staging_dir(out) as tmp:
        (tmp / "first.txt").write_text("first run")
        assert quantize.main([*FAST, "--out", str(out)]) == 2
        assert stages_seen == []
        err = capsys.readouterr().err
        assert f"is being written by another run (PID {os.getpid()})" in err and "Traceback" not in err
        with pytest.raises(InputError, match="being written by another run"):  # the lock itself, past the check
            with staging_dir(out):
                pass
    assert [p.name for p in tmp_path.iterdir()] == ["out"] and (out / "first.txt").read_text() == "first run"

def test_final_rename_never_replaces_an_output_that_appeared(tmp_path) -> None:
    from compress.atomic import staging_dir

    out = tmp_path / "out"
    with pytest.raises(InputError, match="appeared while this run worked"):
        with staging_dir(out):
            out.mkdir()  # something that does not take the lock
            (out / "keep.txt").write_text("theirs")
    assert (out / "keep.txt").read_text() == "theirs" and [p.name for p in tmp_path.iterdir()] == ["out"]

@pytest.mark.slow
def test_two_concurrent_runs_exactly_one_wins(tmp_path) -> None:
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "compress.quantize", "--input-size", "32", *FAST, "--out", str(out)]
    first = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and not list(tmp_path.glob(".run.partial-*")):
        time.sleep(0.1)
    second = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    _, err = first.communicate(timeout=600)
    assert first.returncode == 0, err[-2000:]
    assert second.returncode == 2 and f"(PID {first.pid})" in second.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"] and (out / "model_int8.xml").is_file()

@pytest.fixture
def small_disk(tmp_path):
    """A 12 MB filesystem of its own (tmpfs; needs root, as CI and this project's machines run)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({r.stderr.strip()})")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)

def test_full_disk_is_refused_early_or_reported_as_the_machine(small_disk, capsys, monkeypatch, stages_seen
                                                                  ) -> None:
    """An output that cannot fit is refused before the work (exit 2, naming the free space); a disk
    that fills during the run is one line naming the path and the free space (exit 1, no traceback, no
    'please report it'), nothing left behind, and the previous output untouched."""
    out = small_disk / "run"
    assert quantize.main([*FAST, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "not enough free space" in err and "MB free" in err and stages_seen == []
    assert not list(small_disk.iterdir())
    # the estimate passes, then the disk fills while the run writes
    old = small_disk / "old"
    old.mkdir()
    (old / "keep.txt").write_text("previous output")
    from compress.quantize import job as quantize_job

    monkeypatch.setattr(quantize_job, "output_bytes", lambda *a, **k: 1 << 20)  # the estimate passes
    assert quantize.main([*FAST, "--out", str(old), "--force"]) == 1
    err = capsys.readouterr().err
    assert f"cannot write {old}" in err and "MB free" in err
    assert "Traceback" not in err and "please report it" not in err
    assert sorted(p.name for p in small_disk.iterdir()) == ["old"]
    assert (old / "keep.txt").read_text() == "previous output"

@pytest.mark.parametrize("command", ["quantize", "prune --quantize", "prune"])
def test_a_failed_check_exits_1_in_every_command(tmp_path, monkeypatch, capsys, command: str) -> None:
    """The one exit rule (compress.cli.exit_status): a deploy form that departs from the NumPy reference (one sign
    flipped in every ConvFFN) fails the FP32 checks, and every command exits 1 with the report written and
    passed: false in it: the INT8 job's, prune --quantize's (which once looked only at its own float64 check) and
    a prune-only job's own FP32 stages."""
    import json

    from cloformer import deploy

    orig = deploy.DeployConvFFN.forward
    monkeypatch.setattr(deploy.DeployConvFFN, "forward", lambda self, u: -orig(self, u))
    out = tmp_path / "o"
    args = [*FAST, "--input-size", "32", "--isa-matrix", "none", "--out", str(out)]
    if command == "quantize":
        assert quantize.main(args) == 1
        rep = json.loads((out / "report.json").read_text())
    else:
        quantized = ["--quantize"] if command == "prune --quantize" else []
        assert prune.main(["--ratio", "0.3", "--finetune-steps", "1", "--finetune-batch", "4", "--data", "sample",
                           *quantized, *args]) == 1
        rep = json.loads((out / "report.json").read_text())
        assert rep["numpy_float64_agreement"]["passed"]  # the pruned checkpoint itself is fine: the IRs' fail
        rep = rep["int8"] if quantized else {"fp32_checks": rep["checks"]}
    failed = [c["stage"] for c in rep["fp32_checks"] if c["passed"] is False]
    assert "deploy form <-> NumPy reference, float64" in failed
    err = capsys.readouterr().err
    assert f"{len(failed)} check(s) failed" in err and str(out) in err

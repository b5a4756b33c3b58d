"""The CLIs as a new user meets them: one table of bad inputs per CLI (exit status, message, what is left on
disk), internal errors, --force, interrupted and killed runs, settings validation, quiet output."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import reference_np as rn
from cloformer.registry import SHIPPED
from compress import evaluate, loading, prune, quantize, stages
from compress.cli import cli_message
from compress.data.sources import DataSpec
from compress.errors import InputError
from compress.evaluate import job as ev
from compress.options import flag, options
from compress.settings import PruneSettings, QuantSettings, RunConfig, ScopeEntry
from tests.helpers import ROOT, exit_code, write_images
from tools import make_imagenet_subset

# quick settings for runs whose subject is not the quantization itself (the defaults' full bias correction and
# histogram ranges double the quantize time)
# the cheapest run that goes through every stage: these tests are about the commands, not the numbers (32 px, no
# speed section, no ISA matrix: test_quantize.py runs those); a test's own later options override these
FAST = ["--input-size", "32", "--subset-size", "8", "--val-limit", "16", "--fast-bias-correction",
        "--activation-range", "minmax", "--benchmark-seconds", "0", "--isa-matrix", "none"]


def leftovers(parent: Path) -> list[str]:
    """Anything a run may leave beside its output: staging folders, failed folders, renamed old outputs."""
    return sorted(p.name for p in parent.iterdir() if ".partial-" in p.name or p.name.endswith(".failed")
                  or ".old-" in p.name)


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory) -> dict[str, Path]:
    """Broken inputs, made once: checkpoints, data folders, IRs."""
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
    run = d / "ir"
    assert quantize.main(["--input-size", "32", *FAST, "--out", str(run)]) == 0
    (d / "nobin").mkdir()
    (d / "nobin" / "m.xml").write_bytes((run / "model_fp32.xml").read_bytes())
    (d / "trunc").mkdir()
    (d / "trunc" / "m.xml").write_bytes((run / "model_fp32.xml").read_bytes())
    (d / "trunc" / "m.bin").write_bytes((run / "model_fp32.bin").read_bytes()[:1000])
    return {p.name.split(".")[0]: p for p in d.iterdir()} | {"run": run}


QUANTIZE_BAD = [  # (argv with {names} from bad_files, message fragment)
    (["--calib", "/nonexistent/folder"], "not found: /nonexistent/folder"),
    (["--calib", "{empty}"], "holds no images"),
    (["--calib", "{mixed}"], "mixes WordNet-id class folders"),
    (["--val", "{wnid}"], "against the 1000 ImageNet classes; this model has 16"),  # WordNet labels, 16 classes
    (["--val", "sample"], "shares 320 image(s) with --calib sample"),
    (["--model", "cloformer_xs"], "do not match 'cloformer_xs'"),
    (["--ignored-scope", "bogus"], "--ignored-scope 'bogus'"),
    (["--ignored-scope", "pattern:[unclosed"], "not a valid regex"),
    (["--ignored-scope", "type:NoSuchOp"], "'type:NoSuchOp' matches no node"),
    (["--ignored-scope", "name:typo_node"], "'name:typo_node' matches no node"),
    (["--ignored-scope", "pattern:.*no_such_layer.*"], "matches no node"),
    (["--checkpoint", "/nonexistent.pth"], "checkpoint not found"),
    (["--checkpoint", "{allnan}"], "layers.2.blocks.3.mlp.fc1.weight"),
    (["--checkpoint", "{keys}"], "missing: norm.weight"),
    (["--checkpoint", "{random}"], "not a readable PyTorch checkpoint"),
    (["--checkpoint", "{truncated}"], "truncated.npz: not a readable .npz"),
    (["--out", "{afile}"], "is not a folder (a file)"),
    (["--out", "{alink}", "--force"], "(a symlink)"),
    (["--out", "{afile}/sub"], "is not a folder"),
    (["--val-fraction", "1.5"], "--val-fraction"),
    (["--smooth-quant-alpha", "2"], "--smooth-quant-alpha must be in [0, 1]"),
]


@pytest.mark.parametrize("argv,message", QUANTIZE_BAD, ids=[" ".join(a) for a, _ in QUANTIZE_BAD])
def test_quantize_bad_input(tmp_path, capsys, bad_files, argv: list[str], message: str) -> None:
    argv = [a.format(**bad_files) for a in argv]
    out_args = [] if "--out" in argv else ["--out", str(tmp_path / "out")]
    assert quantize.main([*FAST, *argv, *out_args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") <= 4, err
    assert "--trust-pickle" not in err  # only a real checkpoint holding other objects is told that
    assert not (tmp_path / "out").exists() and leftovers(tmp_path) == []
    for p in (bad_files["afile"], bad_files["alink"]):
        assert p.is_symlink() or p.is_file()  # untouched
    assert leftovers(bad_files["afile"].parent) == []


def test_output_and_inputs_kept_apart(tmp_path, capsys, bad_files) -> None:
    """An output inside an input folder (the next run would read it as data) and an input inside the
    output (replacing the output would delete it) are refused with exit 2 and one line, before any work, by
    every command and tool; nothing is written and the inputs are untouched."""
    from tools import benchmark

    flat = tmp_path / "flat"
    write_images(flat, ["a.png", "b.png", "c.png", "d.png"])
    wn = tmp_path / "wn"
    write_images(wn / "n01440764", ["a.jpg"])
    ckpt_dir = tmp_path / "ckpts"
    ckpt_dir.mkdir()
    (ckpt_dir / "good.npz").write_bytes(bad_files["good"].read_bytes())
    runs = [
        (quantize.main, [*FAST, "--calib", str(flat), "--out", str(flat / "run")], "is inside --calib"),
        (quantize.main, [*FAST, "--calib", str(flat), "--val", "proxy-val", "--out", str(flat), "--force"],
         "is inside --calib"),
        (quantize.main, [*FAST, "--checkpoint", str(ckpt_dir / "good.npz"), "--out", str(ckpt_dir), "--force"],
         "is inside output"),
        (prune.main, ["--ratio", "0.3", "--data", str(flat), *FAST, "--out", str(flat / "p")], "is inside --data"),
        (make_imagenet_subset.main, ["--src", str(wn), "--per-class", "1", "--out", str(wn / "sub")],
         "is inside --src"),
        (benchmark.main, [str(bad_files["run"]), "--out", str(bad_files["run"]), "--no-python"], "is inside"),
    ]
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    for main, argv, message in runs:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and err.strip().count("\n") == 0, (argv, err)
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before
    assert (bad_files["run"] / "model_int8.xml").is_file()


def test_an_output_folder_inside_data_is_skipped_with_a_warning(tmp_path, bad_files) -> None:
    """A run's output left inside a data folder (report.json beside its IRs) is not read as a class or as
    loose images: the scan skips it and names it."""
    import shutil

    from compress.data.sources import resolve_source

    flat = tmp_path / "flat"
    write_images(flat, ["a.png", "b.png"])
    shutil.copytree(bad_files["run"], flat / "old_run")
    with pytest.warns(UserWarning, match="skipped 1 output folder.*old_run"):
        src = resolve_source(flat, 32)
    assert src.classes is None and len(src) == 2

def test_missing_imagenet_subset_is_one_line(tmp_path, monkeypatch, capsys) -> None:
    """Every error is one line, the missing-imagenet_subset one included (it was two)."""
    monkeypatch.setenv("CLOFORMER_DATA", str(tmp_path))
    assert quantize.main([*FAST, "--calib", "imagenet_subset", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "tools.make_imagenet_subset --src" in err and str(tmp_path) in err, err


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


def test_checkpoint_errors_list_every_key(bad_files) -> None:
    with pytest.raises(InputError) as e:
        loading.load("cloformer_xxs", bad_files["keys"])
    msg = str(e.value)
    assert "missing: norm.weight" in msg and "unexpected: extra.weight" in msg and "head.bias: checkpoint (3,)" in msg


@pytest.mark.parametrize("argv", [["--input-size", "0"], ["--input-size", "-32"], ["--input-size", "100"],
                                  ["--subset-size", "0"], ["--subset-size", "-5"], ["--val-limit", "0"],
                                  ["--preset", "bogus"], ["--activation-range", "wide"], ["--model-type", "cnn"]])
def test_quantize_argument_errors_exit_2(capsys, argv: list[str]) -> None:
    """Refused before any work, by argparse (a type or a choice) or by the settings class the option belongs to
    (a range: one validation, the field's, named by its flag)."""
    assert exit_code(quantize.main, argv) == 2
    err = capsys.readouterr().err
    assert argv[0] in err and "Traceback" not in err
    assert "negative dimensions" not in err and "data" not in err.split("error:")[-1]


# (constructor, keyword arguments, the library's words, the command line's words for the same error)
SETTINGS_ERRORS = [
    (QuantSettings, {"preset": "bogus"}, "preset 'bogus'", None),  # (argparse's choices refuse it first)
    (QuantSettings, {"model_type": "cnn"}, "model_type 'cnn'", None),
    (QuantSettings, {"activation_range": "wide"}, "activation_range 'wide'", None),
    (QuantSettings, {"subset_size": 0}, "subset_size must be", None),
    (QuantSettings, {"ignored_scope": ("kind:x",)}, "ignored_scope 'kind:x'", ["--ignored-scope", "kind:x"]),
    (QuantSettings, {"smooth_quant_alpha": 2.0}, "smooth_quant_alpha must be", ["--smooth-quant-alpha", "2"]),
    (PruneSettings, {"method": "magic"}, "method 'magic'", None),
    (PruneSettings, {"ratio": 1.0}, "ratio must be in (0, 1)", ["--ratio", "1.0"]),
    (PruneSettings, {"finetune_steps": -1}, "finetune_steps must be", ["--finetune-steps", "-1"]),
    (PruneSettings, {"lr": 0}, "lr must be > 0", ["--lr", "0"]),
    (PruneSettings, {"head_ratio": 1.5}, "head_ratio must be in (0, 1)", ["--head-ratio", "1.5"]),
    (PruneSettings, {"method": "nncf-magnitude", "head_ratio": 0.3}, "head_ratio applies to method 'structured'",
     ["--method", "nncf-magnitude", "--head-ratio", "0.3"]),
    (PruneSettings, {"method": "nncf-rb", "finetune_steps": 0}, "method nncf-rb learns its masks during "
     "fine-tuning: finetune_steps must be > 0", ["--method", "nncf-rb", "--finetune-steps", "0"]),
    (RunConfig, {"benchmark_seconds": -1}, "benchmark_seconds must be", ["--benchmark-seconds", "-1"]),
    (RunConfig, {"max_drop": -1}, "max_drop must be", ["--max-drop", "-1"]),
]


@pytest.mark.parametrize("cls,kw,words,argv", SETTINGS_ERRORS, ids=[str(r[1]) for r in SETTINGS_ERRORS])
def test_settings_errors_name_fields_and_the_cli_names_flags(capsys, cls, kw, words, argv) -> None:
    """Whoever builds the settings gets the error at construction, in the library's vocabulary (field
    names, no flags); the command line says the same with its flags (compress.options.flag, one rule)."""
    with pytest.raises(InputError) as e:
        cls(**kw)
    assert words in str(e.value) and "--" not in str(e.value), str(e.value)
    if argv is not None:
        main = prune.main if cls is PruneSettings else quantize.main
        assert main([*argv, "--out", "/nonexistent-never-written"]) == 2
        err = capsys.readouterr().err
        flagged = cli_message(e.value)
        assert flagged in err and "Traceback" not in err, err
        for name in e.value.fields:
            assert flag(name) in flagged and flag(name) in err


def test_cli_message_maps_every_field_it_names() -> None:
    assert QuantSettings(ignored_scope=("type:MVN",)).ignored_scope == (ScopeEntry("type", "MVN"),)
    err = InputError("val proxy-val shares 3 image(s) with calib sample: give disjoint data, no val (to split "
                     "calib), or allow_overlap=True", field=("val", "calib", "val", "calib", "allow_overlap"))
    assert cli_message(err) == ("--val proxy-val shares 3 image(s) with --calib sample: give disjoint data, no --val "
                                "(to split --calib), or --allow-overlap")
    assert cli_message(InputError("exists; pass force=True to replace it", field="force")).endswith("pass --force "
                                                                                                   "to replace it")
    # every option field is a flag of the commands that take its class (derived, not listed)
    def flags(ap) -> set[str]:
        return {a.option_strings[0] for a in ap._actions if a.option_strings}
    int8 = {flag(f.name) for cls in (QuantSettings, RunConfig, DataSpec) for f, _ in options(cls)}
    assert int8 <= flags(quantize.build_parser()) and int8 <= flags(prune.build_parser())
    assert {flag(f.name) for f, _ in options(PruneSettings)} <= flags(prune.build_parser())
    assert {"--src", "--labels"} <= flags(make_imagenet_subset.build_parser())


def fail_at(stage: str, exc: BaseException):
    """A stage observer (compress.stages.observe) that raises `exc` as the stage with id `stage` begins: a failure
    inside the run, after every stage before it."""
    def observer(stage_id: str) -> None:
        if stage_id == stage:
            raise exc
    return observer


@pytest.fixture
def stages_seen():
    """The ids of the stages that started in this test (compress.stages.observe): 'before any work' is then a
    fact of the run, not a time."""
    seen: list[str] = []
    with stages.observe(seen.append):
        yield seen


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


# ---------------------------------------------------------------- evaluate
EVALUATE_BAD = [
    (["--checkpoint", "{allnan}"], "hold NaN or Inf"),
    (["--checkpoint", "/missing.xml"], "IR not found"),
    (["--checkpoint", "{nobin}/m.xml"], "has no weights file m.bin"),
    (["--checkpoint", "{trunc}/m.xml"], "m.bin is truncated"),
    (["--checkpoint", "{run}/model_fp32.xml", "--input-size", "64"], "takes 32x32 input"),
    (["--checkpoint", "proxy", "--data", "{wnid}"], "scored against the 1000 ImageNet classes; this model has 16"),
    (["--checkpoint", "proxy", "--data", "{mixed}"], "mixes WordNet-id"),
    (["--checkpoint", "proxy", "--data", "/nowhere"], "not found"),
    (["--checkpoint", "proxy", "--json", "/nowhere/x.json"], "does not exist"),
]


def test_evaluate_speaks_the_quantize_vocabulary(capsys, caplog) -> None:
    """--model is the variant and --checkpoint its weights in every command; the old `--model <ckpt>
    --variant V` still works, with a warning that says the new spelling; mixing the two is refused."""
    assert evaluate.main(["--model", "cloformer_xxs", "--checkpoint", "proxy", "--limit", "8"]) == 0
    assert "old spelling" not in capsys.readouterr().err + caplog.text
    assert evaluate.main(["--model", "proxy", "--variant", "cloformer_xxs", "--limit", "8"]) == 0
    said = capsys.readouterr().err + caplog.text
    assert "old spelling" in said and "--checkpoint proxy --model cloformer_xxs" in said
    assert evaluate.main(["--checkpoint", "proxy", "--variant", "cloformer_xxs"]) == 2
    assert "--variant is the old spelling of --model" in capsys.readouterr().err


@pytest.mark.parametrize("argv,message", EVALUATE_BAD, ids=[" ".join(a) for a, _ in EVALUATE_BAD])
def test_evaluate_bad_input(capsys, bad_files, argv: list[str], message: str) -> None:
    argv = [a.format(**bad_files) for a in argv]
    assert evaluate.main([*argv, "--limit", "8"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err


def test_evaluate_openvino_parallel_matches_serial(bad_files) -> None:
    """The AsyncInferQueue + worker-process path gives the same logits, in order, as one-by-one inference (on
    the FP32 IR in f32: int8 kernels may round differently under the throughput hint's streams)."""
    from compress.data.sources import resolve_source

    xml = bad_files["run"] / "model_fp32.xml"
    src = resolve_source("proxy-val", 32, limit=24)
    par = ev.evaluate_openvino(xml, src, ev.OVRun("CPU", "f32", 2), progress=False)
    ser = ev.evaluate(ev.openvino_predictor(xml, "CPU", "f32"), resolve_source("proxy-val", 32, 24),
                            progress=False)
    assert par.n == ser.n == 24 and np.array_equal(par.labels, ser.labels)
    assert np.abs(par.logits - ser.logits).max() <= 1e-5 * np.abs(ser.logits).max()
    assert par.top1 == ser.top1 == 100 * float(np.mean(ser.logits.argmax(1) == ser.labels))
    # the streamed source goes as uint8 crops, normalised inside the model (PrePostProcessor); the
    # float path (pixels=False) and the serial float path are the references
    flt = ev.evaluate_openvino(xml, resolve_source("proxy-val", 32, 24), ev.OVRun("CPU", "f32", 2,
                                                                                                   pixels=False),
                                       progress=False)
    assert np.abs(par.logits - flt.logits).max() <= 1e-5 * np.abs(flt.logits).max()  # normalised in f32 either way


# ---------------------------------------------------------------- prune and tools
PRUNE_BAD = [
    (["--ratio", "1.5"], "(0, 1)"),
    (["--ratio", "0.5", "--round-to", "1"], "whole group"),
    (["--model", "cloformer_xs"], "stage widths"),
    (["--method", "nncf-rb", "--finetune-steps", "0"], "> 0"),
    (["--finetune-steps", "-3"], "--finetune-steps"),
    (["--data", "{empty}"], "holds no images"),
    (["--checkpoint", "{allnan}"], "NaN or Inf"),
    (["--quantize", "--ignored-scope", "pattern:("], "not a valid regex"),
]


@pytest.mark.parametrize("argv,message", PRUNE_BAD, ids=[" ".join(a) for a, _ in PRUNE_BAD])
def test_prune_bad_input(tmp_path, capsys, bad_files, argv: list[str], message: str) -> None:
    argv = [a.format(**bad_files) for a in argv]
    out = tmp_path / "o"
    assert prune.main(["--finetune-steps", "2", "--finetune-batch", "4", "--val-limit", "8", "--benchmark-seconds", "0",
                       *argv,
                       "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err
    assert not out.exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize("labels,message", [
    ("ImageId,Prediction\nILSVRC2012_val_00000001,n01751748 1 2 3 4\n", "lacks column(s) PredictionString"),
    ("ImageId,PredictionString\nILSVRC2012_val_00000001,\n", ":2: empty ImageId or PredictionString"),
    ("ILSVRC2012_val_00000001 n01751748 extra\n", ":1: expected '<file name> <wnid>'"),
    ("", "holds no labels"),
])
def test_make_imagenet_subset_malformed_labels(tmp_path, capsys, labels: str, message: str) -> None:
    write_images(tmp_path / "flat", ["ILSVRC2012_val_00000001.JPEG"])
    (tmp_path / "labels.csv").write_text(labels)
    assert make_imagenet_subset.main(["--src", str(tmp_path / "flat"), "--labels", str(tmp_path / "labels.csv"),
                                      "--per-class", "1", "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and not (tmp_path / "s").exists()


def test_evaluate_an_ir_with_the_numpy_executor(bad_files, tmp_path) -> None:
    """--backend numpy runs an IR with reference_np.ir: same images, top-1 as OpenVINO's f32 run of the FP32 IR."""
    import json

    xml = bad_files["run"] / "model_fp32.xml"
    for backend in ("numpy", "openvino"):
        assert evaluate.main(["--checkpoint", str(xml), "--backend", backend, "--data", "proxy-val", "--limit", "12",
                              "--json", str(tmp_path / f"{backend}.json")]) == 0
    a, b = (json.loads((tmp_path / f"{k}.json").read_text()) for k in ("numpy", "openvino"))
    assert a["n"] == b["n"] == 12 and a["top1"] == b["top1"] and "NumPy" in a["backend"]


@pytest.mark.parametrize("parser", ["quantize", "prune"])
def test_help_defaults_are_the_settings_defaults(parser: str) -> None:
    """Every default --help shows is the dataclass field's, and no help text states a default
    by hand (each says %(default)s, which argparse fills from the action's default)."""
    from compress.settings import DEFAULT_RUN, QuantSettings

    ap = (quantize if parser == "quantize" else prune).build_parser()
    d = QuantSettings()
    fields = {"subset_size": d.subset_size, "preset": d.preset, "model_type": d.model_type or "none",
              "fast_bias_correction": d.fast_bias_correction, "activation_range": d.activation_range,
              "smooth_quant_alpha": d.smooth_quant_alpha, "max_drop": DEFAULT_RUN.max_drop,
              "device": DEFAULT_RUN.device, "seed": DEFAULT_RUN.seed, "batch": DEFAULT_RUN.batch,
              "benchmark_seconds": DEFAULT_RUN.benchmark_seconds, "benchmark_batch": DEFAULT_RUN.benchmark_batch}
    if parser == "prune":
        p = PruneSettings()
        fields.update(method=p.method, ratio=p.ratio, finetune_steps=p.finetune_steps,
                      finetune_batch=p.finetune_batch, lr=p.lr)
    actions = {a.dest: a for a in ap._actions}
    for dest, value in fields.items():
        assert actions[dest].default == value, dest
        assert value is None or "%(default)s" in (actions[dest].help or ""), f"{dest}: --help hides its default"
    for a in ap._actions:
        text = a.help or ""
        assert not re.search(r"(?<!%)\(default\)", text), f"{a.dest}: a hand-written '(default)' in its help"
        if "default" in text and a.default not in (None, False) and "%(default)s" not in text:
            assert a.dest in ("smooth_quant_alpha", "ignored_scope", "val", "round_to"), (
                f"{a.dest}: help names a default without %(default)s: {text!r}")
    help_text = ap.format_help()
    assert "(default: histogram)" in help_text and "(default: False)" in help_text


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


def test_ignored_scope_refused_before_data_and_finetuning(tmp_path, capsys, stages_seen) -> None:
    """A scope entry that matches no node stops quantize in its first stage, before any calibration
    data is read, and prune --quantize before its first stage (it reads fine-tuning data and fine-tunes later):
    checked on the unpruned deploy graph."""
    from compress.int8.stages import PRECHECK

    for main, extra, seen in ((quantize.main, [], [PRECHECK.id]),
                              (prune.main, ["--quantize", "--finetune-steps", "600"], [])):
        assert main([*FAST, *extra, "--ignored-scope", "type:NoSuchOp", "--out", str(tmp_path / "o")]) == 2
        assert "'type:NoSuchOp' matches no node" in capsys.readouterr().err
        assert stages_seen == seen, stages_seen
        stages_seen.clear()
        assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_file_name_that_is_not_utf8_is_used_and_reported(tmp_path) -> None:
    """Bytes \\xff\\xfe in a file name (os.fsdecode gives surrogates) used from the start: hashed as
    its bytes, written to report.json (escaped), never a crash after the work."""
    import json

    from compress.data.sources import resolve_source

    folder = tmp_path / "calib"
    write_images(folder / "cls", [f"ok{i}.jpg" for i in range(7)])
    odd = folder / "cls" / os.fsdecode(b"\xff\xfe.jpg")
    odd.write_bytes((folder / "cls" / "ok0.jpg").read_bytes())
    src = resolve_source(folder, 32)
    assert any(it.key == str(odd) for it in src.items) and len(list(src)) == 8
    assert len(src.digest()) == 64 and "\\udcff" in json.dumps(src.manifest())
    out = tmp_path / "run"
    assert quantize.main(["--input-size", "32", *FAST, "--calib", str(folder), "--val", "proxy-val",
                          "--out", str(out)]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert any(os.fsencode(item["key"]).endswith(b"\xff\xfe.jpg") for item in rep["calibration_items"])


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


def test_checkpoint_folder_and_wordnet_data_get_the_right_message(tmp_path, capsys) -> None:
    """A folder as --checkpoint is called a folder; WordNet folders on a 16-class model say why."""
    assert quantize.main([*FAST, "--checkpoint", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "is a folder; pass the checkpoint file" in capsys.readouterr().err
    for w in ("n01440764", "n02102040", "n03000684"):
        write_images(tmp_path / "wn" / w, ["a.JPEG"])
    assert evaluate.main(["--checkpoint", "proxy", "--data", str(tmp_path / "wn")]) == 2
    err = capsys.readouterr().err
    assert "WordNet-id folders are scored against the 1000 ImageNet classes; this model has 16" in err


def test_a_bug_inside_create_model_is_not_called_bad_input(monkeypatch, tmp_path, capsys) -> None:
    """Only the known input conditions (CheckpointError, UnknownModelError, missing files) are
    'bad input'; a ValueError or KeyError from a bug inside create_model is an internal error with its traceback."""
    import cloformer

    for exc in (ValueError("an off-by-one somewhere"), KeyError("layers.9")):
        def broken(*a, exc=exc, **k):
            raise exc
        monkeypatch.setattr(cloformer, "create_model", broken)
        assert quantize.main([*FAST, "--out", str(tmp_path / "o")]) == 1
        err = capsys.readouterr().err
        assert "Traceback" in err and "internal error" in err


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

"""Bad input, as a new user gives it: one table per command (exit 2, one line naming the file, key or shape, nothing
left on disk), inputs and outputs kept apart, refusals before any work, errors that are not bad input."""

from __future__ import annotations

import os

import pytest

from compress import evaluate, loading, prune, quantize
from compress.errors import InputError
from tests.helpers import exit_code, write_images
from tests.stories.helpers import FAST, leftovers
from tools import make_imagenet_subset

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

@pytest.mark.parametrize("argv,message", EVALUATE_BAD, ids=[" ".join(a) for a, _ in EVALUATE_BAD])
def test_evaluate_bad_input(capsys, bad_files, argv: list[str], message: str) -> None:
    argv = [a.format(**bad_files) for a in argv]
    assert evaluate.main([*argv, "--limit", "8"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err

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

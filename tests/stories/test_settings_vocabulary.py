"""One vocabulary: settings errors name fields, the commands name the same as flags, --help shows the settings'
defaults, every command spells --model and --checkpoint alike."""

from __future__ import annotations

import re

import pytest

from compress import evaluate, prune, quantize
from compress.cli import cli_message
from compress.data.sources import DataSpec
from compress.errors import InputError
from compress.options import flag, options
from compress.settings import PruneSettings, QuantSettings, RunConfig, ScopeEntry
from tools import make_imagenet_subset

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

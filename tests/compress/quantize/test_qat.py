"""Quantization-aware training (compress.quantize --qat) in torch: the scope, training, the export and its bound,
the PTQ biases it starts from, and what it refuses before any work (the default run through every INT8 stage:
test_qat_targets.py)."""

from __future__ import annotations

import numpy as np
import openvino as ov
import pytest
import torch

from compress import loading, quantize
from compress.data import Images, proxy
from compress.errors import InputError
from compress.export import convert_deploy
from compress.int8 import ptq, qat
from compress.metrics import sqnr_db
from compress.settings import QatSettings, QuantSettings
from compress.tolerances import QAT_EXPORT_IMAGES, QAT_EXPORT_MARGIN_DB
from reference_np import ir


def test_qat_refuses_what_it_cannot_translate() -> None:
    with pytest.raises(InputError, match="OpenVINO node names"):
        qat.torch_ignored_scope(QuantSettings(ignored_scope=("name:foo",)))
    with pytest.raises(InputError, match="no torch counterpart"):
        qat.torch_ignored_scope(QuantSettings(ignored_scope=("type:GroupConvolution",)))
    scope = qat.torch_ignored_scope(QuantSettings())
    assert scope.patterns == [".*stem.*"] and set(scope.types) == {"matmul", "softmax", "mul"}


def test_qat_options_without_qat_are_refused(capsys) -> None:
    assert quantize.main(["--qat-steps", "5"]) == 2
    assert "--qat-steps applies with --qat only" in capsys.readouterr().err


def test_qat_data_that_overlaps_validation_is_refused_before_any_work(tmp_path, capsys) -> None:
    """The rule compress.prune holds its fine-tuning data to (one helper, sources.refuse_overlap)."""
    out = tmp_path / "run"
    assert quantize.main(["--qat", "--qat-data", "proxy-val", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--qat-data proxy-val shares 800 image(s) with the validation data proxy-val" in err, err
    assert "--allow-overlap" in err and not out.exists()


def ptq_bias_mismatches(model: torch.nn.Module, ptq_ir: object) -> list[str]:
    """The torch graph's convolution and linear biases that are not, bit for bit, the PTQ IR's bias constant of the
    same layer (the IR names a layer's bias Add `__module.<module path>/aten::_convolution/Add`, or `linear`)."""
    consts = {}
    for node in ptq_ir.get_ordered_ops():
        name = node.get_friendly_name()
        if node.get_type_name() == "Add" and name.endswith(("/aten::_convolution/Add", "/aten::linear/Add")):
            const = [node.input_value(i).get_node() for i in range(2)
                     if node.input_value(i).get_node().get_type_name() == "Constant"]
            consts[name.removeprefix("__module.").split("/")[0]] = const[0].get_data().ravel() if const else None
    out = []
    for path, module in model.named_modules():
        if isinstance(module, torch.nn.Conv2d | torch.nn.Linear) and module.bias is not None:
            want = consts.get(path)
            if want is None or not np.array_equal(module.bias.detach().numpy().ravel(), want.astype(np.float32)):
                out.append(path)
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The proxy XXS at 64 px quantized in torch (16 calibration images, min/max), before and after 20 QAT steps:
    (loaded, model, quantizer names, Trained, [(IR path, torch logits on x)] before and after training, x:
    QAT_EXPORT_IMAGES proxy-val crops, (biases set from the PTQ IR, the layers whose bias is not the IR's))."""
    loaded = loading.load("cloformer_xxs", "proxy", 64)
    calib = list(Images.of(proxy.sample_source(64).subset(16)).xs[:, None])
    settings = QuantSettings(subset_size=16, activation_range="minmax", fast_bias_correction=True)
    model = qat.quantize(loaded, calib, settings)
    hooks = [name for name, _ in qat.quantizers(model)]
    x = torch.from_numpy(Images.of(proxy.val_source(64).subset(QAT_EXPORT_IMAGES)).xs)
    tmp, exported = tmp_path_factory.mktemp("qat"), []

    ptq_taps = ptq.quantize(convert_deploy(loaded, taps=True), calib, settings)  # as the job's PTQ beside
    n = qat.start_from_ptq_biases(model, ptq_taps)
    biases = n, ptq_bias_mismatches(model, ptq_taps)

    def export(name: str) -> None:
        xml = tmp / name
        ov.save_model(qat.convert(model, loaded), str(xml), compress_to_fp16=False)
        with torch.no_grad():
            exported.append((xml, model(x)[0].numpy()))

    export("untrained.xml")
    result = qat.train(model, loaded, Images.of(proxy.train_source(64).subset(64)),
                       QatSettings(qat_steps=20, qat_batch=8, qat_lr=1e-5))
    export("trained.xml")
    return loaded, model, hooks, result, exported, x.numpy(), biases


def test_the_default_scope_keeps_the_stem_and_the_image_in_float(trained) -> None:
    """`pattern:.*stem.*` reaches NNCF's torch graph (op names carry the module path model/stem/...): no quantizer
    on a stem op, nor on the input image the stem reads; the blocks are quantized."""
    hooks = trained[2]
    assert not [h for h in hooks if "stem" in h or h.startswith("post_hooks.x_")]
    assert sum("model/layers/" in h for h in hooks) > 100


def test_training_lowers_the_loss_and_moves_the_ranges(trained) -> None:
    result = trained[3]
    before, after = result.probe_loss
    assert after < 0.9 * before, result.probe_loss
    assert result.ranges_changed > 0 and result.max_range_change > 0


@pytest.mark.isa_bound
def test_the_converted_ir_is_the_torch_graph(trained) -> None:
    """The torch graph against its IR's float64 NumPy run, before and after training, within QAT_EXPORT_MARGIN_DB
    of the same IR's float32 NumPy run (the yardstick, measured here)."""
    exported, x = trained[4], trained[5]
    for xml, eager in exported:
        g64, g32 = ir.load(xml), ir.load(xml, np.float32)
        got = np.concatenate([g64.run(x[i:i + 1], ["logits"])["logits"] for i in range(len(x))])
        yardstick = sqnr_db(np.concatenate([g32.run(x[i:i + 1], ["logits"])["logits"] for i in range(len(x))]), got)
        assert sqnr_db(eager, got) >= yardstick - QAT_EXPORT_MARGIN_DB, (xml.name, sqnr_db(eager, got), yardstick)


def test_the_export_goes_through_nncf_strip(trained, monkeypatch) -> None:
    """NNCF's export path: stripped, the weights' quantizers become torch FakeQuantize on the grid they trained on
    (traced unstripped they export another grid, which the logits alone no longer tell apart on every ISA)."""
    import nncf

    calls = []
    real = nncf.strip
    monkeypatch.setattr(nncf, "strip", lambda *a, **k: calls.append(k) or real(*a, **k))
    qat.convert(trained[1], trained[0])
    assert len(calls) == 1 and calls[0].get("do_copy") is True


@pytest.mark.isa_bound
def test_qat_starts_from_the_ptq_irs_biases(trained) -> None:
    """Every convolution and linear bias of the torch QAT graph is, bit for bit, the PTQ IR's bias of the same layer
    (NNCF's torch backend has no full bias correction), and the torch graph then computes what that IR computes
    """
    loaded, (n, mismatches) = trained[0], trained[6]
    biased = [m for m in loaded.deploy().modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)
              and m.bias is not None]
    assert n == len(biased) > 100
    assert not mismatches, mismatches[:5]


def test_a_pattern_that_names_only_a_weight_is_refused() -> None:
    """A pattern matching a weight's name but no op would keep nothing in float: refused like one matching
    nothing."""
    loaded = loading.load("cloformer_xxs", "proxy", 64)
    with pytest.raises(InputError, match="matches no node of the torch deploy graph"):
        qat.check_torch_scope(QuantSettings(ignored_scope=(r"pattern:model\.stem\.convs\.0\.weight",)), loaded)


def test_the_executed_nodes_target_ignores_reorders_not_unfused_fakequantize() -> None:
    """One Reorder more (the plugin's layout choice moves one between compilations of one IR) meets the target;
    a FakeQuantize the plugin runs on its own misses it, and the cause names it."""
    from types import SimpleNamespace

    from compress.int8.stages import qat_targets
    from compress.runtime import RuntimeGraph

    def graph(reorders: int, fq: int) -> RuntimeGraph:
        by_type = {"Convolution": 100, "Subgraph": 158, "Reorder": reorders, **({"FakeQuantize": fq} if fq else {})}
        return RuntimeGraph("INT8 IR", "bf16", "avx512", "2026", sum(by_type.values()), reorders, by_type)

    def judged(qat_ir: RuntimeGraph) -> object:
        ctx = SimpleNamespace(qat=object(), ptq=SimpleNamespace(runtime=graph(36, 0)),
                              diagnosis=SimpleNamespace(runtime=[graph(38, 0), qat_ir]))
        (t,) = qat_targets(ctx)
        return t

    assert judged(graph(37, 0)).met
    miss = judged(graph(40, 2))
    assert miss.met is False and (miss.value, miss.bound) == (260, 258) and "FakeQuantize +2" in miss.cause

"""Registry, parameter counts, official-format loading and input checks."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import cloformer
import reference_np as rn
from cloformer import CheckpointMismatchError
from reference_np.specs import VARIANTS
from tests.helpers import np_weights, to_torch


def test_registry_lists_every_authors_variant() -> None:
    assert cloformer.list_models() == sorted(
        ["cloformer_xxs", "cloformer_xs", "cloformer_s", "cloformer_global", "cloformer_no_global"])
    with pytest.raises(ValueError, match=r"unknown model 'cloformer_m'.*cloformer_xxs"):
        cloformer.create_model("cloformer_m")


@pytest.mark.parametrize("name,params,entries", [
    ("cloformer_xxs", 4_166_728, 351), ("cloformer_xs", 7_172_216, 351), ("cloformer_s", 12_345_576, 351),
    ("cloformer_global", 3_998_024, None), ("cloformer_no_global", 4_733_256, None)])
def test_parameter_counts(name: str, params: int, entries: int | None) -> None:
    model = cloformer.create_model(name)
    assert sum(p.numel() for p in model.parameters()) == params == VARIANTS[name].params
    if entries:
        assert len(model.state_dict()) == entries
    # the NumPy layout and the torch module agree key by key, in registration order
    assert list(model.state_dict()) == list(np_weights(name))
    assert not any(isinstance(m, torch.nn.SyncBatchNorm) for m in model.modules())


def test_official_keys_present() -> None:
    sd = cloformer.create_model("cloformer_xxs").state_dict()
    for key, shape in [("layers.0.blocks.1.attn.convs.0.weight", (72, 1, 3, 3)),
                       ("layers.0.blocks.1.attn.act_blocks.0.act_block.2.weight", (24, 24, 1, 1)),
                       ("layers.0.blocks.1.downsample.0.weight", (32, 32, 5, 5)),
                       ("layers.0.blocks.1.downsample.2.weight", (64, 32, 1, 1)),
                       ("layers.0.blocks.1.mlp.fc2.weight", (64, 128, 1, 1)),
                       ("patch_embed.conv1.conv.0.weight", (16, 3, 3, 3)),
                       ("patch_embed.conv1.conv.1.num_batches_tracked", ()), ("head.weight", (1000, 256))]:
        assert tuple(sd[key].shape) == shape, key


@pytest.mark.parametrize("fmt", ["pth-wrapped", "pth-bare", "pth-module-prefix", "safetensors"])
def test_checkpoint_formats_load(tmp_path, fmt: str) -> None:
    sd = to_torch({k: v.astype(np.float32) if v.dtype == np.float64 else v
                   for k, v in np_weights("cloformer_xxs").items()})
    if fmt == "safetensors":
        path = tmp_path / "w.safetensors"
        save_file(sd, str(path))
    else:
        path = tmp_path / "w.pth"
        obj = {"module." + k: v for k, v in sd.items()} if fmt == "pth-module-prefix" else sd
        torch.save({"model": obj, "epoch": 3, "max_accuracy": 0.0} if fmt == "pth-wrapped" else obj, path)
    model = cloformer.create_model("cloformer_xxs", checkpoint=path)
    for k, v in model.state_dict().items():
        assert torch.equal(v, sd[k]), k


def test_checkpoint_mismatch_lists_every_problem(tmp_path) -> None:
    sd = to_torch(np_weights("cloformer_xxs"))
    del sd["norm.weight"]
    sd["extra.weight"] = torch.zeros(1)
    sd["layers.0.blocks.0.mlp.fc1.weight"] = torch.zeros(64, 32, 1, 1)
    path = tmp_path / "bad.pth"
    torch.save(sd, path)
    with pytest.raises(CheckpointMismatchError) as e:
        cloformer.create_model("cloformer_xxs", checkpoint=path)
    msg = str(e.value)
    assert "missing: norm.weight" in msg and "unexpected: extra.weight" in msg
    assert "layers.0.blocks.0.mlp.fc1.weight: checkpoint (64, 32, 1, 1) vs model (128, 32, 1, 1)" in msg
    assert str(path) in msg


def test_wrong_variant_checkpoint(tmp_path) -> None:
    path = tmp_path / "xs.safetensors"
    save_file(to_torch(np_weights("cloformer_xs")), str(path))
    with pytest.raises(CheckpointMismatchError, match=r"wrong shape"):
        cloformer.create_model("cloformer_xxs", checkpoint=path)


def test_safetensors_metadata_sets_input_size(tmp_path) -> None:
    """A checkpoint's `input_size` metadata (written by compress.prune) overrides the variant's 224."""
    sd = to_torch(np_weights("cloformer_xxs"))
    save_file(sd, str(tmp_path / "a.safetensors"), metadata={"input_size": "96"})
    save_file(sd, str(tmp_path / "b.safetensors"))
    save_file(sd, str(tmp_path / "c.safetensors"), metadata={"input_size": "big"})
    assert cloformer.create_model("cloformer_xxs", checkpoint=tmp_path / "a.safetensors").pretrained_cfg[
        "input_size"] == (3, 96, 96)
    assert cloformer.create_model("cloformer_xxs", checkpoint=tmp_path / "b.safetensors").pretrained_cfg[
        "input_size"] == (3, 224, 224)
    with pytest.raises(ValueError, match=r"c\.safetensors: metadata input_size 'big'"):
        cloformer.create_model("cloformer_xxs", checkpoint=tmp_path / "c.safetensors")


@pytest.mark.parametrize("bad", ["missing.pth", "notes.txt", "garbage.safetensors", "garbage.pth"])
def test_unreadable_checkpoint(tmp_path, bad: str) -> None:
    path = tmp_path / bad
    if bad != "missing.pth":
        path.write_bytes(b"not a checkpoint")
    with pytest.raises((FileNotFoundError, ValueError), match=bad.replace(".", r"\.")):
        cloformer.create_model("cloformer_xxs", checkpoint=path)


@pytest.mark.parametrize("hw", [(240, 240), (224, 200), (100, 64)])
def test_input_not_multiple_of_32(hw: tuple[int, int]) -> None:
    with pytest.raises(ValueError, match=r"multiples of 32"):
        cloformer.create_model("cloformer_xxs")(torch.zeros(1, 3, *hw))
    with pytest.raises(ValueError, match=r"multiples of 32"):
        rn.forward(np_weights("cloformer_xxs"), np.zeros((1, 3, *hw)))


def test_reference_rejects_bad_input() -> None:
    w = np_weights("cloformer_xxs")
    with pytest.raises(ValueError, match=r"\[B,3,H,W\]"):
        rn.forward(w, np.zeros((3, 64, 64)))
    with pytest.raises(TypeError, match="float32 or float64"):
        rn.forward(w, np.zeros((1, 3, 64, 64), dtype=np.int64))
    with pytest.raises(KeyError, match=re.escape("layers.0.blocks.0.norm1.weight")):
        rn.forward({k: v for k, v in w.items() if not k.startswith("layers.")}, np.zeros((1, 3, 64, 64)))


def test_reference_imports_no_framework(tmp_path) -> None:
    """reference_np must run with torch, openvino, nncf and onnx unimportable and never import them."""
    path = tmp_path / "w.npz"
    rn.save_weights(np_weights("cloformer_xxs"), path)
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, *a):\n"
        "        if name.split('.')[0] in ('torch', 'openvino', 'nncf', 'onnx', 'onnxruntime'):\n"
        "            raise ImportError('blocked ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import numpy as np, reference_np as rn\n"
        f"w = rn.load_weights({str(path)!r})\n"
        "y = rn.forward(w, np.ones((1, 3, 64, 64)))\n"
        "assert y.shape == (1, 1000)\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'openvino', 'nncf', 'onnx')]\n"
        "assert not bad, bad\n"
        "print('ok')\n")
    root = Path(rn.__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(root))
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_weights_roundtrip_npz_safetensors(tmp_path) -> None:
    w = np_weights("cloformer_global")
    for suffix in (".npz", ".safetensors"):
        path = rn.save_weights(w, tmp_path / f"w{suffix}")
        back = rn.load_weights(path)
        assert {k: v.shape for k, v in back.items()} == {k: v.shape for k, v in w.items()}  # 0-d stays 0-d
        assert rn.weights_sha256(back) == rn.weights_sha256(w)
        assert not list(tmp_path.glob("*.tmp*"))
        cloformer.create_model("cloformer_global", checkpoint=path)  # strict load of what we wrote


# ---------------------------------------------------------------- timm conventions
def test_timm_style_forward_features_head_intermediates() -> None:
    """forward_features returns the last feature map, forward_head(x, pre_logits) pools and classifies, and
    forward_intermediates returns the NumPy reference's named intermediates, key for key, in float64."""
    from tests.helpers import test_input, torch_twin

    w = np_weights("cloformer_xxs")
    model = torch_twin("cloformer_xxs", w)
    x = test_input((2, 3, 64, 64))
    ref, taps = rn.forward(w, x, return_intermediates=True)
    with torch.no_grad():
        xt = torch.from_numpy(x)
        fmap = model.forward_features(xt)
        pooled = model.forward_head(fmap, pre_logits=True)
        logits = model.forward_head(fmap)
        out, inter = model.forward_intermediates(xt)
        authors = model.forward_feature(xt).numpy()
    assert tuple(fmap.shape) == (2, 256, 2, 2) and tuple(pooled.shape) == (2, 256)
    assert np.abs(logits.numpy() - ref).max() <= 1e-10 and np.abs(out.numpy() - ref).max() <= 1e-10
    assert np.abs(pooled.numpy() - taps["features"]).max() <= 1e-10
    assert np.abs(authors - taps["features"]).max() <= 1e-10  # the authors' name for the pooled features
    assert list(inter) == list(taps) == rn.specs.intermediate_names(model.plan)
    for k in taps:
        assert np.abs(inter[k].numpy() - taps[k]).max() <= 1e-10, k


def test_pretrained_cfg_is_the_data_pipeline_definition() -> None:
    from compress import data

    cfg = cloformer.create_model("cloformer_xxs", checkpoint="proxy").pretrained_cfg
    assert cfg["input_size"] == (3, 64, 64) and cfg["interpolation"] == "bicubic"
    assert cfg["mean"] == rn.specs.IMAGENET_MEAN and cfg["std"] == rn.specs.IMAGENET_STD
    assert cfg["crop_pct"] == rn.specs.CROP_PCT == data.CROP_PCT  # the one definition both use
    assert data.IMAGENET_MEAN is cfg["mean"]


def test_reference_swish_is_overflow_free() -> None:
    import warnings

    from reference_np.ops import swish

    x = np.array([-1000.0, -100.0, 0.0, 100.0], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = swish(x)
    assert y.dtype == np.float32 and np.array_equal(y, [0.0, -0.0, 0.0, 100.0])


def test_train_proxy_card_lists_its_stages_and_never_overwrites_the_shipped_file() -> None:
    """The model card says how to reproduce the weights: every training stage's command, in order (a stage after
    the first starts from the previous one's weights with --init), and their steps and seconds add up."""
    from cloformer.registry import SHIPPED
    from tools import train_proxy

    card = cloformer.model_card("proxy")
    stages = card["training"]
    assert stages and all(s["command"].startswith("python -m tools.train_proxy ") for s in stages)
    assert all("--init" in s["command"] for s in stages[1:]) and "--init" not in stages[0]["command"]
    assert card["train_steps"] == sum(s["steps"] for s in stages)
    assert card["train_seconds"] == pytest.approx(sum(s["seconds"] for s in stages), abs=0.2)
    assert stages[-1]["heldout_top1"] == card["heldout_top1"]
    src = Path(train_proxy.__file__).read_text()
    assert 'default=SHIPPED["proxy"][1]' not in src and SHIPPED["proxy"][1].is_file()

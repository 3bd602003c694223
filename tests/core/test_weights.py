"""Offline pretrained weights: where they are found, which layouts load, what errors say."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import safetensors.torch
import torch
import torchvision.models as tvm
from skimage import data as skdata

from cxr_desktop.core import paths
from cxr_desktop.core.errors import ModelError, WeightsNotFoundError
from cxr_desktop.core.models import build_imagenet_classifier, build_model
from cxr_desktop.core.models.factory import imagenet_input
from cxr_desktop.core.models.registry import ARCHITECTURES
from cxr_desktop.core.models.state_dicts import map_by_order
from cxr_desktop.core.models.weights import packaged_weights

RESNET18_FILE = "resnet18-f37072fd.pth"


@pytest.fixture
def torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty ``$TORCH_HOME`` and an empty ``resources/weights``: nothing real is found."""
    home = tmp_path / "torch_home"
    (home / "hub" / "checkpoints").mkdir(parents=True)
    monkeypatch.setenv("TORCH_HOME", str(home))
    resources = tmp_path / "resources"
    (resources / "weights").mkdir(parents=True)
    monkeypatch.setattr(paths, "resources_dir", lambda: resources)
    return home


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def _resnet18_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(7)
    return tvm.resnet18(weights=None).state_dict()


def test_found_in_torch_home_with_dataparallel_prefix(torch_home: Path, no_network: None) -> None:
    state = _resnet18_state()
    file = torch_home / "hub" / "checkpoints" / RESNET18_FILE
    torch.save({f"module.{k}": v for k, v in state.items()}, file)
    model = build_model("resnet18", 3, pretrained="imagenet")
    assert model.pretrained_source == file and str(file) in model.pretrained_note
    torch.testing.assert_close(model.features.stem.conv1.weight, state["conv1.weight"])
    torch.testing.assert_close(model.features.layer4[1].bn2.running_var,
                               state["layer4.1.bn2.running_var"])
    assert model.head.out_features == 3  # the 1000-class fc is not loaded


def test_resources_folder_comes_before_torch_home(torch_home: Path) -> None:
    state = _resnet18_state()
    torch.save(state, torch_home / "hub" / "checkpoints" / RESNET18_FILE)
    bundled = paths.resources_dir() / "weights" / RESNET18_FILE
    torch.save({k: v + 1 for k, v in state.items()}, bundled)
    model = build_model("resnet18", 2, pretrained="auto")
    assert model.pretrained_source == bundled
    torch.testing.assert_close(model.features.stem.conv1.weight, state["conv1.weight"] + 1)


def test_user_file_safetensors_and_checkpoint_wrapper(tmp_path: Path) -> None:
    state = _resnet18_state()
    st_file = tmp_path / "mine.safetensors"
    safetensors.torch.save_file(state, str(st_file))
    model = build_model("resnet18", 2, pretrained=st_file)
    assert model.pretrained_source == st_file
    torch.testing.assert_close(model.features.layer2[0].downsample[0].weight,
                               state["layer2.0.downsample.0.weight"])
    wrapped = tmp_path / "checkpoint.pt"
    torch.save({"epoch": 3, "model_state_dict": state, "best_auc": 0.9}, wrapped)
    model = build_model("resnet18", 2, pretrained=str(wrapped))
    torch.testing.assert_close(model.features.layer3[1].conv2.weight,
                               state["layer3.1.conv2.weight"])


def test_old_densenet_keys_are_mapped(tmp_path: Path) -> None:
    torch.manual_seed(3)
    state = tvm.densenet121(weights=None).state_dict()
    old = {k.replace(".norm1.", ".norm.1.").replace(".conv2.", ".conv.2."): v
           for k, v in state.items()}
    assert "features.denseblock1.denselayer1.norm.1.weight" in old
    file = tmp_path / "densenet121-a639ec97.pth"
    torch.save({"state_dict": old}, file)
    model = build_model("densenet121", 2, pretrained=file)
    block = model.features.denseblock2.denselayer3
    torch.testing.assert_close(block.norm1.weight,
                               state["features.denseblock2.denselayer3.norm1.weight"])
    torch.testing.assert_close(block.conv2.weight,
                               state["features.denseblock2.denselayer3.conv2.weight"])


def test_missing_weights_imagenet_raises_and_auto_explains(torch_home: Path,
                                                         no_network: None) -> None:
    with pytest.raises(WeightsNotFoundError) as info:
        build_model("resnet18", 2, pretrained="imagenet")
    message = str(info.value)
    assert RESNET18_FILE in message and "\n" not in message
    assert str(torch_home / "hub" / "checkpoints") in message
    assert str(paths.resources_dir() / "weights") in message
    assert "train from scratch (pretrained none)" in message
    model = build_model("resnet18", 2, pretrained="auto")
    assert model.pretrained_source is None and RESNET18_FILE in model.pretrained_note
    with pytest.raises(WeightsNotFoundError, match=r"from scratch \(pretrained none\)"):
        build_model("small_cnn", 2, pretrained="imagenet")
    scratch = build_model("small_cnn", 2, pretrained="auto")  # made for it: nothing to say
    assert scratch.pretrained_source is None and scratch.pretrained_note == ""
    with pytest.raises(WeightsNotFoundError, match="nowhere.pth"):
        build_model("resnet18", 2, pretrained=torch_home / "nowhere.pth")
    assert build_model("resnet18", 2, pretrained="none").pretrained_source is None


def test_wrong_file_names_the_file_and_the_first_bad_key(tmp_path: Path) -> None:
    squeeze = tmp_path / "squeezenet.pth"
    torch.save(tvm.squeezenet1_1(weights=None).state_dict(), squeeze)
    with pytest.raises(ModelError, match=r"squeezenet\.pth.*resnet18.*'conv1\.weight'"):
        build_model("resnet18", 2, pretrained=squeeze)
    deeper = tmp_path / "resnet34.pth"
    torch.save(tvm.resnet34(weights=None).state_dict(), deeper)
    with pytest.raises(ModelError, match=r"resnet34\.pth.*unexpected key 'layer1\.2\."):
        build_model("resnet18", 2, pretrained=deeper)
    text = tmp_path / "notes.pth"
    text.write_text("not weights")
    with pytest.raises(ModelError, match=r"notes\.pth: cannot read weights"):
        build_model("resnet18", 2, pretrained=text)


def test_pickled_whole_model_is_refused(tmp_path: Path) -> None:
    """weights_only=True: a pickle that would run code on load is not opened."""
    file = tmp_path / "whole_model.pth"
    torch.save(tvm.squeezenet1_1(weights=None), file)
    with pytest.raises(ModelError, match=r"whole_model\.pth: it holds Python objects "
                                         r"\(torchvision\.models\.squeezenet\.SqueezeNet\)"
                                         r" that could run code when loaded, so it was not"):
        build_model("squeezenet1_1", 2, pretrained=file)


def test_map_by_order_checks_shapes(tmp_path: Path) -> None:
    source = {"_a": torch.zeros(2, 3), "_b": torch.zeros(4)}
    assert list(map_by_order(source, {"a": torch.ones(2, 3), "b": torch.ones(4)}, tmp_path))
    with pytest.raises(ModelError, match="'_b'"):
        map_by_order(source, {"a": torch.ones(2, 3), "b": torch.ones(5)}, tmp_path)


def test_efficientnet_lite0_package_weights_classify_imagenet_photos(
        torch_home: Path, no_network: None) -> None:
    """The real weights through the key mapping: a cat is a cat, an espresso an espresso."""
    package_file = packaged_weights(ARCHITECTURES["efficientnet_lite0"])
    assert package_file is not None
    net = build_imagenet_classifier("efficientnet_lite0", pretrained="imagenet")
    photos = torch.cat([imagenet_input(skdata.chelsea(), "efficientnet_lite0", 224),
                        imagenet_input(skdata.coffee(), "efficientnet_lite0", 224)])
    with torch.no_grad():
        predicted = net(photos).argmax(dim=1).tolist()
    assert predicted == [285, 967]  # Egyptian cat, espresso

    model = build_model("efficientnet_lite0", 2, pretrained="auto")
    assert model.pretrained_source == package_file
    original = torch.load(package_file, map_location="cpu", weights_only=True)
    torch.testing.assert_close(model.features.stem.conv_stem.weight, original["_conv_stem.weight"])
    torch.testing.assert_close(model.features.head_conv.conv_head.weight,
                               original["_conv_head.weight"])

"""Tests for the model registry: the forward/embed/head contract, shapes, training, torch.func and weights."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.func import functional_call, grad, vmap

from deep._torchvision import import_torchvision
from deep.models import MODELS, build_model

NUM_CLASSES = 3
# The smallest input each model is meant for, to keep the registry tests fast on CPU.
TINY_SHAPES: dict[str, tuple[int, ...]] = {
    "mlp": (10,),
    "cnn": (1, 8, 8),
    "lenet300100": (1, 4, 4),
    "resnet18": (3, 32, 32),
    "resnet50": (3, 32, 32),
    "vgg16": (3, 32, 32),
    "vgg19": (3, 32, 32),
    "resnet50_imagenet": (3, 64, 64),
}
# Smaller still, where the architecture allows, for the costlier per-sample gradient test.
SMALLEST_SHAPES = TINY_SHAPES | {"resnet18": (3, 8, 8), "resnet50": (3, 8, 8), "resnet50_imagenet": (3, 32, 32)}


def tiny_model(name: str, shapes: dict[str, tuple[int, ...]] = TINY_SHAPES) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """Model `name` built on its shape in `shapes`, with a seeded batch of two inputs and labels."""
    torch.manual_seed(0)
    model = build_model(name, NUM_CLASSES, shapes[name])
    x = torch.randn(2, *shapes[name])
    return model, x, torch.tensor([0, 2])


def test_registry_has_exactly_the_contract_names() -> None:
    assert set(MODELS) == set(TINY_SHAPES)


@pytest.mark.parametrize("name", MODELS)
def test_forward_is_head_of_embed(name: str) -> None:
    model, x, _ = tiny_model(name)
    model.eval()
    with torch.no_grad():
        logits, features = model(x), model.embed(x)
    assert isinstance(model.head, nn.Linear)
    assert logits.shape == (2, NUM_CLASSES)
    assert features.shape == (2, model.head.in_features)
    assert model.head.out_features == NUM_CLASSES
    torch.testing.assert_close(logits, model.head(features))


@pytest.mark.parametrize("name", MODELS)
def test_one_sgd_step_changes_head_and_first_layer(name: str) -> None:
    model, x, y = tiny_model(name)
    model.train()
    params = dict(model.named_parameters())
    before = {k: p.detach().clone() for k, p in params.items()}
    optimizer = torch.optim.SGD(params.values(), lr=0.1)
    nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()
    assert all(torch.isfinite(p).all() for p in params.values())
    # The first parameter is the input layer: it moves only if gradients flow through the whole network.
    first = next(iter(params))
    assert not torch.equal(params[first], before[first])
    assert not torch.equal(params["head.weight"], before["head.weight"])


@pytest.mark.parametrize("name", MODELS)
def test_per_sample_gradients_with_torch_func_match_autograd(name: str) -> None:
    model, x, y = tiny_model(name, SMALLEST_SHAPES)
    model.eval()
    params = {k: v.detach() for k, v in model.named_parameters()}
    buffers = dict(model.named_buffers())

    def loss(p: dict[str, torch.Tensor], xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(functional_call(model, (p, buffers), (xi[None],)), yi[None])

    per_sample = vmap(grad(loss), in_dims=(None, 0, 0))(params, x, y)
    model.zero_grad()
    nn.functional.cross_entropy(model(x[1:]), y[1:]).backward()
    for key, param in model.named_parameters():
        # Loose, relative to the tensor's norm: in float32 a pre-activation within 1e-8 of zero can fall on
        # either side of its ReLU in the two code paths (seen in resnet18), moving a gradient by ~0.3%;
        # mixing samples or a broken transform moves it by O(1).
        error = torch.linalg.vector_norm(per_sample[key][1] - param.grad)
        assert error <= 1e-2 * torch.linalg.vector_norm(param.grad) + 1e-7, key


@pytest.mark.parametrize("name", ["cnn", "resnet18", "vgg16", "resnet50_imagenet"])
def test_channels_last_gives_the_same_logits(name: str) -> None:
    model, x, _ = tiny_model(name)
    model.eval()
    with torch.no_grad():
        expected = model(x)
        converted = copy.deepcopy(model).to(memory_format=torch.channels_last)
        actual = converted(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("name", "count"),
    [
        ("resnet18", 11_173_962),  # kuangliu/pytorch-cifar ResNet18 on CIFAR-10
        ("resnet50", 23_520_842),  # kuangliu/pytorch-cifar ResNet50 on CIFAR-10
        # kuangliu's VGG counts (14,728,266 / 20,040,522) minus the conv biases that batch norm makes redundant.
        ("vgg16", 14_728_266 - 4_224),
        ("vgg19", 20_040_522 - 5_504),
        ("resnet50_imagenet", 25_557_032 - 2_049_000 + 20_490),  # torchvision's, with a 10-class head
    ],
)
def test_parameter_counts_match_the_reference_architectures(name: str, count: int) -> None:
    assert sum(p.numel() for p in build_model(name, 10, (3, 32, 32)).parameters()) == count


@pytest.mark.parametrize(("name", "features"), [("resnet18", 512), ("vgg16", 512), ("cnn", 128)])
def test_image_models_run_on_tinyimagenet_size(name: str, features: int) -> None:
    model = build_model(name, 200, (3, 64, 64)).eval()
    with torch.no_grad():
        assert model.embed(torch.randn(1, 3, 64, 64)).shape == (1, features)
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 200)


@settings(max_examples=15, deadline=None)
@given(channels=st.integers(1, 4), height=st.integers(1, 12), width=st.integers(1, 12), k=st.integers(1, 5))
def test_cnn_accepts_any_small_image(channels: int, height: int, width: int, k: int) -> None:
    model = build_model("cnn", k, (channels, height, width), widths=(4, 8, 16)).eval()
    with torch.no_grad():
        assert model(torch.randn(2, channels, height, width)).shape == (2, k)


@settings(max_examples=15, deadline=None)
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=3), hidden=st.lists(st.integers(1, 9), max_size=3))
def test_mlp_flattens_any_input_and_embeds_to_the_last_hidden_width(shape: list[int], hidden: list[int]) -> None:
    model = build_model("mlp", 4, tuple(shape), hidden=tuple(hidden)).eval()
    x = torch.randn(3, *shape)
    width = hidden[-1] if hidden else x[0].numel()
    with torch.no_grad():
        assert model.embed(x).shape == (3, width)
        assert model(x).shape == (3, 4)
    assert len([m for m in model.modules() if isinstance(m, nn.Linear)]) == len(hidden) + 1


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="resnet18.*vgg19"):
        build_model("resnet1000", 10, (3, 32, 32))


@pytest.mark.parametrize(
    ("name", "num_classes", "shape", "match"),
    [
        ("cnn", 10, (64,), "input_shape"),
        ("resnet18", 10, (32, 32), "input_shape"),
        ("vgg16", 10, (3, 8, 8), "32x32"),
        ("mlp", 0, (4,), "num_classes"),
        ("mlp", 10, (), "input_shape"),
    ],
)
def test_bad_arguments_raise_value_error(name: str, num_classes: int, shape: tuple[int, ...], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build_model(name, num_classes, shape)


def test_resnet50_imagenet_loads_local_weights_except_the_head(tmp_path: Path) -> None:
    torch.manual_seed(1)
    reference = import_torchvision().models.resnet50().state_dict()
    path = tmp_path / "resnet50.pt"
    torch.save(reference, path)
    torch.manual_seed(2)
    model = build_model("resnet50_imagenet", 7, (3, 64, 64), weights=path)
    loaded = model.backbone.state_dict()
    assert set(loaded) == {k for k in reference if not k.startswith("fc.")}
    for key, value in loaded.items():
        assert torch.equal(value, reference[key]), key
    assert model.head.weight.shape == (7, 2048)


def test_resnet50_imagenet_rejects_bad_weights(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="weights"):
        build_model("resnet50_imagenet", 7, (3, 64, 64), weights=tmp_path / "missing.pt")
    wrong = tmp_path / "resnet18.pt"
    torch.save(import_torchvision().models.resnet18().state_dict(), wrong)
    with pytest.raises(ValueError, match="resnet50 state_dict"):
        build_model("resnet50_imagenet", 7, (3, 64, 64), weights=wrong)
    with pytest.raises(ValueError, match="3-channel"):
        build_model("resnet50_imagenet", 7, (1, 64, 64), weights=wrong)
    with pytest.raises(ValueError, match="not both"):
        build_model("resnet50_imagenet", 7, (3, 64, 64), weights=wrong, download=True)


def test_resnet50_imagenet_without_weights_takes_any_channel_count() -> None:
    model = build_model("resnet50_imagenet", 2, (1, 64, 64)).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 1, 64, 64)).shape == (1, 2)


@pytest.mark.parametrize("name", ["vgg16", "vgg19", "resnet18", "lenet300100"])
def test_reference_models_use_the_authors_init(name: str) -> None:
    """Xavier-normal weights with gain sqrt(2) and zero biases (their classification_model_base.py); VGG and LeNet
    batch norm with momentum 0.01."""
    torch.manual_seed(0)
    shape = (1, 28, 28) if name == "lenet300100" else (3, 32, 32)
    model = build_model(name, 10, shape)
    head = model.head
    expected = math.sqrt(2) * math.sqrt(2 / (head.in_features + head.out_features))
    assert float(head.weight.std()) == pytest.approx(expected, rel=0.15)
    assert torch.count_nonzero(head.bias) == 0
    if name != "resnet18":
        assert {m.momentum for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)} == {0.01}


def test_pretrained_weights_are_named_by_content_and_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from deep.models import pretrained

    file = tmp_path / "weights.pt"
    file.write_bytes(b"some state dict")
    weights = pretrained.weights_id(str(file), "resnet50_imagenet")
    assert weights == "sha256:" + __import__("hashlib").sha256(b"some state dict").hexdigest()
    moved = tmp_path / "elsewhere.pt"
    moved.write_bytes(b"some state dict")
    assert pretrained.weights_id(str(moved), "resnet50_imagenet") == weights  # the name does not matter
    assert pretrained.build_kwargs(weights, str(moved)) == {"weights": str(moved)}
    other = tmp_path / "other.pt"
    other.write_bytes(b"other weights")
    with pytest.raises(ValueError, match="pass that file again"):
        pretrained.build_kwargs(weights, str(other))
    with pytest.raises(ValueError, match="--pretrained applies to resnet50_imagenet"):
        pretrained.weights_id(str(file), "mlp")
    with pytest.raises(FileNotFoundError, match="no such file"):
        pretrained.weights_id(str(tmp_path / "missing.pt"), "resnet50_imagenet")
    monkeypatch.setattr(pretrained, "cached_imagenet_file", lambda: tmp_path / "not-cached.pth")
    with pytest.raises(ValueError, match="--download"):
        pretrained.weights_id("imagenet", "resnet50_imagenet")
    assert pretrained.weights_id("imagenet", "resnet50_imagenet", download=True) == pretrained.IMAGENET_ID
    assert pretrained.build_kwargs(pretrained.IMAGENET_ID, None) == {"download": True}
    # Pretrained models see ImageNet statistics, others the dataset's.
    assert pretrained.normalization(weights, ((0.5,), (0.2,))) == pretrained.IMAGENET_NORMALIZATION
    assert pretrained.normalization(None, ((0.5,), (0.2,))) == ((0.5,), (0.2,))

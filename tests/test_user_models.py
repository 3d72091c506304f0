"""--model module:function and timm:<name>: a user's builder from a module the test writes, checked before training."""

from __future__ import annotations

import sys
import textwrap
import types
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from deep.data.base import Split
from deep.models import build_model, feature_extractor, resolve_model
from deep.query import TraceRecorder
from deep.scores import SCORERS, QueryModel
from deep.scores.ssp import prototype_distances
from deep.train import TrainConfig, train

USER_MODULE = '''
import torch
from torch import nn


def small(num_classes, input_shape):
    """No embed method: features come from the input of the last Linear."""
    width = 1
    for size in input_shape:
        width *= size
    return nn.Sequential(nn.Flatten(), nn.Linear(width, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, num_classes))


def not_a_module(num_classes, input_shape):
    return "a string"


def wrong_width(num_classes, input_shape):
    return nn.Sequential(nn.Flatten(), nn.LazyLinear(num_classes + 1))


def needs_images(num_classes, input_shape):
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, num_classes))


def returns_a_dict(num_classes, input_shape):
    class Wrapped(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(input_shape[0], num_classes)

        def forward(self, x):
            return {"logits": self.fc(x)}

    return Wrapped()


def conv_head(num_classes, input_shape):
    return nn.Sequential(nn.Conv2d(input_shape[0], num_classes, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten())


CONSTANT = 3
'''


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The name of a fresh module holding USER_MODULE, importable from a folder put on sys.path."""
    name = f"user_models_{tmp_path.name}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(USER_MODULE))
    (tmp_path / "broken_dependency.py").write_text("import a_package_nobody_installed\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def test_a_user_builder_is_built_checked_and_left_as_built(user_module: str) -> None:
    torch.manual_seed(0)
    model = build_model(f"{user_module}:small", 3, (4,))
    assert isinstance(model, nn.Sequential) and model.training  # the check put it back in training mode
    batch_norm = model[2]
    # The dummy batch ran in eval mode: BatchNorm statistics are untouched.
    assert torch.equal(batch_norm.running_mean, torch.zeros(8)) and int(batch_norm.num_batches_tracked) == 0
    assert resolve_model(f"{user_module}:small").__name__ == "small"


@pytest.mark.parametrize(("function", "shape", "match"), [
    ("not_a_module", (4,), "returned a str, not a torch.nn.Module"),
    ("wrong_width", (4,), r"returns \(2, 4\) for a batch of shape \(2, 4\); expected logits of shape \(2, 3\)"),
    ("needs_images", (4,), r"fails on a batch of shape \(2, 4\)"),
    ("returns_a_dict", (4,), "returns dict"),
    ("missing", (4,), "has no function 'missing'; it defines conv_head, needs_images"),
    ("CONSTANT", (4,), "has no function 'CONSTANT'"),
])
def test_a_bad_builder_is_a_value_error_before_training(user_module: str, function: str, shape: tuple[int, ...],
                                                         match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build_model(f"{user_module}:{function}", 3, shape)


def test_a_missing_module_and_a_malformed_name_say_what_to_do(user_module: str) -> None:
    with pytest.raises(ValueError, match="no module 'no_such_module_anywhere'.*PYTHONPATH"):
        resolve_model("no_such_module_anywhere:build")
    with pytest.raises(ValueError, match="package.module:function"):
        resolve_model(f"{user_module}:")
    with pytest.raises(ValueError, match="unknown model 'resnet1000'.*package.module:function"):
        resolve_model("resnet1000")
    # A module that exists but imports something missing: the real error, not "no module broken_dependency".
    with pytest.raises(ModuleNotFoundError, match="a_package_nobody_installed"):
        resolve_model("broken_dependency:build")


def test_features_of_a_model_without_embed_are_the_input_of_its_last_linear(user_module: str) -> None:
    torch.manual_seed(0)
    model = build_model(f"{user_module}:small", 3, (4,)).eval()
    x = torch.randn(5, 4)
    with torch.no_grad():
        features = feature_extractor(model)(x)
        torch.testing.assert_close(features, model[:-1](x))
    assert not model[-1]._forward_pre_hooks  # the hooks were removed after the call
    registry = build_model("mlp", 3, (4,))
    assert feature_extractor(registry) == registry.embed


def test_a_model_with_no_linear_layer_is_refused_with_what_to_add(user_module: str) -> None:
    model = build_model(f"{user_module}:conv_head", 3, (2, 5, 5))
    with pytest.raises(ValueError, match=r"no `embed` method and no nn.Linear layer.*def embed\(self, x\)"):
        feature_extractor(model)


def test_every_scorer_runs_on_a_user_model_and_ssp_reads_the_hooked_features(user_module: str) -> None:
    torch.manual_seed(0)
    n, classes, epochs = 48, 3, 3
    y = torch.arange(n) % classes
    data = Split(torch.randn(n, 4) + y[:, None].float(), y)
    model = build_model(f"{user_module}:small", classes, (4,))
    recorder = TraceRecorder(n, torch.device("cpu"))
    cfg = TrainConfig(epochs=epochs, batch_size=16, lr=0.1, augment=False)
    train(model, data, cfg, seed=0, device="cpu", callbacks=[recorder.on_epoch], on_batch=[recorder.on_batch],
          progress=False)
    scores = {}
    for name, scorer in SCORERS.items():
        query = QueryModel(data, classes, None, torch.device("cpu"), 7, epochs, scorer.resolve(name, {}),
                           recorder.trace(), lambda: model)
        scores[name] = scorer.score(query)
        assert scores[name].shape == (n,) and np.all(np.isfinite(scores[name])), name
    with torch.no_grad():
        features = model.eval()[:-1](data.x)
    np.testing.assert_allclose(scores["ssp"], prototype_distances(features, y, classes), atol=1e-6)


def test_timm_without_timm_says_pip_install_timm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "timm", None)  # import timm now raises ImportError, installed or not
    with pytest.raises(ValueError, match="pip install timm"):
        build_model("timm:resnet18", 10, (3, 32, 32))


def test_timm_models_get_the_class_count_and_channels(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, dict]] = []

    def create_model(name: str, **kwargs: object) -> nn.Module:
        calls.append((name, kwargs))
        return nn.Sequential(nn.Flatten(), nn.LazyLinear(int(kwargs["num_classes"])))

    fake = types.SimpleNamespace(__version__="0.0-test", is_model=lambda name: name == "tiny_net",
                                 create_model=create_model)
    monkeypatch.setitem(sys.modules, "timm", fake)
    model = build_model("timm:tiny_net", 5, (1, 6, 6), pretrained=False)
    assert calls == [("tiny_net", {"num_classes": 5, "in_chans": 1, "pretrained": False})]
    assert model(torch.zeros(3, 1, 6, 6)).shape == (3, 5)
    with pytest.raises(ValueError, match="timm 0.0-test has no model 'huge_net'"):
        build_model("timm:huge_net", 5, (1, 6, 6))
    with pytest.raises(ValueError, match=r"needs image inputs \(C, H, W\)"):
        build_model("timm:tiny_net", 5, (6,))


def test_a_scorer_that_needs_features_refuses_a_model_without_them_before_training(
        user_module: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace

    from deep.scores import SCORERS
    from deep.sweep import Setup, plan

    monkeypatch.setitem(SCORERS, "featured", replace(SCORERS["el2n"], needs_features=True))
    setup = Setup("debug_images", f"{user_module}:conv_head", TrainConfig(epochs=2, batch_size=16, lr=0.1, augment=False))
    assert plan(setup, ["el2n"], [0.5], [0])  # el2n reads no features: the same model is fine
    with pytest.raises(ValueError, match="so the featured scorer cannot"):
        plan(setup, ["featured+drop"], [0.5], [0])

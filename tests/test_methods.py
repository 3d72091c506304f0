"""The method registry: every entry end to end on a tiny split, and each method's weights on scripted cases."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from deep.data import load_dataset
from deep.sweep import Setup, final_task
from deep.methods import METHODS, MethodInput
from deep.models import build_model
from deep.methods.base import weighted_mean
from deep.methods.cdbw import difficulty_weights
from deep.methods.group_dro import dro_update, group_means
from deep.methods.jtt import identification_errors
from deep.methods.subg import balanced_rows
from deep.prune import parse_protocol
from deep.scores import SCORERS
from deep.train import EpochState, TrainConfig

CFG = TrainConfig(epochs=2, batch_size=32, lr=0.05, augment=False)


def method_input(options: dict | None = None, groups: bool = True) -> MethodInput:
    """The debug set's 200 training rows (3 classes, 6 groups) as a kept split, with a method's resolved options."""
    train = load_dataset("debug").train
    return MethodInput(
        train, train.group if groups else train.y, 6 if groups else 3, 3, CFG, 0, torch.device("cpu"), None,
        lambda: build_model("mlp", 3, tuple(train.x.shape[1:])), options or {},
    )


def epoch_state(class_accuracy: list[float]) -> EpochState:
    """What a callback sees after an epoch whose validation recalls were `class_accuracy`."""
    return EpochState(1, torch.nn.Identity(), {"class_accuracy": class_accuracy}, [])


@pytest.mark.parametrize("name", list(METHODS))
def test_every_method_plans_rows_and_a_finite_differentiable_loss(name: str) -> None:
    data = method_input(METHODS[name].resolve(name, {"epochs": 1} if name == "jtt" else {}, CFG.epochs))
    plan = METHODS[name].prepare(data)
    assert plan.rows.ndim == 1 and np.all(np.diff(plan.rows) > 0) and 0 < plan.rows.size <= len(data.train)
    assert plan.rows.max() < len(data.train)
    logits = torch.randn(8, 3, requires_grad=True)
    idx = torch.as_tensor(plan.rows[:8])
    loss = (plan.loss_fn or (lambda z, y, i: F.cross_entropy(z, y)))(logits, data.train.y[idx], idx)
    loss.backward()
    assert loss.dim() == 0 and math.isfinite(float(loss.detach())) and torch.isfinite(logits.grad).all()
    for callback in plan.callbacks:
        callback(epoch_state([0.5, 0.8, 1.0]))
    json.dumps(plan.summary())  # goes into metrics.json
    options = METHODS[name].resolve(name, epochs=10)
    assert set(options) == set(METHODS[name].options) and None not in options.values()  # a config holds values
    assert METHODS[name].extra_epochs(options, 10) >= 0


def test_cdbw_weights_are_one_minus_recall() -> None:
    assert difficulty_weights(np.array([0.9, 0.5, np.nan])) == pytest.approx([0.1, 0.5, 1.0])
    assert difficulty_weights(np.array([1.0, 1.0])) == pytest.approx([1.0, 1.0])  # no difficulty: ERM


def test_cdbw_loss_uses_unit_weights_first_then_the_previous_epochs_recalls() -> None:
    plan = METHODS["cdbw"].prepare(method_input())
    logits, y = torch.randn(6, 3), torch.tensor([0, 0, 1, 1, 2, 2])
    idx = torch.arange(6)
    assert plan.loss_fn(logits, y, idx) == pytest.approx(float(F.cross_entropy(logits, y)))
    (update,) = plan.callbacks
    update(epoch_state([0.75, 0.5, 1.0]))  # weights 0.25, 0.5, 0
    per_sample = F.cross_entropy(logits, y, reduction="none")
    expected = (0.25 * per_sample[:2].sum() + 0.5 * per_sample[2:4].sum()) / (2 * 0.25 + 2 * 0.5)
    assert plan.loss_fn(logits, y, idx) == pytest.approx(float(expected))
    # A batch of weight-0 classes only: no gradient rather than 0/0.
    assert float(plan.loss_fn(logits[4:], y[4:], idx[4:])) == 0.0
    assert plan.summary() == {"class_weights": pytest.approx([0.25, 0.5, 0.0])}


def test_weighted_mean_matches_torch_weighted_cross_entropy() -> None:
    logits, y = torch.randn(10, 4), torch.arange(10) % 4
    w = torch.tensor([0.2, 1.0, 3.0, 0.5])
    ours = weighted_mean(F.cross_entropy(logits, y, reduction="none"), w[y])
    assert float(ours) == pytest.approx(float(F.cross_entropy(logits, y, weight=w)))


def test_group_dro_scripted_batches() -> None:
    """Two batches by hand: group means, q_g <- q_g exp(eta l_g) / Z, loss = sum_g q_g l_g."""
    eta = 0.5
    data = method_input({"step": eta})
    plan = METHODS["group_dro"].prepare(data)
    groups = data.groups
    rows = torch.tensor([int(torch.nonzero(groups == g)[0]) for g in (0, 0, 3)])  # groups 0, 0, 3 (0 twice: same row)
    logits = torch.zeros(3, 3)
    y = data.train.y[rows]
    losses = F.cross_entropy(logits, y, reduction="none")  # all log 3
    l = torch.zeros(6)
    l[0], l[3] = losses[:2].mean(), losses[2]
    assert torch.allclose(group_means(losses, groups[rows], 6), l)
    q = torch.full((6,), 1 / 6)
    for _ in range(2):
        q = q * torch.exp(eta * l)
        q = q / q.sum()
        assert float(plan.loss_fn(logits, y, rows)) == pytest.approx(float((q * l).sum()), rel=1e-6)
    assert plan.summary()["group_weights"] == pytest.approx(q.tolist(), rel=1e-6)
    assert q[0] > q[1] and q[1] == pytest.approx(q[2])  # absent groups keep equal, shrinking weights


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0, 5), min_size=2, max_size=6), st.floats(0, 2))
def test_dro_update_is_the_normalised_exponentiated_gradient(losses: list[float], eta: float) -> None:
    q0 = torch.softmax(torch.arange(len(losses), dtype=torch.float64), 0)
    loss = torch.tensor(losses, dtype=torch.float64)
    q = dro_update(q0, loss, eta)
    expected = q0 * torch.exp(eta * loss)
    assert torch.allclose(q, expected / expected.sum()) and float(q.sum()) == pytest.approx(1.0)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=1, max_size=60), st.integers(0, 2**16))
def test_subg_cuts_every_present_group_to_the_smallest(groups: list[int], seed: int) -> None:
    g = np.array(groups)
    rows = balanced_rows(g, np.random.default_rng(seed))
    sizes = np.bincount(g)
    kept = np.bincount(g[rows], minlength=sizes.size)
    assert np.all(kept == np.where(sizes > 0, sizes[sizes > 0].min(), 0))
    assert np.all(np.diff(rows) > 0)


def test_subg_uses_classes_without_groups() -> None:
    data = method_input(groups=False)
    rows = METHODS["subg"].prepare(data).rows
    assert np.bincount(data.train.y.numpy()[rows]).tolist() == [66, 66, 66]  # debug: 67, 67, 66 rows per class


def test_jtt_upweights_exactly_the_identification_errors() -> None:
    # A tiny learning rate, so that one identification epoch leaves some errors on this easy set.
    data = replace(method_input({"upweight": 7.0, "epochs": 1}), cfg=replace(CFG, lr=1e-3))
    errors = identification_errors(data)
    assert 0 < int(errors.sum()) < len(errors)
    plan = METHODS["jtt"].prepare(data)
    assert plan.summary() == {"identification_epochs": 1, "errors": int(errors.sum())}
    idx = torch.arange(len(data.train))
    logits = torch.randn(len(idx), 3)
    per_sample = F.cross_entropy(logits, data.train.y, reduction="none")
    w = torch.where(errors, 7.0, 1.0)
    assert float(plan.loss_fn(logits, data.train.y, idx)) == pytest.approx(float((w * per_sample).sum() / w.sum()))


@pytest.mark.parametrize("name, options, message", [
    ("group_dro", {"step": 0}, "group_dro.step must be > 0"),
    ("jtt", {"upweight": 0.5}, "jtt.upweight must be at least 1"),
    ("jtt", {"epochs": 0}, "jtt.epochs must be at least 1"), ("jtt", {"epochs": "two"}, "must be an integer"),
    ("jtt", {"steps": 3}, "method 'jtt' has no option 'steps'; its options: upweight, epochs"),
])
def test_bad_method_options_are_refused(name: str, options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        METHODS[name].resolve(name, options)


def test_jtt_declares_its_identification_epochs() -> None:
    jtt = METHODS["jtt"]
    assert jtt.resolve("jtt") == {"upweight": 100.0, "epochs": None}  # derived from the schedule it is given
    assert jtt.extra_epochs(jtt.resolve("jtt", epochs=300), 300) == 60
    assert jtt.extra_epochs(jtt.resolve("jtt", {"epochs": 7}, 300), 300) == 7
    assert METHODS["erm"].extra_epochs({}, 300) == 0


def test_method_and_its_options_enter_the_run_config() -> None:
    base = Setup("debug", "mlp", CFG)
    protocol = parse_protocol("random", frozenset(SCORERS))

    def config(setup: Setup) -> dict:
        return final_task(setup, protocol, 0.5, 0).config

    assert config(base)["method"] == "erm" and config(base)["method_options"] == {}
    dro = replace(base, method="group_dro", method_options={"step": 0.1})
    assert config(dro)["method_options"] == {"step": 0.1}
    assert config(replace(dro, method_options={"step": 0.2})) != config(dro)
    # Defaults are recorded: giving the default value names the same run.
    assert config(replace(base, method="group_dro")) == config(replace(dro, method_options={"step": 0.01}))
    # JTT's derived T is recorded as a value: a fifth of this run's 3-epoch schedule (2 epochs at density 0.5).
    assert config(replace(base, method="jtt"))["method_options"] == {"upweight": 100.0, "epochs": 1}
    with pytest.raises(ValueError, match="method 'erm' has no option 'upweight'"):
        replace(base, method_options={"upweight": 3})
    assert config(replace(base, quota_unit="group"))["quota_unit"] == "group"
    with pytest.raises(ValueError, match="unknown method"):
        replace(base, method="dro")
    with pytest.raises(ValueError, match="unknown quota unit"):
        replace(base, quota_unit="classes")

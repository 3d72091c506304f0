"""Model selection (--select) and the Waterbirds baselines as their references run them (group_dro, JTT)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from deep.methods.group_dro import balanced_sampler
from deep.methods.jtt import upsampled_rows
from deep.model_selection import selected_epoch

HISTORY = [  # a hand-made history: accuracy peaks at epoch 4, worst-group accuracy first peaks at epoch 2
    {"epoch": 1, "val_accuracy": 0.70, "val_worst_group_accuracy": 0.20},
    {"epoch": 2, "val_accuracy": 0.80, "val_worst_group_accuracy": 0.55},
    {"epoch": 3, "val_accuracy": 0.85, "val_worst_group_accuracy": 0.40},
    {"epoch": 4, "val_accuracy": 0.90, "val_worst_group_accuracy": 0.55},
    {"epoch": 5, "val_accuracy": 0.88, "val_worst_group_accuracy": 0.30},
]


def test_selected_epoch_of_a_hand_made_history() -> None:
    assert selected_epoch(HISTORY, "last") == 5
    assert selected_epoch(HISTORY, "val_accuracy") == 4
    assert selected_epoch(HISTORY, "val_worst_group") == 2  # tied with epoch 4: the first
    with pytest.raises(ValueError, match="val_worst_group_accuracy"):
        selected_epoch([{"epoch": 1, "val_accuracy": 0.5}], "val_worst_group")


def test_the_trainer_ends_with_the_selected_epochs_weights() -> None:
    from deep.data.base import Split
    from deep.train import TrainConfig, train

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(60, 4, generator=gen)
    y = (x[:, 0] > 0).long()
    split = Split(x[:40], y[:40])
    val = Split(x[40:], torch.randint(0, 2, (20,), generator=gen))  # noisy labels: accuracy goes up and down
    seen: dict[int, torch.Tensor] = {}

    def record(state) -> None:
        seen[state.epoch] = state.model.weight.detach().clone()

    model = torch.nn.Linear(4, 2)
    result = train(model, split, TrainConfig(epochs=6, batch_size=8, lr=0.5, weight_decay=0.0), seed=0, val=val,
                   callbacks=[record], progress=False, select="val_accuracy")
    assert result.selected_epoch == selected_epoch(result.history, "val_accuracy")
    assert torch.equal(model.weight, seen[result.selected_epoch])
    last = train(torch.nn.Linear(4, 2), split, TrainConfig(epochs=2, batch_size=8, lr=0.5), seed=0, progress=False)
    assert last.selected_epoch == 2
    with pytest.raises(ValueError, match="needs a validation split"):
        train(torch.nn.Linear(4, 2), split, TrainConfig(epochs=1, batch_size=8, lr=0.5), seed=0, select="val_accuracy")


def test_a_resumed_training_keeps_the_selected_weights_of_before_the_stop(tmp_path) -> None:
    from deep.checkpoint import Checkpointing
    from deep.data.base import Split
    from deep.train import TrainConfig, train

    gen = torch.Generator().manual_seed(1)
    x = torch.randn(60, 4, generator=gen)
    split, val = Split(x[:40], (x[:40, 0] > 0).long()), Split(x[40:], torch.randint(0, 2, (20,), generator=gen))
    cfg = TrainConfig(epochs=6, batch_size=8, lr=0.5, weight_decay=0.0)
    torch.manual_seed(0)
    whole = torch.nn.Linear(4, 2)
    expected = train(whole, split, cfg, seed=0, val=val, progress=False, select="val_accuracy")

    class Stop(Exception):
        pass

    def stop_at_4(state) -> None:
        if state.epoch == 4:
            raise Stop

    checkpoint = Checkpointing(tmp_path / "ckpt.pt", every=1)
    torch.manual_seed(0)  # the same init as `whole`
    with pytest.raises(Stop):
        train(torch.nn.Linear(4, 2), split, cfg, seed=0, val=val, progress=False, select="val_accuracy",
              callbacks=[stop_at_4], checkpoint=checkpoint)
    resumed = torch.nn.Linear(4, 2)
    result = train(resumed, split, cfg, seed=0, val=val, progress=False, select="val_accuracy",
                   checkpoint=checkpoint, resume=checkpoint.load())
    assert expected.selected_epoch < 4  # selected before the stop: the checkpoint carried its weights
    assert result.resumed_from_epochs == [3] and result.selected_epoch == expected.selected_epoch
    assert torch.equal(resumed.weight, whole.weight)


def test_jtt_repeats_each_error_lambda_more_times() -> None:
    rows = upsampled_rows(torch.tensor([False, True, False, True]), 3)
    np.testing.assert_array_equal(np.bincount(rows), [1, 4, 1, 4])
    assert rows.size == 4 + 2 * 3  # a longer epoch: N + lambda * errors


def test_group_balanced_sampling_draws_every_group_equally_often() -> None:
    groups = torch.tensor([0] * 900 + [1] * 90 + [2] * 10)
    draws = torch.cat([balanced_sampler(groups, 3)(torch.Generator().manual_seed(s)) for s in range(20)])
    assert draws.numel() == 20 * 1000
    shares = torch.bincount(groups[draws], minlength=3).double() / draws.numel()
    assert torch.allclose(shares, torch.full((3,), 1 / 3, dtype=torch.float64), atol=0.02)


def test_method_reference_settings(tmp_path) -> None:
    from deep.cli import _setup, build_parser

    def setup(*extra: str):
        return _setup(build_parser().parse_args(["sweep", "--out", str(tmp_path), "--pretrained", "none", *extra]))

    jtt = setup("--dataset", "waterbirds", "--method", "jtt")
    assert (jtt.train.lr, jtt.train.weight_decay) == (1e-5, 1.0) and jtt.method_options_for(300)["upweight"] == 100
    assert setup("--dataset", "waterbirds", "--method", "jtt", "--lr", "0.01").train.lr == 0.01  # a flag wins
    assert setup("--dataset", "waterbirds", "--method", "erm").train.lr == 1e-3
    assert setup("--dataset", "waterbirds", "--method", "group_dro").method_options_for(300)["sampling"] == "balanced"
    assert setup("--dataset", "waterbirds", "--method", "group_dro", "--group-sampling", "uniform"
                 ).method_options_for(300)["sampling"] == "uniform"


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_a_run_reports_the_epoch_it_selects(tmp_path) -> None:
    from deep.cli import main

    root = tmp_path / "runs"
    assert main(["train", "--dataset", "spurious_digits", "--model", "mlp", "--epochs", "4", "--method", "group_dro",
                 "--select", "val_worst_group", "--no-progress", "--out", str(root)]) == 0
    (run,) = [p.parent for p in root.rglob("metrics.json") if (p.parent / "history.csv").exists()
              and json.loads((p.parent / "config.json").read_text())["kind"] == "final"]
    metrics, config = json.loads((run / "metrics.json").read_text()), json.loads((run / "config.json").read_text())
    import csv

    history = [{k: (float(v) if k != "epoch" else int(v)) for k, v in row.items()
                if k in ("epoch", "val_accuracy", "val_worst_group_accuracy")}
               for row in csv.DictReader((run / "history.csv").open())]
    assert config["select"] == "val_worst_group"
    assert metrics["selected_epoch"] == selected_epoch(history, "val_worst_group")

"""Plugins: a package that is only a folder on the path, with a `*.dist-info` naming its entry points, adds a scorer
(the README's `margin`, executed as written), a tabular dataset with per-feature normalisation (`wine`), a method
with an option (`focal`, `gamma`), a model and a report figure; each is one file and one entry-point line, and a
sweep and a report use them all. Nothing is installed."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from deep.plugins import add_plugins
from deep.scores import SCORERS

ROOT = Path(__file__).resolve().parents[1]

WINE = '''"""wine: scikit-learn's wine data, 13 features on scales from 0.1 to 1,000, normalised per feature."""
import numpy as np
import torch

from deep.data.base import RawDataset, Split, feature_stats
from deep.data.registry import DatasetEntry
from deep.data.splits import holdout


def load(data, download=False):
    from sklearn.datasets import load_wine

    x, y = load_wine(return_X_y=True)
    train, test = holdout(Split(torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y), ids=np.arange(len(y))))
    mean, std = feature_stats(train.x)
    return RawDataset(train, test, ["0", "1", "2"], mean=mean, std=std, source="sklearn.datasets.load_wine")


DATASET = DatasetEntry(load)
'''

FOCAL = '''"""focal: the focal loss (Lin et al. 2017), each sample's cross-entropy weighted by (1 - p_y) ** gamma."""
import torch

from deep.methods.base import Method, Plan, every_row, sample_losses
from deep.options import Option


def prepare(data):
    gamma = data.options["gamma"]

    def loss(logits, y, idx):
        p = torch.softmax(logits.float(), 1).gather(1, y[:, None])[:, 0]
        return ((1 - p).pow(gamma) * sample_losses(logits, y, data.cfg.label_smoothing)).mean()

    return Plan(every_row(data), loss_fn=loss, summary=lambda: {"gamma": gamma})


METHOD = Method("focal loss", prepare, {"gamma": Option(float, 2.0, "focusing parameter (0: cross-entropy)", minimum=0)})
'''

MODEL = '''"""linear: one linear layer on the flattened input."""
from torch import nn


def linear(num_classes, input_shape):
    size = 1
    for n in input_shape:
        size *= n
    return nn.Sequential(nn.Flatten(), nn.Linear(size, num_classes))
'''

FIGURE = '''"""kept_counts: kept training rows against density, one line per protocol, per experiment."""
import matplotlib.pyplot as plt

from deep.report.panels import FigureInput, each_experiment, save
from deep.report.results import title
from deep.report.stats import write_csv


def draw(report: FigureInput, stem):
    records = [{"protocol": r["protocol"], "density": r["density"], "num_kept": r["num_kept"]} for r in report.rows]
    fig, ax = plt.subplots()
    for protocol in sorted({r["protocol"] for r in records}):
        points = sorted((r["density"], r["num_kept"]) for r in records if r["protocol"] == protocol)
        ax.plot(*zip(*points), marker="o", label=protocol)
    ax.set(title=title(report.experiment), xlabel="density", ylabel="kept rows")
    ax.legend()
    return [save(fig, stem.with_suffix(".png")), write_csv(stem.with_suffix(".csv"), records, list(records[0]))]


FIGURE = each_experiment(draw)
'''

ENTRY_POINTS = {
    "drop_pruning.scorers": "margin = margin:SCORER",
    "drop_pruning.datasets": "wine = wine_plugin:DATASET",
    "drop_pruning.methods": "focal = focal_plugin:METHOD",
    "drop_pruning.models": "linear = linear_plugin:linear",
    "drop_pruning.figures": "kept_counts = kept_counts_plugin:FIGURE",
}


def readme_scorer() -> str:
    """The README's scorer example, as written."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Extending"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def write_distribution(site: Path, entry_points: dict[str, str], modules: dict[str, str]) -> Path:
    """A distribution as an installer would leave it: the modules and a dist-info with METADATA and entry points."""
    site.mkdir(parents=True, exist_ok=True)
    info = site / "drop_pruning_test_plugins-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: drop-pruning-test-plugins\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("".join(f"[{group}]\n{line}\n\n" for group, line in entry_points.items()))
    for name, text in modules.items():
        (site / f"{name}.py").write_text(text)
    return site


@pytest.fixture
def plugins(tmp_path: Path) -> Path:
    return write_distribution(tmp_path / "site", ENTRY_POINTS, {
        "margin": readme_scorer(), "wine_plugin": WINE, "focal_plugin": FOCAL, "linear_plugin": MODEL,
        "kept_counts_plugin": FIGURE,
    })


def test_a_sweep_and_a_report_use_a_plugin_of_every_kind(plugins: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugins), str(ROOT)]), "OMP_NUM_THREADS": "1"}

    def deep(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "deep", *args], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return done.stdout

    deep("sweep", "--dataset", "wine", "--model", "linear", "--method", "focal", "--method-option", "focal.gamma=1.5",
         "--protocols", "full", "margin+drop", "--densities", "0.5", "--seeds", "1", "--epochs", "1",
         "--query-inits", "1", "--launcher", "local", "--no-progress", "--out", "runs")
    deep("report", "runs", "--out", "report")
    configs = [json.loads(p.read_text()) for p in (tmp_path / "runs").rglob("config.json")]
    finals = [c for c in configs if c["kind"] == "final"]
    assert sorted(c["protocol"] for c in finals) == ["full", "margin+drop"]
    assert all(c["method"] == "focal" and c["method_options"] == {"gamma": 1.5} for c in finals)
    assert all(c["model"] == "linear" and c["dataset"]["name"] == "wine" for c in finals)
    assert any(c["kind"] == "scores" and c["scorer"] == "margin" for c in configs)
    kept = (tmp_path / "report" / "kept_counts.csv").read_text().splitlines()
    assert kept[1:] == ["full,1.0,126", "margin+drop,0.5,63"]  # wine: 126 of its 178 rows train
    assert (tmp_path / "report" / "kept_counts.png").stat().st_size > 0


def test_the_readme_scorer_ranks_by_the_logit_margin(plugins: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.test_scores import query

    monkeypatch.syspath_prepend(str(plugins))
    import margin

    logits = torch.tensor([[2.0, 0.5, 0.0], [0.0, 1.0, 3.0]])
    scores = margin.SCORER.score(query([0, 1], logits=logits, num_classes=3))
    np.testing.assert_allclose(scores, [-1.5, 2.0])  # 0.5 - 2 for row 0; 3 - 1 for row 1


def test_a_plugin_taking_a_built_in_name_is_refused_naming_both(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = write_distribution(tmp_path / "site", {"drop_pruning.scorers": "el2n = margin:SCORER"},
                              {"margin": readme_scorer()})
    monkeypatch.syspath_prepend(str(site))
    with pytest.raises(ValueError, match=r"plugin scorer 'el2n' \(margin:SCORER of distribution "
                                         r"drop-pruning-test-plugins\) clashes with the built-in scorer 'el2n' of "
                                         r"deep.scores"):
        add_plugins("scorers", dict(SCORERS))


def test_a_plugin_of_the_wrong_kind_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = write_distribution(tmp_path / "site", {"drop_pruning.methods": "margin = margin:SCORER"},
                              {"margin": readme_scorer()})
    monkeypatch.syspath_prepend(str(site))
    from deep.methods import METHODS

    with pytest.raises(ValueError, match="plugin method 'margin' .* is a Scorer, not Method"):
        add_plugins("methods", dict(METHODS))

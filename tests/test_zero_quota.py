"""No silent deletions: a class or group left without training data warns, is recorded and is marked."""

from __future__ import annotations

import json

import numpy as np
import pytest

from deep.cli import main
from deep.prune import zero_quota_units, zero_quota_warning
from deep.report import write_report
from deep.report.results import load_results
from deep.report.tables import ZERO_QUOTA_MARK, format_summary


def test_zero_quota_units_and_the_warning_line() -> None:
    units = np.repeat(np.arange(4), 10)
    kept = np.r_[0:10, 20:23, 30:40]
    assert zero_quota_units(units, kept, 5) == [1]  # class 4 is empty: nothing to lose
    assert zero_quota_units(units, kept, 5, min_count=5) == [1, 2]
    line = zero_quota_warning("class", [1], np.bincount(units[kept], minlength=4), [0.9, 1.0, 0.5, 0.5], [50] * 4)
    assert "\n" not in line and "class 1 (0 kept, validation recall 1.000 on 50 samples)" in line
    assert "--recall-prior" in line and "--min-count" in line


def test_prune_warns_both_ways(tmp_path, capsys: pytest.CaptureFixture) -> None:
    np.save(tmp_path / "y.npy", np.repeat(np.arange(3), 20))
    np.savetxt(tmp_path / "r.txt", [1.0, 0.5, 0.6])
    base = ["prune", "--labels", str(tmp_path / "y.npy"), "--recalls", str(tmp_path / "r.txt"), "--protocol",
            "random+drop", "--density", "0.5", "--out", str(tmp_path / "k.npy")]
    assert main(base) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "class 0 (0 kept, validation recall 1.000)" in err
    assert main([*base, "--min-count", "2"]) == 0
    assert "warning" not in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_a_run_without_a_class_warns_records_and_is_marked(tmp_path, capsys: pytest.CaptureFixture,
                                                             tiny_store) -> None:
    from deep.data import load_dataset

    y = load_dataset("digits").train.y.numpy()
    np.save(tmp_path / "kept.npy", np.flatnonzero(y != 3))
    root = tmp_path / "runs"
    assert main(["train", "--dataset", "digits", "--model", "mlp", "--epochs", "1", "--kept", str(tmp_path / "kept.npy"),
                 "--no-progress", "--out", str(root)]) == 0
    err = capsys.readouterr().err
    assert "warning: the quotas leave 1 class(es)" in err and "class 3 (0 kept, 27 validation samples)" in err
    (metrics,) = [json.loads(p.read_text()) for p in root.rglob("metrics.json") if "zero_quota_classes" in p.read_text()]
    assert metrics["zero_quota_classes"] == [3]
    assert f"subset {ZERO_QUOTA_MARK}" in format_summary(load_results(root))
    summary = (write_report(root, tmp_path / "report"), (tmp_path / "report" / "summary.md").read_text())[1]
    assert ZERO_QUOTA_MARK in summary and "--min-count" in summary
    # The tiny sweep keeps data of every class: recorded as none, and nothing is marked.
    rows = load_results(tiny_store)
    assert all(row["zero_quota_classes"] == [] for row in rows)
    assert ZERO_QUOTA_MARK not in format_summary(rows)

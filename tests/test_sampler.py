"""deep.sampler.QuotaSampler: keep's rows, shuffled per epoch, sharded across ranks as DistributedSampler does; and
the README's sampler and Hugging Face `datasets` recipes, executed as written."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import DistributedSampler

from deep.prune import keep
from deep.sampler import QuotaSampler

ROOT = Path(__file__).resolve().parents[1]
LABELS = np.random.default_rng(0).integers(0, 5, 203)
RECALLS = np.array([0.9, 0.5, 0.7, 0.95, 0.6])


@settings(max_examples=40, deadline=None)
@given(replicas=st.integers(1, 5), density=st.floats(0.05, 1.0), epoch=st.integers(0, 50), drop_last=st.booleans())
def test_ranks_split_the_kept_rows_as_distributed_sampler_does(replicas: int, density: float, epoch: int,
                                                               drop_last: bool) -> None:
    kept = keep(LABELS, density, "random+drop", recalls=RECALLS, seed=3)
    shards = []
    for rank in range(replicas):
        sampler = QuotaSampler(LABELS, density, "random+drop", recalls=RECALLS, seed=3, num_replicas=replicas,
                               rank=rank, drop_last=drop_last)
        sampler.set_epoch(epoch)
        reference = DistributedSampler(range(kept.size), num_replicas=replicas, rank=rank, seed=3, drop_last=drop_last)
        reference.set_epoch(epoch)
        shards.append(list(sampler))
        assert shards[-1] == kept[list(reference)].tolist() and len(sampler) == len(shards[-1])
    assert len({len(shard) for shard in shards}) == 1  # equal shards
    counts = Counter(i for shard in shards for i in shard)
    if drop_last:
        assert set(counts) <= set(kept.tolist()) and max(counts.values()) == 1
    else:
        assert set(counts) == set(kept.tolist())  # the union is the kept set
        assert sum(n - 1 for n in counts.values()) == -kept.size % replicas  # repeats are only the padding


def test_two_ranks_are_disjoint_and_each_epoch_has_its_own_fixed_order() -> None:
    def shards(epoch: int) -> list[list[int]]:
        out = []
        for rank in (0, 1):
            sampler = QuotaSampler(LABELS, 0.5, "random+drop", recalls=RECALLS, num_replicas=2, rank=rank)
            sampler.set_epoch(epoch)
            out.append(list(sampler))
        return out

    kept = keep(LABELS, 0.5, "random+drop", recalls=RECALLS)
    first = shards(0)
    assert kept.size % 2 == 0 and not set(first[0]) & set(first[1])
    assert sorted(first[0] + first[1]) == kept.tolist()
    assert shards(0) == first  # the same epoch, the same order
    assert shards(1) != first and sorted(sum(shards(1), [])) == kept.tolist()  # another epoch, another order


def test_without_distributed_one_process_gets_every_kept_row_and_bad_ranks_are_refused() -> None:
    sampler = QuotaSampler(LABELS, 0.3, "random")
    assert sorted(sampler) == keep(LABELS, 0.3, "random").tolist() == sampler.kept.tolist()
    with pytest.raises(ValueError, match="rank must lie in"):
        QuotaSampler(LABELS, 0.3, "random", num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="density"):
        QuotaSampler(LABELS, 1.5, "random")


def _readme_block(heading: str) -> str:
    readme = (ROOT / "README.md").read_text()
    return re.search(r"```python\n(.*?)```", readme[readme.index(heading):], re.S).group(1)


def _readme_loop() -> dict:
    namespace: dict = {}
    exec(compile(_readme_block("### Your own training loop"), "README.md", "exec"), namespace)  # noqa: S102
    return namespace


def test_the_readme_sampler_change_runs() -> None:
    namespace = _readme_loop()
    exec(compile(_readme_block("#### A drop-in sampler"), "README.md", "exec"), namespace)  # noqa: S102
    assert sorted(namespace["sampler"]) == namespace["kept"].tolist()


def test_the_readme_hugging_face_recipe_runs() -> None:
    pytest.importorskip("datasets", reason="Hugging Face datasets is not installed (pip install '.[dev]' installs it)")
    namespace = _readme_loop()
    kept = namespace["kept"]
    exec(compile(_readme_block("#### Hugging Face `datasets`"), "README.md", "exec"), namespace)  # noqa: S102
    pruned = namespace["hf_pruned"]
    assert namespace["kept"].tolist() == kept.tolist() and len(pruned) == kept.size
    assert pruned["label"] == namespace["labels"][kept].tolist()

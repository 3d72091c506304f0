"""One experiment grid: query stages, pruning, final training and evaluation, stored run by run.

A final run is identified by the hash of its full config (dataset, model, protocol, density, seed, method and
the method options it reads, quota unit, training schedule and the query stages that fed it); it is skipped
when already finished, so a killed sweep resumes where it stopped. Quotas are taken over classes or, with
quota unit "group", over the dataset's groups (Waterbirds: 2 y + place) from per-group validation accuracy.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from deep.data import load_dataset
from deep.data.base import Dataset
from deep.methods import METHODS, MethodInput, MethodOptions
from deep.metrics import classification_metrics
from deep.models import build_model
from deep.prune import QUOTA_UNITS, Protocol, parse_protocol, select, smoothed_recalls
from deep.query import QueryResult, query_train_config, run_query
from deep.runs import RunStore
from deep.scores import SCORERS
from deep.train import TrainConfig, predict, train


@dataclass(frozen=True)
class Setup:
    """Everything shared by the runs of one sweep except protocol, density and seed."""

    dataset: str
    model: str
    train: TrainConfig
    data: str | None = None
    imbalance: float | None = None
    split_seed: int = 0
    download: bool = False
    query_inits: int = 2
    query_epochs: dict[str, int] = field(default_factory=dict)  # per-scorer override of the query length
    recall_epochs: int | None = None  # query length for DRoP's recalls; None = the full schedule
    min_count: int = 0
    recall_prior: float = 1.0  # Beta pseudo-count smoothing DRoP's validation recalls; 0 = raw recalls
    device: str | None = None
    method: str = "erm"  # a key of deep.methods.METHODS
    quota_unit: str = "class"  # what DRoP and StrategyQ allocate over: "class" or "group"
    method_options: MethodOptions = MethodOptions()

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}: choose one of {', '.join(METHODS)}")
        if not (np.isfinite(self.recall_prior) and self.recall_prior >= 0):
            raise ValueError(f"--recall-prior must be a finite number >= 0, got {self.recall_prior}")
        if self.quota_unit not in QUOTA_UNITS:
            raise ValueError(f"unknown quota unit {self.quota_unit!r}: choose one of {', '.join(QUOTA_UNITS)}")

    def dataset_key(self) -> dict:
        """What identifies the data (not where the download flag came from)."""
        return {"name": self.dataset, "data": self.data, "imbalance": self.imbalance, "split_seed": self.split_seed}

    def torch_device(self) -> torch.device:
        """The device to train on: the one asked for, else CUDA when available, else CPU."""
        return torch.device(self.device or ("cuda" if torch.cuda.is_available() else "cpu"))

    def epochs_for(self, scorer: str | None) -> int:
        """Query length for a scorer's scores, or (scorer None) for DRoP's validation recalls."""
        if scorer is None:
            return self.train.epochs if self.recall_epochs is None else self.recall_epochs
        if scorer in self.query_epochs:
            return self.query_epochs[scorer]
        # A default length never falls below what the scorer needs, even on a short schedule; only an
        # explicit --query-epochs override can be too short (and is then refused by `check`).
        scorer_ = SCORERS[scorer]
        return max(scorer_.min_epochs, int(round(scorer_.epoch_fraction * self.train.epochs)))


@lru_cache(maxsize=4)
def _load(name: str, data: str | None, imbalance: float | None, split_seed: int, download: bool) -> Dataset:
    return load_dataset(name, data, seed=split_seed, imbalance=imbalance, download=download)


def load(setup: Setup) -> Dataset:
    """The sweep's dataset, loaded once per process."""
    return _load(setup.dataset, setup.data, setup.imbalance, setup.split_seed, setup.download)


def check(setup: Setup, protocols: list[str], densities: list[float]) -> list[Protocol]:
    """Validate a grid before any training: protocol names, densities, query lengths, groups for group quotas."""
    parsed = [parse_protocol(name, frozenset(SCORERS)) for name in protocols]
    if setup.train.epochs < 1:
        raise ValueError(f"--epochs must be >= 1 for the final models, got {setup.train.epochs}")
    for d in densities:
        if not (0.0 < d <= 1.0):
            raise ValueError(f"--densities must lie in (0, 1], got {d}")
    for p in parsed:
        if p.scorer is not None:
            epochs, need = setup.epochs_for(p.scorer), SCORERS[p.scorer].min_epochs
            if epochs < need:
                raise ValueError(
                    f"scorer {p.scorer!r} needs training dynamics over at least {need} query epochs, got {epochs}: "
                    f"raise --query-epochs {p.scorer}=N or --epochs"
                )
        if p.needs_recalls and setup.epochs_for(None) < 1:
            raise ValueError("DRoP needs validation recalls from at least 1 query epoch: raise --recall-epochs")
    if setup.quota_unit == "group" and load(setup).num_groups == 0:
        raise ValueError(f"--quota-unit group needs a dataset with groups, and {setup.dataset!r} has none: "
                         "use --quota-unit class, or a dataset with group ids (waterbirds, spurious_digits, "
                         "an npz with a `group` array)")
    return parsed


def final_config(setup: Setup, protocol: Protocol, density: float, seed: int, queries: dict[str, str | None]) -> dict:
    """The full config of one final run (what its directory name is the hash of)."""
    d = protocol.density(density)
    return {
        "kind": "final",
        "dataset": setup.dataset_key(),
        "model": setup.model,
        "protocol": protocol.name,
        "scorer": protocol.scorer,
        "density": d,
        "seed": seed,
        "method": setup.method,
        "method_options": METHODS[setup.method].config(setup.method_options),
        "quota_unit": setup.quota_unit,
        "min_count": setup.min_count,
        "recall_prior": setup.recall_prior if protocol.needs_recalls else None,
        "train": asdict(setup.train.scaled_for_density(d)),
        "query": queries,
    }


def _query(setup: Setup, root: str, dataset: Dataset, seed: int, scorers: list[str], epochs: int) -> QueryResult:
    cfg = query_train_config(setup.train, epochs)
    return run_query(
        root, dataset, setup.dataset_key(), setup.model, seed, setup.query_inits, cfg, scorers, setup.torch_device()
    )


def queries_for(setup: Setup, root: str, protocols: list[Protocol], seed: int) -> dict[tuple[str, str | None], QueryResult]:
    """Run (or reuse) every query stage the protocols need for one seed, sharing trainings of equal length."""
    needs: dict[int, set[str]] = {}
    for p in protocols:
        if p.scorer is not None:
            needs.setdefault(setup.epochs_for(p.scorer), set()).add(p.scorer)
        if p.needs_recalls:
            needs.setdefault(setup.epochs_for(None), set())
    dataset = load(setup) if needs else None
    results = {epochs: _query(setup, root, dataset, seed, sorted(names), epochs) for epochs, names in needs.items()}
    found: dict[tuple[str, str | None], QueryResult] = {}
    for p in protocols:
        if p.scorer is not None:
            found[("scores", p.scorer)] = results[setup.epochs_for(p.scorer)]
        if p.needs_recalls:
            found[("recalls", None)] = results[setup.epochs_for(None)]
    return found


def _quota_units(
    setup: Setup, dataset: Dataset, recalls_q: QueryResult | None
) -> tuple[np.ndarray, int, np.ndarray | None, np.ndarray]:
    """The units quotas are taken over (class or group id per training sample), their number, their raw validation
    recalls and their validation sizes."""
    if setup.quota_unit == "class":
        recalls = None if recalls_q is None else recalls_q.recalls
        return dataset.train.y.numpy(), dataset.num_classes, recalls, dataset.val.y.numpy()
    if recalls_q is not None and recalls_q.group_recalls is None:
        raise ValueError(f"the query stage {recalls_q.key} holds no per-group validation accuracy (made before group "
                         "quotas existed): delete that folder under _query/ and run again")
    recalls = None if recalls_q is None else recalls_q.group_recalls
    return dataset.train.group.numpy(), dataset.num_groups, recalls, dataset.val.group.numpy()


def _counts(labels: np.ndarray, kept: np.ndarray, num: int, name: str) -> dict:
    """Sizes, kept counts and kept densities per class or group, as metrics."""
    sizes = np.bincount(labels, minlength=num)
    counts = np.bincount(labels[kept], minlength=num)
    return {f"{name}_sizes": sizes.tolist(), f"{name}_counts": counts.tolist(),
            f"{name}_density": (counts / np.maximum(sizes, 1)).tolist()}


def run_final(
    setup: Setup, root: str, protocol: Protocol, density: float, seed: int, queries: dict, progress: bool = False
) -> Path:
    """Prune, train from scratch on the kept samples with the setup's method, evaluate, store; returns its folder."""
    scores_q = queries.get(("scores", protocol.scorer)) if protocol.scorer else None
    recalls_q = queries.get(("recalls", None)) if protocol.needs_recalls else None
    refs = {"scores": scores_q and scores_q.key, "recalls": recalls_q and recalls_q.key}
    config = final_config(setup, protocol, density, seed, refs)
    store = RunStore(root)
    claim = store.claim(config)
    if claim is None:  # finished, or another live worker owns it
        return store.path(config)
    with claim:
        dataset = load(setup)
        units, num_units, val_recalls, val_units = _quota_units(setup, dataset, recalls_q)
        recalls = None if val_recalls is None else smoothed_recalls(
            val_recalls, np.bincount(val_units, minlength=num_units), setup.recall_prior
        )
        rng = np.random.default_rng([seed, int(config["density"] * 1e6)])
        kept = select(
            protocol, config["density"], units, num_units, rng,
            scores=None if scores_q is None else scores_q.scores[protocol.scorer],
            recalls=recalls, min_count=setup.min_count,
        )
        cfg = TrainConfig(**{**config["train"], "milestones": tuple(config["train"]["milestones"])})
        normalization = dataset.normalization
        kept_split = dataset.train.subset(torch.as_tensor(kept))
        has_groups = dataset.train.group is not None
        start = time.perf_counter()
        # The method plans first (JTT trains its identification model here), so the final init below is the
        # same whatever the method.
        plan = METHODS[setup.method].prepare(MethodInput(
            kept_split, kept_split.group if has_groups else kept_split.y,
            dataset.num_groups if has_groups else dataset.num_classes, dataset.num_classes, cfg, seed,
            setup.torch_device(), normalization, setup.model, dataset.input_shape, setup.method_options,
        ))
        torch.manual_seed(seed)
        model = build_model(setup.model, dataset.num_classes, dataset.input_shape)
        result = train(
            model, kept_split.subset(torch.as_tensor(plan.rows)), cfg, seed=seed, device=setup.torch_device(),
            normalization=normalization, val=dataset.val, callbacks=plan.callbacks, loss_fn=plan.loss_fn,
            progress=progress,
        )
        seconds = time.perf_counter() - start
        metrics = evaluate(model, dataset, setup.torch_device())
        labels = dataset.train.y.numpy()
        metrics.update(
            val_accuracy=float(result.best_val_accuracy) if result.best_val_accuracy is not None else None,
            num_train=int(labels.size),
            num_kept=int(kept.size),
            num_trained=int(plan.rows.size),
            **_counts(labels, kept, dataset.num_classes, "class"),
            **(_counts(dataset.train.group.numpy(), kept, dataset.num_groups, "group") if has_groups else {}),
            recalls=None if recalls is None else recalls.tolist(),  # what DRoP's counts were made from
            val_recalls=None if val_recalls is None else np.asarray(val_recalls).tolist(),  # before smoothing
            method_summary=plan.summary(),
            train_seconds=seconds,
            epochs=cfg.epochs,
        )
        # "trained" only where the method subsamples the kept set (subg); otherwise it equals "kept".
        trained = {} if plan.rows.size == kept.size else {"trained": kept[plan.rows]}
        return store.finish(config, metrics, {"kept": kept, **trained})


def evaluate(model: torch.nn.Module, dataset: Dataset, device: torch.device) -> dict:
    """Test-set metrics of a trained model (group metrics weighted by the full training set's group sizes)."""
    normalization = dataset.normalization
    test = dataset.test
    pred = predict(model, test.x, normalization=normalization, device=device).argmax(1)
    train_groups = None
    if test.group is not None and dataset.train.group is not None:
        train_groups = np.bincount(dataset.train.group.numpy(), minlength=dataset.num_groups)
    return classification_metrics(
        test.y, pred, dataset.num_classes, group=test.group,
        num_groups=dataset.num_groups or None, train_group_counts=train_groups,
    )

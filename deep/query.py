"""The query stage: train query models on the full data, record scores and validation recalls, cache both.

A query stage is `inits` models trained on the full training set for `epochs` epochs of the final schedule's
optimiser (learning rate, milestones and all, truncated at `epochs`). Every requested scorer records along
the way; the per-class validation recall (and, on data with groups, the per-group validation accuracy that
group quotas use) is taken at each model's epoch of best validation accuracy. Both are
averaged over the inits and cached in the run store under `_query/<hash of the query config>/`, so any later
sweep that needs the same query (or a subset of its scorers) reuses it without training.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch

from deep.data.base import Dataset
from deep.models import build_model
from deep.runs import CorruptRunError, RunStore, as_stored
from deep.scores import SCORERS
from deep.scores.base import ScoreContext
from deep.train import TrainConfig, train

QUERY_DIR = "_query"
POLL_S = 1.0  # how often a worker waiting on another worker's run looks at the store again


@dataclass(frozen=True)
class QueryResult:
    """Averaged query outputs: scores per scorer (higher = harder) and per-class validation recall."""

    scores: dict[str, np.ndarray]
    recalls: np.ndarray
    config: dict
    key: str  # hash of the config that produced it: final runs record it
    group_recalls: np.ndarray | None = None  # per-group validation accuracy (datasets with groups), same epoch


def query_config(dataset_key: dict, model: str, seed: int, inits: int, cfg: TrainConfig, scorers: list[str]) -> dict:
    """The config a query stage is cached under (its scorers sorted; `cfg.epochs` is the query length).

    Returned as it reads back from config.json (tuples become lists), so it compares equal to stored configs.
    """
    return as_stored({
        "kind": "query",
        "dataset": dataset_key,
        "model": model,
        "seed": seed,
        "inits": inits,
        "train": asdict(cfg),
        "scorers": sorted(scorers),
        "scorer_params": {},
    })


def _cached(store: RunStore, config: dict) -> QueryResult | None:
    """A finished query with the same settings whose scorers include the requested ones."""
    wanted = set(config["scorers"])
    base = {k: v for k, v in config.items() if k != "scorers"}
    for run in store.runs():
        if {k: v for k, v in run.config.items() if k != "scorers"} != base or not wanted <= set(run.config["scorers"]):
            continue
        try:
            scores = {name: run.array(f"scores_{name}") for name in run.config["scorers"]}
            recalls = run.array("recalls")
            group_recalls = run.array("group_recalls") if (run.path / "group_recalls.npy").exists() else None
        except (CorruptRunError, FileNotFoundError, ValueError):
            store.invalidate(run.config)  # never silently use a damaged cache entry: recompute it
            continue
        return QueryResult(scores, recalls, run.config, run.path.name, group_recalls)
    return None


def run_query(
    root: str,
    dataset: Dataset,
    dataset_key: dict,
    model: str,
    seed: int,
    inits: int,
    cfg: TrainConfig,
    scorers: list[str],
    device: torch.device,
    progress: bool = False,
) -> QueryResult:
    """Scores and validation recalls from `inits` query models, computed once and cached under `root`."""
    store = RunStore(f"{root}/{QUERY_DIR}")
    config = query_config(dataset_key, model, seed, inits, cfg, scorers)
    while (cached := _cached(store, config)) is None:
        claim = store.claim(config)
        if claim is not None:
            with claim:
                return _compute(store, config, dataset, model, seed, inits, cfg, device, progress)
        # Another live worker is training this very stage: wait for its result (or take over if it dies).
        time.sleep(POLL_S)
    return cached


def _compute(
    store: RunStore, config: dict, dataset: Dataset, model: str, seed: int, inits: int, cfg: TrainConfig,
    device: torch.device, progress: bool,
) -> QueryResult:
    """Train the query models of a claimed query stage and store their averaged scores and recalls."""
    normalization = dataset.normalization
    per_init: dict[str, list[np.ndarray]] = {name: [] for name in config["scorers"]}
    recalls, group_recalls = [], []
    for init in range(inits):
        init_seed = seed * 1000 + init
        context = ScoreContext(dataset.train, cfg.epochs, dataset.num_classes, normalization, device, init_seed, {})
        recorders = {name: SCORERS[name].make(context) for name in config["scorers"]}
        torch.manual_seed(init_seed)
        net = build_model(model, dataset.num_classes, dataset.input_shape)
        if cfg.epochs > 0:
            result = train(
                net, dataset.train, cfg, seed=init_seed, device=device, normalization=normalization,
                val=dataset.val, callbacks=list(recorders.values()), progress=progress,
            )
            recalls.append(np.asarray(result.best_val_class_recall, dtype=np.float64))
            if dataset.val.group is not None:
                best = next(r for r in result.history if r["epoch"] == result.best_epoch)
                group_recalls.append(np.asarray(best["val_group_accuracy"], dtype=np.float64))
        for name, recorder in recorders.items():
            per_init[name].append(np.asarray(recorder.result(), dtype=np.float64))
    scores = {name: np.mean(values, axis=0) for name, values in per_init.items()}
    mean_recalls = np.mean(recalls, axis=0) if recalls else np.full(dataset.num_classes, np.nan)
    mean_groups = np.mean(group_recalls, axis=0) if group_recalls else None
    arrays = {"recalls": mean_recalls, **{f"scores_{name}": value for name, value in scores.items()}}
    if mean_groups is not None:
        arrays["group_recalls"] = mean_groups
    path = store.finish(config, {"recalls": mean_recalls.tolist(), "inits": inits, "epochs": cfg.epochs}, arrays)
    return QueryResult(scores, mean_recalls, config, path.name, mean_groups)


def query_train_config(cfg: TrainConfig, epochs: int) -> TrainConfig:
    """The final schedule truncated to `epochs` (same optimiser, milestones past the end drop out)."""
    return replace(cfg, epochs=epochs, milestones=tuple(m for m in cfg.milestones if m < epochs))

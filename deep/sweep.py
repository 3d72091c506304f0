"""The experiment graph of a grid: every task a set of protocols x densities x seeds needs, named before any runs.

For each seed k:
  query trainings   one per (query length, init i), seed SeedSequence(k, "query", i): the final schedule compressed
                    into the query length (LR drops scaled alike), without augmentation, as in the reference code;
                    trainings of equal length are the same task, so they train once whoever needs them
  scores tasks      one per scorer: its score averaged over its query models (EL2N, GraNd: 5 at 10% of the
                    schedule; Forgetting, Dynamic Uncertainty: 1 over the whole schedule; SSP: 1 at 10%)
  recalls tasks     DRoP's validation recalls averaged over query models: with recall source "scorer" (the
                    reference code's) the protocol's own scorer's, for random+drop one model at 10% of the
                    schedule; with "separate", models trained for --recall-epochs (default: the whole schedule)
  final runs        one per (protocol, density): consume the scores and/or recalls task they need
Each config holds only its own settings and the names of the tasks it consumes, so adding protocols, scorers,
densities or seeds to a store never renames, retrains or duplicates a finished task.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from functools import cached_property

import numpy as np

from deep.data import DATASETS, VAL_SPLITS
from deep.methods import METHODS
from deep.final import FinalConfig
from deep.model_selection import SELECT
from deep.prune import QUOTA_UNITS, RECALL_SOURCES, TIES, Protocol, Quotas, density_key, parse_protocol
from deep.reference import REFERENCE_NAMES, SCORER_SETTINGS, SETTINGS
from deep.scores import SCORERS
from deep.selection import DEFAULT_GRID, candidates, check_grid, is_auto, proxy_epochs
from deep.models import build_model, feature_extractor, model_key
from deep.tasks import Task, dataset
from deep.train import TrainConfig
from toy.quotas import ALLOCATIONS, KEPT_RULES, kept_total

DEFAULT_PROTOCOLS = ["full", "random", "el2n", "random+el2nq", "el2n+drop", "random+drop"]
DEFAULT_DENSITIES = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
RECALL_FRACTION = 0.1  # a recall model of its own under source "scorer": 16 of 160 epochs, as the reference code
# recall_model "official": the authors' argparse defaults at HEAD, 16 epochs whatever the schedule, LR drops at
# 50 and 100 never reached (main.py:55,60), one init (main.py:74)
OFFICIAL_RECALL_EPOCHS = 16
RECALL_MODELS = ("compressed", "official")
SCHEDULE_RULES = ("density", "fraction")


def check_reference_settings(setup: Setup) -> None:
    """Each setting the references differ in takes one of its known values (the preset's name as well)."""
    allowed = {"reference": REFERENCE_NAMES, "ties": TIES, "kept_rule": KEPT_RULES,
               "val_split": VAL_SPLITS, "recall_model": RECALL_MODELS, "schedule_rule": SCHEDULE_RULES,
               "select": SELECT}
    for name, values in allowed.items():
        if getattr(setup, name) not in values:
            flag = "--" + name.replace("_", "-")
            raise ValueError(f"{flag} must be one of {', '.join(values)}, got {getattr(setup, name)!r}")


PROTOCOL_WORDS = ("full", "random", "drop", "subset")  # words of protocol names (deep.prune.parse_protocol)


def check_score_name(name: str) -> None:
    """A name for scores given from a file: a new identifier, so that its protocols parse and clash with nothing."""
    if name in SCORERS or name in PROTOCOL_WORDS or not name.isidentifier():
        raise ValueError(f"--scores {name}=FILE: the name must be a new identifier, not one of the scorers "
                         f"{sorted(SCORERS)} nor a word of protocol names {list(PROTOCOL_WORDS)}")


@dataclass(frozen=True)
class Setup:
    """Everything that identifies the tasks of one sweep except protocol, density and seed."""

    dataset: str
    model: str  # a registry name, package.module:function or timm:<name>
    train: TrainConfig
    weights: str | None = None  # pretrained weights, as deep.models.pretrained.weights_id names them
    data: str | None = None
    data_options: dict = field(default_factory=dict)  # the dataset's declared options (e.g. mnist1d's samples)
    imbalance: float | None = None
    split_seed: int = 0
    query_inits: int | None = None  # query models per scorer; None = each scorer's own (Scorer.inits)
    query_epochs: dict[str, int] = field(default_factory=dict)  # per-scorer override of the query length
    query_augment: bool = False  # augment query trainings (the reference code does not)
    # "scorer": DRoP's recalls from the protocol's query models; "separate": their own. None: the dataset's default.
    recall_source: str | None = None
    recall_epochs: int | None = None  # length of recall models that are not a scorer's (see recall_recipe)
    min_count: int = Quotas.min_count
    recall_prior: float | str | None = None  # Beta pseudo-count smoothing DRoP's recalls; None: the dataset's default
    quota_exponent: float | str = Quotas.exponent  # DRoP: density (or count) proportional to error ** it; or "auto"
    exponent_grid: tuple[float, ...] = DEFAULT_GRID  # the exponents "auto" chooses from
    allocation: str = Quotas.allocation  # DRoP: "density" (paper's Algorithm 1), "official" (the authors' code) or "count"
    reference: str = "paper"  # the preset the settings below were resolved from (deep.reference), for the record
    ties: str = "random"  # equal scores: "random" (from the seed) or "highest" (index, the authors' code)
    kept_rule: str = "round"  # rows a density keeps: "round" (round(d N)) or "official" (int(N (1 - (1 - d))))
    val_split: str = "random"  # validation half of the test split: "random" (seeded) or "first_half" (file order)
    recall_model: str = "compressed"  # random+drop's own recall model: "compressed" schedule or "official"
    schedule_rule: str = "density"  # pruned trainings' length from d ("density") or from n/N ("fraction")
    select: str = "last"  # the epoch a final run is tested at: "last", "val_accuracy" or "val_worst_group"
    rotation: str = "none"  # "none", "official" (the authors' rotation of this dataset) or degrees; in train.rotation
    method: str = "erm"  # a key of deep.methods.METHODS
    quota_unit: str = "class"  # what DRoP and StrategyQ allocate over: "class" or "group"
    method_options: dict = field(default_factory=dict)  # the method's options given (--method-option), unresolved
    scorer_options: dict[str, dict] = field(default_factory=dict)  # scorer -> {option: value}, from the CLI
    external_scores: dict[str, str] = field(default_factory=dict)  # --scores NAME=FILE: name -> sha256 of the scores

    def __post_init__(self) -> None:
        # The dataset's registry entry owns the defaults that depend on the data (deep.data.registry.Defaults).
        defaults = DATASETS[self.dataset].defaults if self.dataset in DATASETS else None
        for name in ("recall_prior", "recall_source"):
            if getattr(self, name) is None:
                if defaults is None:
                    raise ValueError(f"unknown dataset {self.dataset!r}: choose one of {sorted(DATASETS)}")
                object.__setattr__(self, name, getattr(defaults, name))
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}: choose one of {', '.join(METHODS)}")
        METHODS[self.method].resolve(self.method, self.method_options)
        if not (is_auto(self.recall_prior) or (np.isfinite(self.recall_prior) and self.recall_prior >= 0)):
            raise ValueError(f"--recall-prior must be a finite number >= 0 or auto, got {self.recall_prior}")
        if self.quota_unit not in QUOTA_UNITS:
            raise ValueError(f"unknown quota unit {self.quota_unit!r}: choose one of {', '.join(QUOTA_UNITS)}")
        if not (is_auto(self.quota_exponent) or (np.isfinite(self.quota_exponent) and self.quota_exponent > 0)):
            raise ValueError(f"--quota-exponent must be a finite number > 0 or auto, got {self.quota_exponent}")
        object.__setattr__(self, "exponent_grid", check_grid(self.exponent_grid))
        if self.allocation not in ALLOCATIONS:
            raise ValueError(f"--allocation must be one of {', '.join(ALLOCATIONS)}, got {self.allocation!r}")
        check_reference_settings(self)
        if self.query_inits is not None and self.query_inits < 1:
            raise ValueError(f"--query-inits must be >= 1, got {self.query_inits}")
        if self.recall_source not in RECALL_SOURCES:
            raise ValueError(f"--recall-source must be one of {', '.join(RECALL_SOURCES)}, got {self.recall_source!r}")
        for name in self.external_scores:
            check_score_name(name)
        for name, options in self.scorer_options.items():
            if name not in SCORERS:
                raise ValueError(f"--scorer-option names unknown scorer {name!r}: choose from {sorted(SCORERS)}")
            SCORERS[name].resolve(name, options)

    def method_options_for(self, epochs: int) -> dict:
        """Every option of the method for a final schedule of `epochs` epochs, given, default or derived: what a
        final run records."""
        return METHODS[self.method].resolve(self.method, self.method_options, epochs)

    def dataset_key(self) -> dict:
        """What identifies the data (options only for datasets that declare any, so other keys never change)."""
        key = {"name": self.dataset, "data": self.data, "imbalance": self.imbalance, "split_seed": self.split_seed,
               "val_split": self.val_split}
        options = DATASETS[self.dataset].resolve(self.dataset, self.data_options) if self.dataset in DATASETS else {}
        return {**key, "options": options} if options else key

    @cached_property
    def model_key(self) -> dict:
        """The config fields that name the model (its weights and, from outside the registry, its code's hash)."""
        return model_key(self.model, self.weights)

    def epochs_for(self, scorer: str) -> int:
        """Query length of a scorer's query models."""
        if scorer in self.query_epochs:
            return self.query_epochs[scorer]
        # A default length never falls below what the scorer needs, even on a short schedule; only an
        # explicit --query-epochs override can be too short (and is then refused by `check`).
        entry = SCORERS[scorer]
        return max(entry.min_epochs, int(round(entry.epoch_fraction * self.train.epochs)))

    def inits_for(self, scorer: str) -> int:
        """Number of query models a scorer's scores are averaged over."""
        return self.query_inits or SCORERS[scorer].inits

    def recall_recipe(self, scorer: str | None) -> tuple[int, int]:
        """(epochs, inits) of the query models DRoP's recalls come from, for a protocol using `scorer` (or none)."""
        trained = scorer in SCORERS and SCORERS[scorer].epoch_fraction > 0  # not random, not external scores
        if self.recall_source == "scorer" and trained:
            return self.epochs_for(scorer), self.inits_for(scorer)
        # A recall model of its own: the reference code's 16-of-160-epoch model, or the whole schedule ("separate").
        default = self.train.epochs if self.recall_source == "separate" else round(RECALL_FRACTION * self.train.epochs)
        if self.recall_source == "scorer" and self.recall_model == "official":
            default = OFFICIAL_RECALL_EPOCHS
        epochs = self.recall_epochs if self.recall_epochs is not None else max(1, default)
        return epochs, self.query_inits or 1

    @property
    def quotas(self) -> Quotas:
        """DRoP's settings, as deep.prune.keep takes them."""
        return Quotas(allocation=self.allocation, exponent=self.quota_exponent, recall_prior=self.recall_prior,
                      min_count=self.min_count)

    def query_config(self, epochs: int, constant_lr: bool = False) -> TrainConfig:
        """The training of a query model of `epochs` epochs: the final schedule compressed (or at its constant
        initial LR), augmented or not."""
        config = replace(self.train.compressed(epochs), augment=self.query_augment and self.train.augment,
                         rotation=self.train.rotation if self.query_augment else 0.0)
        return replace(config, milestones=()) if constant_lr else config


def query_training(setup: Setup, epochs: int, seed: int, init: int, constant_lr: bool = False) -> Task:
    """One query model of seed `seed`: init `init`, trained on the full data for `epochs` epochs."""
    return Task({
        "kind": "query", "dataset": setup.dataset_key(), **setup.model_key,
        "train": asdict(setup.query_config(epochs, constant_lr)), "seed": seed, "init": init,
    })


def _query_models(setup: Setup, epochs: int, inits: int, seed: int, constant_lr: bool = False) -> tuple[Task, ...]:
    return tuple(query_training(setup, epochs, seed, init, constant_lr) for init in range(inits))


def external_scores_task(setup: Setup, name: str) -> Task:
    """Scores a user gave (--scores NAME=FILE): an input task the command line writes before anything runs."""
    return Task({"kind": "scores", "dataset": setup.dataset_key(), "scorer": name,
                 "external": setup.external_scores[name]})


def subset_task(setup: Setup, rows_sha256: str, count: int) -> Task:
    """Training rows a user gave (train --kept FILE): an input task the command line writes before anything runs."""
    return Task({"kind": "subset", "dataset": setup.dataset_key(), "rows": rows_sha256, "count": count})


def scores_task(setup: Setup, scorer: str, seed: int) -> Task:
    """A scorer's scores for seed `seed`, averaged over its query models (or the user's, for external scores)."""
    if scorer in setup.external_scores:
        return external_scores_task(setup, scorer)
    epochs = setup.epochs_for(scorer)  # 0 (random): scored from the untrained init, no query training
    deps = _query_models(setup, epochs, setup.inits_for(scorer), seed) if epochs > 0 else ()
    options = scorer_options(setup, scorer)
    return Task({"kind": "scores", "dataset": setup.dataset_key(), "scorer": scorer, "options": options,
                 "seed": seed, "queries": [d.key for d in deps]}, deps)


def scorer_options(setup: Setup, scorer: str) -> dict:
    """A scorer's options as its scores task uses them (defaults filled in)."""
    return SCORERS[scorer].resolve(scorer, setup.scorer_options.get(scorer, {}))


def reference_settings(setup: Setup) -> dict:
    """The reference preset a setup was resolved from and the value of every setting it presets (deep.reference)."""
    def value(key: str) -> object:
        if key in SCORER_SETTINGS:
            scorer, option = SCORER_SETTINGS[key]
            return scorer_options(setup, scorer)[option]
        return getattr(setup, key)
    return {"name": setup.reference, **{key: value(key) for key in SETTINGS}}


def recalls_task(setup: Setup, scorer: str | None, seed: int) -> Task:
    """DRoP's validation recalls for seed `seed` and a protocol using `scorer`, averaged over their query models."""
    own = not (scorer in SCORERS and SCORERS[scorer].epoch_fraction > 0)  # random+drop: a recall model of its own
    constant = own and setup.recall_source == "scorer" and setup.recall_model == "official"
    deps = _query_models(setup, *setup.recall_recipe(scorer), seed, constant)
    return Task({"kind": "recalls", "queries": [d.key for d in deps]}, deps)


def final_train(setup: Setup, density: float) -> TrainConfig:
    """A final run's schedule: scaled by the density, or (schedule rule "fraction") by the kept fraction n/N."""
    if setup.schedule_rule == "density":
        return setup.train.scaled_for_density(density)
    total = len(dataset(setup.dataset_key()).train)  # the official rule needs the rows it keeps
    return setup.train.scaled_for_rows(kept_total(density, total, setup.kept_rule), total)


def needs_selection(setup: Setup, protocol: Protocol) -> bool:
    """Whether a protocol's runs choose their quota exponent or recall prior on validation."""
    return protocol.needs_recalls and (is_auto(setup.quota_exponent) or is_auto(setup.recall_prior))


def selection_task(setup: Setup, protocol: Protocol, density: float, seed: int) -> Task:
    """The choice of beta and alpha for a DRoP protocol at one density and seed: short proxies on validation."""
    d = density_key(density)
    scores = scores_task(setup, protocol.scorer, seed) if protocol.needs_scores else None
    recalls = recalls_task(setup, protocol.scorer, seed)
    scaled = final_train(setup, d)
    default = DATASETS[setup.dataset].defaults.recall_prior if setup.dataset in DATASETS else Quotas.recall_prior
    return Task({
        "kind": "selection", "dataset": setup.dataset_key(), **setup.model_key, "protocol": protocol.name,
        "density": d, "seed": seed, "quota_unit": setup.quota_unit, "min_count": setup.min_count,
        "allocation": setup.allocation, "ties": setup.ties, "kept_rule": setup.kept_rule,
        "candidates": [asdict(c) for c in candidates(setup.quota_exponent, setup.recall_prior, setup.exponent_grid)],
        "preferred_prior": default if is_auto(setup.recall_prior) else setup.recall_prior,
        "train": asdict(scaled.compressed(proxy_epochs(scaled.epochs))),
        "scores": scores and scores.key, "recalls": recalls.key,
    }, tuple(t for t in (scores, recalls) if t is not None))


def selection_cost(config: dict) -> float:
    """A selection's proxies in full-data-epoch equivalents: at most one per candidate (fewer where kept sets
    coincide), each its epochs times the density."""
    return len(config["candidates"]) * config["train"]["epochs"] * config["density"]


def final_task(setup: Setup, protocol: Protocol, density: float, seed: int, subset: Task | None = None) -> Task:
    """One final run: the config its directory is named by, and the scores/recalls/selection (or subset) tasks it
    consumes."""
    d = density_key(protocol.density(density))
    scores = scores_task(setup, protocol.scorer, seed) if protocol.needs_scores else None
    recalls = recalls_task(setup, protocol.scorer, seed) if protocol.needs_recalls else None
    selection = selection_task(setup, protocol, d, seed) if needs_selection(setup, protocol) else None
    deps = tuple(t for t in (scores, recalls, selection, subset) if t is not None)
    train = final_train(setup, d)
    config = FinalConfig(
        dataset=setup.dataset_key(), model=setup.model_key, protocol=protocol.name, density=d, seed=seed,
        method=setup.method, method_options=setup.method_options_for(train.epochs),
        quota_unit=setup.quota_unit, train=train, select=setup.select,
        quotas=setup.quotas if protocol.needs_recalls else None,
        recall_source=setup.recall_source if protocol.needs_recalls else None,
        # Only ranked scores can tie; full and subset keep no count of their own.
        ties=setup.ties if protocol.needs_scores else None,
        kept_rule=setup.kept_rule if protocol.kind not in ("full", "subset") else None,
        scorer_options=scores.config.get("options") if scores is not None else None,
        scores=scores and scores.key, recalls=recalls and recalls.key, subset=subset and subset.key,
        selection=selection and selection.key,
    )
    return Task(config.to_dict(), deps)


def check(
    setup: Setup, protocols: list[str], densities: list[float], seeds: list[int], download: bool = False,
    read_data: bool = True,
) -> list[Protocol]:
    """Validate a grid before any training: protocol names, densities, seeds, query lengths, and (`read_data`) the
    dataset itself, with groups for group quotas."""
    parsed = [parse_protocol(name, frozenset(SCORERS) | set(setup.external_scores)) for name in protocols]
    if setup.train.epochs < 1:
        raise ValueError(f"--epochs must be >= 1 for the final models, got {setup.train.epochs}")
    if not seeds or min(seeds) < 0:
        raise ValueError(f"--seeds must name at least one seed >= 0, got {seeds}")
    for d in densities:
        if not (np.isfinite(d) and 0.0 < density_key(d) <= 1.0):
            raise ValueError(f"--densities must lie in (0, 1] (at least 1e-6), got {d}")
    for p in parsed:
        if p.scorer is not None and p.scorer not in setup.external_scores:
            epochs, need = setup.epochs_for(p.scorer), SCORERS[p.scorer].min_epochs
            if epochs < need:
                raise ValueError(
                    f"scorer {p.scorer!r} needs training dynamics over at least {need} query epochs, got {epochs}: "
                    f"raise --query-epochs {p.scorer}=N or --epochs"
                )
        if p.needs_recalls and setup.recall_recipe(p.scorer)[0] < 1:
            raise ValueError("DRoP needs validation recalls from at least 1 query epoch: raise --recall-epochs")
    if not read_data:
        return parsed
    data = dataset(setup.dataset_key(), download)  # loaded (and validated) before anything trains
    for scorer in sorted({p.scorer for p in parsed if p.scorer in SCORERS and SCORERS[p.scorer].needs_features}):
        # Refuse a model without a feature layer before anything trains.
        feature_extractor(build_model(setup.model, data.num_classes, data.input_shape), purpose=f"the {scorer} scorer")
    if setup.select == "val_worst_group" and data.val.group is None:
        raise ValueError(f"--select val_worst_group needs validation groups, and {setup.dataset!r} has none: use "
                         "--select val_accuracy, or a dataset with groups")
    if setup.quota_unit == "group" and any(p.uses_quotas for p in parsed):
        if data.num_groups == 0:
            raise ValueError(f"--quota-unit group needs a dataset with groups, and {setup.dataset!r} has none: "
                             "use --quota-unit class, or a dataset with group ids (waterbirds, spurious_digits, "
                             "an npz with a `group` array)")
    return parsed


def plan(
    setup: Setup, protocols: list[str], densities: list[float], seeds: list[int], download: bool = False,
    read_data: bool = True,
) -> list[Task]:
    """The final runs of the grid (`full` once per seed), validated before anything trains; each carries its inputs."""
    parsed = check(setup, protocols, densities, seeds, download, read_data)
    finals = {}
    for seed in seeds:
        for p in parsed:
            for d in [1.0] if p.is_full else densities:
                task = final_task(setup, p, d, seed)
                finals.setdefault(task.key, task)
    return list(finals.values())

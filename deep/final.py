"""A final run's config, typed: written by deep.sweep.final_task, read by deep.experiment, deep.report and the cost
of `sweep --dry-run`.

`FinalConfig.to_dict()` is what the run's directory is named by (its hash). Every setting is stored resolved; those
that mean nothing for the run's protocol (DRoP's settings for a protocol without DRoP's quotas, scorer options
without a scorer, inputs it does not consume) are left out, so that adding them to a grid renames no run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from deep.prune import Protocol, Quotas, parse_protocol
from deep.schedule import TrainConfig

KIND = "final"
MODEL_FIELDS = ("model", "weights", "model_source")  # deep.models.model_key's fields, stored at the top level
# DRoP's settings (deep.prune.Quotas) under the names the config, the CLI and the report give them.
QUOTA_FIELDS = {"allocation": "allocation", "exponent": "quota_exponent", "recall_prior": "recall_prior",
                "min_count": "min_count"}
INPUT_FIELDS = ("scores", "recalls", "subset", "selection")  # the names (hashes) of the tasks a final run consumes


@dataclass(frozen=True)
class FinalConfig:
    """Everything a final run does follows from this: what it prunes, trains and evaluates, and its inputs."""

    dataset: dict  # the dataset key (deep.sweep.Setup.dataset_key)
    model: dict  # model name, and weights / model_source where there are any (deep.models.model_key)
    protocol: str
    density: float  # rounded by deep.prune.density_key; 1 for full
    seed: int
    method: str  # a key of deep.methods.METHODS
    method_options: dict  # the options the method reads, resolved
    quota_unit: str  # "class" or "group"
    train: TrainConfig  # the schedule scaled for the density
    quotas: Quotas | None = None  # DRoP's settings: protocols with DRoP's quotas only
    recall_source: str | None = None  # where DRoP's recalls came from: protocols with DRoP's quotas only
    scorer_options: dict | None = None  # the scorer's resolved options: protocols with a scorer's computed scores
    scores: str | None = None  # names of the consumed scores, recalls and subset tasks
    recalls: str | None = None
    subset: str | None = None
    selection: str | None = None  # --quota-exponent / --recall-prior auto: the task that chose them (deep.selection)

    @property
    def parsed(self) -> Protocol:
        """The protocol, parsed."""
        return parse_protocol(self.protocol)

    def to_dict(self) -> dict:
        """The stored config: the text its run's name is the hash of."""
        quotas = {} if self.quotas is None else {
            **{name: getattr(self.quotas, field) for field, name in QUOTA_FIELDS.items()},
            "recall_source": self.recall_source,
        }
        return {
            "kind": KIND, "dataset": self.dataset, **self.model, "protocol": self.protocol,
            "scorer": self.parsed.scorer, "density": self.density, "seed": self.seed, "method": self.method,
            "method_options": self.method_options, "quota_unit": self.quota_unit, "train": asdict(self.train),
            **quotas,
            **({} if self.scorer_options is None else {"scorer_options": self.scorer_options}),
            **{name: getattr(self, name) for name in INPUT_FIELDS if getattr(self, name) is not None},
        }

    @classmethod
    def from_dict(cls, config: dict) -> FinalConfig:
        """The typed config of a stored one; KeyError naming a field it lacks."""
        if config["kind"] != KIND:
            raise ValueError(f"not a final run's config: kind {config['kind']!r}")
        has_quotas = "allocation" in config
        return cls(
            dataset=config["dataset"], model={name: config[name] for name in MODEL_FIELDS if name in config},
            protocol=config["protocol"], density=config["density"], seed=config["seed"], method=config["method"],
            method_options=config["method_options"], quota_unit=config["quota_unit"],
            train=TrainConfig.from_stored(config["train"]),
            quotas=Quotas(**{field: config[name] for field, name in QUOTA_FIELDS.items()}) if has_quotas else None,
            recall_source=config["recall_source"] if has_quotas else None,
            scorer_options=config.get("scorer_options"),
            **{name: config.get(name) for name in INPUT_FIELDS},
        )

"""Rows from a run store: one flat dict per finished final run, how runs group into lines and cells, and the
check that every cell holds one run per seed.

A *line* is one protocol run under one set of variant settings (`VARIANTS`: quota exponent, allocation, where
the recalls come from, recall prior, class floor); runs that differ in a variant setting are drawn and tabulated
side by side. A *cell* is a line at one density: its runs are the seeds that statistics are taken over.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from deep.final import FinalConfig
from deep.prune import FULL, PROTOCOL_KINDS, RECALL_SOURCES, Protocol, Quotas, density_key, parse_protocol
from deep.runs import Run, RunStore

EXPERIMENT_FIELDS = ("dataset", "data", "split_seed", "model", "method", "quota_unit", "imbalance")
REQUIRED_METRICS = (
    "accuracy", "worst_class_accuracy", "class_accuracy", "max_min_gap", "class_accuracy_std",
    "class_counts", "class_density",
)
MAX_DIFFERENCES = 4  # config differences named when two runs collide in one cell


@dataclass(frozen=True)
class Variant:
    """A config field that tells variants of a protocol apart: runs that differ in it become separate lines."""

    field: str  # the config field (deep.final.FinalConfig.to_dict)
    default: object  # the default setting (from its owner): its lines are drawn first
    label: Callable[[object], str]  # the legend text of a value
    applies: Callable[[Protocol], bool]  # protocols the field means something for; None for the others


def _needs_recalls(protocol: Protocol) -> bool:
    return protocol.needs_recalls


def _needs_scores(protocol: Protocol) -> bool:
    return protocol.needs_scores


def _options_text(options: dict | None) -> str | None:
    """A scorer's options as one hashable, readable value (None without options)."""
    return ", ".join(f"{key}={value}" for key, value in sorted(options.items())) if options else None


def _value(value: object) -> str:
    """A number as %g; `auto` (chosen on validation per run, deep.selection) as it is."""
    return value if isinstance(value, str) else f"{value:g}"


# Adding a variant setting to the report is one line here.
VARIANTS = (
    Variant("quota_exponent", Quotas.exponent, lambda v: f"β={_value(v)}", _needs_recalls),
    Variant("allocation", Quotas.allocation, lambda v: f"{v} allocation", _needs_recalls),
    Variant("recall_source", RECALL_SOURCES[0], lambda v: f"{v} recalls", _needs_recalls),
    Variant("recall_prior", Quotas.recall_prior, lambda v: f"α={_value(v)}", _needs_recalls),
    Variant("min_count", Quotas.min_count, lambda v: f"min {v}/unit", _needs_recalls),
    Variant("scorer_options", None, str, _needs_scores),
)
VARIANT_FIELDS = tuple(variant.field for variant in VARIANTS)
LINE_FIELDS = ("protocol", *VARIANT_FIELDS)


def final_runs(root: Path) -> Iterator[Run]:
    """Every finished final run of the store at `root`: the report's only access to the store."""
    return RunStore(root).runs("final")


def _row(run: Run) -> dict:
    """One flat row: the run's metrics, its identifying config fields and variant settings, its folder and config."""
    config, metrics = run.config, run.metrics
    missing = [key for key in REQUIRED_METRICS if key not in metrics]
    if missing:
        raise ValueError(f"run {run.path}: metrics.json lacks {missing}; delete the folder and run it again")
    try:
        final = FinalConfig.from_dict(config)
        protocol = final.parsed
        fields = {
            "dataset": final.dataset["name"], "data": final.dataset["data"], "split_seed": final.dataset["split_seed"],
            "imbalance": final.dataset["imbalance"], "model": final.model["model"], "method": final.method,
            "quota_unit": final.quota_unit, "protocol": protocol.name, "scorer": protocol.scorer,
            "density": density_key(final.density), "seed": final.seed,
        }
        stored = {**config, "scorer_options": _options_text(final.scorer_options)}
        variants = {v.field: stored[v.field] if v.applies(protocol) else None for v in VARIANTS}
    except (KeyError, TypeError) as error:
        raise ValueError(f"run {run.path}: config.json lacks {error}; it does not follow the run schema") from error
    except ValueError as error:
        raise ValueError(f"run {run.path}: {error}") from error
    return {**metrics, **fields, **variants, "run": run.path.name, "config": config}


def _order(value: object) -> tuple:
    """A sort key for config values of mixed types: None first, then numbers by size, then text."""
    if value is None:
        return (0, 0.0, "")
    if isinstance(value, int | float):
        return (1, float(value), "")
    return (2, 0.0, str(value))


def is_full(row: dict) -> bool:
    """Whether a row is a run on the full data: the reference every figure and statistic compares with."""
    return row["protocol"] == FULL


def line_key(row: dict) -> tuple:
    """The line a run belongs to: its protocol and variant settings."""
    return tuple(row[field] for field in LINE_FIELDS)


def experiment_key(row: dict) -> tuple:
    """The experiment a run belongs to: dataset, model, method, quota unit, imbalance."""
    return tuple(row[field] for field in EXPERIMENT_FIELDS)


def _sort_key(row: dict) -> tuple:
    variants = tuple((row[v.field] != v.default, _order(row[v.field])) for v in VARIANTS)  # the default first
    return (
        *(_order(row[field]) for field in EXPERIMENT_FIELDS),
        PROTOCOL_KINDS.index(parse_protocol(row["protocol"]).kind), row["protocol"], variants,
        row["density"], row["seed"], row["run"],
    )


def load_results(root: Path | str) -> list[dict]:
    """One flat row per finished final run under `root` (config fields + metrics), in a fixed order."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"run folder {root} does not exist: pass the folder a sweep wrote its runs to")
    rows = [_row(run) for run in final_runs(root)]
    if not rows:
        raise ValueError(
            f"no finished runs under {root}: run a sweep into it first "
            "(only run folders with a `done` marker and kind 'final' count)"
        )
    return sorted(rows, key=_sort_key)


def groups(rows: Iterable[dict], key: Callable[[dict], tuple]) -> dict[tuple, list[dict]]:
    """Rows grouped by `key`, groups in order of first appearance (rows come sorted, so this is stable)."""
    out: dict[tuple, list[dict]] = {}
    for row in rows:
        out.setdefault(key(row), []).append(row)
    return out


def experiments(rows: Iterable[dict]) -> dict[tuple, list[dict]]:
    """Rows grouped by experiment."""
    return groups(rows, experiment_key)


def lines(rows: Iterable[dict]) -> dict[tuple, list[dict]]:
    """Rows grouped by line (protocol and variant settings)."""
    return groups(rows, line_key)


def cells(rows: Iterable[dict]) -> dict[tuple, list[dict]]:
    """Rows grouped by (line key, density): each group holds one row per seed."""
    return groups(rows, lambda row: (line_key(row), row["density"]))


def varying_variants(rows: Sequence[dict]) -> list[Variant]:
    """The variant settings that take more than one value in `rows` (None, "not applicable", is no value)."""
    return [v for v in VARIANTS if len({row[v.field] for row in rows} - {None}) > 1]


def line_labels(rows: Sequence[dict]) -> dict[tuple, str]:
    """A legend label per line: the protocol, and in brackets its variant settings among those that vary in `rows`.

    A setting that takes one value across `rows` is left out: it tells no two lines apart; `auto` (chosen on
    validation per run) is always shown.
    """
    varying = varying_variants(rows)
    labels = {}
    for key, (first, *_) in lines(rows).items():
        parts = [v.label(first[v.field]) for v in VARIANTS
                 if first[v.field] is not None and (v in varying or first[v.field] == "auto")]
        labels[key] = first["protocol"] + (f" ({', '.join(parts)})" if parts else "")
    return labels


def protocols(rows: Iterable[dict]) -> list[str]:
    """The protocols of `rows`, in order of first appearance."""
    return list(dict.fromkeys(row["protocol"] for row in rows))


def title(experiment: dict) -> str:
    """What an experiment (or a family of experiments, without method or imbalance) is, in one line."""
    data = f" ({Path(experiment['data']).name})" if experiment["data"] else ""
    parts = [f"{experiment['dataset']}{data}", experiment["model"]]
    if "method" in experiment:
        parts += [experiment["method"], f"quotas per {experiment['quota_unit']}"]
    if experiment.get("imbalance") is not None:
        parts.append(f"imbalance {experiment['imbalance']}")
    return " · ".join(str(p) for p in parts)


def suffixes(keys: Sequence[tuple], fields: Sequence[str] = EXPERIMENT_FIELDS) -> list[str]:
    """File-name suffixes naming the fields that differ between experiments ('' for a single one)."""
    if len(keys) == 1:
        return [""]
    varying = [i for i in range(len(fields)) if len({repr(key[i]) for key in keys}) > 1]

    def part(field: str, value: object) -> str:
        if field == "data" and value:
            value = Path(str(value)).stem
        label = {"imbalance": "imbalance", "split_seed": "split"}.get(field, "")
        return re.sub(r"[^A-Za-z0-9.+-]+", "-", f"{label}{value}")

    names = ["_" + "_".join(part(fields[i], key[i]) for i in varying) for key in keys]
    if len(set(names)) < len(names):  # e.g. two data files with one stem
        names = [f"{name}_{i}" for i, name in enumerate(names)]
    return names


def _flat(value: object, prefix: str = "") -> dict[str, object]:
    """A nested config as {dotted.key: value}."""
    if not (isinstance(value, dict) and value):
        return {prefix: value}
    return {key: leaf for k, v in value.items() for key, leaf in _flat(v, f"{prefix}.{k}" if prefix else k).items()}


def _differences(configs: Sequence[dict]) -> str:
    """The config keys (dotted) whose values differ between `configs`, with the values."""
    flat = [_flat(config) for config in configs]
    shown = lambda f, key: repr(f[key]) if key in f else "absent"  # noqa: E731
    differ = [key for key in sorted({key for f in flat for key in f}) if len({shown(f, key) for f in flat}) > 1]
    text = [f"{key} ({' vs '.join(shown(f, key) for f in flat)})" for key in differ[:MAX_DIFFERENCES]]
    more = len(differ) - MAX_DIFFERENCES
    return ", ".join(text) + (f" and {more} more" if more > 0 else "") or "no config field (only in their results)"


def check_consistent(rows: Sequence[dict]) -> None:
    """Refuse two runs in one (experiment, line, density, seed) cell: they would be averaged as if they were seeds."""
    labels = line_labels(rows)
    same_seed = groups(rows, lambda row: (experiment_key(row), line_key(row), row["density"], row["seed"]))
    for (experiment, line, density, seed), runs in same_seed.items():
        if len(runs) > 1:
            raise ValueError(
                f"runs {', '.join(r['run'] for r in runs)} are all {labels[line]} at density {density:g}, seed {seed} "
                f"of {title(dict(zip(EXPERIMENT_FIELDS, experiment)))}, but differ in "
                f"{_differences([r['config'] for r in runs])}: a report averages over seeds only, so report "
                "them from separate run folders (or delete the runs you do not want)"
            )

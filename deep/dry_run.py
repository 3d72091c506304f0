"""`sweep --dry-run`: the fully resolved plan of a sweep, as JSON-ready data, before anything reads data or trains."""

from __future__ import annotations

from dataclasses import asdict

from deep.kinds import KINDS, full_data_epochs
from deep.methods import METHODS
from deep.prune import parse_protocol
from deep.scores import SCORERS
from deep.selection import is_auto
from deep.sweep import Setup, reference_settings, scorer_options
from deep.tasks import Task, closure


def dry_run(setup: Setup, finals: list[Task], protocols: list[str]) -> dict:
    """The fully resolved plan of a sweep, as JSON-ready data: settings, every task and the total training."""
    parsed = [parse_protocol(name, frozenset(SCORERS) | set(setup.external_scores)) for name in protocols]
    scorers = sorted({p.scorer for p in parsed if p.scorer is not None} - set(setup.external_scores))
    tasks = closure(finals)
    return {
        "dataset": setup.dataset_key(),
        **setup.model_key,
        "method": setup.method,
        "method_options": setup.method_options_for(setup.train.epochs),  # on the full data; final tasks: scaled
        "quota_unit": setup.quota_unit,
        "train": asdict(setup.train),
        "query": {name: {"epochs": setup.epochs_for(name), "inits": setup.inits_for(name),
                         "options": scorer_options(setup, name)} for name in scorers},
        "recalls": {p.name: dict(zip(("epochs", "inits"), setup.recall_recipe(p.scorer)))
                    for p in parsed if p.needs_recalls},
        "recall_prior": setup.recall_prior,
        "recall_source": setup.recall_source,
        "allocation": setup.allocation,
        "quota_exponent": setup.quota_exponent,
        "reference": reference_settings(setup),
        **({"exponent_grid": list(setup.exponent_grid)} if is_auto(setup.quota_exponent) else {}),
        "tasks": [{"kind": t.kind, "key": t.key, "epochs": t.config["train"]["epochs"] if "train" in t.config else 0,
                   **{k: t.config[k] for k in KINDS[t.kind].shown}, "full_data_epochs": full_data_epochs(t)}
                  for t in tasks],
        "counts": {kind: sum(t.kind == kind for t in tasks) for kind in KINDS},
        "total_full_data_epochs": round(sum(full_data_epochs(t) for t in tasks), 1),
        **({"total_note": f"{setup.method}: {note}"} if (note := METHODS[setup.method].cost_note) else {}),
        # What choosing beta / alpha on validation costs, against the final runs (issue 23: <= 0.25 on the main job).
        "selection_to_final_epochs": round(_epochs(tasks, "selection") / max(_epochs(tasks, "final"), 1e-12), 3),
    }


def _epochs(tasks: list[Task], kind: str) -> float:
    return sum(full_data_epochs(t) for t in tasks if t.kind == kind)

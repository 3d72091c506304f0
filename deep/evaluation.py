"""Evaluation tasks: the test metrics of a final run's stored model (`train`/`sweep --keep-weights`) on its own dataset or
on another with the same classes (e.g. a shifted test set), stored as a task of its own (`python -m deep evaluate`).

An evaluation's config names the final run it consumes and the dataset it tests on, so evaluating again is a lookup
and evaluating on another dataset is another task. The model sees the inputs normalised as in its training (the
final run's dataset's normalisation), so that a shifted test set stays shifted.
"""

from __future__ import annotations

import torch

from deep.data import DATASETS
from deep.data.base import Dataset
from deep.experiment import evaluate
from deep.query import MODEL_FILE
from deep.runs import Run, RunStore
from deep.tasks import Context, Outcome, Task, dataset


def dataset_key(name: str, data: str | None, split_seed: int) -> dict:
    """The dataset an evaluation tests on, keyed as final runs key theirs (no imbalance: the test split is never
    thinned; the dataset's default options)."""
    if name not in DATASETS:
        raise ValueError(f"--dataset {name!r} is unknown: choose one of {sorted(DATASETS)}")
    options = DATASETS[name].resolve(name, {})
    key = {"name": name, "data": data, "imbalance": None, "split_seed": split_seed}
    return {**key, "options": options} if options else key


def evaluation_task(final: Task, data_key: dict | None = None) -> Task:
    """The evaluation of a final run's stored model on `data_key` (default: the final run's own dataset)."""
    config = {"kind": "evaluation", "final": final.key, "dataset": data_key or final.config["dataset"]}
    return Task(config, (final,))


def _same_classes(trained: Dataset, tested: Dataset) -> None:
    if tested.classes != trained.classes or tested.input_shape != trained.input_shape:
        raise ValueError(
            f"the evaluation dataset has classes {tested.classes} and inputs {tested.input_shape}, the model was trained "
            f"on classes {trained.classes} and inputs {trained.input_shape}: evaluate on data with the same classes, "
            "in the same order, and the same input shape")


def run_evaluation(ctx: Context) -> Outcome:
    """Load the final run's model and measure it on the test split of the evaluation's dataset."""
    final_task = ctx.task.dep("final")
    final = ctx.input(final_task)
    trained_on = dataset(final.config["dataset"], ctx.runtime.download)
    tested = ctx.dataset()
    _same_classes(trained_on, tested)
    trained = Context(final_task, ctx.store, ctx.runtime)
    model = trained.make_model(trained_on.num_classes, trained_on.input_shape)()
    model.load_state_dict(torch.load(final.file(MODEL_FILE), map_location="cpu", weights_only=True))
    metrics = evaluate(model, tested, ctx.runtime.torch_device, trained.normalization(trained_on))
    metrics.update(final=final.key, weights_sha256=final.metrics.get("weights_sha256"), dataset_info=tested.info)
    return Outcome(metrics)


def evaluate_store(root: str, data_key: dict | None = None) -> tuple[list[Task], list[Run]]:
    """Evaluation tasks for every finished final run of the store that stored its model, and the runs that did not;
    ValueError when none did."""
    finals = list(RunStore(root).runs("final"))
    kept = [run for run in finals if MODEL_FILE in run.file_names()]
    if not kept:
        raise ValueError(f"none of the {len(finals)} finished final runs in {root} stored its model: run train or "
                         "sweep with --keep-weights first")
    return [evaluation_task(Task(run.config), data_key) for run in kept], [run for run in finals if run not in kept]


def without_model(root: str, tasks: list[Task]) -> list[Run]:
    """The finished final runs among `tasks` that stored no model (finished before --keep-weights was asked for)."""
    store = RunStore(root)
    runs = [store.read(t.config) for t in tasks if t.kind == "final" and store.done(t.config)]
    return [run for run in runs if MODEL_FILE not in run.file_names()]


def format_evaluations(root: str, tasks: list[Task]) -> str:
    """A text table of finished evaluations: the final run's protocol, density and seed, the dataset, the metrics."""
    from deep.report.tables import aligned  # deep.report loads matplotlib: not for every worker that imports the kinds

    store, body = RunStore(root), []
    for task in tasks:
        final, metrics = task.dep("final").config, store.read(task.config).metrics
        body.append([task.key, final["protocol"], f"{final['density']:g}", str(final["seed"]),
                     task.config["dataset"]["name"], f"{metrics['accuracy']:.4f}", f"{metrics['worst_class_accuracy']:.4f}"])
    headers = ["evaluation", "protocol", "density", "seed", "tested on", "accuracy", "worst-class"]
    return "\n".join(aligned(headers, body, headers.index("accuracy")))

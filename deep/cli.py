"""`python -m deep`: train one model, run a pruning sweep, report, export scores."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from deep.data import DATASETS, DEFAULT_ROOT
from deep.models import MODELS
from deep.runs import CorruptRunError
from deep.scores import SCORERS
from deep.sweep import DEFAULT_DENSITIES, DEFAULT_PROTOCOLS
from deep.train import TrainConfig, default_config


def _key_value(text: str) -> tuple[str, int]:
    name, sep, value = text.partition("=")
    if not sep or not value.isdigit():
        raise argparse.ArgumentTypeError(f"expected SCORER=EPOCHS, e.g. el2n=3, got {text!r}")
    return name, int(value)


def _add_setup(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data and model")
    g.add_argument("--dataset", default="digits", help=f"dataset name, one of {sorted(DATASETS)} (default: digits)")
    g.add_argument("--data", default=None, metavar="PATH",
                   help=f"file or folder of the dataset (default: {DEFAULT_ROOT}/<dataset>; $DROP_DATA moves the root)")
    g.add_argument("--download", action="store_true", help="download the dataset into --data when it is missing")
    g.add_argument("--imbalance", type=float, default=None, metavar="I",
                   help="make the training set long-tailed: class sizes decay exponentially from N_max to N_max/I")
    g.add_argument("--split-seed", type=int, default=0,
                   help="seed of the validation/test halving of the test split (default: 0)")
    g.add_argument("--model", default="mlp", help=f"model name, one of {sorted(MODELS)} (default: mlp)")
    g.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda when available)")
    g.add_argument("--out", default="runs", metavar="DIR", help="run store folder (default: runs)")
    g.add_argument("--no-progress", action="store_true", help="hide progress bars")
    t = p.add_argument_group("training schedule (defaults: the reference protocol for the dataset and model)")
    t.add_argument("--epochs", type=int, help="epochs on the full data (pruned runs scale it: E' = int((0.5+0.5d)E/d))")
    t.add_argument("--batch-size", type=int, help="mini-batch size")
    t.add_argument("--lr", type=float, help="initial learning rate")
    t.add_argument("--momentum", type=float, help="SGD momentum")
    t.add_argument("--nesterov", action=argparse.BooleanOptionalAction, default=None, help="Nesterov momentum")
    t.add_argument("--weight-decay", type=float, help="weight decay")
    t.add_argument("--milestones", type=int, nargs="*", help="epochs at which the learning rate is multiplied by --gamma")
    t.add_argument("--gamma", type=float, help="learning-rate drop factor at each milestone")
    t.add_argument("--label-smoothing", type=float, help="label smoothing of the cross-entropy")
    t.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                   help="random crop + flip on image batches")
    t.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None, help="torch.compile the model")
    q = p.add_argument_group("query stage (scores and DRoP's validation recalls)")
    q.add_argument("--query-inits", type=int, default=2, help="query models trained per seed; scores and recalls are averaged (default: 2)")
    q.add_argument("--query-epochs", type=_key_value, nargs="*", default=[], metavar="SCORER=EPOCHS",
                   help="query length per scorer, overriding its default fraction of the schedule, e.g. el2n=3")
    q.add_argument("--recall-epochs", type=int, default=None,
                   help="query length of the models whose validation recalls DRoP uses (default: the full schedule)")
    q.add_argument("--min-count", type=int, default=0, help="DRoP keeps at least this many samples of every class (default: 0)")


def _train_config(args: argparse.Namespace) -> TrainConfig:
    cfg = default_config(args.dataset, args.model)
    overrides = {
        "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "momentum": args.momentum,
        "nesterov": args.nesterov, "weight_decay": args.weight_decay, "gamma": args.gamma,
        "label_smoothing": args.label_smoothing, "augment": args.augment, "compile": args.compile,
        "milestones": None if args.milestones is None else tuple(args.milestones),
    }
    return replace(cfg, **{k: v for k, v in overrides.items() if v is not None})


def _setup(args: argparse.Namespace):
    from deep.experiment import Setup

    if args.dataset not in DATASETS:
        raise ValueError(f"unknown dataset {args.dataset!r}: choose one of {sorted(DATASETS)}")
    if args.model not in MODELS:
        raise ValueError(f"unknown model {args.model!r}: choose one of {sorted(MODELS)}")
    for name, _ in args.query_epochs:
        if name not in SCORERS:
            raise ValueError(f"--query-epochs names unknown scorer {name!r}: choose from {sorted(SCORERS)}")
    return Setup(
        dataset=args.dataset, model=args.model, train=_train_config(args), data=args.data,
        imbalance=args.imbalance, split_seed=args.split_seed, download=args.download,
        query_inits=args.query_inits, query_epochs=dict(args.query_epochs), recall_epochs=args.recall_epochs,
        min_count=args.min_count, device=args.device,
    )


def cmd_train(args: argparse.Namespace) -> int:
    """Train and evaluate one model (by default on the full data) and store it as a run."""
    from deep.experiment import queries_for, run_final
    from deep.runs import read_json
    from deep.sweep import plan

    setup = _setup(args)
    (task,) = plan(setup, [args.protocol], [args.density], [args.seed])
    queries = queries_for(setup, args.out, [task.protocol], task.seed)
    path = run_final(setup, args.out, task.protocol, task.density, task.seed, queries, progress=not args.no_progress)
    metrics = read_json(path / "metrics.json")
    print(f"{path}: accuracy {metrics['accuracy']:.4f}, worst-class accuracy {metrics['worst_class_accuracy']:.4f}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run a grid of protocols x densities x seeds, skipping finished runs, then print the summary table."""
    from deep.report import format_table, load_results
    from deep.sweep import plan, run_tasks

    setup = _setup(args)
    tasks = plan(setup, args.protocols, args.densities, list(range(args.seeds)))
    run_tasks(setup, args.out, tasks, progress=not args.no_progress)
    print(format_table(load_results(args.out)))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Print a table of every finished run; with --out, also write the figures and summary tables."""
    from deep.report import format_table, load_results, write_report

    print(format_table(load_results(args.runs)))
    if args.out:
        for path in write_report(args.runs, args.out):
            print(f"wrote {path}")
    return 0


def cmd_export_scores(args: argparse.Namespace) -> int:
    """Write the scores, recalls and kept indices of a run store to shareable files (load them with deep.export.load_export)."""
    from deep.export import export_store

    print(f"wrote {export_store(args.runs, args.out)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `python -m deep`."""
    parser = argparse.ArgumentParser(
        prog="python -m deep",
        description="Distributionally robust data pruning on real networks: score, prune with class quotas "
        "(DRoP), train, and measure average, worst-class and worst-group accuracy.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train and evaluate one model", description=cmd_train.__doc__)
    _add_setup(p)
    p.add_argument("--seed", type=int, default=0, help="seed of the model init, batches and pruning (default: 0)")
    p.add_argument("--protocol", default="full", help="pruning protocol (default: full, no pruning); see `sweep --help`")
    p.add_argument("--density", type=float, default=1.0, help="fraction of the training set kept, in (0, 1] (default: 1)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "sweep", help="run a pruning grid", description=cmd_sweep.__doc__,
        epilog="Protocols, for a scorer S in " + ", ".join(sorted(SCORERS)) + ": full (no pruning), random "
        "(uniform), S (globally top-scored), random+Sq (S's class counts, random inside classes), S+drop (DRoP's "
        "class counts, top-scored inside), random+drop (DRoP's class counts, random inside: the paper's method).",
    )
    _add_setup(p)
    p.add_argument("--protocols", nargs="+", default=DEFAULT_PROTOCOLS,
                   help=f"protocols to run (default: {' '.join(DEFAULT_PROTOCOLS)})")
    p.add_argument("--densities", type=float, nargs="+", default=DEFAULT_DENSITIES,
                   help="densities d in (0, 1] (default: 0.1 ... 0.9)")
    p.add_argument("--seeds", type=int, default=3, help="number of seeds, run as 0 .. N-1 (default: 3)")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("report", help="tables and figures from a run store", description=cmd_report.__doc__)
    p.add_argument("runs", help="run store folder")
    p.add_argument("--out", default=None, metavar="DIR", help="write figures and summary tables here")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("export-scores", help="export scores and kept indices to shareable files",
                       description=cmd_export_scores.__doc__)
    p.add_argument("runs", help="run store folder")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="export folder: manifest.json, scores/<hash>.npz per query stage, kept/<hash>.npz per run")
    p.set_defaults(func=cmd_export_scores)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse, run, and turn user errors into one clear line and exit status 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, CorruptRunError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

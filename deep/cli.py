"""`python -m deep`: train one model, run a pruning sweep, report, export scores."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import torch

from deep.data import DATASETS, DEFAULT_ROOT, VAL_SPLITS, default_config, option_flag
from deep.data.store import streamed

DEFAULT_DATASET = "mnist1d"  # the main job: CPU-sized, and its classes differ in difficulty
from deep.methods import METHODS
from deep.models import MODELS, resolve_model
from deep.models.pretrained import weights_id
from deep.model_selection import SELECT
from deep.reference import OFFICIAL_ROTATION, REFERENCE_NAMES, SCORER_SETTINGS, resolve, with_scorer_settings
from deep.options import option_help
from deep.prune import FULL, QUOTA_UNITS, RECALL_SOURCES, TIES, Quotas
from deep.runs import CorruptRunError, RunStore
from deep.scores import SCORERS
from deep.selection import AUTO, AUTO_PRIORS, DEFAULT_GRID, PROXY_FRACTION
from deep.sweep import DEFAULT_DENSITIES, DEFAULT_PROTOCOLS, RECALL_MODELS, SCHEDULE_RULES, Setup
from deep.train import DivergedError, TrainConfig
from toy.commandline import (
    OnceParser, add_debug_flag, add_version_flag, number, output_folder, run_command, unique_keys,
)
from toy.quotas import ALLOCATIONS, EXPONENT_MAX, KEPT_RULES

# Errors a user can fix from the message: exit status 2. Anything else is exit status 1 (see `main`).
USER_ERRORS = (ValueError, FileNotFoundError, CorruptRunError, DivergedError)  # StoreFormatError is a ValueError
# argparse types of the numeric flags: a value outside the range is refused before anything runs, naming the flag.
POSITIVE_INT, NON_NEGATIVE_INT = number(int, 1), number(int, 0)
POSITIVE, NON_NEGATIVE, AT_LEAST_ONE = number(float, 0, low_open=True), number(float, 0), number(float, 1)
FRACTION = number(float, 0, 1, high_open=True)  # [0, 1): momentum, label smoothing
DENSITY = number(float, 1e-6, 1)  # runs are named by densities rounded to 6 decimals (deep.prune.density_key)
QUOTA_EXPONENT = number(float, 0, EXPONENT_MAX, low_open=True)  # where error**beta is exact (toy.quotas)
MAX_GRID = 100_000  # final runs in one sweep; the paper's largest grid is a few hundred


def _or_auto(kind: Callable[[str], float]) -> Callable[[str], float | str]:
    """argparse type: `auto` (chosen on validation, deep.selection) or a number of `kind`."""
    return lambda text: AUTO if text == AUTO else kind(text)


def _key_value(text: str) -> tuple[str, int]:
    name, sep, value = text.partition("=")
    if not sep or not value.isdigit():
        raise argparse.ArgumentTypeError(f"expected SCORER=EPOCHS, e.g. el2n=3, got {text!r}")
    return name, int(value)


def _dotted_option(example: str):
    """argparse type of --scorer-option / --method-option: NAME.KEY=VALUE as (name, key, value)."""

    def parse(text: str) -> tuple[str, str, str]:
        target, sep, value = text.partition("=")
        name, dot, key = target.partition(".")
        if not (sep and dot and name and key and value):
            raise argparse.ArgumentTypeError(f"expected NAME.OPTION=VALUE, e.g. {example}, got {text!r}")
        return name, key, value

    return parse


# The registries whose entries declare options, reached as --<kind>-option NAME.KEY=VALUE (and each option's alias).
OPTION_REGISTRIES = {"scorer": SCORERS, "method": METHODS}


def _options_help(kind: str) -> str:
    """Every option of every `kind` registry entry with its help and default, escaped for argparse."""
    return "; ".join(option_help(name, entry.options)
                     for name, entry in OPTION_REGISTRIES[kind].items() if entry.options).replace("%", "%%")


def _alias_dest(kind: str, name: str, key: str) -> str:
    return f"{kind}_option__{name}__{key}"


def _add_aliases(group: argparse._ArgumentGroup, kind: str) -> None:
    """The flag of every option of a `kind` registry entry that keeps one of its own (e.g. --dro-step)."""
    for name, entry in OPTION_REGISTRIES[kind].items():
        for key, option in entry.options.items():
            if option.alias:
                group.add_argument(option.alias, default=None, metavar=key.upper(), dest=_alias_dest(kind, name, key),
                                   help=f"the same as --{kind}-option {name}.{key}={key.upper()}")


def _given_options(args: argparse.Namespace, kind: str) -> list[tuple[str, str, str, str]]:
    """(name, key, value, flag) of every option of a `kind` registry entry on the command line, aliases included."""
    registry = OPTION_REGISTRIES[kind]
    given = [(name, key, value, f"--{kind}-option {name}.{key}") for name, key, value in getattr(args, f"{kind}_option")]
    return given + [(name, key, value, option.alias) for name, entry in registry.items()
                    for key, option in entry.options.items()
                    if option.alias and (value := getattr(args, _alias_dest(kind, name, key))) is not None]


def _registry_options(args: argparse.Namespace, kind: str) -> dict[str, dict]:
    """The options of `kind` registry entries given on the command line, checked and typed per entry:
    {name: {key: value}}; an error names the flag the value came with."""
    registry = OPTION_REGISTRIES[kind]
    options: dict[str, dict] = {}
    given = _given_options(args, kind)
    unique_keys(f"--{kind}-option", [((name, key), value) for name, key, value, _ in given])  # none given twice
    for name, key, value, flag in given:
        if name not in registry:
            raise ValueError(f"--{kind}-option names unknown {kind} {name!r}: choose from {sorted(registry)}")
        entry = registry[name]
        if key not in entry.options:
            entry.resolve(name, {key: value})  # refuses the unknown key, listing the entry's options
        options.setdefault(name, {})[key] = entry.options[key].check(flag, value)
    return options


def _device(text: str) -> str:
    """argparse type: a device this machine's torch can train on (cpu, cuda, cuda:N)."""
    try:
        device = torch.device(text)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise argparse.ArgumentTypeError(f"unknown device {text!r}: use cpu, cuda or cuda:N")
    gpus = torch.cuda.device_count() if device.type == "cuda" else 0
    if device.type == "cuda" and gpus == 0:
        raise argparse.ArgumentTypeError(
            f"{text}: torch {torch.__version__} sees no CUDA GPU here: use --device cpu, or leave --device out")
    if device.type == "cuda" and device.index is not None and device.index >= gpus:
        raise argparse.ArgumentTypeError(f"{text}: torch sees {gpus} GPU(s) here, cuda:0 .. cuda:{gpus - 1}")
    return text


def _add_setup(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data and model")
    g.add_argument("--dataset", default=DEFAULT_DATASET,
                   help=f"dataset name, one of {sorted(DATASETS)} (default: {DEFAULT_DATASET}, generated offline)")
    g.add_argument("--data", default=None, metavar="PATH",
                   help=f"file or folder of the dataset (default: {DEFAULT_ROOT}/<dataset>; $DROP_DATA moves the root)")
    g.add_argument("--download", action="store_true", help="download the dataset into --data when it is missing")
    g.add_argument("--imbalance", type=AT_LEAST_ONE, default=None, metavar="I",
                   help="make the training set long-tailed: class sizes decay exponentially from N_max to N_max/I")
    g.add_argument("--split-seed", type=NON_NEGATIVE_INT, default=Setup.split_seed,
                   help="seed of the validation/test halving of the test split (default: 0)")
    for dataset, entry in DATASETS.items():
        for key, option in entry.options.items():
            g.add_argument(option_flag(dataset, key), type=option.type, default=None, dest=_option_dest(dataset, key),
                           help=f"{option.help} (--dataset {dataset} only; default: {option.default})")
    g.add_argument("--model", default=None,
                   help=f"model name, one of {sorted(MODELS)}; or your own builder as package.module:function, "
                        "called as function(num_classes, input_shape) and returning an nn.Module that gives logits "
                        "(importable in every worker: put its folder on PYTHONPATH); or timm:<name> where timm is "
                        "installed (default: the dataset's reference model, e.g. vgg16 on cifar10, resnet18 on "
                        "tinyimagenet, mlp on small CPU data)")
    g.add_argument("--pretrained", default=None, metavar="imagenet|PATH|none",
                   help="resnet50_imagenet: torchvision's ImageNet weights (from torch's cache; downloaded with "
                        "--download), a resnet50 state_dict file, or none (default: the dataset's: imagenet on "
                        "waterbirds); pretrained models see ImageNet-normalised inputs")
    g.add_argument("--image-size", type=POSITIVE_INT, default=None, metavar="S",
                   help="image datasets with an image_size option (imagefolder): resize the shorter side to S and "
                        "crop the centre (same as --<dataset>-image-size)")
    g.add_argument("--stream", action="store_true",
                   help="imagefolder, waterbirds: decode the images once into an on-disk store and read them a batch at "
                        "a time instead of holding them in memory (data larger than memory; same results). imagenet "
                        "always streams")
    g.add_argument("--device", type=_device, default=None, help="cpu, cuda, cuda:1, ... (default: cuda when available)")
    g.add_argument("--out", type=output_folder, default="runs", metavar="DIR", help="run store folder (default: runs)")
    g.add_argument("--no-progress", action="store_true", help="hide progress bars")
    g.add_argument("--keep-weights", action="store_true",
                   help="final runs store their trained model (model.pt, checksummed) so that `python -m deep "
                        "evaluate` can test it later, also on other data; finished runs are not retrained to add it")
    g.add_argument("--checkpoint-every", type=POSITIVE_INT, default=None, metavar="N",
                   help="write a training checkpoint every N epochs (default: at the end of an epoch once 10 minutes "
                        "have passed since the last, so short runs write none); a killed or requeued run resumes "
                        "from its last checkpoint")
    t = p.add_argument_group("training schedule (defaults: the reference protocol for the dataset and model)")
    t.add_argument("--epochs", type=POSITIVE_INT, help="epochs on the full data (pruned runs scale it: E' = int((0.5+0.5d)E/d))")
    t.add_argument("--batch-size", type=POSITIVE_INT, help="mini-batch size")
    t.add_argument("--lr", type=POSITIVE, help="initial learning rate")
    t.add_argument("--momentum", type=FRACTION, help="SGD momentum")
    t.add_argument("--nesterov", action=argparse.BooleanOptionalAction, default=None, help="Nesterov momentum")
    t.add_argument("--weight-decay", type=NON_NEGATIVE, help="weight decay")
    t.add_argument("--milestones", type=POSITIVE_INT, nargs="*", action="extend", help="epochs at which the learning rate is multiplied by --gamma")
    t.add_argument("--gamma", type=POSITIVE, help="learning-rate drop factor at each milestone")
    t.add_argument("--label-smoothing", type=FRACTION, help="label smoothing of the cross-entropy")
    t.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                   help="random shift + flip on image batches")
    t.add_argument("--crop-padding", type=NON_NEGATIVE_INT, default=None, metavar="PIXELS",
                   help="shift by cropping from the zero-padded image (RandomCrop(H, padding)); default: the dataset's "
                        "(4 on tinyimagenet, H/8 elsewhere)")
    t.add_argument("--translate", type=number(float, 0, 1), default=None, metavar="T",
                   help="shift by up to T times the image size instead (RandomAffine(translate=(T, T))); default: the "
                        "dataset's (0.15 on CIFAR)")
    t.add_argument("--rotation", type=NON_NEGATIVE, default=None, metavar="DEGREES",
                   help="rotate training images by a random angle in [-DEGREES, DEGREES] (the authors' MNIST: 4) "
                        "(default: none; --reference official: the authors' rotation of the dataset)")
    t.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None, help="torch.compile the model")
    q = p.add_argument_group("query stage (scores and DRoP's validation recalls)")
    q.add_argument("--query-inits", type=POSITIVE_INT, default=None,
                   help="query models per scorer and seed, scores and recalls averaged over them (default: each "
                        "scorer's own, as in the reference code: 5 for el2n and grand, 1 for the others)")
    q.add_argument("--query-augment", action=argparse.BooleanOptionalAction, default=Setup.query_augment,
                   help="augment the query trainings as the final ones (default: off, as in the reference code)")
    q.add_argument("--recall-source", default=None, choices=RECALL_SOURCES,
                   help="where DRoP's validation recalls come from: scorer = the protocol's own query models "
                        "(random+drop: one model at 10%% of the schedule), as in the reference code; separate = "
                        "query models of their own trained for --recall-epochs (default: the dataset's, scorer on "
                        "the paper's datasets)")
    q.add_argument("--query-epochs", type=_key_value, nargs="*", action="extend", default=[], metavar="SCORER=EPOCHS",
                   help="query length per scorer, overriding its default fraction of the schedule, e.g. el2n=3")
    q.add_argument("--scores", nargs="*", action="extend", default=[], metavar="NAME=FILE",
                   help="your own per-sample scores as scorer NAME (protocols NAME, random+NAMEq, NAME+drop; higher = "
                        "harder = kept first): a .npy/.csv/.txt with one score per training row, or a csv `id,score` "
                        "by sample id")
    q.add_argument("--scorer-option", type=_dotted_option("dynamic_uncertainty.window=5"), nargs="*", action="extend", default=[],
                   metavar="SCORER.OPTION=VALUE", help="a scorer's option; the options: " + _options_help("scorer"))
    _add_aliases(q, "scorer")
    q.add_argument("--recall-epochs", type=POSITIVE_INT, default=None,
                   help="query length of recall models that are not a scorer's: random+drop's under --recall-source "
                        "scorer (default: 10%% of the schedule), every DRoP run's under separate (default: all of it)")
    q.add_argument("--recall-prior", type=_or_auto(NON_NEGATIVE), default=None, metavar="ALPHA",
                   help="smooth DRoP's validation recalls to (correct + ALPHA) / (n + 2 ALPHA) per class or group, so that "
                   "a unit with no error seen on a small validation set keeps some data; 0 = the raw recalls of the "
                   "paper's Algorithm 1 (default: the dataset's: 0 on the paper's datasets, 1 (Laplace's rule) on "
                   "small CPU data); auto = chosen from " + ", ".join(f"{a:g}" for a in AUTO_PRIORS) + " per seed and "
                   "density on validation, like --quota-exponent auto")
    q.add_argument("--quota-exponent", type=_or_auto(QUOTA_EXPONENT), default=Quotas.exponent, metavar="BETA",
                   help="DRoP keeps class k at a density proportional to error_k ** BETA; 1 = the paper's Algorithm 1, "
                        "BETA < 1 tempers the quotas towards proportional pruning; auto = chosen per seed and density "
                        "from --exponent-grid by the validation worst-class (worst-group) accuracy of short proxy "
                        f"trainings ({100 * PROXY_FRACTION:g} %% of the run's epochs, one per distinct kept set; ties to the "
                        "exponent nearest 1; never the test split) (default: 1)")
    q.add_argument("--exponent-grid", type=QUOTA_EXPONENT, nargs="+", action="extend", default=list(DEFAULT_GRID),
                   metavar="BETA",
                   help="the exponents --quota-exponent auto chooses from (default: "
                        + " ".join(f"{b:g}" for b in DEFAULT_GRID) + ")")
    q.add_argument("--allocation", default=None, choices=ALLOCATIONS,
                   help="density: DRoP's class densities proportional to error (the paper's Algorithm 1); official: the "
                        "authors' quoter, counts proportional to error, its shortfall drawn at random; count: the same "
                        "with the shortfall's expectation (default: the --reference's)")
    _reference_flags(q)
    q.add_argument("--val-split", default=None, choices=VAL_SPLITS,
                   help="validation half of the test split: random (seeded rows of each class) or first_half (the "
                        "first rows of each class in file order, the authors' code) (default: the --reference's)")
    q.add_argument("--schedule-rule", default=None, choices=SCHEDULE_RULES,
                   help="length of a pruned training: density (E' = int((0.5 + 0.5 d) E / d)) or fraction (the same "
                        "with the kept fraction n/N in the authors' order of operations) (default: the --reference's)")
    q.add_argument("--recall-model", default=None, choices=RECALL_MODELS,
                   help="random+drop's own recall model: compressed (10%% of the schedule, drops compressed) or "
                        "official (16 epochs at constant LR, 1 init, the authors' code) (default: the --reference's)")
    q.add_argument("--min-count", type=NON_NEGATIVE_INT, default=Quotas.min_count, help="DRoP keeps at least this many samples of every class, or group with --quota-unit group (default: 0)")
    m = p.add_argument_group("method (how the final model trains on the kept samples) and quota unit")
    m.add_argument("--method", default=Setup.method, choices=list(METHODS), help="; ".join(
        f"{name}: {method.help}" for name, method in METHODS.items()) + " (default: erm)")
    m.add_argument("--select", default=Setup.select, choices=SELECT,
                   help="the epoch whose weights are tested: last, or the best by validation accuracy or validation "
                        "worst-group accuracy (first on ties; as group_DRO, JTT and WILDS report) (default: last)")
    m.add_argument("--quota-unit", default=Setup.quota_unit, choices=QUOTA_UNITS,
                   help="allocate DRoP / StrategyQ quotas over classes, or over groups (needs data with groups, e.g. "
                        "waterbirds: group = 2 y + place) from per-group validation accuracy (default: class)")
    m.add_argument("--method-option", type=_dotted_option("group_dro.step=0.1"), nargs="*", action="extend", default=[],
                   metavar="METHOD.OPTION=VALUE", help="an option of --method; the options: " + _options_help("method"))
    _add_aliases(m, "method")


def _reference_flags(group) -> None:
    """--reference and the pruning settings it presets (each a flag of its own; a flag given beats the preset)."""
    group.add_argument("--reference", default="paper", choices=REFERENCE_NAMES,
                       help="paper: the paper's Algorithm 1 and this repository's choices; official: every setting in "
                            "which the authors' code differs, as it does (PROTOCOL.md §4b) (default: paper)")
    group.add_argument("--ties", default=None, choices=TIES,
                       help="equal scores: random (from the seed) or highest (the highest row index, the authors' code) "
                            "(default: the --reference's)")
    group.add_argument("--kept-rule", default=None, choices=KEPT_RULES,
                       help="rows a density keeps: round (round(d N)) or official (int(N (1 - (1 - d)))) (default: the "
                            "--reference's)")


def _option_dest(dataset: str, key: str) -> str:
    return option_flag(dataset, key)[2:].replace("-", "_")


def _data_options(args: argparse.Namespace) -> dict:
    """The dataset options given on the command line; a flag of another dataset is refused."""
    given = {(dataset, key): getattr(args, _option_dest(dataset, key))
             for dataset, entry in DATASETS.items() for key in entry.options}
    wrong = [option_flag(d, k) for (d, k), v in given.items() if v is not None and d != args.dataset]
    if wrong:
        raise ValueError(f"{', '.join(wrong)} do(es) not apply to --dataset {args.dataset}")
    options = {key: value for (dataset, key), value in given.items() if value is not None and dataset == args.dataset}
    if args.image_size is not None:
        if "image_size" not in DATASETS[args.dataset].options:
            raise ValueError(f"--image-size does not apply to --dataset {args.dataset}: it has no image_size option")
        options["image_size"] = args.image_size
    return options


def _train_config(args: argparse.Namespace) -> TrainConfig:
    # The method's own reference settings on this dataset (JTT's Waterbirds lr and wd) beat the dataset's; flags win.
    cfg = replace(default_config(args.dataset, args.model), **METHODS[args.method].train_defaults.get(args.dataset, {}))
    overrides = {
        "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "momentum": args.momentum,
        "nesterov": args.nesterov, "weight_decay": args.weight_decay, "gamma": args.gamma,
        "label_smoothing": args.label_smoothing, "augment": args.augment, "compile": args.compile,
        "milestones": None if args.milestones is None else tuple(args.milestones),
    }
    if args.crop_padding is not None and args.translate is not None:
        raise ValueError("--crop-padding and --translate are two ways to shift images: give one of them")
    shift = {}  # a shift given on the command line replaces the dataset's, whichever kind it is
    if args.crop_padding is not None:
        shift = {"crop_padding": args.crop_padding, "translate": None}
    if args.translate is not None:
        shift = {"translate": args.translate, "crop_padding": None}
    return replace(cfg, **{k: v for k, v in overrides.items() if v is not None}, **shift)


def _method_options(args: argparse.Namespace) -> dict:
    """The options of --method given on the command line; an option of another method is refused."""
    options = _registry_options(args, "method")
    other = [flag for name, _, _, flag in _given_options(args, "method") if name != args.method]
    if other:
        raise ValueError(f"{', '.join(other)} do(es) not apply to --method {args.method}: drop it or choose the "
                         "method it tunes")
    return options.get(args.method, {})


def _setup(args: argparse.Namespace) -> Setup:
    if args.dataset not in DATASETS:
        raise ValueError(f"unknown dataset {args.dataset!r}: choose one of {sorted(DATASETS)}")
    defaults = DATASETS[args.dataset].defaults
    uses_default_model = args.model is None
    args.model = args.model or defaults.model
    resolve_model(args.model)  # a clear error for an unknown name or a builder that cannot be imported
    pretrained = args.pretrained or (defaults.pretrained if uses_default_model else None)
    weights = weights_id(None if pretrained == "none" else pretrained, args.model, args.download)
    query_epochs = unique_keys("--query-epochs", args.query_epochs)
    for name in query_epochs:
        if name not in SCORERS:
            raise ValueError(f"--query-epochs names unknown scorer {name!r}: choose from {sorted(SCORERS)}")
    settings = resolve(args.reference, allocation=args.allocation, ties=args.ties, kept_rule=args.kept_rule,
                       val_split=args.val_split, recall_model=args.recall_model, schedule_rule=args.schedule_rule,
                       rotation=None if args.rotation is None else f"{args.rotation:g}")
    rotation = {"none": 0.0, "official": OFFICIAL_ROTATION.get(args.dataset, 0.0)}.get(settings["rotation"], args.rotation)
    return Setup(
        dataset=args.dataset, model=args.model, weights=weights, train=replace(_train_config(args), rotation=rotation),
        data=args.data,
        data_options=_data_options(args), imbalance=args.imbalance, split_seed=args.split_seed,
        query_inits=args.query_inits, query_epochs=query_epochs, query_augment=args.query_augment,
        recall_source=args.recall_source, recall_epochs=args.recall_epochs, min_count=args.min_count,
        recall_prior=args.recall_prior, quota_exponent=args.quota_exponent, exponent_grid=tuple(args.exponent_grid),
        **{key: value for key, value in settings.items() if key not in SCORER_SETTINGS},
        reference=args.reference, method=args.method, quota_unit=args.quota_unit,
        method_options=_method_options(args), select=args.select,
        scorer_options=with_scorer_settings(settings, _registry_options(args, "scorer")),
    )


def _runtime(args: argparse.Namespace):
    from deep.tasks import Runtime

    file = args.pretrained if args.pretrained not in (None, "imagenet", "none") else None
    return Runtime(device=args.device, download=args.download, progress=not args.no_progress,
                   checkpoint_every=args.checkpoint_every, pretrained_file=file, keep_weights=args.keep_weights)


def _note_without_model(args: argparse.Namespace, tasks: list) -> None:
    """With --keep-weights, say which final runs were found finished without a stored model (they are not retrained)."""
    from deep.evaluation import without_model

    bare = without_model(args.out, tasks) if args.keep_weights else []
    if bare:
        print(f"note: {len(bare)} final run(s) had finished without --keep-weights and store no model, e.g. "
              f"{bare[0].path}: delete them (or use a new --out) and run again to keep their weights")


def cmd_train(args: argparse.Namespace) -> int:
    """Train and evaluate one model (by default on the full data) and store it as a run."""
    from deep.inputs import kept_task, with_score_files, write_inputs
    from deep.launch import LaunchOptions, launch_local
    from deep.sweep import plan

    if args.protocol == FULL and args.density != 1.0:
        raise ValueError(f"--protocol full trains on all the data (density 1), got --density {args.density}: "
                         "choose a pruning protocol such as random or random+drop")
    RunStore(args.out)  # a store of another format or layout is refused before any data loads
    setup, inputs = with_score_files(_setup(args), args.scores, args.download)
    if args.kept is not None:
        if args.protocol != FULL or args.density != 1.0:
            raise ValueError("--kept gives the training rows itself: drop --protocol and --density")
        task, subset = kept_task(setup, args.kept, args.seed, args.download)
        inputs.append(subset)
    else:
        (task,) = plan(setup, [args.protocol], [args.density], [args.seed], download=args.download)
    write_inputs(args.out, inputs)
    launch_local([task], args.out, _runtime(args), LaunchOptions(progress=not args.no_progress))
    _note_without_model(args, [task])
    run = RunStore(args.out).read(task.config)
    metrics = run.metrics
    print(f"{run.path}: accuracy {metrics['accuracy']:.4f}, worst-class accuracy {metrics['worst_class_accuracy']:.4f}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run a grid of protocols x densities x seeds, skipping finished runs, then print the summary (mean ± std over
    seeds) and what made the runs (provenance)."""
    from deep import provenance
    from deep.inputs import with_score_files, write_inputs
    from deep.launch import LAUNCHERS, LaunchOptions
    from deep.report import format_summary, load_results
    from deep.sweep import plan

    if args.launcher == "local" and (args.workers is not None or args.runs_per_device is not None):
        raise ValueError("--workers and --runs-per-device need --launcher auto, processes or submitit (local runs "
                         "in this process)")
    bad = [arg for arg in args.slurm_args if "=" not in arg]
    if bad:
        raise ValueError(f"--slurm-args takes KEY=VALUE pairs, e.g. account=myproject, got {bad}")
    RunStore(args.out)  # a store of another format or layout is refused before any data loads
    grid = len(args.protocols) * len(args.densities) * args.seeds
    if grid > MAX_GRID:  # checked before any list of that size is built
        raise ValueError(f"--protocols x --densities x --seeds: {len(args.protocols)} x {len(args.densities)} x "
                         f"{args.seeds} = {grid:,} final runs, more than {MAX_GRID:,} in one sweep: check a smaller "
                         "grid's plan with --dry-run, then run the grid in parts into the same --out (finished runs "
                         "are never run again)")
    setup, inputs = with_score_files(_setup(args), args.scores, args.download)
    seeds = list(range(args.seeds))
    if args.dry_run:
        import json

        from deep.dry_run import dry_run

        tasks = plan(setup, args.protocols, args.densities, seeds, read_data=False)
        print(json.dumps(dry_run(setup, tasks, args.protocols), indent=2))
        return 0
    tasks = plan(setup, args.protocols, args.densities, seeds, download=args.download)
    write_inputs(args.out, inputs)
    options = LaunchOptions(
        workers=args.workers, runs_per_device=args.runs_per_device, progress=not args.no_progress,
        cluster=args.submitit_cluster, partition=args.partition,
        time_min=args.time, gpus_per_task=args.gpus_per_task, cpus_per_task=args.cpus_per_task, mem_gb=args.mem,
        array_parallelism=args.array_parallelism, log_dir=args.slurm_log_dir,
        slurm_args=unique_keys("--slurm-args", [tuple(arg.split("=", 1)) for arg in args.slurm_args]),
    )
    LAUNCHERS[args.launcher](tasks, args.out, _runtime(args), options)
    _note_without_model(args, tasks)
    rows = load_results(args.out)
    print(format_summary(rows))
    print(provenance.printed(args.out, rows))
    print(f"\nEvery run: python -m deep report {args.out}; figures: python -m deep report {args.out} --out DIR")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Print a table of every finished run; with --out, also write the figures and summary tables."""
    from pathlib import Path

    from deep import provenance
    from deep.outputs import check_outside_store, staged_folder
    from deep.report import format_table, load_results, write_report

    if args.out:
        check_outside_store("--out", args.out, args.runs)
    rows = load_results(args.runs)
    print(format_table(rows))
    print(provenance.printed(args.runs, rows))
    if args.out:
        with staged_folder(args.out) as stage:  # a report that fails half-way leaves no partial output
            written = write_report(args.runs, stage)
        for path in written:
            print(f"wrote {Path(args.out) / path.relative_to(stage)}")
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    """Choose the rows a protocol keeps of your own labels (and scores, recalls, groups); write their indices."""
    from deep.numbers import as_float
    from deep.outputs import check_not_an_input
    from deep.prune import keep, recalls_from_predictions, zero_quota_units, zero_quota_warning
    from deep.vectors import read_labels, read_vector, write_vector

    check_not_an_input("--out", args.out, {flag: getattr(args, flag[2:].replace("-", "_")) for flag in (
        "--labels", "--scores", "--recalls", "--val-labels", "--val-predictions", "--groups")})
    labels = read_labels(args.labels, "--labels")
    groups = None if args.groups is None else read_labels(args.groups, "--groups")
    scores = None
    if args.scores is not None:
        scores, ids = read_vector(args.scores, "--scores")
        scores = as_float(scores, f"--scores {args.scores}")
        if ids is not None:
            raise ValueError("--scores by sample id needs a dataset to look the ids up: give one score per row here, "
                             "in the order of --labels")
    if args.recalls is not None and args.val_labels is not None:
        raise ValueError("give --recalls, or --val-labels with --val-predictions, not both")
    recalls = None
    if args.recalls is not None:
        recalls = as_float(read_vector(args.recalls, "--recalls")[0], f"--recalls {args.recalls}")
        if recalls.size and not (recalls.min() >= 0 and recalls.max() <= 1):
            raise ValueError(f"--recalls {args.recalls}: holds {recalls[(recalls < 0) | (recalls > 1)][0]}; "
                             "recalls are fractions in [0, 1]")
    elif args.val_labels is not None or args.val_predictions is not None:
        if args.val_labels is None or args.val_predictions is None:
            raise ValueError("--val-labels and --val-predictions go together: the true and predicted validation labels")
        units = groups if groups is not None else labels
        recalls = recalls_from_predictions(read_labels(args.val_labels, "--val-labels"),
                                           read_labels(args.val_predictions, "--val-predictions"), int(units.max()) + 1)
    kept = keep(labels, args.density, args.protocol, scores=scores, recalls=recalls, groups=groups,
                allocation=args.allocation, min_count=args.min_count, seed=args.seed, exponent=args.quota_exponent,
                reference=args.reference, ties=args.ties, kept_rule=args.kept_rule)
    write_vector(args.out, kept, "index")
    units = labels if groups is None else groups
    name = "class" if groups is None else "group"
    counts = np.bincount(units[kept], minlength=int(units.max()) + 1)
    starved = zero_quota_units(units, kept, counts.size, args.min_count)
    if starved:
        print(zero_quota_warning(name, starved, counts, recalls, None), file=sys.stderr)
    sizes = np.bincount(units, minlength=counts.size)
    print(f"kept {kept.size} of {labels.size} rows ({args.protocol}, density {args.density}) -> {args.out}")
    for unit, (count, size) in enumerate(zip(counts, sizes)):
        print(f"  {name} {unit}: {count} of {size}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Test every final run of a store that kept its model (--keep-weights) on the test split of its own dataset, or
    of --dataset/--data with the same classes (e.g. a shifted test set); each evaluation is stored as a task of its
    own (kind `evaluation`), so evaluating again is a lookup."""
    from deep.evaluation import dataset_key, evaluate_store, format_evaluations
    from deep.launch import LaunchOptions, launch_local
    from deep.tasks import Runtime

    if args.dataset is None and (args.data is not None or args.split_seed is not None):
        raise ValueError("--data and --split-seed name another test set: give its --dataset too")
    key = None if args.dataset is None else dataset_key(args.dataset, args.data, args.split_seed or 0)
    tasks, skipped = evaluate_store(args.runs, key)
    if skipped:
        print(f"{len(skipped)} final run(s) stored no model (trained without --keep-weights): not evaluated")
    runtime = Runtime(device=args.device, download=args.download, progress=not args.no_progress)
    launch_local(tasks, args.runs, runtime, LaunchOptions(progress=not args.no_progress))
    print(format_evaluations(args.runs, tasks))
    return 0


def cmd_export_scores(args: argparse.Namespace) -> int:
    """Write the scores, recalls and kept indices of a run store to shareable files (load them with deep.export.load_export)."""
    from deep.export import export_store

    print(f"wrote {export_store(args.runs, args.out)}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Report every problem of a run store, one line each (damaged tasks, stale claims, temporary files of dead
    writers, missing inputs); with --fix, repair what can be repaired. Exit status 0 when no problem is left,
    3 when some are (2: not a run store; 1: an unexpected error)."""
    from deep.check import check_store

    result = check_store(args.runs, fix=args.fix, progress=not args.no_progress)
    print("\n".join(result.lines()))
    return 3 if result.remaining else 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `python -m deep`."""
    parser = argparse.ArgumentParser(
        prog="python -m deep",
        description="Distributionally robust data pruning on real networks: score, prune with class quotas "
        "(DRoP), train, and measure average, worst-class and worst-group accuracy.",
    )
    add_version_flag(parser)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OnceParser)

    p = sub.add_parser("train", help="train and evaluate one model", description=cmd_train.__doc__)
    _add_setup(p)
    p.add_argument("--seed", type=NON_NEGATIVE_INT, default=0, help="seed of the model init, batches and pruning (default: 0)")
    p.add_argument("--protocol", default=FULL, help="pruning protocol (default: full, no pruning); see `sweep --help`")
    p.add_argument("--density", type=DENSITY, default=1.0, help="fraction of the training set kept, in (0, 1] (default: 1)")
    p.add_argument("--kept", default=None, metavar="FILE",
                   help="train on exactly these rows of the training split: row numbers (.npy, or one per line), or "
                        "sample ids under a header line `id` (export-scores writes both); the run's protocol is "
                        "`subset`")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "sweep", help="run a pruning grid", description=cmd_sweep.__doc__,
        epilog="Protocols, for a scorer S in " + ", ".join(sorted(SCORERS)) + ": full (no pruning), random "
        "(uniform), S (globally top-scored), random+Sq (S's class counts, random inside classes), S+drop (DRoP's "
        "class counts, top-scored inside), random+drop (DRoP's class counts, random inside: the paper's method).",
    )
    _add_setup(p)
    p.add_argument("--protocols", nargs="+", action="extend", default=DEFAULT_PROTOCOLS,
                   help=f"protocols to run (default: {' '.join(DEFAULT_PROTOCOLS)})")
    p.add_argument("--densities", type=DENSITY, nargs="+", action="extend", default=DEFAULT_DENSITIES,
                   help="densities d in (0, 1] (default: 0.1 ... 0.9)")
    p.add_argument("--seeds", type=POSITIVE_INT, default=3, help="number of seeds, run as 0 .. N-1 (default: 3)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the fully resolved plan as JSON (settings, every query and final task with its epochs, "
                        "the total in full-data-epoch equivalents) without reading data or training anything")
    from deep.launch import LAUNCHERS

    w = p.add_argument_group("workers (they share only the run store: any number may run one sweep, and a "
                             "killed one's runs are taken over)")
    w.add_argument("--launcher", default=os.environ.get("DROP_LAUNCHER", "auto"), choices=list(LAUNCHERS),
                   help="auto: processes when this machine would run more than one worker (several GPUs or CPU "
                        "cores), else local; local: this process; processes: worker processes on this machine; "
                        "submitit: a SLURM job array of --workers jobs (default: $DROP_LAUNCHER, else auto)")
    w.add_argument("--workers", type=POSITIVE_INT, default=None, metavar="N",
                   help="processes: worker processes in all, dealt round-robin over the visible GPUs (default: "
                        "--runs-per-device per GPU, else one per CPU core); submitit: jobs in the array (required)")
    w.add_argument("--runs-per-device", type=POSITIVE_INT, default=None, metavar="K",
                   help="K workers share each visible GPU (processes: K per GPU; submitit: K per GPU of each job), "
                        "or K CPU workers without a GPU (default: 1 per GPU, else one per CPU core, each with one "
                        "torch thread)")
    slurm = p.add_argument_group("SLURM job array (with --launcher submitit; each job runs --runs-per-device "
                                 "workers per GPU)")
    slurm.add_argument("--partition", default=None, help="SLURM partition (default: the cluster's default)")
    slurm.add_argument("--time", type=POSITIVE_INT, default=24 * 60, metavar="MINUTES",
                   help="time limit of each job; a job that reaches it is requeued and resumes (default: 1440)")
    slurm.add_argument("--gpus-per-task", type=NON_NEGATIVE_INT, default=1, help="GPUs per job (default: 1)")
    slurm.add_argument("--cpus-per-task", type=POSITIVE_INT, default=None, help="CPU cores per job, also its torch threads")
    slurm.add_argument("--mem", type=POSITIVE, default=None, metavar="GB", help="memory per job in GB")
    slurm.add_argument("--array-parallelism", type=POSITIVE_INT, default=None, metavar="N",
                   help="at most this many jobs of the array run at once (default: submitit's, 256)")
    slurm.add_argument("--slurm-log-dir", default=None, metavar="DIR",
                   help="folder of the jobs' scripts, logs and pickles (default: <out>/_slurm)")
    slurm.add_argument("--slurm-args", nargs="*", action="extend", default=[], metavar="KEY=VALUE",
                   help="more sbatch options, e.g. account=myproject qos=high constraint=a100")
    slurm.add_argument("--submitit-cluster", default="slurm", choices=["slurm", "local"],
                   help="slurm, or local to run the same job array as processes on this machine (default: slurm)")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("report", help="tables and figures from a run store", description=cmd_report.__doc__)
    p.add_argument("runs", help="run store folder")
    p.add_argument("--out", type=output_folder, default=None, metavar="DIR", help="write figures and summary tables here")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser(
        "prune", help="the rows a protocol keeps of your own labels and scores (numpy only, no training)",
        description=cmd_prune.__doc__,
        epilog="Files: .npy, .csv or .txt with one value per row (a one-word header line is skipped). Protocols: "
        "random, random+drop, and for your score named S: S (top-scored), random+Sq (S's class counts, random "
        "inside), S+drop (DRoP's counts, top-scored inside); higher score = kept first. The same as "
        "deep.prune.keep in Python.",
    )
    p.add_argument("--labels", required=True, metavar="FILE", help="the class label of every training row")
    p.add_argument("--density", required=True, type=DENSITY, help="fraction of the rows to keep, in (0, 1]")
    p.add_argument("--protocol", required=True, help="random, random+drop, S, random+Sq or S+drop")
    p.add_argument("--scores", default=None, metavar="FILE", help="one score per row (higher = harder = kept first)")
    p.add_argument("--recalls", default=None, metavar="FILE", help="DRoP: one validation recall per class (or group)")
    p.add_argument("--val-labels", default=None, metavar="FILE",
                   help="DRoP: true labels of a validation set (with --val-predictions, instead of --recalls)")
    p.add_argument("--val-predictions", default=None, metavar="FILE", help="DRoP: a model's predictions on it")
    p.add_argument("--groups", default=None, metavar="FILE",
                   help="a group id per row: quotas over groups instead of classes (recalls then per group)")
    p.add_argument("--allocation", default=None, choices=ALLOCATIONS,
                   help="DRoP's allocation: density, official or count (default: the --reference's)")
    _reference_flags(p)
    p.add_argument("--quota-exponent", type=QUOTA_EXPONENT, default=Quotas.exponent, metavar="BETA",
                   help="DRoP: density proportional to error ** BETA (default: 1)")
    p.add_argument("--min-count", type=NON_NEGATIVE_INT, default=Quotas.min_count, help="DRoP keeps at least this many rows per unit (default: 0)")
    p.add_argument("--seed", type=NON_NEGATIVE_INT, default=0, help="seed of the random choices (default: 0)")
    p.add_argument("--out", required=True, metavar="FILE", help="where to write the kept row indices (.npy or .csv)")
    p.set_defaults(func=cmd_prune)

    p = sub.add_parser("evaluate", help="test the stored models of final runs, on their data or on other data",
                       description=cmd_evaluate.__doc__)
    p.add_argument("runs", help="run store folder")
    p.add_argument("--dataset", default=None, help=f"test on this dataset's test split, one of {sorted(DATASETS)} "
                   "(default: each run's own dataset)")
    p.add_argument("--data", default=None, metavar="PATH", help="file or folder of --dataset")
    p.add_argument("--split-seed", type=NON_NEGATIVE_INT, default=None,
                   help="seed of --dataset's validation/test halving (default: 0)")
    p.add_argument("--device", type=_device, default=None, help="cpu, cuda, cuda:1, ... (default: cuda when available)")
    p.add_argument("--download", action="store_true", help="download --dataset into --data when it is missing")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("export-scores", help="export scores and kept indices to shareable files",
                       description=cmd_export_scores.__doc__)
    p.add_argument("runs", help="run store folder")
    p.add_argument("--out", type=output_folder, required=True, metavar="DIR",
                   help="export folder: manifest.json, scores/<hash>.npz per query stage, kept/<hash>.npz per run")
    p.set_defaults(func=cmd_export_scores)

    p = sub.add_parser("check", help="report (and with --fix repair) every problem of a run store",
                       description=cmd_check.__doc__)
    p.add_argument("runs", help="run store folder")
    p.add_argument("--fix", action="store_true",
                   help="mark damaged tasks unfinished (the next sweep recomputes them), delete stale claims and "
                        "temporary files of dead writers, write a missing store.json")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=cmd_check)
    add_debug_flag(parser, sub.choices.values())
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse and run, returning the exit status: 2 with one line for a value argparse refuses or an error
    the user can fix, 1 with one line naming the command for any other error (--debug adds the traceback)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit:  # argparse has printed its message (or the help)
        return exit.code
    with streamed(getattr(args, "stream", False)):  # worker processes inherit it through the environment
        return run_command(lambda: args.func(args), f"python -m deep {args.command}", USER_ERRORS, args.debug)

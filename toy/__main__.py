"""Command line: `python -m toy figures --out DIR` draws the paper's two-Gaussian figures and beta*."""

from __future__ import annotations

import argparse
from pathlib import Path

from toy.commandline import add_debug_flag, add_version_flag, number, output_folder, run_command
from toy.figures import FIGURES, FigureSettings, make_figures


def build_parser() -> argparse.ArgumentParser:
    """The `python -m toy` argument parser with its subcommands."""
    parser = argparse.ArgumentParser(
        prog="python -m toy",
        description="Theory of distributionally robust data pruning on a mixture of two 1-D Gaussians.",
    )
    add_version_flag(parser)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    defaults = FigureSettings()
    figures = commands.add_parser(
        "figures",
        help="draw the paper's Gaussian figures and beta* (PNG + JSON of the numbers behind each)",
        description="Draw the two-Gaussian figures of paper 003 (theory, Figure 3, Figure 4(a), Figure 4(b)) and beta* "
        "(exact_exponent: the quota exponent that makes DRoP's proxy exact), and the beta the validation rule of "
        "--quota-exponent auto chooses on Monte Carlo datasets against beta* (selected_exponent); "
        "each is written as NAME.png plus NAME.json holding the numbers it was drawn from.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    figures.add_argument("--out", type=output_folder, default="figures", help="directory to write into (created if missing)")
    figures.add_argument("--seed", type=number(int, 0), default=defaults.seed,
                         help="seed of every random draw (same seed, same figures)")
    figures.add_argument("--datasets", type=number(int, 1), default=defaults.datasets,
                         help="number of sampled datasets pruned and fitted in Figures 3 and 4(b)")
    figures.add_argument("--points", type=number(int, 2), default=defaults.points,
                         help="points per sampled dataset in Figures 3 and 4(b) (at least 2)")
    figures.add_argument("--models", type=number(int, 1), default=defaults.models,
                         help="number of random mixtures drawn for Figure 4(a)")
    figures.add_argument("--only", nargs="+", choices=list(FIGURES), metavar="NAME",
                         help=f"draw only these figures, among: {', '.join(FIGURES)} (default: all)")
    figures.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    add_debug_flag(parser, commands.choices.values())
    return parser


def _figures(args: argparse.Namespace) -> int:
    settings = FigureSettings(seed=args.seed, datasets=args.datasets, points=args.points, models=args.models,
                              progress=not args.no_progress)
    for path in make_figures(Path(args.out), settings, args.only):
        print(path)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 and one line for a bad value, 1 and one line for any other
    error, --debug adds the traceback)."""
    args = build_parser().parse_args(argv)
    return run_command(lambda: _figures(args), "python -m toy figures", (ValueError,), args.debug)


if __name__ == "__main__":
    raise SystemExit(main())

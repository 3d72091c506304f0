"""Issue 23's claim, measured: Random+DRoP with `--quota-exponent auto --recall-prior auto` against random pruning and
against the paper's beta = 1, at every density 0.1 ... 0.9 with 3 seeds, on the main job (MNIST-1D, mlp, class
quotas) and on spurious_digits (mlp, group quotas, worst-group accuracy), plus what the selection costs.

One store per dataset under --store (default benchmarks/.auto_exponent, reused: finished tasks never train again).
Goal: auto >= random on worst-class (worst-group) accuracy at every density (mean over seeds), and >= beta = 1 on
both metrics wherever beta = 1 loses to random. Prints a markdown table per dataset and each density where the goal
fails. Run from the repository root: `nice -n 5 python benchmarks/auto_exponent.py` (`--quick`: 2 densities, 1 seed).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deep.runs import RunStore  # noqa: E402

DENSITIES = ["0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9"]
CASES = {  # name: (sweep arguments, the worst-unit metric)
    "mnist1d": ([], "worst_class_accuracy"),
    "spurious_digits": (["--dataset", "spurious_digits", "--model", "mlp", "--quota-unit", "group"],
                        "worst_group_accuracy"),
}
AUTO = ["--quota-exponent", "auto", "--recall-prior", "auto"]


def deep(*args: str, cwd: Path) -> tuple[float, str]:
    """`python -m deep ...` in `cwd` with this checkout first on the path: wall seconds and standard output."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "deep", *args], cwd=cwd, env=env, check=True, capture_output=True,
                          text=True)
    return time.perf_counter() - start, done.stdout


def line(config: dict) -> str | None:
    """random, beta=1 or auto: the line of the comparison a final run belongs to."""
    if config["protocol"] == "random":
        return "random"
    if config["protocol"] == "random+drop":
        return "auto" if config.get("quota_exponent") == "auto" else "beta=1" if config["quota_exponent"] == 1.0 else None
    return None


def table(store: Path, metric: str) -> tuple[list[dict], dict]:
    """Per density: mean over seeds of worst and average accuracy for each line, the chosen betas; and the costs."""
    cells: dict[tuple[str, float], list[dict]] = {}
    for run in RunStore(store).runs("final"):
        name = line(run.config)
        if name is not None:
            cells.setdefault((name, run.config["density"]), []).append(run.metrics)
    rows = []
    for d in sorted({d for _, d in cells}):
        row = {"density": d}
        for name in ("random", "beta=1", "auto"):
            ms = cells.get((name, d), [])
            row[name] = {"worst": float(np.mean([m[metric] for m in ms])) if ms else float("nan"),
                         "average": float(np.mean([m["accuracy"] for m in ms])) if ms else float("nan"),
                         "seeds": len(ms)}
        row["chosen"] = [(m["quota_exponent"], m["recall_prior"]) for m in cells.get(("auto", d), [])]
        rows.append(row)
    seconds = {kind: sum(r.metrics.get("train_seconds", 0.0) for r in RunStore(store).runs(kind))
               for kind in ("selection", "final")}
    return rows, seconds


def goal_failures(rows: list[dict]) -> list[str]:
    """Every density where auto < random on worst, or where beta = 1 loses to random and auto < beta = 1."""
    out = []
    for row in rows:
        r, b, a = row["random"], row["beta=1"], row["auto"]
        if a["worst"] < r["worst"]:
            out.append(f"d={row['density']:g}: auto worst {a['worst']:.3f} < random {r['worst']:.3f}")
        if (b["worst"] < r["worst"] or b["average"] < r["average"]) and (
                a["worst"] < b["worst"] or a["average"] < b["average"]):
            out.append(f"d={row['density']:g}: beta=1 loses to random and auto ({a['average']:.3f} / {a['worst']:.3f}) "
                       f"is below beta=1 ({b['average']:.3f} / {b['worst']:.3f}) on a metric")
    return out


def markdown(rows: list[dict]) -> str:
    """The README table: average / worst per line and density, the betas chosen (seed by seed)."""
    out = ["| d | random | β = 1 | auto | β chosen (α) |", "| --- | --- | --- | --- | --- |"]
    for row in rows:
        cells = [f"{row[n]['average']:.3f} / {row[n]['worst']:.3f}" for n in ("random", "beta=1", "auto")]
        chosen = ", ".join(f"{b:g} ({a:g})" for b, a in row["chosen"])
        out.append(f"| {row['density']:g} | " + " | ".join(cells) + f" | {chosen} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """Run (or resume) both comparisons and print their tables, the goal's failures and the selection's cost."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, default=ROOT / "benchmarks" / ".auto_exponent")
    parser.add_argument("--quick", action="store_true", help="two densities, one seed (a smoke run)")
    parser.add_argument("--only", choices=list(CASES), nargs="*", default=list(CASES))
    args = parser.parse_args(argv)
    grid = ["--densities", "0.2", "0.6", "--seeds", "1"] if args.quick else ["--densities", *DENSITIES, "--seeds", "3"]
    args.store.mkdir(parents=True, exist_ok=True)
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs (shared with other jobs)")
    for name in args.only:
        extra, metric = CASES[name]
        store = args.store / name
        base = ["sweep", *extra, *grid, "--out", str(store), "--no-progress", "--protocols"]
        plan = json.loads(deep("sweep", "--dry-run", *extra, *grid, *AUTO, "--protocols", "random", "random+drop",
                               cwd=args.store)[1])
        walls = [deep(*base, "random", "random+drop", cwd=args.store)[0],
                 deep(*base, "random+drop", *AUTO, cwd=args.store)[0]]
        rows, seconds = table(store, metric)
        print(f"\n## {name} ({metric}; average / worst, mean over seeds)\n\n{markdown(rows)}\n")
        print(f"selection tasks {plan['counts']['selection']}, at most "
              f"{sum(t['full_data_epochs'] for t in plan['tasks'] if t['kind'] == 'selection'):.1f} full-data epochs "
              f"against {sum(t['full_data_epochs'] for t in plan['tasks'] if t['kind'] == 'final'):.1f} for the final "
              f"runs of random and auto (selection_to_final_epochs {plan['selection_to_final_epochs']})")
        print(f"measured training seconds: selection {seconds['selection']:.1f}, final runs {seconds['final']:.1f}; "
              f"sweep walls {walls[0]:.0f} s (random, beta=1), {walls[1]:.0f} s (auto)")
        failures = goal_failures(rows)
        print("goal met at every density" if not failures else "goal fails:\n  " + "\n  ".join(failures))
        (args.store / f"{name}.json").write_text(json.dumps({"rows": rows, "seconds": seconds, "failures": failures},
                                                            indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

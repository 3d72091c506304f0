"""Benchmark: GraNd batched (deep.scores.grand: layer-wise closed forms, torch.func as fallback) against a per-sample autograd loop.

Both compute the per-sample gradient norm of the cross-entropy w.r.t. all parameters, in eval mode, on the
same model and data; the goal is that the batched version is at least 5x faster. Run from the repository
root: `python -m benchmarks.grand_speed` (or `python benchmarks/grand_speed.py`), `--help` for options.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from deep.models import build_model  # noqa: E402
from deep.scores.grand import gradient_norms  # noqa: E402

GOAL = 5.0  # required speed-up of the batched version over the loop


def loop_gradient_norms(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """Reference: one forward and backward per sample (eval mode), norm over all parameter gradients."""
    model.eval()
    params = list(model.parameters())
    norms = []
    for xi, yi in zip(x, y):
        grads = torch.autograd.grad(F.cross_entropy(model(xi[None]), yi[None]), params)
        norms.append(torch.sqrt(sum(g.pow(2).sum() for g in grads)))
    return torch.stack(norms).double().cpu().numpy()


def timed(fn: Callable[[], np.ndarray], device: torch.device) -> tuple[float, np.ndarray]:
    """Seconds taken by `fn()` (device synchronised) and its result."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, out


def header(device: torch.device) -> str:
    """Hardware, versions and date, printed before any timing."""
    lines = [
        f"date: {datetime.datetime.now().isoformat(timespec='seconds')}",
        f"platform: {platform.platform()} ({platform.processor() or platform.machine()})",
        f"python: {platform.python_version()}, torch: {torch.__version__}",
        f"cpu count: {os.cpu_count()}, torch threads: {torch.get_num_threads()}",
        f"device: {torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}",
    ]
    return "\n".join(lines)


def bench(name: str, shape: tuple[int, ...], classes: int, samples: int, device: torch.device, seed: int) -> float:
    """Time both methods on `samples` random inputs of `shape` for model `name`; print and return the speed-up."""
    torch.manual_seed(seed)
    model = build_model(name, classes, shape).to(device)
    x = torch.randn(samples, *shape, device=device)
    y = torch.randint(classes, (samples,), device=device)
    identity = lambda b: b  # noqa: E731  (inputs are already normalised and on the device)
    gradient_norms(model, x[:4], y[:4], identity)  # warm-up: first-call overheads of torch.func and the kernels
    loop_gradient_norms(model, x[:4], y[:4])
    batched_s, batched = timed(lambda: gradient_norms(model, x, y, identity), device)
    loop_s, looped = timed(lambda: loop_gradient_norms(model, x, y), device)
    ratio = loop_s / batched_s
    params = sum(p.numel() for p in model.parameters())
    agree = np.max(np.abs(batched - looped) / np.maximum(np.abs(looped), 1e-12))
    print(
        f"{name:>4} {str(shape):>12} params={params:>8} n={samples}: batched {batched_s:7.3f} s, "
        f"loop {loop_s:7.3f} s, speed-up {ratio:6.1f}x  max rel diff {agree:.1e}  "
        f"{'PASS' if ratio >= GOAL else 'FAIL'} (goal >= {GOAL:g}x)"
    )
    return ratio


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit status 1 if any model misses the goal."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=512, help="number of random samples scored (default 512)")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default cpu)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the model and the random data")
    args = parser.parse_args(argv)
    if args.samples < 1:
        raise ValueError(f"--samples must be >= 1, got {args.samples}")
    device = torch.device(args.device)
    print(header(device))
    ratios = [
        bench("cnn", (3, 32, 32), 10, args.samples, device, args.seed),  # CIFAR-sized images
        bench("mlp", (64,), 10, args.samples, device, args.seed),  # digits-sized features
    ]
    return 0 if min(ratios) >= GOAL else 1


if __name__ == "__main__":
    raise SystemExit(main())

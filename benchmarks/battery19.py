"""The hostile inputs of issue 19, each run as a subprocess against a checkout, and what became of each.

    python benchmarks/battery19.py CHECKOUT [--only TEXT] [--timeout S]

Every case runs in a fresh folder, as `python -m deep ...` or as a short Python snippet against the checkout's own
API (PYTHONPATH=CHECKOUT), under a memory cap (RLIMIT_AS) and a time limit. Outcomes:
  clean        refused with exit status 2 and one line naming what the case says it must name, or the right result
  unclear      refused, but the message lacks the flag, file, value or cause; or an unexpected one-line failure
  traceback    a Python traceback reached the user
  silent wrong exit status 0 with a wrong result, or a bad input accepted
  lost         an input file was changed or destroyed
  hang         still running at the time limit (a wait that announces its bound is not a hang)
Prints one line per case and a table of counts. The API snippets turn a ValueError into one line and exit status 2,
as the command lines' handler does, so both checkouts are judged alike.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

OUTCOMES = ("clean", "unclear", "traceback", "silent wrong", "lost", "hang")
MEMORY_CAP = 6 * 2**30
TINY = ["--dataset", "digits", "--model", "mlp", "--epochs", "2", "--query-inits", "1", "--densities", "0.5",
        "--seeds", "1", "--no-progress", "--protocols", "random", "el2n+drop", "--launcher", "local"]
DRY = ["sweep", "--dataset", "digits", "--model", "mlp", "--no-progress", "--dry-run", "--out", "runs"]


@dataclass
class Case:
    """One hostile input: files to write, the command, and what a clean outcome is."""

    name: str
    kind: str
    command: list[str]  # arguments of python: ["-m", "deep", ...] or ["-c", code]
    setup: Callable[[Path], None] = lambda folder: None
    named: tuple[str, ...] = ()  # a refusal must name each of these; empty: the command must succeed
    right: Callable[[str, Path], bool] | None = None  # success: is the result right (stdout, folder)?
    inputs: tuple[str, ...] = ()  # files that must come out unchanged
    store: bool = False  # needs a copy of a finished tiny store as ./runs
    announced: str = ""  # a time-out whose stderr says this is a bounded, announced wait, not a hang
    timeout: float | None = None
    refused: int = 2  # the exit status of a refusal (check: 3, problems reported on stdout)


def api(body: str) -> list[str]:
    """A snippet run like a command line: a ValueError becomes one line and exit status 2."""
    code = "import sys\ntry:\n" + textwrap.indent(textwrap.dedent(body), "    ") + (
        "\nexcept ValueError as error:\n    print('error:', str(error).splitlines()[0], file=sys.stderr)\n"
        "    sys.exit(2)\n")
    return ["-c", code]


def save(name: str, array: np.ndarray) -> Callable[[Path], None]:
    return lambda folder: np.save(folder / name, array, allow_pickle=False)


def npz(**arrays: np.ndarray) -> Callable[[Path], None]:
    return lambda folder: np.savez(folder / "data.npz", **arrays)


def lying_npy(folder: Path, name: str = "labels.npy") -> None:
    """A .npy whose header promises 10**11 float64 values and holds 80 bytes."""
    with open(folder / name, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False, "shape": (10**11,)})
        f.write(b"\0" * 80)


def lying_npz(folder: Path) -> None:
    import io
    import zipfile

    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "<f4", "fortran_order": False, "shape": (10**6, 10**5)})
    buffer.write(b"\0" * 80)
    with zipfile.ZipFile(folder / "data.npz", "w") as archive:
        archive.writestr("X.npy", buffer.getvalue())
        y = io.BytesIO()
        np.save(y, np.zeros(10, dtype=np.int64))
        archive.writestr("y.npy", y.getvalue())


def labels_and(folder: Path, extra: Callable[[Path], None] | None = None) -> None:
    np.save(folder / "labels.npy", np.repeat(np.arange(3), 20))
    np.save(folder / "scores.npy", np.linspace(0, 1, 60))
    np.save(folder / "recalls.npy", np.array([0.5, 0.8, 0.9]))
    if extra is not None:
        extra(folder)


PRUNE = ["-m", "deep", "prune", "--labels", "labels.npy", "--density", "0.5", "--out", "kept.npy"]
GOOD_NPZ = {"X": np.random.default_rng(0).normal(size=(60, 4)), "y": np.repeat(np.arange(3), 20)}
LOAD_NPZ = api("from deep.data.npz import load_npz\nraw = load_npz('data.npz')\nprint(len(raw.train), raw.classes)")


def image(make: Callable[[], Image.Image], suffix: str = ".png") -> Callable[[Path], None]:
    return lambda folder: make().save(folder / f"image{suffix}")


def decoded(suffix: str = ".png") -> list[str]:
    return api(f"import numpy as np\nfrom deep.data.images import decode\n"
               f"a = np.asarray(decode('image{suffix}'))\nprint(a.shape, a.reshape(-1, 3).tolist())")


def palette(folder: Path) -> None:
    img = Image.new("P", (2, 1))
    img.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    img.putpixel((1, 0), 1)
    img.save(folder / "image.png", transparency=0)


def rotated(folder: Path) -> None:
    img = Image.new("RGB", (2, 1))
    img.putpixel((0, 0), (255, 0, 0))
    img.putpixel((1, 0), (0, 0, 255))
    exif = Image.Exif()
    exif[0x0112] = 6
    img.save(folder / "image.png", exif=exif)


def tree(folder: Path, link: Callable[[Path], None]) -> None:
    """root/train/<a|b>/<i>.png, two solid colours, then `link` makes a link inside."""
    for name, colour in (("a", (200, 0, 0)), ("b", (0, 0, 200))):
        (folder / "root" / "train" / name).mkdir(parents=True)
        for i in range(4):
            Image.new("RGB", (4, 4), colour).save(folder / "root" / "train" / name / f"{i}.png")
    link(folder / "root" / "train")


LOAD_FOLDER = api("import os\nos.environ['DROP_CACHE'] = os.path.abspath('cache')\n"
                  "from deep.data.imagefolder import load_imagefolder\nraw = load_imagefolder('root')\n"
                  "print(len(raw.train) + len(raw.test), raw.classes)")


CHECKOUT = Path(".")  # the checkout under test, set by main


def store_format() -> int:
    """The run-store format the checkout under test writes (a store of another format is refused before any check)."""
    import re

    return int(re.search(r"^FORMAT = (\d+)", (CHECKOUT / "deep" / "runs.py").read_text(), re.M).group(1))


def future_claim(folder: Path, owner: str = "abc otherhost 1") -> None:
    (folder / "store" / "final" / "0123456789abcdef").mkdir(parents=True)
    (folder / "store" / "store.json").write_text(json.dumps({"format": store_format()}))
    claim = folder / "store" / "final" / "0123456789abcdef" / "claim"
    claim.write_text(owner + "\n")
    ahead = time.time() + 86400
    os.utime(claim, (ahead, ahead))


def skew_a_final_claim(folder: Path) -> None:
    """A final run of the tiny store unfinished again and claimed by a node whose clock is a day ahead."""
    final = next(p for p in sorted((folder / "runs" / "final").iterdir())
                 if json.loads((p / "config.json").read_text()).get("protocol") == "random")
    (final / "done").unlink()
    (final / "claim").write_text("abc otherhost 1\n")
    ahead = time.time() + 86400
    os.utime(final / "claim", (ahead, ahead))


def sleeping_owner_claim(folder: Path) -> None:
    import socket

    sleeper = subprocess.Popen(["sleep", "120"], start_new_session=True)
    (folder / "sleeper.pid").write_text(str(sleeper.pid))
    deadline = time.monotonic() + 5
    while not Path(f"/proc/{sleeper.pid}/cmdline").read_bytes() and time.monotonic() < deadline:
        time.sleep(0.02)
    future_claim(folder, f"abc {socket.gethostname()} {sleeper.pid}")
    claim = folder / "store" / "final" / "0123456789abcdef" / "claim"
    os.utime(claim, None)  # a fresh date: only its owner tells it is not a worker's


def case_list() -> list[Case]:
    """Every hostile input of this battery."""
    bad_labels = lambda array: (lambda f: labels_and(f, save("labels.npy", array)))  # noqa: E731
    bad_scores = lambda array: (lambda f: labels_and(f, save("scores.npy", array)))  # noqa: E731
    scores_run = [*PRUNE, "--protocol", "s", "--scores", "scores.npy"]
    drop_run = [*PRUNE, "--protocol", "random+drop", "--recalls", "recalls.npy"]
    return [
        # numbers read from outside
        Case("prune: bool labels", "numbers", PRUNE + ["--protocol", "random"], bad_labels(np.arange(60) % 2 == 0),
             ("--labels", "labels.npy", "bool")),
        Case("prune: complex labels", "numbers", PRUNE + ["--protocol", "random"],
             bad_labels(np.repeat(np.arange(3), 20) + 0j), ("--labels", "labels.npy", "complex")),
        Case("prune: complex scores", "numbers", scores_run, bad_scores(np.linspace(0, 1, 60) * (1 + 1j)),
             ("--scores", "scores.npy", "complex")),
        Case("prune: scores as strings", "numbers", scores_run, bad_scores(np.array([f"{v}" for v in range(60)])),
             ("--scores", "scores.npy", "string")),
        Case("prune: uint64 label 2**64-1", "numbers", PRUNE + ["--protocol", "random"],
             bad_labels(np.array([0, 1, 2**64 - 1] * 20, dtype=np.uint64)), ("--labels", "18446744073709551615")),
        Case("prune: label 10**12", "numbers", PRUNE + ["--protocol", "random"],
             bad_labels(np.array([0, 1, 10**12] * 20)), ("--labels", "labels.npy", "1000000000000")),
        Case("prune: longdouble score 1e400", "numbers", scores_run,
             bad_scores(np.full(60, np.longdouble("1e400"))), ("--scores", "scores.npy", "overflows")),
        Case("prune: csv score 1e400", "numbers", [*PRUNE[:-1], "kept.npy", "--protocol", "s", "--scores", "s.csv"],
             lambda f: (labels_and(f), (f / "s.csv").write_text("score\n" + "1e400\n" * 60)),
             ("--scores", "s.csv", "overflows")),
        Case("prune: npy header promises 745 GiB", "numbers", PRUNE + ["--protocol", "random"],
             lambda f: (labels_and(f), lying_npy(f)), ("--labels", "labels.npy", "header")),
        Case("prune: recall 1.5", "numbers", drop_run,
             lambda f: labels_and(f, save("recalls.npy", np.array([0.5, 1.5, 0.9]))), ("--recalls", "recalls.npy")),
        Case("npz: features 1e300 overflow float32", "numbers", LOAD_NPZ,
             npz(X=np.full((60, 4), 1e300), y=GOOD_NPZ["y"]), ("'X'", "overflows float32")),
        Case("npz: uint64 labels with 2**64-1", "numbers", LOAD_NPZ,
             npz(X=GOOD_NPZ["X"], y=np.array([0, 1, 2**64 - 1] * 20, dtype=np.uint64)), ("'y'", "18446744073709551615")),
        Case("npz: bool labels", "numbers", LOAD_NPZ, npz(X=GOOD_NPZ["X"], y=np.arange(60) % 2 == 0), ("'y'", "bool")),
        Case("npz: complex features", "numbers", LOAD_NPZ, npz(X=GOOD_NPZ["X"] + 1j, y=GOOD_NPZ["y"]),
             ("'X'", "complex")),
        Case("npz: header promises 400 GB", "numbers", LOAD_NPZ, lying_npz, ("data.npz", "'X'", "header")),
        Case("npz: duplicate class names", "numbers", LOAD_NPZ, npz(**GOOD_NPZ, classes=np.array(["a", "b", "a"])),
             ("'classes'", "'a'", "twice")),
        Case("sweep --scores: complex file", "numbers", ["-m", "deep", *DRY, "--scores", "mine=s.npy"],
             save("s.npy", np.zeros(1262) + 1j), ("--scores mine", "s.npy", "complex")),
        Case("train --kept: unknown sample id", "numbers",
             ["-m", "deep", "train", "--dataset", "digits", "--model", "mlp", "--no-progress", "--kept", "k.csv"],
             lambda f: (f / "k.csv").write_text("id\nnot-an-id\n"), ("--kept", "k.csv", "not-an-id")),
        Case("train --kept: row 1.5", "numbers",
             ["-m", "deep", "train", "--dataset", "digits", "--model", "mlp", "--no-progress", "--kept", "k.npy"],
             save("k.npy", np.array([0, 1.5, 3])), ("--kept", "k.npy", "1.5")),
        # images decode to their values
        Case("image: 16-bit grey", "images", decoded(), image(lambda: Image.fromarray(np.array([[0, 32768, 65535]], dtype=np.uint16))),
             right=lambda out, f: "[[0, 0, 0], [128, 128, 128], [255, 255, 255]]" in out),
        Case("image: palette with transparency", "images", decoded(), palette,
             right=lambda out, f: "[[0, 0, 0], [0, 0, 255]]" in out),
        Case("image: RGBA half transparent", "images", decoded(), image(lambda: Image.new("RGBA", (1, 1), (200, 100, 50, 128))),
             right=lambda out, f: "[[100, 50, 25]]" in out),
        Case("image: LA half transparent", "images", decoded(), image(lambda: Image.new("LA", (1, 1), (200, 128))),
             right=lambda out, f: "[[100, 100, 100]]" in out),
        Case("image: EXIF rotated", "images", decoded(), rotated,
             right=lambda out, f: out.startswith("(2, 1, 3) [[255, 0, 0], [0, 0, 255]]")),
        Case("image: float TIFF", "images", decoded(".tiff"),
             image(lambda: Image.fromarray(np.array([[0.5, 2.0]], dtype=np.float32)), ".tiff"), ("image.tiff", "mode F")),
        Case("image: CMYK", "images", decoded(".tiff"),
             lambda f: Image.new("CMYK", (1, 1), (255, 0, 0, 0)).save(f / "image.tiff"),
             right=lambda out, f: "[[0, 255, 255]]" in out),
        # folder datasets
        Case("imagefolder: link cycle", "folders", LOAD_FOLDER,
             lambda f: tree(f, lambda train: (train / "a" / "loop").symlink_to(train, target_is_directory=True)),
             ("loop", "cycle")),
        Case("imagefolder: file reached twice in a class", "folders", LOAD_FOLDER,
             lambda f: tree(f, lambda train: (train / "a" / "copy.png").symlink_to(train / "a" / "0.png")),
             right=lambda out, f: out.startswith("8 ")),
        Case("imagefolder: class folder linked to another", "folders", LOAD_FOLDER,
             lambda f: tree(f, lambda train: (train / "c").symlink_to(train / "a", target_is_directory=True)),
             ("train/a", "train/c")),
        # quotas in log space
        Case("prune: --quota-exponent 1000", "quotas", [*drop_run, "--quota-exponent", "1000"], labels_and,
             ("--quota-exponent", "16")),
        Case("sweep: --quota-exponent 17", "quotas", ["-m", "deep", *DRY, "--quota-exponent", "17"], named=(
            "--quota-exponent", "16")),
        Case("quotas: beta 40 with an error of 2**-53", "quotas",
             api("from toy.quotas import drop_densities\n"
                 "print(drop_densities(0.5, [10, 10], [0.5, 1 - 2**-53], exponent=40).tolist())"),
             named=("exponent", "16")),
        # outputs never overwrite inputs; no partial output
        Case("prune: --out is --labels", "outputs",
             ["-m", "deep", "prune", "--labels", "labels.csv", "--density", "0.5", "--protocol", "random", "--out",
              "labels.csv"], lambda f: (f / "labels.csv").write_text("label\n" + "0\n1\n2\n" * 20),
             ("--out", "labels.csv"), inputs=("labels.csv",)),
        Case("prune: --out is a link to --scores", "outputs", [*PRUNE[:-1], "link.npy", "--protocol", "s",
             "--scores", "scores.npy"], lambda f: (labels_and(f), (f / "link.npy").symlink_to(f / "scores.npy")),
             ("--out", "--scores"), inputs=("scores.npy",)),
        Case("report --out inside the store", "outputs", ["-m", "deep", "report", "runs", "--out", "runs/final"],
             named=("--out", "runs"), store=True),
        Case("sweep --out ''", "outputs", ["-m", "deep", *DRY[:-1], ""], named=("--out", "empty")),
        Case("report --out ''", "outputs", ["-m", "deep", "report", "runs", "--out", ""], named=("--out", "empty"),
             store=True),
        # claims
        Case("check: claim dated a day ahead", "claims", ["-m", "deep", "check", "store", "--no-progress"],
             future_claim, ("claim", "in the future"), refused=3),
        Case("check: claim of a live non-worker process", "claims", ["-m", "deep", "check", "store", "--no-progress"],
             sleeping_owner_claim, ("claim", "not a worker"), refused=3),
        Case("sweep waits on a claim dated a day ahead", "claims", ["-m", "deep", "sweep", *TINY, "--out", "runs"],
             skew_a_final_claim, store=True, right=lambda out, f: True, announced="at most", timeout=60),
        # messages
        Case("sweep: --query-epochs el2n=1 el2n=2", "messages",
             ["-m", "deep", *DRY, "--query-epochs", "el2n=1", "el2n=2"], named=("--query-epochs", "el2n", "twice")),
        Case("sweep: --scores A=a A=b", "messages", ["-m", "deep", *DRY, "--scores", "A=a.npy", "A=b.npy"],
             lambda f: (np.save(f / "a.npy", np.zeros(1262)), np.save(f / "b.npy", np.ones(1262))),
             ("--scores", "A", "twice")),
        Case("sweep: --lr 0.1 --lr 0.2", "messages", ["-m", "deep", *DRY, "--lr", "0.1", "--lr", "0.2"],
             named=("--lr", "twice")),
        Case("sweep: score named full", "messages", ["-m", "deep", *DRY, "--scores", "full=a.npy"],
             save("a.npy", np.zeros(1262)), ("--scores", "full")),
        Case("sweep: score named drop", "messages", ["-m", "deep", *DRY, "--scores", "drop=a.npy"],
             save("a.npy", np.zeros(1262)), ("--scores", "drop")),
        Case("sweep: 10**9 seeds", "messages", ["-m", "deep", *DRY, "--seeds", "1000000000"],
             named=("--seeds", "--dry-run")),
        Case("sweep: --out holds foreign config.json", "messages", ["-m", "deep", *DRY[:-1], "project"],
             lambda f: ((f / "project" / "model").mkdir(parents=True),
                        (f / "project" / "model" / "config.json").write_text("{}")), ("project", "not a run store")),
    ]


def _digests(folder: Path, names: tuple[str, ...]) -> dict[str, str | None]:
    return {n: hashlib.sha256((folder / n).read_bytes()).hexdigest() if (folder / n).is_file() else None for n in names}


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def classify(case: Case, checkout: Path, store: Path | None, timeout: float) -> tuple[str, str]:
    """(outcome, the last line the user saw) of one case, run in a fresh folder."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if case.store:
            shutil.copytree(store, folder / "runs")
        case.setup(folder)
        before = _digests(folder, case.inputs)
        env = {**os.environ, "PYTHONPATH": str(checkout), "OMP_NUM_THREADS": "1", "DROP_CACHE": str(folder / "cache")}
        try:
            done = subprocess.run([sys.executable, *case.command], cwd=folder, env=env, capture_output=True, text=True,
                                  timeout=case.timeout or timeout, preexec_fn=_limit_memory)
            rc, out, err = done.returncode, done.stdout, done.stderr
        except subprocess.TimeoutExpired as expired:
            rc, out = None, ""
            err = expired.stderr.decode(errors="replace") if isinstance(expired.stderr, bytes) else (expired.stderr or "")
        finally:
            if (folder / "sleeper.pid").exists():
                os.kill(int((folder / "sleeper.pid").read_text()), 9)
        shown = (err.strip() or out.strip()).splitlines()
        last = (shown[0] if case.refused != 2 else shown[-1])[:160] if shown else ""
        if rc is None:
            announced = case.announced and case.announced in err
            return ("clean" if announced else "hang"), (last if announced else f"no exit in {case.timeout or timeout} s")
        if _digests(folder, case.inputs) != before:
            return "lost", last
        if "Traceback" in err:
            return "traceback", last
        if case.named:
            if rc == 0:
                return "silent wrong", last or out.strip()[-160:]
            said = err + out
            return ("clean" if rc == case.refused and all(n in said for n in case.named) else "unclear"), last
        if rc != 0:
            return "unclear", last
        return ("clean" if case.right is None or case.right(out, folder) else "silent wrong"), out.strip()[:160]


def tiny_store(checkout: Path, folder: Path) -> Path:
    """A finished tiny store made by the checkout's own code."""
    env = {**os.environ, "PYTHONPATH": str(checkout), "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "deep", "sweep", *TINY, "--out", str(folder / "runs")], env=env,
                   check=True, capture_output=True)
    return folder / "runs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkout", type=Path, help="the repository root whose deep/ and toy/ are tried")
    parser.add_argument("--only", default="", help="run the cases whose name contains this")
    parser.add_argument("--timeout", type=float, default=90.0, help="seconds per case (default: 90)")
    args = parser.parse_args()
    global CHECKOUT
    CHECKOUT = args.checkout.resolve()
    cases = [case for case in case_list() if args.only in case.name]
    counts: Counter[str] = Counter()
    with tempfile.TemporaryDirectory() as tmp:
        store = tiny_store(args.checkout.resolve(), Path(tmp)) if any(c.store for c in cases) else None
        for case in cases:
            outcome, line = classify(case, args.checkout.resolve(), store, args.timeout)
            counts[outcome] += 1
            print(f"{outcome:12} {case.kind:8} {case.name}: {line}", flush=True)
    print("\n| checkout | inputs tried | " + " | ".join(OUTCOMES) + " |")
    print("| --- " * (len(OUTCOMES) + 2) + "|")
    print(f"| {args.checkout} | {len(cases)} | " + " | ".join(str(counts[o]) for o in OUTCOMES) + " |")


if __name__ == "__main__":
    main()

"""What both command lines (`python -m toy`, `python -m deep`) share: argparse types that refuse a bad value at the
door, naming the flag, the top-level handler that turns any error into one line, and the package's version (`--version`).
Standard library only, so that toy keeps needing nothing of deep."""

from __future__ import annotations

import argparse
import importlib.metadata
import math
import sys
import tempfile
import tomllib
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path


DISTRIBUTION = "drop-pruning"  # the name both packages (toy, deep) are installed under


def package_version() -> str:
    """The installed distribution's version (pyproject.toml is its one source); in a source tree that was never
    installed, pyproject.toml's version marked "+source", since no installed metadata can be read."""
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
        if not pyproject.is_file():
            return "unknown (not installed, and no pyproject.toml beside the package)"
        return tomllib.loads(pyproject.read_text())["project"]["version"] + "+source"


def add_version_flag(parser: argparse.ArgumentParser) -> None:
    """`--version`: print the package's version and exit."""
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}",
                        help="print the version of drop-pruning and exit")


def _bounds(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low:g}"
    return f"{'<' if high_open else '<='} {high:g}"


def number(kind: type[int] | type[float], low: float | None = None, high: float | None = None, *,
           low_open: bool = False, high_open: bool = False) -> Callable[[str], int | float]:
    """An argparse type: a finite int or float in [low, high] (an end open where asked); argparse's message for
    anything else names the flag and says what it takes."""
    wanted = f"{'an integer' if kind is int else 'a finite number'} {_bounds(low, high, low_open, high_open)}"

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}") from None
        too_low = low is not None and (value < low or (low_open and value == low))
        too_high = high is not None and (value > high or (high_open and value == high))
        if (isinstance(value, float) and not math.isfinite(value)) or too_low or too_high:
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}")
        return value

    return parse


def output_folder(text: str) -> str:
    """An argparse type: a folder that exists or can be created, and that this process can write into. Nothing is
    created: a refused command leaves no folder behind."""
    if not text.strip():  # Path("") is the working directory: an empty value is a mistake, not a choice
        raise argparse.ArgumentTypeError("an empty path: name the folder to write into (\".\" for this one)")
    path = Path(text).absolute()
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        raise argparse.ArgumentTypeError(f"{existing} is a file, not a folder: choose another folder")
    try:  # the only reliable test: permission bits say nothing about root, read-only mounts or ACLs
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise argparse.ArgumentTypeError(f"cannot write in {existing} ({error.strerror}): choose a folder you can write to")
    return text


def unique_keys(flag: str, pairs: list[tuple]) -> dict:
    """{key: value} of the (key, value) pairs of a KEY=VALUE list flag, given once or more; ValueError naming the flag
    for a key given twice with different values (the same pair twice merges). A tuple key shows as a.b."""
    found: dict = {}
    for key, value in pairs:
        if key in found and found[key] != value:
            shown = ".".join(key) if isinstance(key, tuple) else key
            raise ValueError(f"{flag}: {shown} is given twice, as {found[key]} and {value}; give it once")
        found[key] = value
    return found


class _StoreOnce(argparse._StoreAction):
    """argparse's `store`, refusing a flag given twice with another value (argparse keeps the last silently)."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        given = namespace.__dict__.setdefault(ONCE_SEEN, {})
        if self.dest in given and given[self.dest] != values:
            parser.error(f"argument {option_string}: given twice ({given[self.dest]!r} and {values!r}); give it once")
        given[self.dest] = values
        super().__call__(parser, namespace, values, option_string)


class _ExtendRepeated(argparse._ExtendAction):
    """argparse's `extend`, whose first occurrence replaces the default: `--a x --a y` gives [x, y], not default + both."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        given = namespace.__dict__.setdefault(ONCE_SEEN, {})
        if self.dest not in given:
            setattr(namespace, self.dest, [])
        given[self.dest] = values
        super().__call__(parser, namespace, values, option_string)


ONCE_SEEN = "_flags_given"  # where _StoreOnce keeps the values it has seen, removed from the result by parse_args


class OnceParser(argparse.ArgumentParser):
    """An ArgumentParser whose single-value flags refuse a second, different value; list flags (action="extend")
    merge repeated occurrences instead."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.register("action", None, _StoreOnce)
        self.register("action", "store", _StoreOnce)
        self.register("action", "extend", _ExtendRepeated)

    def parse_known_args(self, args=None, namespace=None):
        """argparse's, without the bookkeeping of repeated flags in the result."""
        parsed, extras = super().parse_known_args(args, namespace)
        parsed.__dict__.pop(ONCE_SEEN, None)
        return parsed, extras


def add_debug_flag(parser: argparse.ArgumentParser, subcommands: Iterable[argparse.ArgumentParser]) -> None:
    """`--debug`, before or after the subcommand: show the traceback of an error."""
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    for sub in subcommands:  # SUPPRESS: a subcommand without the flag keeps the top-level value
        sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show the full traceback of an error")


def one_line(error: BaseException) -> str:
    """An error's message on one line: a multi-line message (e.g. a worker's traceback) by its first and last lines."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    return lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1]}"


def run_command(command: Callable[[], int], name: str, user_errors: tuple[type[BaseException], ...], debug: bool) -> int:
    """Run a command and return its exit status: 2 with one line for an error the user can fix (`user_errors`), 1
    with one line naming the command for any other, 130 when interrupted; `debug` also prints the traceback."""
    try:
        return command()
    except KeyboardInterrupt as error:
        caught, status, message = error, 130, f"{name} interrupted"
    except user_errors as error:
        caught, status, message = error, 2, one_line(error)
    except Exception as error:
        caught, status = error, 1
        message = f"{name} failed: {type(error).__name__}: {one_line(error)} (run again with --debug for the traceback)"
    if debug:
        traceback.print_exception(caught)
    print(f"error: {message}", file=sys.stderr)
    return status

"""Options a registry entry declares (a dataset's, a scorer's, a method's): type, default, help, bounds, CLI alias.

One mechanism for every registry: an entry lists its options as {key: Option(...)}, `resolve` checks the values
a user gave against them and fills in the defaults, and the command line reaches them generically
(`--scorer-option NAME.KEY=VALUE`, `--method-option NAME.KEY=VALUE`, `--<dataset>-<key>`), so adding an option
never touches the command line. An option may keep an older flag of its own as `alias` (e.g. --dro-step).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

Value = int | float | str


@dataclass(frozen=True)
class Option:
    """One option: the type of its value, its default (None: derived by its owner, see its help), help text, bounds."""

    type: type[int] | type[float] | type[str]
    default: Value | None
    help: str
    minimum: int | float | None = None
    positive: bool = False  # the value must be > 0 (a step size), not merely >= minimum
    choices: tuple[str, ...] = ()
    alias: str | None = None  # a flag of its own on the command line, e.g. --dro-step

    def check(self, flag: str, value: object) -> Value | None:
        """`value` (or its text, from a command line) as this option's type; ValueError naming `flag` when it is
        of another type, out of range, or not one of the choices."""
        if value is None and self.default is None:
            return None
        if isinstance(value, str) and self.type is not str:
            try:
                value = self.type(value)
            except ValueError:
                pass  # refused below, by type
        # bool is an int to Python, but True as a sample count is a mistake, not a number.
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        if self.type is int and not (numeric and float(value).is_integer()):
            raise ValueError(f"{flag} must be an integer, got {value!r}")
        if self.type is float and not (numeric and math.isfinite(value)):
            raise ValueError(f"{flag} must be a finite number, got {value!r}")
        if self.type is str and not isinstance(value, str):
            raise ValueError(f"{flag} must be a string, got {value!r}")
        value = self.type(value)
        if self.minimum is not None and value < self.minimum:
            raise ValueError(f"{flag} must be at least {self.minimum}, got {value}")
        if self.positive and not value > 0:
            raise ValueError(f"{flag} must be > 0, got {value}")
        if self.choices and value not in self.choices:
            raise ValueError(f"{flag} must be one of {', '.join(self.choices)}, got {value!r}")
        return value

    def describe(self) -> str:
        """The help text with its default (and choices), for --help."""
        choices = f"; one of {', '.join(self.choices)}" if self.choices else ""
        return f"{self.help} (default: {'derived' if self.default is None else self.default}{choices})"


def resolve(options: Mapping[str, Option], given: Mapping[str, object] | None, what: str,
            flag: Callable[[str], str]) -> dict[str, Value | None]:
    """Every option of an entry: the `given` values checked (an error names `flag(key)`), the rest at their defaults.

    `what` names the entry in the error for an unknown key, e.g. "--scorer-option: scorer 'forgetting'".
    """
    given = dict(given or {})
    unknown = sorted(set(given) - set(options))
    if unknown:
        known = ", ".join(options) or "none"
        raise ValueError(f"{what} has no option {', '.join(map(repr, unknown))}; its options: {known}")
    return {key: option.check(flag(key), given.get(key, option.default)) for key, option in options.items()}


def option_help(name: str, options: Mapping[str, Option]) -> str:
    """`name.key: help (default)` for every option of one entry, for --help."""
    return "; ".join(f"{name}.{key}: {option.describe()}" for key, option in options.items())

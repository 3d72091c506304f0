"""Plugins: other packages add scorers, datasets, models, methods and figures through entry points.

A package declares them in its pyproject.toml, one line each, e.g.

    [project.entry-points."drop_pruning.scorers"]
    margin = "my_package.margin:SCORER"

The entry point's name is the registry name; its value is the same object a built-in entry holds: a
`deep.scores.Scorer`, a `deep.data.DatasetEntry`, a model builder, a `deep.methods.Method`, a figure function
(`deep.report.panels.Figure`). Each registry adds its group once, when its module is imported (so worker processes
see the same plugins as long as the package is installed, or on their PYTHONPATH). A name already taken, by a
built-in entry or another plugin, is an error that names both.
"""

from __future__ import annotations

import inspect
import sys
from functools import lru_cache
from importlib.metadata import EntryPoint, EntryPoints, entry_points

# Registry kind -> the module that owns the built-in registry (DATASETS, SCORERS, MODELS, METHODS, FIGURES).
OWNERS = {"scorers": "deep.scores", "datasets": "deep.data", "models": "deep.models", "methods": "deep.methods",
          "figures": "deep.report"}
GROUP_PREFIX = "drop_pruning."


@lru_cache(maxsize=2)
def _entry_points(path: tuple[str, ...]) -> EntryPoints:
    """Every entry point on `path` (sys.path): one scan for the five registries (a third of the cost of five)."""
    return entry_points()


def _origin(point: EntryPoint) -> str:
    """Where an entry point comes from: its distribution and its value (module:attribute)."""
    dist = getattr(point, "dist", None)
    return f"{point.value} of distribution {dist.name if dist is not None else 'unknown'}"


def add_plugins(kind: str, registry: dict) -> None:
    """Add the entry points of group drop_pruning.<kind> to `registry` (a built-in registry of `kind`)."""
    singular = kind[:-1]
    builtin_type = _entry_type(registry)
    origins = {name: f"the built-in {singular} {name!r} of {OWNERS[kind]}" for name in registry}
    for point in _entry_points(tuple(sys.path)).select(group=GROUP_PREFIX + kind):
        origin = _origin(point)
        if origins.get(point.name) == origin:
            continue  # the same distribution found twice on sys.path
        if point.name in origins:
            raise ValueError(f"plugin {singular} {point.name!r} ({origin}) clashes with {origins[point.name]}: "
                             f"rename the entry point in group {GROUP_PREFIX + kind}")
        try:
            value = point.load()
        except Exception as error:
            raise ValueError(f"plugin {singular} {point.name!r} ({origin}) cannot be loaded: {error}") from error
        if not (isinstance(value, builtin_type) if builtin_type else callable(value)):
            expected = builtin_type.__name__ if builtin_type else "a function"
            raise ValueError(f"plugin {singular} {point.name!r} ({origin}) is a {type(value).__name__}, not "
                             f"{expected} as the built-in {kind} are")
        registry[point.name] = value
        origins[point.name] = origin


def _entry_type(registry: dict) -> type | None:
    """The class every built-in entry is an instance of (Scorer, DatasetEntry, Method); None for functions."""
    kinds = {type(value) for value in registry.values()}
    if len(kinds) != 1 or any(inspect.isfunction(value) for value in registry.values()):
        return None
    return kinds.pop()

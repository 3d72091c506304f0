"""Method registry: name -> Method (how the final model is trained on the kept samples; `erm` = plain training).

Adding a method = one module defining `METHOD = Method(help, prepare, options={key: Option(...)})` and one line
below (or, from another package, one entry point in the group `drop_pruning.methods`: see deep.plugins). Its
options are reached as --method-option NAME.KEY=VALUE; a method that trains a model of its own declares its
epochs as `extra_epochs`. Every method works on any dataset with classes; group methods use classes when there
are no groups.
"""

from __future__ import annotations

from deep.methods import cdbw, erm, group_dro, jtt, subg
from deep.methods.base import Method, MethodInput, Plan
from deep.plugins import add_plugins

METHODS: dict[str, Method] = {
    "erm": erm.METHOD,
    "cdbw": cdbw.METHOD,
    "subg": subg.METHOD,
    "group_dro": group_dro.METHOD,
    "jtt": jtt.METHOD,
}
add_plugins("methods", METHODS)

__all__ = ["METHODS", "Method", "MethodInput", "Plan"]

"""Method registry: name -> Method (how the final model is trained on the kept samples; `erm` = plain training).

Adding a method = one module in this package defining `METHOD = Method(help, prepare, options)` and one
line below. Every method works on any dataset with classes; group methods use classes when there are no groups.
"""

from __future__ import annotations

from deep.methods import cdbw, erm, group_dro, jtt, subg
from deep.methods.base import Method, MethodInput, MethodOptions, Plan

METHODS: dict[str, Method] = {
    "erm": erm.METHOD,
    "cdbw": cdbw.METHOD,
    "subg": subg.METHOD,
    "group_dro": group_dro.METHOD,
    "jtt": jtt.METHOD,
}

__all__ = ["METHODS", "Method", "MethodInput", "MethodOptions", "Plan"]

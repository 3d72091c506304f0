"""Every random stream of an experiment, derived from (run seed, role, init) through numpy's SeedSequence.

A run seed k names one replicate of a whole experiment. Each training and each random choice inside it takes its
own stream, so that no two different tasks train identical models (a query model of seed 0 is never the `full`
run of seed 1, as it was with seed * 1000 + init), and seed k's results depend on seed k's streams only.
"""

from __future__ import annotations

import hashlib

import numpy as np

# One integer per use of the run seed; a new use takes a new number, and existing numbers never change
# (3 and 4 were JTT's and SUBG's own streams before every method got one by name: "method").
ROLES: dict[str, int] = {
    "final": 0,  # the final model's init, batch order, augmentation and dropout
    "query": 1,  # a query model's (init = which of the query models)
    "prune": 2,  # the random priorities inside `keep`
    "method": 5,  # a training method's own stream (JTT's identification model, SUBG's subsample), by method name
    "selection": 6,  # the proxy trainings of --quota-exponent auto (one init shared by every candidate)
}


def derive(seed: int, role: str, init: int = 0) -> int:
    """A 32-bit seed for the stream `role` (a key of ROLES) of run seed `seed` and query model `init`."""
    if role not in ROLES:
        raise ValueError(f"unknown seed role {role!r}: one of {', '.join(ROLES)}")
    if seed < 0 or init < 0:
        raise ValueError(f"seeds must be >= 0, got seed={seed}, init={init}")
    return int(np.random.SeedSequence((int(seed), ROLES[role], int(init))).generate_state(1)[0])


def method_seed(seed: int, method: str) -> int:
    """A 32-bit seed for the own stream of training method `method` in run seed `seed`: one per method name, so a
    method added later (a plugin's too) needs no number here."""
    name = int.from_bytes(hashlib.sha256(method.encode()).digest()[:8], "big")
    return int(np.random.SeedSequence((derive(seed, "method"), name)).generate_state(1)[0])

"""ERM: plain (label-smoothed) cross-entropy on every kept sample."""

from __future__ import annotations

from deep.methods.base import Method, MethodInput, Plan, every_row


def prepare(data: MethodInput) -> Plan:
    """Train on all kept rows with the trainer's default loss."""
    return Plan(every_row(data))


METHOD = Method("plain training (empirical risk minimisation)", prepare)

"""Group DRO (Sagawa et al. 2020), the online algorithm: exponentiated-gradient weights over groups.

For every batch, with l_g the mean loss of the batch's samples in group g (0 for groups absent from it):
    q_g <- q_g exp(eta l_g),  q <- q / sum(q),  loss = sum_g q_g l_g,
starting from uniform q; q carries over from batch to batch and epoch to epoch. Groups are the dataset's
groups, or its classes when it has none. (The reference code's optional generalisation adjustment is not used.)
"""

from __future__ import annotations

import torch

from deep.methods.base import Method, MethodInput, Plan, every_row, sample_losses
from deep.options import Option


def group_means(losses: torch.Tensor, groups: torch.Tensor, num_groups: int) -> torch.Tensor:
    """Mean loss of each group's samples; 0 for groups without samples."""
    sums = torch.zeros(num_groups, dtype=losses.dtype, device=losses.device).index_add(0, groups, losses)
    counts = torch.bincount(groups, minlength=num_groups).to(losses.dtype)
    return sums / counts.clamp_min(1)


def dro_update(q: torch.Tensor, group_loss: torch.Tensor, step: float) -> torch.Tensor:
    """One exponentiated-gradient step: q * exp(step * loss), renormalised (computed in log space)."""
    logits = torch.log(q) + step * group_loss
    return torch.softmax(logits, dim=0)


def prepare(data: MethodInput) -> Plan:
    """All kept rows; the loss re-weights group losses online and keeps its weights q between batches."""
    groups = data.groups.to(data.device)
    q = torch.full((data.num_groups,), 1.0 / data.num_groups) if data.resume is None else data.resume["q"].clone()
    state = {"q": q.to(data.device)}

    def loss(logits: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        group_loss = group_means(sample_losses(logits, y, data.cfg.label_smoothing), groups[idx], data.num_groups)
        state["q"] = dro_update(state["q"], group_loss.detach(), data.options["step"])
        return (state["q"] * group_loss).sum()

    return Plan(every_row(data), loss_fn=loss, summary=lambda: {"group_weights": state["q"].tolist()}, state=state)


METHOD = Method("Group DRO: online exponentiated-gradient group weights", prepare, {"step": Option(
    float, 0.01, "step size eta of the exponentiated-gradient group weights (Sagawa et al. 2020)", positive=True,
    alias="--dro-step")})

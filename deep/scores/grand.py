"""grand: per-sample norm of the cross-entropy gradient w.r.t. all model parameters, at the end of a short query.

The model is put in eval mode while scoring, so BatchNorm normalises with its running statistics: each
sample's gradient then depends on that sample alone (in training mode batch statistics would couple the
samples of a chunk and the "per-sample" gradient would depend on the chunking). Two exact ways, both over
chunks of samples, never a per-sample loop:
- layer by layer (the default wherever it applies): one batched forward and backward of the summed loss, with
  hooks recording each layer's input and output gradient, from which every Linear, Conv2d and BatchNorm layer's
  per-sample gradient norm follows in closed form (a Linear weight's is ‖g‖·‖a‖, a convolution's one batched
  matrix product of g with the unfolded input);
- torch.func (functional_call + vmap(grad)) for models with any other kind of parametrised layer. On a CPU
  it is no faster than a per-sample loop for convolutions, which is why it is only the fallback.
"""

from __future__ import annotations

from collections.abc import Callable
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

from deep.batches import batches
from deep.scores.base import QueryModel, Scorer

GRADIENT_BYTES = 1 << 30  # per-sample gradients materialised at once (float32): bounds the chunk size
MAX_CHUNK = 256


def chunk_size(model: nn.Module, budget_bytes: int = GRADIENT_BYTES) -> int:
    """Samples per vmap chunk so that their float32 per-sample gradients fit in `budget_bytes` (1 to MAX_CHUNK)."""
    num_params = sum(p.numel() for p in model.parameters())
    return max(1, min(MAX_CHUNK, budget_bytes // max(1, 4 * num_params)))


def _linear_squares(layer: nn.Linear, a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Per-sample squared gradient norm of a Linear layer's weight and bias from its input a and output grad g."""
    if a.dim() == 2:
        squares = a.pow(2).sum(1) * g.pow(2).sum(1)  # ‖g aᵀ‖² = ‖g‖² ‖a‖² for one row per sample
        bias = g
    else:  # (N, ..., features): the gradient sums over the middle positions
        a, g = a.flatten(1, -2), g.flatten(1, -2)
        squares = torch.bmm(g.transpose(1, 2), a).pow(2).sum((1, 2))
        bias = g.sum(1)
    return squares + (bias.pow(2).sum(1) if layer.bias is not None else 0)


def _conv_squares(layer: nn.Conv2d, a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Per-sample squared gradient norm of a Conv2d layer's weight and bias (groups 1, zero padding)."""
    columns = F.unfold(a, layer.kernel_size, layer.dilation, layer.padding, layer.stride)  # (N, C_in k², L)
    g = g.flatten(2)  # (N, C_out, L)
    squares = torch.bmm(g, columns.transpose(1, 2)).pow(2).sum((1, 2))
    return squares + (g.sum(2).pow(2).sum(1) if layer.bias is not None else 0)


def _norm_squares(layer: nn.modules.batchnorm._BatchNorm, a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Per-sample squared gradient norm of an eval-mode BatchNorm layer's scale and shift."""
    shape = (1, -1) + (1,) * (a.dim() - 2)
    normalised = (a - layer.running_mean.view(shape)) * torch.rsqrt(layer.running_var.view(shape) + layer.eps)
    positions = tuple(range(2, a.dim()))
    # An empty dim tuple would make sum() reduce everything, so (N, C) inputs are used as they are.
    scale, shift = (t.sum(positions) if positions else t for t in (g * normalised, g))
    return scale.pow(2).sum(1) + shift.pow(2).sum(1)


def _closed_form(module: nn.Module) -> Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor] | None:
    """The per-sample squared-norm rule for a layer's own parameters, or None when no rule applies."""
    if isinstance(module, nn.Linear):
        return _linear_squares
    if isinstance(module, nn.Conv2d) and module.groups == 1 and module.padding_mode == "zeros" \
            and not isinstance(module.padding, str):
        return _conv_squares
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.affine and module.running_mean is not None:
        return _norm_squares
    return None


def layerwise_rules(model: nn.Module) -> list[tuple[nn.Module, Callable]] | None:
    """Every layer with trainable parameters and its rule, or None when some such layer has no rule."""
    layers = []
    for module in model.modules():
        if any(p.requires_grad for p in module.parameters(recurse=False)):
            rule = _closed_form(module)
            if rule is None:
                return None
            layers.append((module, rule))
    return layers


def _layerwise_norms(model: nn.Module, layers: list, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-sample gradient norms of one chunk from one batched forward and backward with recording hooks."""
    inputs: dict[nn.Module, torch.Tensor] = {}
    grads: dict[nn.Module, torch.Tensor] = {}

    def record(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
        inputs[module] = args[0].detach()
        # A tensor hook, not a module backward hook: it also sees the right gradient when a later
        # in-place op (ReLU(inplace=True)) modifies this output.
        output.register_hook(lambda grad: grads.__setitem__(module, grad.detach()))

    handles = [module.register_forward_hook(record) for module, _ in layers]
    try:
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            loss = F.cross_entropy(model(x).float(), y, reduction="sum")  # sum: row i's gradient is its own
            # Differentiating w.r.t. the input runs the hooks on every layer's output gradient without
            # computing the (batch-summed, unused) parameter gradients.
            torch.autograd.grad(loss, x)
    finally:
        for handle in handles:
            handle.remove()
    squares = sum(rule(module, inputs[module], grads[module]) for module, rule in layers)
    return torch.sqrt(squares)


def gradient_norms(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    prepare: Callable[[torch.Tensor], torch.Tensor],
    chunk: int | None = None,
) -> np.ndarray:
    """‖∇_θ CE(model(x_i), y_i)‖₂ over all parameters θ, per row of raw `x` (model in eval mode), float64 (N,).

    `prepare` turns a raw batch into normalised model input on the model's device.
    """
    chunk = chunk or chunk_size(model)
    layers = layerwise_rules(model)
    params = {name: p.detach() for name, p in model.named_parameters()}
    buffers = {name: b.detach() for name, b in model.named_buffers()}

    def sample_loss(params: dict, xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        logits = functional_call(model, (params, buffers), (xi.unsqueeze(0),))
        return F.cross_entropy(logits.float(), yi.unsqueeze(0))

    def sample_norm(xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        grads = grad(sample_loss)(params, xi, yi)
        return torch.sqrt(sum(g.pow(2).sum() for g in grads.values()))

    norms = vmap(sample_norm)
    was_training = model.training
    model.eval()
    try:
        out = []
        # Batches in their evaluation view, read a chunk at a time where x is an image store (deep.batches).
        for start, raw in zip(range(0, len(x), chunk), batches(x, torch.device("cpu")).ordered(chunk)):
            xb = prepare(raw)
            yb = y[start : start + chunk].to(xb.device)
            batch_norms = norms(xb, yb) if layers is None else _layerwise_norms(model, layers, xb, yb)
            out.append(batch_norms.detach().double().cpu())
    finally:
        model.train(was_training)
    return torch.cat(out).numpy()


def score(query: QueryModel) -> np.ndarray:
    """GraNd of the trained query model on the full training split."""
    return gradient_norms(query.model, query.train.x, query.train.y, query.prepare)


SCORER = Scorer(score=score, epoch_fraction=0.1, min_epochs=1, inits=5)

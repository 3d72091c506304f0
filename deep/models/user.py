"""Models from outside the registry: `package.module:function` (a user's builder) and `timm:<name>`.

A user's builder is called as function(num_classes, input_shape) with input_shape (C, H, W) or (D,), and must
return an nn.Module whose forward gives logits (N, num_classes). `resolve` finds the builder (cheap: an import
and a lookup, so the CLI can check a name before anything trains); `checked` runs the built model once on a
dummy batch, so that a wrong output is an error before training rather than a crash inside it.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from deep._torchvision import import_torchvision

TIMM_PREFIX = "timm:"


def resolve(name: str) -> Callable[..., nn.Module]:
    """The builder named `module:function` or `timm:<name>`; ValueError saying what is wrong otherwise."""
    if name.startswith(TIMM_PREFIX):
        return timm_builder(name[len(TIMM_PREFIX):])
    module_name, _, function_name = name.partition(":")
    if not module_name or not function_name:
        raise ValueError(f"--model {name!r}: write a user model as package.module:function, e.g. mymodels:small_cnn")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name is None or not (module_name == error.name or module_name.startswith(error.name + ".")):
            raise  # the module exists but one of its own imports is missing: the traceback says which
        raise ValueError(f"--model {name!r}: no module {module_name!r} can be imported ({error}); put the folder that "
                         "holds it on PYTHONPATH (or run from that folder), or pip install its package") from error
    builder = getattr(module, function_name, None)
    if not callable(builder):
        defined = sorted(key for key, value in vars(module).items() if callable(value) and not key.startswith("_"))
        raise ValueError(f"--model {name!r}: module {module_name!r} ({module.__file__}) has no function "
                         f"{function_name!r}; it defines {', '.join(defined) or 'no public functions'}")
    return builder


def timm_builder(model_name: str) -> Callable[..., nn.Module]:
    """A builder making timm's `model_name` (random init unless pretrained=True is passed) for image inputs."""
    import_torchvision()  # timm imports torchvision, which on a CPU-only torch needs its op schemas first
    try:
        import timm
    except ImportError as error:
        raise ValueError(f"--model timm:{model_name} needs the timm package, which is not installed: "
                         "pip install timm (or pip install 'drop-pruning[timm]')") from error
    if not timm.is_model(model_name):
        raise ValueError(f"--model timm:{model_name}: timm {timm.__version__} has no model {model_name!r}; "
                         "timm.list_models('*pattern*') lists the names")

    def build(num_classes: int, input_shape: Sequence[int], **kwargs: Any) -> nn.Module:
        if len(input_shape) != 3:
            raise ValueError(f"--model timm:{model_name} needs image inputs (C, H, W), got input_shape {tuple(input_shape)}")
        return timm.create_model(model_name, num_classes=num_classes, in_chans=int(input_shape[0]), **kwargs)

    return build


def checked(model: Any, name: str, num_classes: int, input_shape: Sequence[int]) -> nn.Module:
    """`model` itself, once it is an nn.Module giving (2, num_classes) logits on a batch of two zero inputs."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"--model {name!r} returned a {type(model).__name__}, not a torch.nn.Module: the builder must "
                         "return the model, e.g. `return nn.Sequential(...)`")
    batch = torch.zeros(2, *input_shape)
    was_training = model.training
    model.eval()  # eval: the check must not move BatchNorm statistics or draw dropout masks
    try:
        with torch.no_grad():
            out = model(batch)
    except Exception as error:  # noqa: BLE001 - any failure here is the user's model failing on this data's shape
        raise ValueError(f"--model {name!r} fails on a batch of shape {tuple(batch.shape)} "
                         f"({type(error).__name__}: {error}); it must accept inputs of shape (N, *input_shape)") from error
    finally:
        model.train(was_training)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, num_classes):
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"--model {name!r} returns {got} for a batch of shape {tuple(batch.shape)}; expected "
                         f"logits of shape (2, {num_classes}): one row per input, one column per class")
    return model


def fingerprint(name: str) -> str:
    """What identifies a model from outside the registry beyond its name: the sha256 of the module's source file
    (editing the builder makes new runs, never reuses stale ones), or timm's version."""
    if name.startswith(TIMM_PREFIX):
        import timm

        return f"timm=={timm.__version__}"
    module = importlib.import_module(name.partition(":")[0])
    source = getattr(module, "__file__", None)
    if source is None:
        raise ValueError(f"--model {name!r}: module {module.__name__!r} has no source file to identify its runs by")
    return "sha256:" + hashlib.sha256(Path(source).read_bytes()).hexdigest()

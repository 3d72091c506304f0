"""Pretrained weights for resnet50_imagenet: torchvision's ImageNet weights or a state_dict file, named by content.

`--pretrained imagenet` means torchvision's IMAGENET1K_V1 weights (those of the group-DRO reference code), read from torch's hub cache and downloaded there
only with --download; `--pretrained PATH` a torchvision-format resnet50 state_dict file (read with
weights_only=True). A run's config records which: the torchvision name, or the file's sha256, so the same weights
always give the same run whatever the file is called. A pretrained model sees its inputs normalised with the
ImageNet statistics it was trained on, not the dataset's own.
"""

from __future__ import annotations

from pathlib import Path

import torch

from deep.runs import file_sha256

IMAGENET = "imagenet"
# torchvision's first ImageNet weights, as the group-DRO reference code loads them (pretrained=True).
IMAGENET_ID = "torchvision:ResNet50_Weights.IMAGENET1K_V1"
IMAGENET_FILE = "resnet50-0676ba61.pth"  # its name in torch's hub cache
IMAGENET_NORMALIZATION = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
PRETRAINABLE = ("resnet50_imagenet",)


def cached_imagenet_file() -> Path:
    """Where torch's hub cache keeps torchvision's ImageNet resnet50 weights."""
    return Path(torch.hub.get_dir()) / "checkpoints" / IMAGENET_FILE


def weights_id(pretrained: str | None, model: str, download: bool = False) -> str | None:
    """What a run's config records for `--pretrained` (None, `imagenet` or a file); ValueError when unusable."""
    if pretrained is None:
        return None
    if model not in PRETRAINABLE:
        raise ValueError(f"--pretrained applies to {', '.join(PRETRAINABLE)}, not --model {model}")
    if pretrained == IMAGENET:
        if not download and not cached_imagenet_file().is_file():
            raise ValueError(f"--pretrained imagenet: torchvision's weights are not in torch's cache "
                             f"({cached_imagenet_file()}): add --download where the network allows, or save them "
                             "elsewhere and pass --pretrained PATH")
        return IMAGENET_ID
    path = Path(pretrained).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"--pretrained {pretrained}: no such file; pass a resnet50 state_dict file or `imagenet`")
    return f"sha256:{file_sha256(path)}"


def build_kwargs(weights: str | None, path: str | None) -> dict:
    """build_model's keyword arguments for the weights a config names (`path`: the file behind a sha256 id)."""
    if weights is None:
        return {}
    if weights == IMAGENET_ID:
        return {"download": True}  # from torch's hub cache; weights_id made sure it is there or may be downloaded
    if path is None or f"sha256:{file_sha256(path)}" != weights:
        raise ValueError(f"this run was made with the pretrained weights {weights}; pass that file again with "
                         "--pretrained PATH")
    return {"weights": path}


def normalization(weights: str | None, dataset_normalization: tuple | None) -> tuple | None:
    """The input normalisation a model sees: ImageNet's when pretrained, else the dataset's."""
    return IMAGENET_NORMALIZATION if weights is not None else dataset_normalization

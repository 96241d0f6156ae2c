"""The torch device a run uses, from the ``--device`` setting (a leaf: imports nothing from dskd but errors)."""

from __future__ import annotations

import torch

from dskd_core.errors import UsageError


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when visible, else CPU; anything else must be a torch device string."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"invalid --device '{name}': use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {name} asked for, but no CUDA device is visible: use --device cpu")
    return device

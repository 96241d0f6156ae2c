"""The full train state in one safetensors file: weights, optimizer buffers, RNG, scalars."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from dskd_core.checkpoint import TRAIN_STATE_FORMAT, load_tensors, save_tensors
from dskd_core.errors import CheckpointError
from dskd_core.methods import Distiller


@dataclass
class Progress:
    """Scalars that survive a resume."""

    epoch: int = 0  # last completed epoch
    best_acc: float = 0.0
    best_epoch: int = 0
    wall_time_s: float = 0.0


def save_train_state(
    path: Path, distiller: Distiller, optimizer: torch.optim.Optimizer, progress: Progress, config_json: str
) -> None:
    tensors: dict[str, Tensor] = {f"student.{k}": v for k, v in distiller.student.state_dict().items()}
    tensors.update({f"extra.{k}": v for k, v in distiller.extra_state_dict().items()})
    opt = optimizer.state_dict()
    for pid, slots in opt["state"].items():
        for key, value in slots.items():
            if isinstance(value, Tensor):
                tensors[f"optim.{pid}.{key}"] = value
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = state
    metadata = {
        "format": TRAIN_STATE_FORMAT,
        "progress": json.dumps(progress.__dict__),
        "param_groups": json.dumps(opt["param_groups"]),
        "config": config_json,
    }
    save_tensors(path, tensors, metadata)


def load_train_state(path: Path, distiller: Distiller, optimizer: torch.optim.Optimizer) -> Progress:
    tensors, meta = load_tensors(path)
    if meta.get("format") != TRAIN_STATE_FORMAT:
        raise CheckpointError(f"{path} is not a dskd train state: delete it to start the run afresh")
    device = next(distiller.student.parameters()).device

    def section(prefix: str) -> dict[str, Tensor]:
        return {k[len(prefix) :]: v.to(device) for k, v in tensors.items() if k.startswith(prefix)}

    distiller.student.load_state_dict(section("student."), strict=True)
    extras = section("extra.")
    if extras:
        distiller.load_state_dict(extras, strict=False)
    slots: dict[int, dict[str, Any]] = {}
    for key, value in section("optim.").items():
        pid, _, name = key.partition(".")
        slots.setdefault(int(pid), {})[name] = value
    optimizer.load_state_dict({"state": slots, "param_groups": json.loads(meta["param_groups"])})
    torch.set_rng_state(tensors["rng.torch"])
    cuda_states = [tensors[k] for k in sorted(t for t in tensors if t.startswith("rng.cuda."))]
    if cuda_states and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda_states)
    return Progress(**json.loads(meta["progress"]))

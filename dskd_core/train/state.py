"""The full train state in one safetensors file: the commit point of every epoch.

It holds the student, the best student so far (when it is not the current one), the method's
extra modules, the optimizer buffers, every RNG (Python, NumPy, torch, CUDA) and, as JSON
metadata, the scalar progress and the epoch's log event. Everything else a run folder holds
(student files, the log, the summary) is derived from it and repaired from it on resume. The
previous state is kept as ``train_state.prev.safetensors``: when the newest fails
verification, resume falls back to it.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from dskd_core.checkpoint import TRAIN_STATE_FORMAT, load_tensors, save_tensors
from dskd_core.errors import CheckpointError
from dskd_core.methods import Distiller
from dskd_core.runs.layout import TRAIN_STATE, TRAIN_STATE_PREV
from dskd_core.runs.records import TrainStateHeader


@dataclass
class Progress:
    """What survives a resume besides tensors."""

    epoch: int = 0  # last completed epoch
    best_acc: float = 0.0
    best_epoch: int = 0
    wall_time_s: float = 0.0
    last_event: dict[str, Any] | None = None  # the log.jsonl event of `epoch`
    best_state: dict[str, Tensor] | None = field(default=None, repr=False)  # None: the current student is best


def _rng_tensors() -> tuple[dict[str, Tensor], dict[str, Any]]:
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        tensors.update({f"rng.cuda.{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    np_state = np.random.get_state(legacy=False)
    tensors["rng.numpy.key"] = torch.from_numpy(np.asarray(np_state["state"]["key"], dtype=np.int64))
    meta = {
        "python": random.getstate(),
        "numpy": {k: v for k, v in np_state.items() if k != "state"} | {"pos": int(np_state["state"]["pos"])},
    }
    return tensors, meta


def _restore_rng(tensors: dict[str, Tensor], meta: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    cuda = [tensors[k] for k in sorted((k for k in tensors if k.startswith("rng.cuda.")), key=lambda k: int(k[9:]))]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    version, internal, gauss = meta["python"]
    random.setstate((version, tuple(internal), gauss))
    np_meta = meta["numpy"]
    np.random.set_state(
        {
            "bit_generator": np_meta["bit_generator"],
            "state": {"key": tensors["rng.numpy.key"].numpy().astype(np.uint32), "pos": np_meta["pos"]},
            "has_gauss": np_meta["has_gauss"],
            "gauss": np_meta["gauss"],
        }
    )


def save_train_state(
    ckpt_dir: Path, distiller: Distiller, optimizer: torch.optim.Optimizer, progress: Progress, config_json: str
) -> None:
    """Write the state atomically, keeping the previous one as the fallback."""
    tensors: dict[str, Tensor] = {f"student.{k}": v for k, v in distiller.student.state_dict().items()}
    if progress.best_state is not None:
        tensors.update({f"best.{k}": v for k, v in progress.best_state.items()})
    tensors.update({f"extra.{k}": v for k, v in distiller.extra_state_dict().items()})
    opt = optimizer.state_dict()
    for pid, slots in opt["state"].items():
        for key, value in slots.items():
            if isinstance(value, Tensor):
                tensors[f"optim.{pid}.{key}"] = value
    rng, rng_meta = _rng_tensors()
    tensors.update(rng)
    scalars = {k: v for k, v in asdict(progress).items() if k != "best_state"}
    metadata = TrainStateHeader(
        format=TRAIN_STATE_FORMAT,
        progress=scalars,
        rng=rng_meta,
        param_groups=opt["param_groups"],
        config=config_json,
    ).to_json()
    save_tensors(ckpt_dir / TRAIN_STATE, tensors, metadata, keep_previous=ckpt_dir / TRAIN_STATE_PREV)


def match_param_layout(optimizer: torch.optim.Optimizer) -> None:
    """Give each parameter-shaped optimizer buffer its parameter's memory layout.

    Saved buffers load contiguous; on the fast path the parameters are channels_last, and CUDA's
    fused SGD refuses a momentum buffer whose strides differ from its parameter's.
    """
    for group in optimizer.param_groups:
        for param in group["params"]:
            state = optimizer.state.get(param, {})
            for key, value in state.items():
                if isinstance(value, Tensor) and value.shape == param.shape and value.stride() != param.stride():
                    state[key] = torch.empty_like(param, dtype=value.dtype).copy_(value)


def _load_one(path: Path, distiller: Distiller, optimizer: torch.optim.Optimizer) -> Progress:
    tensors, meta = load_tensors(path)
    if meta.get("format") != TRAIN_STATE_FORMAT:
        raise CheckpointError(f"{path} is not a dskd train state")
    device = next(distiller.student.parameters()).device

    def section(prefix: str) -> dict[str, Tensor]:
        return {k[len(prefix) :]: v.to(device) for k, v in tensors.items() if k.startswith(prefix)}

    try:
        header = TrainStateHeader.from_json(meta)
        distiller.student.load_state_dict(section("student."), strict=True)
        extras = section("extra.")
        if set(extras) != set(distiller.extra_state_dict()):
            raise CheckpointError(f"{path} holds other method modules than this run's")
        if extras:
            distiller.load_state_dict(extras, strict=False)
        slots: dict[int, dict[str, Any]] = {}
        for key, value in section("optim.").items():
            pid, _, name = key.partition(".")
            slots.setdefault(int(pid), {})[name] = value
        optimizer.load_state_dict({"state": slots, "param_groups": list(header.param_groups)})
        match_param_layout(optimizer)
        _restore_rng(tensors, dict(header.rng))
    except (RuntimeError, KeyError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"{path} does not fit this run ({first[:120]})") from None
    best = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")}
    return Progress(**header.progress, best_state=best or None)


def load_train_state(
    ckpt_dir: Path, distiller: Distiller, optimizer: torch.optim.Optimizer
) -> tuple[Progress, list[str]]:
    """The newest state that verifies, and a note per state that did not (newest first)."""
    problems: list[str] = []
    for name in (TRAIN_STATE, TRAIN_STATE_PREV):
        path = ckpt_dir / name
        if not path.exists():
            continue
        try:
            return _load_one(path, distiller, optimizer), problems
        except CheckpointError as err:
            problems.append(str(err))
    raise CheckpointError(
        f"no usable train state in {ckpt_dir} ({'; '.join(problems) or 'none found'}): "
        "start the run afresh with --overwrite"
    )

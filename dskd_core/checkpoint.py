"""Checkpoints: safetensors only, written atomically; legacy ``.pth`` read with ``weights_only=True``.

Two kinds of file live in a run's ``checkpoints/``: student-only weights
(``student_last``/``student_best``; exactly the model's state-dict keys, loadable strictly) and
the full train state (``train_state``: student, method extras, optimizer buffers, RNG, with the
scalar state as JSON in the safetensors metadata). Nothing dskd writes is ever unpickled.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load_bytes
from safetensors.torch import save as st_save_bytes
from torch import Tensor, nn

from dskd_core.errors import CheckpointError

STUDENT_FORMAT = "dskd-student/1"
TRAIN_STATE_FORMAT = "dskd-train-state/1"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, rename over ``path``, fsync the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def save_tensors(path: Path, tensors: Mapping[str, Tensor], metadata: Mapping[str, str]) -> None:
    """Save tensors (moved to CPU, made contiguous) with string metadata, atomically."""
    flat = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    atomic_write_bytes(path, st_save_bytes(flat, metadata=dict(metadata)))


def load_tensors(path: Path) -> tuple[dict[str, Tensor], dict[str, str]]:
    """Read a safetensors file: ``(tensors, metadata)``; a one-line error when it is not one."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} not found: check the path") from None
    except IsADirectoryError:
        raise CheckpointError(f"{path} is a folder, not a checkpoint file") from None
    try:
        tensors = st_load_bytes(raw)
        header_len = int.from_bytes(raw[:8], "little")
        header = json.loads(raw[8 : 8 + header_len])
    except (SafetensorError, ValueError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path} is not a readable safetensors file ({err}): re-create it") from None
    return tensors, dict(header.get("__metadata__") or {})


def save_student(path: Path, model: nn.Module, *, arch: str, num_classes: int, extra: Mapping[str, Any]) -> None:
    """Student-only weights: exactly ``model.state_dict()``; arch and provenance in the metadata."""
    metadata = {"format": STUDENT_FORMAT, "arch": arch, "num_classes": str(num_classes)}
    metadata.update({k: json.dumps(v) for k, v in extra.items()})
    save_tensors(path, model.state_dict(), metadata)


def _legacy_safe_globals() -> list[Any]:
    """argparse options, NumPy scalars and dtypes: the non-tensor objects such files carry."""
    import numpy as np

    allowed: list[Any] = [argparse.Namespace, np.dtype, np.ndarray]
    allowed += [type(np.dtype(t)) for t in ("float64", "float32", "int64", "int32")]
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):  # pickles of numpy < 2 and >= 2
        try:
            allowed.append(importlib.import_module(module).scalar)
        except (ImportError, AttributeError):
            continue
    return allowed


def load_legacy_state_dict(path: Path) -> dict[str, Tensor]:
    """A legacy ``.pth`` (``{"model": state_dict}`` or a bare state dict), ``weights_only=True``.

    The ``module.`` prefix of DataParallel saves and the ``module.student.`` prefix of
    mdistiller's full distiller saves are stripped.
    """
    try:
        with torch.serialization.safe_globals(_legacy_safe_globals()):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} not found: check the path") from None
    except Exception as err:  # UnpicklingError and friends: refuse, never fall back to full pickle
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            f"{path} cannot be read safely as a weights-only checkpoint ({first[:160]}): "
            "use a dskd .safetensors checkpoint"
        ) from None
    state = obj.get("model", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise CheckpointError(f"{path} holds no state dict (expected {{'model': state_dict}})")
    if any(k.startswith("module.student.") for k in state):
        state = {k.removeprefix("module.student."): v for k, v in state.items() if k.startswith("module.student.")}
    elif all(k.startswith("module.") for k in state):
        state = {k.removeprefix("module."): v for k, v in state.items()}
    return state


def read_model_weights(path: Path) -> tuple[dict[str, Tensor], dict[str, str]]:
    """Weights from a dskd ``.safetensors`` file or a legacy ``.pth``: ``(state_dict, metadata)``."""
    path = Path(path)
    if path.suffix == ".safetensors":
        return load_tensors(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} not found: check the path")
    return load_legacy_state_dict(path), {}


def load_weights_into(model: nn.Module, state: Mapping[str, Tensor], *, arch: str, source: Path) -> None:
    """Strict load with a one-line error naming what does not fit."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{source} does not fit {arch} ({len(missing)} missing keys e.g. {missing[:2]}, "
            f"{len(unexpected)} unexpected e.g. {unexpected[:2]}): pass the checkpoint's own -m/--model"
        )
    for key, value in state.items():
        if value.shape != expected[key].shape:
            raise CheckpointError(
                f"{source} does not fit {arch}: {key} is {tuple(value.shape)}, the model wants "
                f"{tuple(expected[key].shape)} (another architecture or class count)"
            )
    model.load_state_dict(dict(state), strict=True)

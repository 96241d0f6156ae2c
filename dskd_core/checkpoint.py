"""Checkpoints: safetensors only, written atomically; legacy ``.pth`` read with ``weights_only=True``.

Two kinds of file live in a run's ``checkpoints/``: student-only weights
(``student_last``/``student_best``; exactly the model's state-dict keys, loadable strictly) and
the full train state (``train_state``: student, method extras, optimizer buffers, RNG, with the
scalar state as JSON in the safetensors metadata). Nothing dskd writes is ever unpickled.

The one reader of legacy RepDistiller/mdistiller ``.pth`` files and the one strict loader live
here, shared by ``dskd eval``/``--teacher-ckpt`` (``load_model``) and ``dskd fetch-teachers``.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import io
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load_bytes
from safetensors.torch import save as st_save_bytes
from torch import Tensor, nn

from dskd_core.errors import CheckpointError, StorageError
from dskd_core.models import ZooModel, create_model
from dskd_core.runs.layout import CHECKPOINTS, STUDENT_LAST

STUDENT_FORMAT = "dskd-student/1"
TRAIN_STATE_FORMAT = "dskd-train-state/1"
MAX_HEADER_BYTES = 100_000_000  # safetensors' own limit on the JSON header
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def atomic_write_bytes(path: Path, data: bytes, *, keep_previous: Path | None = None) -> None:
    """Write to a temp file in the same folder, fsync, rename over ``path``, fsync the folder.

    With ``keep_previous`` the file being replaced is first renamed there, so a reader finds
    either the new file or (after a kill between the two renames) the previous one. Any OS
    error becomes a one-line :class:`StorageError`; the previous file is left as it was.
    """
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the mode open() would
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if keep_previous is not None and path.exists():
            os.replace(path, keep_previous)
        os.replace(tmp, path)
        tmp = None
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as err:
        raise StorageError(
            f"could not write {path} ({err.strerror or err}): free disk space or choose another --runs-dir; "
            "the previous file is intact"
        ) from None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _data_section(raw: bytes) -> tuple[dict[str, Any], bytes]:
    header_len = int.from_bytes(raw[:8], "little")
    return json.loads(raw[8 : 8 + header_len]), raw[8 + header_len :]


def _with_digest(raw: bytes) -> bytes:
    """Put the SHA-256 of the data section into the header metadata (offsets are data-relative)."""
    header, data = _data_section(raw)
    header.setdefault("__metadata__", {})["digest"] = "sha256:" + hashlib.sha256(data).hexdigest()
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # keep the data section 8-byte aligned
    return len(text).to_bytes(8, "little") + text + data


def save_tensors(
    path: Path, tensors: Mapping[str, Tensor], metadata: Mapping[str, str], *, keep_previous: Path | None = None
) -> None:
    """Save tensors (moved to CPU, made contiguous) with string metadata and a digest, atomically."""
    flat = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    atomic_write_bytes(path, _with_digest(st_save_bytes(flat, metadata=dict(metadata))), keep_previous=keep_previous)


def load_tensors(path: Path) -> tuple[dict[str, Tensor], dict[str, str]]:
    """Read and verify a safetensors file: ``(tensors, metadata)``; a one-line error when it is not one.

    Files dskd wrote carry a digest of their data section, checked here, so a truncated or
    corrupted checkpoint is refused rather than loaded.
    """
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} not found: check the path") from None
    except IsADirectoryError:
        raise CheckpointError(f"{path} is a folder, not a checkpoint file") from None
    header_len = int.from_bytes(raw[:8], "little") if len(raw) >= 8 else -1
    if not 0 < header_len <= len(raw) - 8:
        raise CheckpointError(f"{path} is not a readable safetensors file (bad header length): re-create it")
    try:
        tensors = st_load_bytes(raw)
        header, data = _data_section(raw)
    except (SafetensorError, ValueError, UnicodeDecodeError, MemoryError) as err:
        raise CheckpointError(f"{path} is not a readable safetensors file ({err}): re-create it") from None
    metadata = dict(header.get("__metadata__") or {})
    digest = metadata.get("digest")
    if digest is not None and digest != "sha256:" + hashlib.sha256(data).hexdigest():
        raise CheckpointError(f"{path} fails verification (digest mismatch): the file is corrupted")
    return tensors, metadata


def check_readable(path: Path) -> None:
    """Refuse a ``.safetensors`` file whose header cannot be read (empty, cut short, not safetensors), from the
    header alone; a legacy ``.pth`` is left to its loader."""
    if Path(path).suffix != ".safetensors":
        return
    try:
        with Path(path).open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            header_len = int.from_bytes(handle.read(8), "little")
            ok = 0 < header_len <= min(size - 8, MAX_HEADER_BYTES) and isinstance(
                json.loads(handle.read(header_len)), dict
            )
    except (OSError, ValueError, UnicodeDecodeError):
        ok = False
    if not ok:
        raise CheckpointError(
            f"{path} is not a readable safetensors file (empty or cut short?): fetch or save it again, or pass "
            "another checkpoint"
        )


def read_metadata(path: Path) -> dict[str, str]:
    """The string metadata of a safetensors file, from its header alone (no tensors read, no verification)."""
    try:
        with Path(path).open("rb") as handle:
            header_len = int.from_bytes(handle.read(8), "little")
            if not 0 < header_len <= min(os.fstat(handle.fileno()).st_size - 8, MAX_HEADER_BYTES):
                return {}
            header = json.loads(handle.read(header_len))
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    return dict(meta) if isinstance(meta, dict) else {}


def save_student(
    path: Path, weights: nn.Module | Mapping[str, Tensor], *, arch: str, num_classes: int, extra: Mapping[str, Any]
) -> None:
    """Student-only weights: exactly the model's state dict; arch and provenance in the metadata."""
    state = weights.state_dict() if isinstance(weights, nn.Module) else weights
    metadata = {"format": STUDENT_FORMAT, "arch": arch, "num_classes": str(num_classes)}
    metadata.update({k: json.dumps(v) for k, v in extra.items()})
    save_tensors(path, state, metadata)


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


@dataclass(frozen=True)
class LegacyCheckpoint:
    """What a RepDistiller/mdistiller ``.pth`` carries that dskd keeps."""

    state: dict[str, Tensor]
    epoch: int | None
    accuracy: float | None


#: What to do about a legacy file dskd refuses, unless the caller knows better.
LEGACY_FIX = "use a dskd .safetensors checkpoint"


def read_legacy_checkpoint(source: Path | bytes, where: str, *, fix: str = LEGACY_FIX) -> LegacyCheckpoint:
    """Unpickle a legacy ``.pth`` (a file, or its bytes) with ``weights_only=True`` and the legacy allow-list.

    The layout is ``{"model": state_dict, "epoch", "accuracy" | "best_acc", ...}`` or a bare
    state dict. Never ``weights_only=False``; passing it explicitly also means torch's
    ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` cannot turn the restriction off. A pickle that names
    anything else (a function such as ``os.system``) is refused before any of it runs. The
    ``module.`` prefix of DataParallel saves and the ``module.student.`` prefix of mdistiller's
    full distiller saves are stripped. Errors name ``where`` and end with ``fix``.
    """
    try:
        with torch.serialization.safe_globals(_legacy_safe_globals()):
            handle = io.BytesIO(source) if isinstance(source, bytes) else source
            obj = torch.load(handle, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {where} not found: check the path") from None
    except Exception as err:  # UnpicklingError and friends: refuse, never fall back to full pickle
        raise CheckpointError(
            f"{where} cannot be read safely as a weights-only checkpoint ({unpickling_reason(err)}): {fix}"
        ) from None
    state = obj.get("model", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict) or not state or not all(isinstance(v, Tensor) for v in state.values()):
        raise CheckpointError(f"{where} holds no state dict (expected {{'model': state_dict}}): {fix}")
    return LegacyCheckpoint(
        _unwrap(state), _as_int(obj.get("epoch")), _as_float(obj.get("accuracy", obj.get("best_acc")))
    )


def _unwrap(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The student of a distiller save (``module.student.``), or a DataParallel save without ``module.``."""
    if any(k.startswith("module.student.") for k in state):
        return {k.removeprefix("module.student."): v for k, v in state.items() if k.startswith("module.student.")}
    if all(k.startswith("module.") for k in state):
        return {k.removeprefix("module."): v for k, v in state.items()}
    return state


def unpickling_reason(err: BaseException) -> str:
    """The telling line of a refused unpickling (the global torch would not load), at most 200 characters."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    telling = [line for line in lines if "GLOBAL" in line or "Unsupported" in line]
    return (telling or lines or [type(err).__name__])[0][:200]


def _as_float(value: Any) -> float | None:
    try:
        return float(value.item() if isinstance(value, Tensor) else value)
    except (TypeError, ValueError, RuntimeError):
        return None


def _as_int(value: Any) -> int | None:
    number = _as_float(value)
    return int(number) if number is not None else None


def read_model_weights(path: Path) -> tuple[dict[str, Tensor], dict[str, str]]:
    """Weights from a dskd ``.safetensors`` file or a legacy ``.pth``: ``(state_dict, metadata)``."""
    path = Path(path)
    if path.suffix == ".safetensors":
        return load_tensors(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} not found: check the path")
    return read_legacy_checkpoint(path, str(path)).state, {}


#: What to do about weights that do not fit the model, unless the caller knows better.
STRICT_FIX = "pass the checkpoint's own -m/--model"


def load_strict(
    model: nn.Module, state: Mapping[str, Tensor], *, arch: str, where: str | Path, fix: str | None = None
) -> None:
    """Load ``state`` into ``model`` with every key and shape matching, or refuse in one line.

    A key mismatch ends with ``fix`` (default :data:`STRICT_FIX`); a shape mismatch names the
    tensor, and ends with ``fix`` only when one is given.
    """
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{where} does not fit {arch} ({len(missing)} missing keys e.g. {missing[:2]}, "
            f"{len(unexpected)} unexpected e.g. {unexpected[:2]}): {fix or STRICT_FIX}"
        )
    for key, value in state.items():
        if value.shape != expected[key].shape:
            raise CheckpointError(
                f"{where} does not fit {arch}: {key} is {tuple(value.shape)}, the model wants "
                f"{tuple(expected[key].shape)} (another architecture or class count)" + (f": {fix}" if fix else "")
            )
    model.load_state_dict(dict(state), strict=True)


# ---------------------------------------------------------------------------------------------
# A model from a checkpoint


def checkpoint_in(path: Path, name: str = STUDENT_LAST) -> Path:
    """A checkpoint file as given, or ``checkpoints/<name>`` inside a run directory."""
    if path.is_dir():
        candidate = path / CHECKPOINTS / name
        if not candidate.is_file():
            raise CheckpointError(
                f"{path} is a folder without {CHECKPOINTS}/{name}: pass a dskd run directory or a checkpoint file"
            )
        return candidate
    return path


def load_model(
    arch: str,
    path: Path,
    num_classes: int,
    device: torch.device,
    *,
    zoo: str = "cifar",
    arch_fix: str | None = None,
    fix: str | None = None,
) -> ZooModel:
    """Build ``arch`` of ``zoo`` and load a dskd safetensors or legacy ``.pth`` checkpoint into it, strictly.
    ``arch_fix``: what a checkpoint recording another architecture should do instead (:func:`check_metadata`);
    ``fix``: what one whose weights do not fit should (:func:`load_strict`)."""
    model = create_model(arch, num_classes=num_classes, zoo=zoo)
    state, meta = read_model_weights(path)
    check_metadata(path, meta, arch, num_classes, arch_fix=arch_fix)
    load_strict(model, state, arch=arch, where=path, fix=fix)
    return model.to(device)


def check_metadata(
    path: Path, meta: Mapping[str, str], arch: str, num_classes: int | None, *, arch_fix: str | None = None
) -> None:
    """Refuse a checkpoint whose metadata records another architecture or (``num_classes`` given) class count;
    ``train --dry-run`` checks a teacher with this and :func:`read_metadata`, reading its header alone.
    ``arch_fix`` names the fix for another architecture (``{saved}``: the one recorded); default ``pass -m``."""
    saved_arch = meta.get("arch")
    if saved_arch and saved_arch != arch:
        fix = (arch_fix or "pass -m {saved}").format(saved=saved_arch, arch=arch)
        raise CheckpointError(f"{path} holds a {saved_arch}, not a {arch}: {fix}")
    saved_classes = meta.get("num_classes")
    if saved_classes and num_classes is not None and int(saved_classes) != num_classes:
        raise CheckpointError(
            f"{path} has {saved_classes} classes but the dataset has {num_classes}: use a checkpoint "
            "trained on this dataset"
        )

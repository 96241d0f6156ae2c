"""Evaluating a saved checkpoint on a dataset's test split (``dskd eval``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dskd_core.checkpoint import checkpoint_in, load_model, read_metadata
from dskd_core.config import Settings
from dskd_core.data import LoaderOptions, get_dataset_spec, make_loader
from dskd_core.data.factory import auto_workers
from dskd_core.device import resolve_device
from dskd_core.errors import UsageError
from dskd_core.models import resolve_model_name
from dskd_core.runs.layout import STUDENT_BEST
from dskd_core.train.evaluate import evaluate
from dskd_core.train.setup import open_dataset


def evaluate_checkpoint(
    arch: str | None,
    checkpoint: Path,
    dataset: str | None,
    settings: Settings,
    *,
    batch_size: int | None = None,
    image_size: int | None = None,
) -> dict[str, Any]:
    """Top-1/top-5/loss of ``arch`` loaded from ``checkpoint`` (a run folder means its best student).

    ``arch`` and ``dataset`` default to the ones a dskd student file records (a run folder's
    students do; a legacy ``.pth`` needs ``arch``, and its dataset defaults to cifar100). The test
    batch size (and, on ImageNet, the crop size) default to the ones the run evaluated with, so the
    number reproduces the run's ``summary.json``.
    """
    path = checkpoint_in(Path(checkpoint), STUDENT_BEST)
    meta = read_metadata(path) if path.suffix == ".safetensors" else {}
    if dataset is None:
        dataset = _recorded(meta, "dataset") or "cifar100"
    if arch is None:
        if not path.is_file():
            raise UsageError(f"checkpoint {path} not found: check the -c path (a run folder or a checkpoint file)")
        arch = meta.get("arch")
        if not arch:
            raise UsageError(f"{path} does not record its architecture: pass -m MODEL (dskd models lists them)")
    spec = get_dataset_spec(dataset)
    arch, _ = resolve_model_name(arch, spec.zoo)
    if batch_size is None:
        batch_size = int(meta.get("test_batch_size", 64))
    if spec.resizable:
        image_size = image_size or int(meta.get("image_size", spec.recipe.get("image_size", 224)))
    elif image_size is not None:
        raise UsageError(f"{dataset} images have a fixed size: drop --image-size (it applies to imagenet)")
    device = resolve_device(settings.device)
    data = open_dataset(dataset, settings)
    spec = data.spec
    model = load_model(arch, path, spec.num_classes, device, zoo=spec.zoo)
    workers = settings.workers if settings.workers is not None else auto_workers()
    loader = make_loader(
        data.test,
        spec,
        batch_size,
        LoaderOptions(
            train=False, device=device, image_size=image_size, workers=workers, pin_memory=settings.pin_memory
        ),
    )
    result = evaluate(model, loader)
    return {**result.as_dict(), "model": arch, "checkpoint": str(path), "dataset": dataset}


def _recorded(meta: dict[str, str], key: str) -> str | None:
    """A value a dskd student file records (JSON-encoded in its metadata), or None."""
    try:
        value = json.loads(meta[key])
    except (KeyError, ValueError):
        return None
    return value if isinstance(value, str) else None

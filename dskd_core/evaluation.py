"""Evaluating a saved checkpoint on a dataset's test split (``dskd eval``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dskd_core.checkpoint import read_metadata
from dskd_core.config import Settings
from dskd_core.data import BatchLoader, get_dataset_spec, load_dataset
from dskd_core.train.build import STUDENT_BEST, checkpoint_in, load_model, resolve_device
from dskd_core.train.evaluate import evaluate


def evaluate_checkpoint(
    arch: str, checkpoint: Path, dataset: str, settings: Settings, *, batch_size: int | None = None
) -> dict[str, Any]:
    """Top-1/top-5/loss of ``arch`` loaded from ``checkpoint`` (a run folder means its best student).

    The test batch size defaults to the one the run evaluated with, so the number reproduces
    the run's ``summary.json``.
    """
    from dskd_core.models import list_models

    if arch not in list_models():
        from dskd_core.errors import UnknownNameError

        raise UnknownNameError("model", arch, list_models())
    spec = get_dataset_spec(dataset)
    path = checkpoint_in(Path(checkpoint), STUDENT_BEST)
    if batch_size is None:
        batch_size = int(read_metadata(path).get("test_batch_size", 64)) if path.suffix == ".safetensors" else 64
    device = resolve_device(settings.device)
    model = load_model(arch, path, spec.num_classes, device)
    _, test = load_dataset(dataset, settings.data_dir, settings.download)
    result = evaluate(model, BatchLoader(test, spec, batch_size, train=False, device=device))
    return {**result.as_dict(), "model": arch, "checkpoint": str(path), "dataset": dataset}

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from dskd_core.resolve import resolve_run_config
from dskd_core.train import fit
from tests.helpers import make_settings, teacher_header


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``gpu`` are skipped, with the reason, where no CUDA device is visible."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (torch.cuda.is_available() is false)")
    for item in items:
        if item.get_closest_marker("gpu") is not None:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _restore_rng() -> Iterator[None]:
    """Every test leaves the global RNGs as it found them."""
    torch_state = torch.get_rng_state()
    py_state = random.getstate()
    yield
    torch.set_rng_state(torch_state)
    random.setstate(py_state)


@pytest.fixture(autouse=True)
def _quiet_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No progress bars, no downloads, and every dskd folder inside the test's tmp dir."""
    monkeypatch.setenv("DSKD_PROGRESS", "0")
    monkeypatch.setenv("DSKD_DOWNLOAD", "0")
    monkeypatch.setenv("DSKD_DEVICE", "cpu")
    monkeypatch.setenv("DSKD_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("DSKD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DSKD_TEACHERS_DIR", str(tmp_path / "teachers"))
    monkeypatch.delenv("DSKD_DEBUG", raising=False)
    monkeypatch.delenv("COLUMNS", raising=False)  # a pipe honours COLUMNS: tables keep their natural width here
    monkeypatch.delenv("DSKD_LOG", raising=False)  # no tracker a developer exported
    monkeypatch.delenv("DSKD_THREADS", raising=False)


@pytest.fixture
def fetched_teachers(tmp_path: Path) -> Path:
    """Every model of every dataset's zoo as a teacher file where ``dskd fetch-teachers`` puts it, so a
    ``--dry-run`` of a distillation (which checks its teacher's file, reading the header alone) resolves.
    The files hold a real header (architecture, class count) and no weights: a test that loads a teacher
    trains or fetches one."""
    from dskd_core.data import get_dataset_spec, list_datasets
    from dskd_core.models import list_models

    root = tmp_path / "teachers"
    for dataset in list_datasets():
        spec = get_dataset_spec(dataset)
        (root / dataset).mkdir(parents=True, exist_ok=True)
        for name in list_models(spec.zoo):
            teacher_header(root / dataset / f"{name}.safetensors", name, spec.num_classes)
    return root


@pytest.fixture(scope="session")
def teacher_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A resnet8 trained one epoch on synthetic data: the teacher of the distillation tests."""
    cfg = resolve_run_config(method="vanilla", student="resnet8", dataset="synthetic", flags={"epochs": 1})
    return fit(cfg, make_settings(tmp_path_factory.mktemp("teacher"))).run_dir


@pytest.fixture
def float64() -> Iterator[None]:
    """Run a test with float64 as the default dtype (algebraic identities are checked to ~1e-10)."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)

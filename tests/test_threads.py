"""``--threads``: torch's CPU pool per process, and the note a terminal user gets when the cores are busy."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import torch
from typer.testing import CliRunner

from dskd_cli.app import app
from dskd_core.device import apply_threads, available_cores, cpu_competition, default_threads


@pytest.fixture(autouse=True)
def _keep_threads() -> Iterator[None]:
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_available_cores_is_the_affinity_mask_at_most() -> None:
    assert 1 <= available_cores() <= len(os.sched_getaffinity(0))


def test_threads_size_the_pool_and_none_leaves_it(monkeypatch: pytest.MonkeyPatch) -> None:
    assert apply_threads(1) == 1 and torch.get_num_threads() == 1
    assert apply_threads(None) == 1  # a library caller's own pool size stands
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    torch.set_num_threads(64)
    assert default_threads() == min(64, available_cores())  # never more than the cores it may use
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # as --nproc gives each process its share
    assert default_threads() is None


def test_a_train_run_uses_the_threads_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    torch.set_num_threads(available_cores())
    result = CliRunner().invoke(
        app, ["train", "vanilla", "resnet8", "-d", "synthetic", "--epochs", "1", "--threads", "1"]
    )
    assert result.exit_code == 0, result.output
    assert torch.get_num_threads() == 1
    bad = CliRunner().invoke(app, ["train", "vanilla", "resnet8", "-d", "synthetic", "--threads", "0"])
    assert bad.exit_code == 2 and "--threads" in bad.output


def test_busy_cores_are_named_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    cores = available_cores()
    monkeypatch.setattr(os, "getloadavg", lambda: (float(cores) + 1.0, 0.0, 0.0))  # the kernel's reading, given
    message = cpu_competition(None)
    assert message is not None and message.startswith(f"the CPUs are busy (load {cores + 1.0:.1f} over the last")
    assert message.endswith("--threads N sets how many it uses")
    monkeypatch.setattr(os, "getloadavg", lambda: (0.1, 0.0, 0.0))
    assert cpu_competition(None) is None
    monkeypatch.setattr(os, "getloadavg", lambda: (float(cores) - 1.0, 0.0, 0.0))
    assert cpu_competition(1) is None  # one thread fits beside the others

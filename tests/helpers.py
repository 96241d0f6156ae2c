"""Helpers shared by test modules (imported as ``tests.helpers``)."""

from __future__ import annotations

from pathlib import Path

from dskd_core.config import RunConfig
from dskd_core.resolve import resolve_run_config


def kd_config(teacher_run: Path, **flags: object) -> RunConfig:
    """KD of a resnet8 by the session's synthetic resnet8 teacher run, with ``flags`` as CLI flags."""
    return resolve_run_config(
        method="kd",
        teacher="resnet8",
        student="resnet8",
        dataset="synthetic",
        flags={"teacher_ckpt": str(teacher_run), **flags},
    )

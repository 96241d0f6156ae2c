"""The teachers manifest: which teachers the field publishes per dataset, where, and their published top-1.

The shipped ``teachers_manifest.toml`` has one table per dataset: an ``archive`` source (a tar
of legacy ``.pth`` files, e.g. mdistiller's ``cifar_teachers.tar``) or a ``torchvision`` source
(weights through torchvision's weights API). Tests pass their own :class:`Manifest`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from dskd_core._compat import tomllib
from dskd_core.errors import UnknownNameError, UsageError


class TeacherEntry(BaseModel):
    """One published teacher: where its weights are and the top-1 published for it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    top1: float
    top1_source: str = ""
    member: str | None = None  # archive sources: the member path after the prefix
    weights: str | None = None  # torchvision sources: a ``torchvision.models.get_weight`` name
    builder: str | None = None  # torchvision sources: the ``torchvision.models`` builder
    advisory_sha256: str | None = None  # published by someone else, unconfirmed: warn on mismatch


class TeacherSet(BaseModel):
    """The published teachers of one dataset and where they come from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Literal["archive", "torchvision"]
    num_classes: int
    url: str | None = None
    filename: str | None = None
    prefixes: list[str] = [""]
    teachers: dict[str, TeacherEntry]

    @model_validator(mode="after")
    def _complete(self) -> TeacherSet:
        if self.source == "archive":
            if not self.url or not self.filename or "/" in self.filename:
                raise ValueError("an archive source needs url and a plain filename")
            if any(entry.member is None for entry in self.teachers.values()):
                raise ValueError("every teacher of an archive source needs a member")
        elif any(entry.weights is None or entry.builder is None for entry in self.teachers.values()):
            raise ValueError("every teacher of a torchvision source needs weights and builder")
        return self

    def select(self, models: Sequence[str] | None) -> list[str]:
        """``models`` when each is published here (else a did-you-mean error); ``None`` means all of them."""
        for name in models or ():
            if name not in self.teachers:
                raise UnknownNameError("published teacher", name, self.teachers)
        return list(models) if models else list(self.teachers)


class Manifest(BaseModel):
    """Published teachers per dataset (``teachers_manifest.toml``); tests pass their own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    datasets: dict[str, TeacherSet]

    def teacher_set(self, dataset: str) -> TeacherSet:
        if dataset not in self.datasets:
            raise UnknownNameError("teacher dataset", dataset, self.datasets)
        return self.datasets[dataset]


def load_manifest(path: Path | None = None) -> Manifest:
    """The shipped manifest, or the TOML file at ``path`` (same layout: one table per dataset)."""
    try:
        if path is None:
            raw = resources.files("dskd_core").joinpath("teachers_manifest.toml").read_text("utf-8")
        else:
            raw = Path(path).read_text("utf-8")
        return Manifest(datasets=tomllib.loads(raw))
    except (OSError, tomllib.TOMLDecodeError, ValidationError) as err:
        detail = " ".join(str(err).split())[:200]
        raise UsageError(f"teacher manifest {path or 'teachers_manifest.toml'} is invalid ({detail}): fix it") from None


def published_teachers(dataset: str, manifest: Manifest | None = None) -> TeacherSet:
    """``dataset``'s teachers in ``manifest``, by default the shipped one (read through :func:`load_manifest`)."""
    return (manifest or load_manifest()).teacher_set(dataset)


def parse_models(text: str | None) -> list[str] | None:
    """``"resnet56,wrn_40_2"`` (commas or spaces) → names; ``None`` means every teacher."""
    if text is None:
        return None
    names = [n for n in re.split(r"[,\s]+", text.strip()) if n]
    if not names:
        raise UsageError("--models is empty: name teachers, e.g. --models resnet56,wrn_40_2")
    return list(dict.fromkeys(names))

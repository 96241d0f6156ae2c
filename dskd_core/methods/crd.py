"""CRD — Contrastive Representation Distillation (Tian et al., ICLR 2020)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from dskd_core.config import RunConfig
from dskd_core.data import Split
from dskd_core.data.contrast import ContrastSampler
from dskd_core.data.loader import BatchExtra
from dskd_core.errors import UsageError
from dskd_core.methods.base import Batch, register_method
from dskd_core.methods.feature import FEATURE_DEFAULTS, FeatureDistiller, FeatureParams
from dskd_core.models import Features, ZooModel

NCE_EPS = 1e-7
#: Share of the free memory the CRD estimate may take (the rest is left to the nets' activations).
FIT_FRACTION = 0.9
GIB = 1024**3


@dataclass(frozen=True)
class CRDMemory:
    """Bytes CRD adds: two fp32 memory banks, and what each training step gathers and samples."""

    banks: int
    per_step: int

    @property
    def total(self) -> int:
        return self.banks + self.per_step


def crd_memory(num_data: int, *, feat_dim: int, nce_k: int, batch_size: int) -> CRDMemory:
    """The estimate, computed without allocating anything.

    Banks: 2 × N × D fp32. A step: the (B, K+1, D) bank rows gathered for each side (kept for
    the backward pass) with their (B, K+1) scores, the (B, K+1) int64 indices, and the sampler's
    (B, N) random keys with its (B, K) picks.
    """
    rows = batch_size * (nce_k + 1)
    per_step = 2 * rows * (feat_dim + 3) * 4 + rows * 8 + batch_size * (num_data * 4 + nce_k * 12)
    return CRDMemory(banks=2 * num_data * feat_dim * 4, per_step=per_step)


def available_memory(device: torch.device) -> int | None:
    """Free memory of ``device`` in bytes (CUDA: mem_get_info; CPU: MemAvailable), None if unknown."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    if device.type != "cpu":
        return None
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def ensure_crd_fits(
    num_data: int, cfg: RunConfig, device: torch.device, available: int | None = None, *, nce_k: int | None = None
) -> CRDMemory:
    """The estimate for this run (``nce_k``: the negatives it draws, default the config's); UsageError when it
    exceeds 90% of the device's free memory."""
    params = cfg.params
    if not isinstance(params, CRD.Params):
        raise UsageError(f"ensure_crd_fits takes a crd run config, not one of '{cfg.method}'")
    nce_k = params.crd_nce_k if nce_k is None else nce_k
    need = crd_memory(num_data, feat_dim=params.crd_feat_dim, nce_k=nce_k, batch_size=cfg.batch_size)
    free = available_memory(device) if available is None else available
    if free is not None and need.total > FIT_FRACTION * free:
        raise UsageError(
            f"crd needs about {need.total / GIB:.1f} GiB ({num_data:,} samples × {params.crd_feat_dim} dims × 2 "
            f"memory banks, {nce_k:,} negatives per sample at batch {cfg.batch_size}) but {device} has "
            f"{free / GIB:.1f} GiB free: lower --set crd_nce_k=... (or crd_feat_dim, --batch-size), or use a "
            "smaller dataset"
        )
    return need


def nce_loss(probs: Tensor, num_data: int) -> Tensor:
    """NCE over ``(B, K+1)`` scores (column 0 the positive) against a uniform noise 1/N.

    ``−(Σ log P/(P + K/N) over positives + Σ log (K/N)/(P + K/N) over negatives) / B``.
    """
    noise = (probs.shape[1] - 1) / num_data
    positive, negative = probs[:, 0], probs[:, 1:]
    log_d1 = torch.log(positive / (positive + noise + NCE_EPS))
    log_d0 = torch.log(noise / (negative + noise + NCE_EPS))
    return -(log_d1.sum() + log_d0.sum()) / probs.shape[0]


class Embed(nn.Module):
    """Linear projection to the contrast space, then L2 normalisation."""

    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.linear = nn.Linear(dim_in, dim_out)

    def forward(self, x: Tensor) -> Tensor:
        return F.normalize(self.linear(x.flatten(1)), dim=1)


@register_method
class CRD(FeatureDistiller):
    """NCE between each net's embedded pooled feature and the other net's memory bank.

    mdistiller CIFAR: embedding 128, K 16384 negatives ("exact": the positive is the sample
    itself), NCE temperature 0.07, bank momentum 0.5, CE 1, weight 0.8. The banks (N × 128
    each, initialised U[−σ, σ] with σ = 1/√(128/3)) are buffers sized by :meth:`bind_data`;
    the normaliser Z is fixed at the first batch to mean(score) × N, per side.
    """

    class Params(FeatureParams):
        """CRD's weight, embedding size, negatives per sample, bank momentum, NCE temperature, and whether the
        positive is the sample itself (``exact``) or any same-class sample (``relax``)."""

        feat_weight: float = Field(0.8, ge=0)
        crd_feat_dim: int = Field(128, gt=0)
        crd_nce_k: int = Field(16384, gt=0)
        crd_momentum: float = Field(0.5, ge=0, lt=1)
        crd_temperature: float = Field(0.07, gt=0)
        crd_mode: Literal["exact", "relax"] = "exact"

    name = "crd"
    batch_keys = frozenset({"index", "contrast_index"})
    memory_s: Tensor  # (N, D) student-side bank, registered by bind_data
    memory_t: Tensor  # (N, D) teacher-side bank
    z_norm: Tensor  # (2,) the NCE normalisers Z

    params: Params
    defaults: ClassVar[dict[str, Any]] = FEATURE_DEFAULTS

    @classmethod
    def check_config(cls, cfg: RunConfig) -> None:
        if cfg.aug:  # DSKD's CRD reads its own sample loader, which has no --aug: the flag changes nothing there
            raise ValueError("crd trains without --aug (DSKD's CRD loader ignores the flag): drop --aug")

    def __init__(self, student: ZooModel, teacher: ZooModel | None, cfg: RunConfig) -> None:
        super().__init__(student, teacher, cfg)
        assert self.teacher is not None
        dim = self.params.crd_feat_dim
        self.embed_s = Embed(student.get_classifier().in_features, dim)
        self.embed_t = Embed(self.teacher.get_classifier().in_features, dim)
        self.register_buffer("z_norm", torch.full((2,), -1.0))  # Z of the student and teacher sides; −1: unset
        self._sampler: ContrastSampler | None = None
        self._memory: CRDMemory | None = None
        self.num_data = 0
        self.nce_k = self.params.crd_nce_k  # the negatives drawn per sample (bind_data may cap the default)
        self.pool = 0

    def bind_data(self, train: Split) -> None:
        cfg = self.cfg
        if cfg.world_size > 1:  # each process would update only its own samples' rows of the banks
            raise UsageError("crd's memory banks are not shared between processes: train crd with one process")
        device = self.embed_s.linear.weight.device
        ensure_crd_fits(len(train), cfg, device)  # before anything is allocated (the asked negatives: at most)
        self.nce_k = self._negatives(train.labels)
        self._memory = ensure_crd_fits(len(train), cfg, device, nce_k=self.nce_k)
        self.num_data = n = len(train)
        bound = 1.0 / math.sqrt(self.params.crd_feat_dim / 3)
        for name in ("memory_s", "memory_t"):
            self.register_buffer(name, (torch.rand(n, self.params.crd_feat_dim, device=device) * 2 - 1) * bound)
        self._sampler = ContrastSampler(train.labels, self.nce_k, self.params.crd_mode, device)

    def _negatives(self, labels: Tensor) -> int:
        """The negatives per sample: ``crd_nce_k``, but the default capped to the smallest pool of other-class
        samples (a small dataset would otherwise draw 16,384 with replacement from a pool of a few hundred)."""
        asked = self.params.crd_nce_k
        self.pool = len(labels) - int(torch.bincount(labels).max()) if len(labels) else 0
        default = type(self.params).model_fields["crd_nce_k"].default
        return self.pool if asked == default and 0 < self.pool < asked else asked

    def batch_extras(self) -> dict[str, BatchExtra]:
        return {} if self._sampler is None else {"contrast_index": self._sampler}

    def describe(self) -> list[str]:
        notes = super().describe()
        if self._memory is not None:
            notes.append(
                f"crd: memory banks 2 × {self.num_data:,} × {self.params.crd_feat_dim} = "
                f"{self._memory.banks / 1024**2:.1f} MiB, about {self._memory.per_step / 1024**2:.0f} MiB more per "
                f"step for {self.nce_k:,} negatives per sample"
            )
        if self.nce_k != self.params.crd_nce_k:
            notes.append(
                f"crd: the smallest pool of other-class samples holds {self.pool:,}, fewer than the default "
                f"{self.params.crd_nce_k:,} negatives: drawing {self.nce_k:,} per sample (--set crd_nce_k=N chooses)"
            )
        return notes

    def _scores(self, bank: Tensor, contrast_index: Tensor, anchor: Tensor, side: int) -> Tensor:
        """``exp(⟨bank row, anchor⟩ / τ) / Z`` for the ``(B, K+1)`` rows; Z set at the first call."""
        rows = bank[contrast_index]  # (B, K+1, D); a buffer, so no gradient reaches the bank
        scores = torch.exp(torch.bmm(rows, anchor[:, :, None]).squeeze(-1) / self.params.crd_temperature)
        # Set at the first call without reading it back to the host (no synchronisation per step;
        # the fast path's whole-step CUDA graph can record it): unset (< 0) takes this batch's value.
        first = scores.detach().mean() * self.num_data
        z = torch.where(self.z_norm[side] < 0, first, self.z_norm[side])
        self.z_norm[side] = z
        return scores / z  # z itself, not a view of the buffer the other side writes next

    @torch.no_grad()
    def _update(self, bank: Tensor, index: Tensor, embedding: Tensor) -> None:
        m = self.params.crd_momentum
        rows = bank[index] * m + embedding.detach() * (1 - m)
        bank.index_copy_(0, index, F.normalize(rows, dim=1))

    def feature_loss(self, student: Features, teacher: Features, batch: Batch) -> Tensor:
        if self._sampler is None:
            raise UsageError("crd: bind the training data first (Distiller.bind_data; the engine does this)")
        e_s, e_t = self.embed_s(student["pooled_feat"]), self.embed_t(teacher["pooled_feat"])
        contrast = batch["contrast_index"]
        # Each side's anchor is scored against the *other* net's memory, positive first.
        loss = nce_loss(self._scores(self.memory_t, contrast, e_s, 0), self.num_data)
        loss = loss + nce_loss(self._scores(self.memory_s, contrast, e_t, 1), self.num_data)
        self._update(self.memory_s, batch["index"], e_s)
        self._update(self.memory_t, batch["index"], e_t)
        return loss

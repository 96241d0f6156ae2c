"""Batch statistics over every process (``--sync-bn``), on any device and backend.

On CUDA this is ``torch.nn.SyncBatchNorm`` (fused kernels over NCCL). PyTorch's SyncBatchNorm
refuses CPU tensors, so elsewhere (a Gloo run on CPU, the tests) :class:`AllReduceBatchNorm`
does the same arithmetic with two differentiable collectives per layer: every rank's
(count, mean, M2) are gathered, combined exactly (Chan et al.'s parallel variance), and the
backward pass all-reduces the gradients of those statistics, so the parameter gradients equal
those of one process holding the whole batch.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks; the backward pass sums the incoming gradients over ranks too.

    Every rank's loss depends on every rank's statistics, so the gradient of a rank's share of
    the statistics is the sum of all ranks' gradients of the reduced ones.
    """

    @staticmethod
    def forward(ctx: Any, tensor: Tensor) -> Tensor:
        out = tensor.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        out = grad.contiguous().clone()
        dist.all_reduce(out)
        return out


def _all_reduce_with_grad(tensor: Tensor) -> Tensor:
    out: Tensor = _AllReduceSum.apply(tensor)
    return out


class AllReduceBatchNorm(_BatchNorm):
    """BatchNorm whose training statistics cover the batch of every process (same keys as BatchNorm2d)."""

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2-D input, got {input.dim()}-D")

    def forward(self, input: Tensor) -> Tensor:
        distributed = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
        if not (self.training and distributed):
            return super().forward(input)
        channels = input.shape[1]
        dims = [0, *range(2, input.dim())]
        x = input.to(torch.promote_types(input.dtype, torch.float32))  # statistics in fp32 at least (bf16 input)
        count = torch.tensor(float(x.numel() // channels), device=x.device, dtype=x.dtype)
        mean = x.mean(dims)
        m2 = ((x - mean.view(1, -1, *([1] * (x.dim() - 2)))) ** 2).sum(dims)
        # Row r holds rank r's statistics; the sum over ranks is an all-gather that autograd understands.
        rows = torch.zeros(dist.get_world_size(), 2 * channels + 1, device=x.device, dtype=x.dtype)
        rows = rows.index_put((torch.tensor([dist.get_rank()], device=x.device),), torch.cat([mean, m2, count[None]]))
        rows = _all_reduce_with_grad(rows)
        means, m2s, counts = rows[:, :channels], rows[:, channels : 2 * channels], rows[:, -1:]
        total = counts.sum()
        global_mean = (means * counts).sum(0) / total
        global_m2 = (m2s + counts * (means - global_mean) ** 2).sum(0)
        var = global_m2 / total
        if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
            with torch.no_grad():
                assert self.num_batches_tracked is not None
                self.num_batches_tracked.add_(1)
                momentum = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                unbiased = global_m2 / (total - 1).clamp(min=1)
                self.running_mean.lerp_(global_mean.to(self.running_mean.dtype), momentum)
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), momentum)
        shape = (1, channels, *([1] * (x.dim() - 2)))
        out = (x - global_mean.view(shape)) * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out.to(input.dtype)


def convert_sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """Replace every BatchNorm of ``module`` by its synchronised form, keeping parameters and buffers.

    The parameter objects are reused, so an optimizer built before still updates them.
    """
    if device.type == "cuda":
        converted: nn.Module = nn.SyncBatchNorm.convert_sync_batchnorm(module)
        return converted
    if isinstance(module, _BatchNorm) and not isinstance(module, (AllReduceBatchNorm, nn.SyncBatchNorm)):
        synced = AllReduceBatchNorm(
            module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats
        )
        if module.affine:
            with torch.no_grad():
                synced.weight = module.weight
                synced.bias = module.bias
        synced.running_mean = module.running_mean
        synced.running_var = module.running_var
        synced.num_batches_tracked = module.num_batches_tracked
        synced.train(module.training)
        return synced
    for name, child in module.named_children():
        module.add_module(name, convert_sync_batchnorm(child, device))
    return module

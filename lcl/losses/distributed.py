"""Cross-process helpers for the contrastive losses.

The gather keeps the autograd graph: its backward sums the gradient that every process
sends back for a shard and hands the sum to the process that owns the shard. Shards may
differ in size (sizes are exchanged first and shards are padded for the collective).
"""

from __future__ import annotations

import torch
import torch.distributed as dist

__all__ = ["is_distributed", "shard_sizes", "gather_with_grad", "gather_no_grad", "all_reduce_sum"]


def is_distributed() -> bool:
    """True when torch.distributed is initialised with more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def shard_sizes(n: int, device: torch.device) -> list[int]:
    """Number of rows each process holds (``[n]`` without a multi-process group)."""
    if not is_distributed():
        return [n]
    local = torch.tensor([n], dtype=torch.long, device=device)
    sizes = [torch.zeros_like(local) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, local)
    return [int(s.item()) for s in sizes]


def _gather_padded(x: torch.Tensor, sizes: list[int]) -> list[torch.Tensor]:
    # all_gather needs equal shapes on every process, so pad to the largest shard.
    longest = max(sizes)
    x = x.contiguous()
    if x.shape[0] < longest:
        pad = x.new_zeros((longest - x.shape[0],) + tuple(x.shape[1:]))
        x = torch.cat([x, pad])
    parts = [torch.empty_like(x) for _ in sizes]
    dist.all_gather(parts, x)
    return [p[:n] for p, n in zip(parts, sizes)]


class _GatherWithGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, sizes: tuple[int, ...]) -> torch.Tensor:
        ctx.sizes = sizes
        ctx.rank = dist.get_rank()
        return torch.cat(_gather_padded(x, list(sizes)))

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        # Every process holds a gradient for every shard; the owner needs their sum.
        grad = grad.contiguous()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        start = sum(ctx.sizes[: ctx.rank])
        return grad[start : start + ctx.sizes[ctx.rank]], None


def gather_with_grad(x: torch.Tensor, sizes: list[int] | None = None) -> torch.Tensor:
    """Concatenate ``x`` (rows) from all processes in rank order, differentiably.

    ``sizes`` (from :func:`shard_sizes`) saves one collective when already known.
    Without an initialised multi-process group it returns ``x``.
    """
    if not is_distributed():
        return x
    sizes = shard_sizes(x.shape[0], x.device) if sizes is None else sizes
    return _GatherWithGrad.apply(x, tuple(sizes))


def gather_no_grad(x: torch.Tensor, sizes: list[int] | None = None) -> torch.Tensor:
    """Concatenate ``x`` (rows) from all processes in rank order, without gradient."""
    if not is_distributed():
        return x.detach()
    sizes = shard_sizes(x.shape[0], x.device) if sizes is None else sizes
    return torch.cat(_gather_padded(x.detach(), sizes))


def all_reduce_sum(x: torch.Tensor) -> torch.Tensor:
    """Sum of ``x`` over processes (a new tensor, no gradient)."""
    if not is_distributed():
        return x.detach().clone()
    x = x.detach().clone()
    dist.all_reduce(x, op=dist.ReduceOp.SUM)
    return x

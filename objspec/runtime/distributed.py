"""torch.distributed helpers: the global batch of a contrastive loss, and each rank's shard.

Everything here is a no-op in a single process (torch.distributed not initialised).
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def world() -> tuple[int, int]:
    """(rank, world size); (0, 1) outside torch.distributed."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def gather_with_grad(local: torch.Tensor) -> torch.Tensor:
    """(N, ...) every rank's ``local`` (n_r, ...) rows, in rank order; this rank's rows are
    ``local`` itself, so its gradient flows (all_gather returns tensors without one). Ranks may
    hold different numbers of rows: they are padded to the largest for the collective."""
    rank, size = world()
    if size == 1:
        return local
    counts = [torch.zeros(1, dtype=torch.int64, device=local.device) for _ in range(size)]
    dist.all_gather(counts, torch.tensor([local.shape[0]], device=local.device))
    rows = [int(c) for c in torch.cat(counts).cpu()]
    padded = local.new_zeros((max(rows), *local.shape[1:]))
    padded[: local.shape[0]] = local.detach()
    parts = [torch.empty_like(padded) for _ in range(size)]
    dist.all_gather(parts, padded)
    parts = [part[:n] for part, n in zip(parts, rows, strict=True)]
    parts[rank] = local
    return torch.cat(parts)


def shard(indices: torch.Tensor) -> torch.Tensor:
    """This rank's share of a global index order: every ``size``-th element from ``rank``
    (DistributedSampler's interleaving), so ranks see disjoint examples."""
    rank, size = world()
    return indices[rank::size]

"""torch.distributed helpers: the global batch of a contrastive loss, and each rank's shard.

Everything here is a no-op in a single process (torch.distributed not initialised).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch.distributed._functional_collectives import all_gather_single


def world() -> tuple[int, int]:
    """(rank, world size); (0, 1) outside torch.distributed."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def gather_with_grad(local: torch.Tensor) -> torch.Tensor:
    """(N, ...) every rank's ``local`` (n_r, ...) rows, in rank order, differentiable.

    Every rank then computes the same loss over the global batch; the backward sums each row's
    gradient over the ranks (the functional all-gather's backward is a summing reduce-scatter),
    so once DDP averages the parameters' gradients they equal one process's gradient of the
    global batch. Ranks may hold different numbers of rows: they are padded to the largest for
    the collective.
    """
    _, size = world()
    if size == 1:
        return local
    counts = torch.zeros((size, 1), dtype=torch.int64, device=local.device)
    dist.all_gather(list(counts.unbind(0)), torch.tensor([local.shape[0]], device=local.device))
    rows = [int(c) for c in counts.view(-1).cpu()]  # one host read of the ranks' row counts
    padding = local.new_zeros((max(rows) - local.shape[0], *local.shape[1:]))
    group = dist.group.WORLD
    assert group is not None  # initialised: world() saw more than one rank
    gathered = all_gather_single(torch.cat([local, padding]), 0, group)
    parts = gathered.view(size, max(rows), *local.shape[1:])  # waits for the collective
    return torch.cat([part[:n] for part, n in zip(parts.unbind(0), rows, strict=True)])


def shard(indices: torch.Tensor) -> torch.Tensor:
    """This rank's share of a global index order: every ``size``-th element from ``rank``
    (DistributedSampler's interleaving), so ranks see disjoint examples."""
    rank, size = world()
    return indices[rank::size]

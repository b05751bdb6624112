"""Example keys: what makes a row's random draws its own (its index mixed with its tokens)."""

from __future__ import annotations

import torch

from objspec.runtime.rng import GOLDEN, MASK32, IntLike, hash32, signed_mixed_positions


def content_index(ids: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """(B,) int64 in [0, 2**32): a hash of each left-aligned row's tokens and length alone.

    Equal rows get equal hashes; two different rows collide with chance about 2**-32.
    """
    return example_key(ids, valid, None)


def example_key(ids: torch.Tensor, valid: torch.Tensor, index: torch.Tensor | None) -> torch.Tensor:
    """(B,) int64: each example's key for the counter RNG (``index`` (B,) int64, -1 where an
    example has none).

    The content hash is always part of it, so two different examples never share a key, even
    when their given indices collide (a streamed dataset whose shards restart their indices);
    the given index keeps two equal rows of a dataset apart. Without an index, equal rows share
    a key (and so a corruption within an epoch).
    """
    total, length = _weighted_sums(ids, valid)
    given = index if index is not None else torch.full_like(total, -1)
    if ids.device.type == "cpu":  # numpy: the same int64 ops on (B,), less overhead per op
        return torch.from_numpy(_mixed_key(total.numpy(), length.numpy(), given.numpy()))
    return _mixed_key(total, length, given)


def _weighted_sums(ids: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B,) each row's tokens weighted by their position's 32-bit mix (the cached position
    table) and summed mod 2**32, and (B,) its length: the passes over the whole batch."""
    weights = signed_mixed_positions(ids.shape[1], ids.device).unsqueeze(0)
    terms = (ids & MASK32) * weights & MASK32  # no int64 overflow; each term below 2**32
    return torch.where(valid, terms, 0).sum(dim=1) & MASK32, valid.sum(dim=1)


def _mixed_key(total: IntLike, length: IntLike, index: IntLike) -> IntLike:
    """The key from a row's weighted sum, length and index (-1: none), on (B,) numpy arrays
    or tensors alike."""
    content = hash32(total ^ hash32(length ^ GOLDEN))
    mixed = hash32(hash32(index & MASK32) ^ ((index >> 32) & MASK32) ^ GOLDEN)
    keyed = ((mixed >> 1) << 32) | content  # 63 bits: the index's hash above the content's
    return content + (index >= 0) * (keyed - content)

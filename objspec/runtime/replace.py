"""Replacement of selected tokens by a mix of actions, and MLM labels."""

from __future__ import annotations

import torch

IGNORE_INDEX = -100  # the label of a position with nothing to predict (PyTorch / HF convention)


def choose(u: torch.Tensor, cdf: torch.Tensor) -> torch.Tensor:
    """(B, L) int64 action index: the first i with ``u < cdf[i]`` (``cdf`` (A,) int64)."""
    return torch.bucketize(u, cdf, right=True).clamp(max=cdf.numel() - 1)


def replace_tokens(
    input_ids: torch.Tensor,
    selected: torch.Tensor,
    action: torch.Tensor,
    actions: tuple[str, ...],
    mask_id: int | None,
    random_ids: torch.Tensor | None,
) -> torch.Tensor:
    """(B, L) int64: ``input_ids`` with each selected position rewritten by its action.

    ``actions`` names the action of each index of ``action``: 'mask' writes ``mask_id``, 'random'
    writes ``random_ids`` at that position, 'keep' leaves the token.
    """
    out = input_ids
    for i, name in enumerate(actions):  # a loop over the (at most 3) actions, not over tokens
        hit = selected & (action == i)
        if name == "mask":
            out = torch.where(hit, torch.full_like(out, _need(mask_id, "mask")), out)
        elif name == "random":
            if random_ids is None:
                raise ValueError("a 'random' action needs random_ids")
            out = torch.where(hit, random_ids, out)
        elif name != "keep":
            raise ValueError(f"action {name!r} is not a same-length replacement")
    return out


def labels_at(input_ids: torch.Tensor, selected: torch.Tensor) -> torch.Tensor:
    """(B, L) int64: the original token where selected, IGNORE_INDEX elsewhere."""
    return torch.where(selected, input_ids, torch.full_like(input_ids, IGNORE_INDEX))


def _need(token_id: int | None, what: str) -> int:
    if token_id is None:
        raise ValueError(f"the vocabulary has no {what} token")
    return token_id

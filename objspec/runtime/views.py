"""Contrastive views: the second row of each example a contrastive head compares it with."""

from __future__ import annotations

import torch

from objspec.runtime.batch import Batch, BatchError
from objspec.runtime.rewrite import prepend, rewrite


def selected_rows(
    tokens: torch.Tensor, selected: torch.Tensor, first_id: int, fill: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 1 + W) int64 rows and their (B, 1 + W) bool validity: ``first_id`` ([CLS]) and then
    each row's selected tokens in order, packed left (InfoWord's n-gram as its own sequence).
    A row with nothing selected is ``first_id`` alone."""
    ids, valid = rewrite(tokens, selected, fill=fill)
    first = torch.full((ids.shape[0],), first_id, dtype=ids.dtype, device=ids.device)
    return prepend(ids, valid, first)


def paired_view(batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, L') int64 ids and (B, L') bool validity of each row's ``positive_ids`` (the paired
    view of a contrastive objective), with a clear error when the batch has none."""
    if batch.positive is None:
        raise BatchError(
            "this objective pairs each row with its own positive: give every example "
            "'positive_ids' (or a padded 'positive_ids' tensor)"
        )
    return batch.positive.input_ids, batch.positive.valid

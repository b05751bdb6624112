"""XLM's translation language modelling: a sentence and its translation joined into one row."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from objspec.runtime.batch import Batch
from objspec.runtime.rewrite import positions_like, rewrite


@dataclass
class Joined:
    """batch: rows ``</s> sentence </s> translation </s>``; position_ids (B, L) int64, restarting
    at 0 on the translation; langs (B, L) int64, each token's language id."""

    batch: Batch
    position_ids: torch.Tensor
    langs: torch.Tensor


def join_translation(batch: Batch, end_id: int, pad_id: int) -> Joined:
    """XLM's TLM layout (Lample and Conneau, 2019, figure 1): ``</s> x </s> y </s>`` with the
    positions of y starting again at 0 and language ids per token. ``batch.translation`` holds
    the y rows (the examples' ``translation_ids``), ``batch.langs`` (B, 2) their languages."""
    if batch.translation is None or batch.langs is None:
        raise ValueError(
            "translation language modelling needs each example's 'translation_ids' "
            "(and optionally 'lang' and 'translation_lang')"
        )
    x, y = batch, batch.translation
    b = x.input_ids.shape[0]
    end = torch.full((b, 1), end_id, dtype=torch.int64, device=x.device)
    on = torch.ones((b, 1), dtype=torch.bool, device=x.device)
    tokens = torch.cat([end, x.input_ids, end, y.input_ids, end], dim=1)
    keep = torch.cat([on, x.valid, on, y.valid, on], dim=1)
    ids, valid = rewrite(tokens, keep, fill=pad_id)
    first = x.valid.sum(dim=1, keepdim=True) + 2  # </s> x </s>
    pos = positions_like(ids)
    second = pos >= first
    position_ids = torch.where(second, pos - first, pos) * valid
    langs = torch.where(second, batch.langs[:, 1:2], batch.langs[:, :1]) * valid
    joined = Batch(ids, valid, batch.index)
    return Joined(joined, position_ids, langs)

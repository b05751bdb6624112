"""Run-time tables that replacements draw from: similar tokens (MacBERT), a unigram-weighted or
restricted pool of random tokens (SpanBERT's original, a sub-vocabulary).

A spec declares what it draws from (``similar 80%``, ``random 10% from unigram``,
``random 10% from pool``); the tables themselves are data, given to the collator at run time
(``Collator(..., tables={"similar": ..., "pool": ...}, token_counts=...)``) and checked once,
when the collator is built.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from objspec.runtime.rng import U32, below, cdf_index
from objspec.runtime.vocab import Vocab, VocabError

TABLES = ("similar", "pool")  # the names a spec's actions read from ``tables=``
NO_SIMILAR = -1  # the padding of a similar-token row


class TableError(ValueError):
    """A run-time table missing, or not what the spec's actions need."""


def table_of(tables: Mapping[str, Any] | None, name: str, purpose: str) -> Any:
    """The table ``name`` of ``tables=``, or a TableError saying what the spec needs it for."""
    if tables is None or name not in tables or tables[name] is None:
        raise TableError(
            f"this objective {purpose}: pass tables={{{name!r}: ...}} to the collator "
            "(objspec.bundled has stand-ins built from the bundled corpus)"
        )
    return tables[name]


def similar_table(table: Any, vocab: Vocab) -> torch.Tensor:
    """(V, K) int64: row i holds ids similar to id i, then NO_SIMILAR padding (K >= 1).

    A TableError unless every row's ids come first, every id is a non-special id of the
    vocabulary and no id is listed as similar to itself."""
    rows = torch.as_tensor(table)
    if rows.dtype == torch.bool or rows.is_floating_point() or rows.dim() != 2:
        raise TableError(
            f"the similar table must be a (vocabulary size, K) integer table, got "
            f"{tuple(rows.shape)} {rows.dtype}"
        )
    rows = rows.to(torch.int64)
    if rows.shape[0] != vocab.size or rows.shape[1] == 0:
        raise TableError(
            f"the similar table must have one row per id ({vocab.size}) and at least one "
            f"column, got {tuple(rows.shape)}"
        )
    listed = rows != NO_SIMILAR
    if bool((rows[listed] < 0).any()) or bool((rows[listed] >= vocab.size).any()):
        raise TableError(f"the similar table holds ids outside [0, {vocab.size}) (pad: -1)")
    if bool((listed[:, 1:] & ~listed[:, :-1]).any()):
        raise TableError("each row of the similar table must list its ids first, then -1")
    if bool(vocab.special_table()[rows[listed]].any()):
        raise TableError("the similar table lists special tokens; list only ordinary tokens")
    own = torch.arange(vocab.size).unsqueeze(1)
    if bool(((rows == own) & listed).any()):
        raise TableError("the similar table lists a token as similar to itself")
    return rows


def pool_table(table: Any, vocab: Vocab) -> torch.Tensor:
    """(N,) int64: the ids ``random ... from pool`` draws from, each once, none special."""
    ids = torch.as_tensor(table)
    if ids.dtype == torch.bool or ids.is_floating_point() or ids.dim() != 1 or ids.numel() == 0:
        raise TableError("the random pool must be a non-empty list of token ids")
    ids = ids.to(torch.int64)
    if bool((ids < 0).any()) or bool((ids >= vocab.size).any()):
        raise TableError(f"the random pool holds ids outside [0, {vocab.size})")
    if bool(vocab.special_table()[ids].any()):
        raise TableError("the random pool lists special tokens; list only ordinary tokens")
    if ids.unique().numel() != ids.numel():
        raise TableError("the random pool lists an id twice (weights come from unigram)")
    return ids


def unigram_cdf(counts: torch.Tensor, vocab: Vocab) -> torch.Tensor:
    """(V,) int64 cumulative thresholds of the unigram law over non-special ids, its last
    entry 2**32: ``cdf_index(u, cdf)`` is id i with probability count_i / total."""
    weights = counts.to(torch.float64).clamp(min=0.0)
    weights = torch.where(vocab.special_table().to(weights.device), 0.0, weights)
    total = float(weights.sum())
    if total <= 0.0:
        raise VocabError("the token counts give no ordinary token a positive count")
    cdf = torch.round(weights.cumsum(0) / total * U32).to(torch.int64)
    cdf[-1] = U32
    return cdf


def draw_tokens(u: torch.Tensor, pool: torch.Tensor, cdf: torch.Tensor | None) -> torch.Tensor:
    """(N,) int64 ids for uniform 32-bit draws ``u`` (N,): uniform over ``pool`` (N_pool,), or
    by the unigram law ``cdf`` (V,) when given (then ``pool`` is unused)."""
    if cdf is not None:
        return cdf_index(u, cdf)
    return pool[below(u, pool.numel())]


def similar_tokens(
    tokens: torch.Tensor,
    u: torch.Tensor,
    similar: torch.Tensor,
    pool: torch.Tensor,
    cdf: torch.Tensor | None,
) -> torch.Tensor:
    """(N,) int64: for each token (N,), one of its similar ids chosen by its draw u (N,),
    uniformly; a token with none gets a random token instead (MacBERT's fallback), from the
    same draw."""
    rows = similar[tokens]
    count = (rows != NO_SIMILAR).sum(dim=1)
    pick = below(u, count.clamp(min=1)).unsqueeze(1)
    chosen = rows.gather(1, pick).squeeze(1)
    return torch.where(count > 0, chosen, draw_tokens(u, pool, cdf))

"""Replacement of selected tokens by a mix of actions, and MLM labels."""

from __future__ import annotations

import torch

from objspec.runtime.rng import U32, Keys
from objspec.runtime.tables import draw_tokens, similar_tokens

IGNORE_INDEX = -100  # the label of a position with nothing to predict (PyTorch / HF convention)
PER_TOKEN_ACTIONS = ("mask", "random", "keep", "delete", "similar")
DELETED = -1  # written where the action is 'delete'; the rewrite kernel then drops the position


def replace_selected(
    keys: Keys,
    stream: int,
    input_ids: torch.Tensor,
    selected: torch.Tensor,
    actions: tuple[str, ...],
    cdf: tuple[int, ...],
    *,
    mask_id: int | None = None,
    pool: torch.Tensor | None = None,
    random_stream: int | None = None,
    span_start: torch.Tensor | None = None,
    unigram: torch.Tensor | None = None,
    similar: torch.Tensor | None = None,
) -> torch.Tensor:
    """(B, L) int64: ``input_ids`` with each selected position rewritten by its drawn action.

    The action of a selected token is the first i with ``u < cdf[i]`` for its draw u of
    ``stream``, keyed by its position, or by its span's start (``span_start`` (B, L)) so a
    whole span shares one decision. 'mask' writes ``mask_id``, 'random' a token drawn from
    ``pool`` (N,) with ``random_stream`` (or by the unigram law ``unigram``, a (V,) cdf, when
    given), 'similar' one of the token's ids in ``similar`` (V, K) (a random token where it
    lists none), 'keep' leaves the token, 'delete' writes DELETED (for
    :func:`objspec.runtime.rewrite.rewrite` to drop). The action draws are made over the
    whole (B, L) grid (one hash of cached position keys, no gather); random tokens, a few
    percent of the row, are drawn only where they are written.
    """
    _check_actions(actions, mask_id, pool, random_stream, similar)
    length = input_ids.shape[1]
    ranges = list(zip(actions, (0, *cdf[:-1]), cdf, strict=True))
    u = None  # no draw when the one action taken is taken always (XLNet's mask 100%)
    if any(name != "keep" and (low, high) != (0, U32) for name, low, high in ranges):
        if span_start is None:
            u = keys.draw(stream, length)
        else:  # a span's decision is keyed by its start, a position of the row
            u = keys.draw(stream, span_start.clamp(min=0), below_length=length)
    out = input_ids
    for name, low, high in ranges:  # at most three actions
        if name == "keep" or low == high:
            continue
        if u is None:
            hit = selected
        else:
            hit = selected & (u < high) if not low else selected & (u >= low) & (u < high)
        if name == "mask" and mask_id is not None:
            out = out.masked_fill(hit, mask_id)
        elif name in ("random", "similar") and pool is not None and random_stream is not None:
            if torch.compiler.is_compiling():  # fused: static widths, a draw everywhere
                out = torch.where(
                    hit,
                    _drawn_everywhere(keys, random_stream, input_ids, name, pool, unigram, similar),
                    out,
                )
                continue
            rows, cols = hit.nonzero(as_tuple=True)  # few: a draw at each of them only
            u_random = keys.draw_at_positions(random_stream, rows, cols, length)
            if name == "similar" and similar is not None:
                drawn = similar_tokens(input_ids[rows, cols], u_random, similar, pool, unigram)
            else:
                drawn = draw_tokens(u_random, pool, unigram)
            out = out.index_put((rows, cols), drawn)
        elif name == "delete":
            out = out.masked_fill(hit, DELETED)
    return out if out is not input_ids else input_ids.clone()


def _drawn_everywhere(
    keys: Keys,
    stream: int,
    input_ids: torch.Tensor,
    name: str,
    pool: torch.Tensor,
    unigram: torch.Tensor | None,
    similar: torch.Tensor | None,
) -> torch.Tensor:
    """(B, L) int64: the token a 'random' or 'similar' action would write at every position
    (the fused path's static form: the same draws as at the hit positions alone)."""
    u = keys.draw(stream, input_ids.shape[1])
    if name == "similar" and similar is not None:
        flat = similar_tokens(input_ids.reshape(-1), u.reshape(-1), similar, pool, unigram)
        return flat.view(input_ids.shape)
    return draw_tokens(u, pool, unigram)


def _check_actions(
    actions: tuple[str, ...],
    mask_id: int | None,
    pool: torch.Tensor | None,
    random_stream: int | None,
    similar: torch.Tensor | None,
) -> None:
    """Every action known and given what it writes (at any share, 0% included)."""
    for name in actions:
        if name not in PER_TOKEN_ACTIONS:
            raise ValueError(f"action {name!r} is not a per-token replacement")
        if name == "mask" and mask_id is None:
            raise ValueError("a 'mask' action needs the vocabulary's mask id")
        if name in ("random", "similar") and (pool is None or random_stream is None):
            raise ValueError(f"a {name!r} action needs a pool of token ids and a stream")
        if name == "similar" and similar is None:
            raise ValueError("a 'similar' action needs the similar-token table")


def labels_at(input_ids: torch.Tensor, selected: torch.Tensor) -> torch.Tensor:
    """(B, L) int64: the original token where selected, IGNORE_INDEX elsewhere."""
    return torch.where(selected, input_ids, torch.full_like(input_ids, IGNORE_INDEX))

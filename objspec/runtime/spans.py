"""Span placement under a length law and a token budget, vectorized over the batch.

The algorithm (SpanBERT's sampling, made loop-free), per row:

1. the token budget ``T`` and the number ``n`` of candidate units are known; the spans must
   cover ``U = min(T, n)`` units, which is at least ``T`` tokens;
2. span lengths l_1, l_2, ... (in units) are drawn i.i.d. from the lowered table (slot counters);
   the first K whose running total reaches U are kept and the K-th is cut to hit U exactly;
3. the K spans are put in a random left-to-right order and placed without overlap by
   *stars and bars*: K sorted distinct slots among (free + K) give a uniformly random
   composition of the free units into the K + 1 gaps. Spans are kept at least one unit apart
   (so each has visible boundaries for SBO) whenever the row has room, else they may touch;
4. covered units are expanded to their tokens; when whole words overshoot the token budget,
   tokens of the last-drawn spans are dropped from their right end until exactly T remain
   (SpanBERT likewise stops mid-word when the budget is hit).

Sorting is the only super-linear step: O(B x L log L).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

from objspec.runtime.rng import FAR, Keys, cdf_index, lowest
from objspec.runtime.selection import start_position


@dataclass
class Spans:
    """Placed spans, per token.

    selected: (B, L) bool; span_id: (B, L) int64, the span's left-to-right index in its row
    (-1 outside spans); span_start: (B, L) int64 first position of the token's span, and
    span_end: (B, L) int64 one past its last selected position (both -1 outside spans).
    """

    selected: torch.Tensor
    span_id: torch.Tensor
    span_start: torch.Tensor
    span_end: torch.Tensor
    insertions: torch.Tensor | None = None


def compact_units(candidate_starts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Candidate units renumbered 0..n-1 per row.

    Returns ``position_of_unit`` (B, L) int64, the token position of unit j's start (L where the
    row has fewer units), and ``n_units`` (B,) int64.
    """
    b, length = candidate_starts.shape
    rank = candidate_starts.long().cumsum(dim=1) - 1
    slot = torch.where(candidate_starts, rank, torch.full_like(rank, length))
    pos = torch.arange(length, device=candidate_starts.device).expand(b, length)
    out = torch.full((b, length + 1), length, dtype=torch.int64, device=candidate_starts.device)
    out.scatter_(1, slot, pos)
    return out[:, :length], candidate_starts.sum(dim=1)


def sample_lengths(u: torch.Tensor, values: torch.Tensor, cdf: torch.Tensor) -> torch.Tensor:
    """Map uniform 32-bit draws (any shape) to law values via the integer CDF table."""
    return values[cdf_index(u, cdf)]


def draw_lengths(
    keys: Keys,
    stream: int,
    target: torch.Tensor,
    values: torch.Tensor,
    cdf: torch.Tensor,
    mean_length: float,
    nonzero_share: float = 1.0,
    most_units: int | None = None,
) -> torch.Tensor:
    """(B, S) int64 span lengths in draw order (draw i at counter i), enough of them that every
    row's total reaches its ``target`` (B,) units. S starts at twice the expected count
    (``target / mean_length``) and doubles until it suffices: the draw at a counter does not
    depend on S, so the result is the same as from one long draw, at a fraction of its cost.

    Each non-zero length covers a unit at least, and one draw in ``1 / nonzero_share`` is
    non-zero, so ``4 (target + 10 sqrt(target) + 40) / nonzero_share`` draws fill a row but
    with a chance below e^-40; past that a ValueError says the law given is not the one drawn.
    """
    if not (mean_length > 0 and 0 < nonzero_share <= 1):
        raise ValueError(
            f"a span length law needs a positive mean and a share of non-zero lengths in "
            f"(0, 1], got {mean_length!r} and {nonzero_share!r}"
        )
    if torch.compiler.is_compiling() and most_units is not None:
        # fused: one static round sized by the row length (no host read). Without zero
        # lengths, most_units draws always suffice; with them, the first round's size for a
        # full row, and the fused path checks on the host afterwards that every row's total
        # reached its target (else that batch is redone eager: the same draws, more rounds).
        if nonzero_share == 1:
            return sample_lengths(keys.draw(stream, max(most_units, 1)), values, cdf)
        slots = math.ceil(2 * most_units / mean_length) + 4
        lengths = sample_lengths(keys.draw(stream, slots), values, cdf)
        checks = getattr(keys, "fused_checks", None)
        if checks is not None:
            checks.append((lengths.sum(dim=1) >= target).all())
        return lengths
    most = int(target.max()) if target.numel() else 0
    cap = math.ceil(4 * (most + 10 * math.sqrt(most) + 40) / nonzero_share)
    slots = min(math.ceil(2 * most / mean_length) + 4, cap)
    while True:
        lengths = sample_lengths(keys.draw(stream, slots), values, cdf)
        if not target.numel() or bool((lengths.sum(dim=1) >= target).all()):
            return lengths
        if slots >= cap:
            raise ValueError(
                f"{slots} span lengths drawn did not fill a budget of {most} units: the law "
                f"draws length 0 more often than the {1 - nonzero_share:.0%} it was given with"
            )
        slots = min(2 * slots, cap)


def place_spans(
    keys: Keys,
    streams: tuple[int, int, int],
    candidate_starts: torch.Tensor,
    unit_start: torch.Tensor,
    selectable: torch.Tensor,
    budget: torch.Tensor,
    values: torch.Tensor,
    cdf: torch.Tensor,
    *,
    budget_in_units: bool = False,
    mean_length: float = 1.0,
    nonzero_share: float = 1.0,
    most_budget: int | None = None,
) -> Spans:
    """Place spans covering exactly ``budget`` (B,) tokens per row (fewer only if the row has fewer
    candidate tokens), or ``budget`` units when ``budget_in_units``. ``selectable`` (B, L) bool
    marks the tokens a span may cover (a word's excluded pieces stay out). ``streams`` are the
    RNG streams for lengths, order and placement; ``values`` / ``cdf`` the lowered length table
    (int64, on the batch's device).

    A law with length 0 (BART's Poisson) draws zero-length spans too: they take no tokens, and
    ``insertions`` (B,) counts those drawn before the budget was met (fairseq turns each into
    one inserted mask). ``mean_length``, the law's mean, and ``nonzero_share``, its chance of a
    non-zero length, size the rounds of length draws (see :func:`draw_lengths`).
    ``most_budget``, a bound on every row's budget (``budget_bound``), sizes the fused path's
    static widths (the row length otherwise); a row over it is redone eager."""
    b, length = candidate_starts.shape
    dev = candidate_starts.device
    unit_pos, n_units = compact_units(candidate_starts)
    target = torch.minimum(budget, n_units)
    most_units = length if most_budget is None else max(min(most_budget, length), 1)
    checks = getattr(keys, "fused_checks", None)
    if torch.compiler.is_compiling() and checks is not None:
        checks.append((target <= most_units).all())
    lengths = draw_lengths(
        keys, streams[0], target, values, cdf, mean_length, nonzero_share, most_units=most_units
    )
    slots = lengths.shape[1]
    before = lengths.cumsum(dim=1) - lengths
    insertions = ((lengths == 0) & (before < target.unsqueeze(1))).sum(dim=1)
    kept = (target.unsqueeze(1) - before).clamp(min=0)
    lengths = torch.minimum(lengths, kept)  # (B, S): zero past the K-th span
    k = (lengths > 0).sum(dim=1)

    # A random left-to-right order of the K spans (draw slot -> rank).
    order_u = keys.draw(streams[1], slots)
    slot_ids = torch.arange(slots, device=dev)
    order_key = torch.where(lengths > 0, order_u * slots + slot_ids, torch.full_like(order_u, FAR))
    by_position = order_key.argsort(dim=1)  # i-th span from the left is draw slot by_position[i]
    ordered = lengths.gather(1, by_position)

    gap = ((target + k - 1) <= n_units).long() * (k > 1).long()  # 1 when spans can stay apart
    free = n_units - target - gap * (k - 1).clamp(min=0)
    # free + k <= the row's units <= L: the fused (compiled) path takes that static bound
    # (placement keys are ordered the same at any width)
    if torch.compiler.is_compiling():
        width = max(length, slots)
    else:
        width = max(int((free + k).max()) if b else 0, slots)
    place_u = keys.draw(streams[2], width)
    cells = torch.arange(width, device=dev).unsqueeze(0)
    place_key = torch.where(cells < (free + k).unsqueeze(1), place_u * width + cells, FAR)
    chosen = lowest(place_key, slots)  # the K lowest keys (then junk past K)
    i = torch.arange(slots, device=dev).unsqueeze(0)
    chosen = (
        torch.where(i < k.unsqueeze(1), chosen, torch.full_like(chosen, FAR)).sort(dim=1).values
    )
    start_unit = chosen - i + (ordered.cumsum(dim=1) - ordered) + gap.unsqueeze(1) * i
    start_unit = torch.where(i < k.unsqueeze(1), start_unit, torch.full_like(start_unit, length))

    # Units covered, and which span covers them.
    marks = torch.zeros((b, length + 1), dtype=torch.int64, device=dev)
    marks.scatter_add_(1, start_unit.clamp(max=length), (i + 1) * (ordered > 0).long())
    unit_span = marks[:, :length].cummax(dim=1).values - 1  # (B, U) last span started at or before
    span_end_unit = torch.where(
        i < k.unsqueeze(1), start_unit + ordered, torch.zeros_like(start_unit)
    )
    unit_idx = torch.arange(length, device=dev).unsqueeze(0)
    covered = (unit_span >= 0) & (unit_idx < span_end_unit.gather(1, unit_span.clamp(min=0)))
    unit_span = torch.where(covered, unit_span, torch.full_like(unit_span, -1))

    # Expand to tokens: each token reads its unit's span through its unit's rank.
    start_of_token = start_position(unit_start)
    in_candidate = candidate_starts.gather(1, start_of_token) & selectable
    rank = (candidate_starts.long().cumsum(dim=1) - 1).gather(1, start_of_token).clamp(min=0)
    token_span = torch.where(in_candidate, unit_span.gather(1, rank), torch.full_like(rank, -1))

    token_budget = torch.full_like(budget, length) if budget_in_units else budget
    spans = _trim_to_budget(token_span, by_position, unit_pos, start_unit, token_budget)
    return replace(spans, insertions=insertions)


def _trim_to_budget(
    token_span: torch.Tensor,
    by_position: torch.Tensor,
    unit_pos: torch.Tensor,
    start_unit: torch.Tensor,
    budget: torch.Tensor,
) -> Spans:
    """Drop tokens past the budget: spans are filled in draw order, each from its left end."""
    b, length = token_span.shape
    dev = token_span.device
    slots = by_position.shape[1]
    in_span = token_span >= 0
    sid = token_span.clamp(min=0)
    first_pos = unit_pos.gather(1, start_unit.clamp(max=length - 1)) if length else start_unit
    span_first = first_pos.gather(1, sid)  # (B, L) first token of the token's span
    offset = torch.arange(length, device=dev).unsqueeze(0) - span_first

    sizes = torch.zeros((b, slots), dtype=torch.int64, device=dev)
    sizes.scatter_add_(1, sid.clamp(max=slots - 1), in_span.long())
    # Tokens of the spans drawn before each span: an exclusive cumsum in draw order.
    sizes_by_draw = torch.zeros_like(sizes).scatter_(1, by_position, sizes)
    before_by_draw = sizes_by_draw.cumsum(dim=1) - sizes_by_draw
    before = before_by_draw.gather(1, by_position).gather(1, sid.clamp(max=slots - 1))
    selected = in_span & (before + offset < budget.unsqueeze(1))

    kept = torch.zeros((b, slots), dtype=torch.int64, device=dev)
    kept.scatter_add_(1, sid.clamp(max=slots - 1), selected.long())
    end = span_first + kept.gather(1, sid.clamp(max=slots - 1))
    minus = torch.full_like(token_span, -1)
    return Spans(
        selected=selected,
        span_id=torch.where(selected, token_span, minus),
        span_start=torch.where(selected, span_first, minus),
        span_end=torch.where(selected, end, minus),
    )

"""Decoder-only objectives: the causal LM's row (every token a target, the end-of-text token
appended), fill-in-the-middle (Bavarian et al., 2022) and GLM's blank infilling (Du et al.,
2022), on the whole batch at once.

Rows come in right-padded (B, L) with a ``valid`` mask and go out right-padded with one, as
the kernels of :mod:`objspec.runtime.rewrite` take and give them. No Python loop over rows or
tokens.
"""

from __future__ import annotations

import torch

from objspec.runtime.replace import IGNORE_INDEX
from objspec.runtime.rewrite import longest_or_bound, positions_like, rewrite
from objspec.runtime.rng import Keys, below, cdf_index

FIM_PIECES = ("prefix", "middle", "suffix")


def document_bounds(candidates: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(first, n), both (B,) int64: where each row's document starts (its first candidate
    token) and how many tokens it spans, to its last candidate inclusive (0 in a row without
    candidates; ``first`` is then the row's width). The tokens before it (``[CLS]``, a BOS)
    and after it (``[SEP]``, an EOS) are the row's head and tail."""
    b, length = candidates.shape
    pos = positions_like(candidates)
    far = torch.full_like(pos, length)
    first = torch.where(candidates, pos, far).amin(dim=1) if length else far[:, 0]
    last = (
        torch.where(candidates, pos, torch.full_like(pos, -1)).amax(dim=1) if length else far[:, 0]
    )
    n = (last - first + 1).clamp(min=0)
    return first, n


def fill_in_middle(
    keys: Keys,
    streams: tuple[int, int, int],
    ids: torch.Tensor,
    valid: torch.Tensor,
    candidates: torch.Tensor,
    rate: float,
    spm_rate: float,
    sentinel_ids: torch.Tensor,
    *,
    fill: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """FIM's document-level transform (Bavarian et al., 2022, section 3; bigcode's
    ``permute``), token-level, on every row.

    ids (B, L) int64 and valid (B, L) bool, each row packed from its first column;
    ``candidates`` (B, L) bool marks the document's tokens (:func:`document_bounds`). With
    probability ``rate`` (drawn per row from ``streams[0]``), a row's document of n tokens is
    cut at two points drawn independently and uniformly from 0..n (``streams[2]``; sorted,
    so empty pieces happen, as ``np_rng.randint(0, n + 1)`` twice in bigcode's code) into
    prefix, middle and suffix, and laid out, with the sentinels ``sentinel_ids`` (3,) =
    (prefix, middle, suffix) tokens:

    * PSM: ``<PRE> prefix <SUF> suffix <MID> middle``;
    * SPM, with probability ``spm_rate`` among them (``streams[1]``), the paper's variant 2
      (bigcode's): ``<PRE> <SUF> suffix <MID> prefix middle``.

    The row's head and tail (the tokens before and after its document) keep their places
    around it. Other rows are unchanged. Returns ``(out, out_valid)``, (B, W) with ``fill``
    past each row's end, W the longest row (three tokens longer where a row was rearranged).
    """
    b, length = ids.shape
    dev = ids.device
    first, n = document_bounds(candidates)
    fim_u = keys.draw(streams[0], 1)[:, 0]
    order_u = keys.draw(streams[1], 1)[:, 0]
    cut_u = keys.draw(streams[2], 2)
    apply = (fim_u < round(rate * 2**32)) & (n >= 1)
    spm = order_u < round(spm_rate * 2**32)
    cuts = below(cut_u, (n + 1).unsqueeze(1))  # (B, 2), uniform on 0..n
    lo, hi = cuts.amin(dim=1), cuts.amax(dim=1)
    pos = positions_like(ids)
    rel = pos - first.unsqueeze(1)  # the position within the document
    n_, lo_, hi_, f_ = (t.unsqueeze(1) for t in (n, lo, hi, first))
    in_doc = (rel >= 0) & (rel < n_)
    pre = in_doc & (rel < lo_)
    mid = in_doc & (rel >= lo_) & (rel < hi_)
    suf = in_doc & (rel >= hi_)
    tail = rel >= n_
    spm_ = spm.unsqueeze(1)
    # PSM: <PRE> at f, prefix from f + 1, <SUF>, suffix, <MID>, middle; the tail 3 later
    psm_dest = torch.where(pre, pos + 1, pos)
    psm_dest = torch.where(suf, f_ + 2 + lo_ + (rel - hi_), psm_dest)
    psm_dest = torch.where(mid, f_ + 3 + lo_ + (n_ - hi_) + (rel - lo_), psm_dest)
    # SPM: <PRE> <SUF> at f, f + 1, suffix, <MID>, then prefix and middle in their order
    spm_dest = torch.where(pre | mid, f_ + 3 + (n_ - hi_) + rel, pos)
    spm_dest = torch.where(suf, f_ + 2 + (rel - hi_), spm_dest)
    dest = torch.where(spm_, spm_dest, psm_dest)
    dest = torch.where(tail, pos + 3, dest)
    apply_ = apply.unsqueeze(1)
    dest = torch.where(apply_, dest, pos)
    total = valid.sum(dim=1) + 3 * apply.long()
    width = longest_or_bound(total, ids.shape[1] + 3, keys)
    out = torch.full((b, width + 1), fill, dtype=torch.int64, device=dev)  # column W: dropped
    out.scatter_(1, torch.where(valid, dest, width).clamp(max=width), ids)
    # the sentinels' places: <PRE>, <SUF>, <MID> in PSM; <PRE>, <SUF>, <MID> in SPM
    psm_places = torch.stack([first, first + 1 + lo, first + 2 + lo + (n - hi)], dim=1)
    spm_places = torch.stack([first, first + 1, first + 2 + (n - hi)], dim=1)
    places = torch.where(spm.unsqueeze(1), spm_places, psm_places)
    places = torch.where(apply.unsqueeze(1), places, width).clamp(max=width)
    which = sentinel_ids.to(dev)[torch.tensor([0, 2, 1], device=dev)]  # <PRE>, <SUF>, <MID>
    out.scatter_(1, places, which.unsqueeze(0).expand(b, 3).contiguous())
    out_valid = torch.arange(width, device=dev).unsqueeze(0) < total.unsqueeze(1)
    return out[:, :width], out_valid


def counted_spans(
    keys: Keys,
    streams: tuple[int, int],
    candidates: torch.Tensor,
    values: torch.Tensor,
    cdf: torch.Tensor,
    *,
    max_spans: int | None = None,
) -> torch.Tensor:
    """CM3's / InCoder's masked spans: (B, L) bool, the selected positions.

    candidates (B, L) bool marks each row's document (its n candidate tokens, counted in order,
    so excluded tokens between them are skipped). Per row, the number of spans k is drawn from
    the law (``values``, ``cdf``: its lowered table; ``streams[0]``), capped at
    ``(n + 1) // 2`` and at ``max_spans`` (the sentinels there are), and the spans' 2k ends are
    uniform: 2k integers drawn uniformly from ``0..n - (2k - 1)`` (``streams[1]``), sorted, the
    j-th moved j places right, paired as [start, end). So every span holds at least one token
    and spans are at least one token apart; for one span its two ends are uniform over the
    document (metaseq's cm3_dataset), and for several this is InCoder's resampling of
    overlapping sets (independent uniform spans conditioned on not overlapping), up to ties.
    """
    b, length = candidates.shape
    dev = candidates.device
    n = candidates.sum(dim=1)
    if torch.compiler.is_compiling():  # fused: a static bound, (L + 1) // 2 spans in a row
        most = (length + 1) // 2  # (a drawn count is capped there: the same k, the same draws)
    else:
        most = int(values.max()) if values.numel() else 0
    if max_spans is not None:
        most = min(most, max_spans)
    k = values[cdf_index(keys.draw(streams[0], 1)[:, 0], cdf)]
    k = torch.minimum(k, (n + 1) // 2).clamp(max=most)
    slots = torch.arange(2 * most, device=dev).unsqueeze(0)  # (1, 2K)
    room = (n - (2 * k - 1)).clamp(min=0)  # the ends' range is 0..room
    ends = below(keys.draw(streams[1], 2 * most), (room + 1).unsqueeze(1))
    far = torch.full_like(ends, length + 2 * most + 1)
    ends = torch.where(slots < 2 * k.unsqueeze(1), ends, far).sort(dim=1).values + slots
    starts, stops = ends[:, 0::2].contiguous(), ends[:, 1::2].contiguous()  # (B, K) each
    rank = (candidates.long().cumsum(dim=1) - 1).clamp(min=0)  # the token's place in the document
    opened = torch.searchsorted(starts, rank, right=True)
    closed = torch.searchsorted(stops, rank, right=True)
    return candidates & (opened > closed)


def span_table(
    selected: torch.Tensor, span_start: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The spans of a row, in order: ``(first, slot, lengths, starts)``.

    selected (B, L) bool and span_start (B, L) int64 (each selected token's span's first
    position; :class:`objspec.runtime.spans.Spans`), so two spans that touch stay two.
    ``first`` (B, L) bool marks each span's first token, ``slot`` (B, L) int64 is the span's
    number in its row (0 from the left; -1 before the first), ``lengths`` and ``starts``
    (B, K) int64 each span's length and first position (0 past the row's k spans), K the most
    spans of a row."""
    b, length = selected.shape
    pos = positions_like(selected)
    first = selected & (span_start == pos)
    slot = first.long().cumsum(dim=1) - 1
    # fused: a static K (a span holds a token at least); the columns past a row's spans are 0
    k = length if torch.compiler.is_compiling() else int(first.sum(dim=1).max()) if b else 0
    where = torch.where(selected, slot, torch.full_like(slot, k))  # column K: dropped
    lengths = torch.zeros(b, k + 1, dtype=torch.int64, device=selected.device)
    lengths.scatter_add_(1, where, selected.long())
    starts = torch.zeros_like(lengths)
    starts.scatter_(1, torch.where(first, slot, torch.full_like(slot, k)), pos)
    return first, slot, lengths[:, :k], starts[:, :k]


def block_order(keys: Keys, stream: int | None, lengths: torch.Tensor) -> torch.Tensor:
    """(B, K) int64: each span's rank in Part B. ``lengths`` (B, K) int64, 0 past a row's
    spans (which rank last). With ``stream``, a uniformly random order per row (each span's
    32-bit draw, ties broken by its number: GLM's ``rng.shuffle(block_spans)``); without it the
    spans' own order (GLM's ``--no-shuffle-block``)."""
    b, k = lengths.shape
    number = torch.arange(k, device=lengths.device).expand(b, k)
    shuffled = stream is not None and k > 0
    key = keys.draw(stream, k) * k + number if shuffled else number.clone()  # type: ignore[arg-type]
    key = torch.where(lengths > 0, key, torch.full_like(key, 1 << 62) + number)
    return key.argsort(dim=1).argsort(dim=1)


def blank_infilling(
    keys: Keys,
    stream: int | None,
    ids: torch.Tensor,
    valid: torch.Tensor,
    selected: torch.Tensor,
    span_start: torch.Tensor,
    *,
    mask_id: int,
    piece_ids: torch.Tensor,
    fill: int,
) -> dict[str, torch.Tensor]:
    """GLM's autoregressive blank infilling (Du et al., 2022; THUDM/GLM ``make_block_data``),
    the whole batch at once, in Hugging Face's unshifted causal-LM convention.

    ids (B, L) int64 and valid (B, L) bool, rows packed from column 0; ``selected`` (B, L)
    bool the spans, ``span_start`` (B, L) int64 each selected token's span's first position;
    ``piece_ids`` (2,) int64 the [sop] and [eop] tokens. Each row becomes

    * Part A: the row with each span collapsed to one ``mask_id``, then
    * Part B: for each span in the order of :func:`block_order` (random with ``stream``),
      ``[sop] x1 .. xn``; then one ``[eop]`` closing the row (when it has a span).

    ``labels`` hold what the previous position predicts (the head shifts): -100 on Part A and
    on the first [sop]; each span's tokens themselves; each later [sop] and the closing token
    [eop] (the previous span's end). So the state at [sop] predicts x1, at x_i x_{i+1}, at x_n
    [eop]: GLM's targets. ``position_ids``: 0.. over Part A, a Part B token its span's [MASK]'s;
    ``block_position_ids``: 0 on Part A, 1 at [sop], i + 1 at x_i (n + 2 at the closing
    [eop]); ``prefix_mask`` 1 on Part A. Returns those and ``input_ids``, ``attention_mask``,
    (B, W) right-padded (``fill``, -100, 0), W the longest row."""
    b, length = ids.shape
    dev = ids.device
    sop, eop = int(piece_ids[0]), int(piece_ids[1])
    first, slot, lengths, starts = span_table(selected & valid, span_start)
    k = lengths.shape[1]
    has = lengths > 0
    rank = block_order(keys, stream, lengths)
    keep_a = valid & ~(selected & ~first)
    at_a = keep_a.long().cumsum(dim=1) - 1  # each token's place in Part A (a span: its [MASK])
    n_a = keep_a.sum(dim=1)
    mask_at = at_a.gather(1, starts) if k else starts  # (B, K): each span's [MASK] in Part A
    # Part B: span of rank r starts after the (length + 1) tokens of the ranks before it
    by_rank = torch.zeros_like(lengths).scatter_(1, rank, torch.where(has, lengths + 1, 0))
    offset = (by_rank.cumsum(dim=1) - by_rank).gather(1, rank) + n_a.unsqueeze(1)  # (B, K)
    spans_total = by_rank.sum(dim=1)
    total = n_a + spans_total + (spans_total > 0).long()
    width = longest_or_bound(total, 3 * length + 1, keys)  # Part A, each span and its [sop], [eop]
    shape = (b, width + 1)  # column W: dropped
    out = torch.full(shape, fill, dtype=torch.int64, device=dev)
    labels = torch.full(shape, IGNORE_INDEX, dtype=torch.int64, device=dev)
    positions = torch.zeros(shape, dtype=torch.int64, device=dev)
    blocks = torch.zeros(shape, dtype=torch.int64, device=dev)
    # Part A
    dest = torch.where(keep_a, at_a, width)
    out.scatter_(1, dest, torch.where(first, mask_id, ids))
    positions.scatter_(1, dest, torch.where(keep_a, at_a, 0))
    # the span tokens, after their [sop]
    pos = positions_like(ids)
    inside = pos - span_start  # x_(i+1) at i
    s = slot.clamp(min=0, max=max(k - 1, 0))
    span_tok = selected & valid
    if k:
        dest = torch.where(span_tok, offset.gather(1, s) + 1 + inside, width)
        out.scatter_(1, dest, ids)
        labels.scatter_(1, dest, ids)
        positions.scatter_(1, dest, mask_at.gather(1, s))
        blocks.scatter_(1, dest, inside + 2)
        # each span's [sop]: label [eop] (the previous span's end) but for the first in Part B
        dest = torch.where(has, offset, width)
        out.scatter_(1, dest, torch.full_like(dest, sop))
        labels.scatter_(1, dest, torch.where(rank > 0, eop, IGNORE_INDEX))
        positions.scatter_(1, dest, mask_at)
        blocks.scatter_(1, dest, torch.ones_like(dest))
        # the closing [eop], continuing the last span of Part B
        last = torch.where(has, rank, -1).argmax(dim=1, keepdim=True)
        dest = torch.where(spans_total > 0, total - 1, width).unsqueeze(1)
        out.scatter_(1, dest, torch.full_like(dest, eop))
        labels.scatter_(1, dest, torch.full_like(dest, eop))
        positions.scatter_(1, dest, mask_at.gather(1, last))
        blocks.scatter_(1, dest, lengths.gather(1, last) + 2)
    columns = torch.arange(width, device=dev).unsqueeze(0)
    return {
        "input_ids": out[:, :width],
        "attention_mask": (columns < total.unsqueeze(1)).long(),
        "labels": labels[:, :width],
        "prefix_mask": (columns < n_a.unsqueeze(1)).long(),
        "position_ids": positions[:, :width],
        "block_position_ids": blocks[:, :width],
    }


def sequence_outputs(
    input_ids: torch.Tensor,
    input_valid: torch.Tensor,
    fill: int,
    *,
    end_id: int,
    target_ids: torch.Tensor | None = None,
    target_valid: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """A causal LM's batch in Hugging Face's convention: each row (its input, then its targets
    if any, packed) with the end-of-text token ``end_id`` appended unless the row already ends
    with it (a tokenizer that adds ``[SEP]`` or ``</s>`` itself); ``labels`` are every token of
    the row, unshifted (the model or ``rt.CausalLMHead`` shifts), -100 on padding. Empty rows
    stay empty. No ``prefix_mask``: the whole row is attended causally."""
    if target_ids is not None:
        assert target_valid is not None, "targets need their valid mask"
        ids = torch.cat([input_ids, target_ids], dim=1)
        keep = torch.cat([input_valid, target_valid], dim=1)
    else:
        ids, keep = input_ids, input_valid
    # the row's own tokens and whether its last one is the end token
    count = keep.sum(dim=1)
    packed, valid = rewrite(ids, keep, fill=fill)
    last = (
        packed.gather(1, (count - 1).clamp(min=0).unsqueeze(1))[:, 0] if packed.shape[1] else count
    )
    append = (count > 0) & (last != end_id)
    total = count + append.long()
    width = longest_or_bound(total, packed.shape[1] + 1)
    out = torch.full((packed.shape[0], width + 1), fill, dtype=torch.int64, device=ids.device)
    out[:, : packed.shape[1]] = packed
    out.scatter_(
        1,
        torch.where(append, count, width).unsqueeze(1),
        torch.full_like(count, end_id).unsqueeze(1),
    )
    out = out[:, :width]
    valid = torch.arange(width, device=ids.device).unsqueeze(0) < total.unsqueeze(1)
    return {
        "input_ids": out,
        "attention_mask": valid.long(),
        "labels": torch.where(valid, out, torch.full_like(out, IGNORE_INDEX)),
    }


__all__ = [
    "FIM_PIECES",
    "blank_infilling",
    "block_order",
    "counted_spans",
    "document_bounds",
    "fill_in_middle",
    "sequence_outputs",
    "span_table",
]

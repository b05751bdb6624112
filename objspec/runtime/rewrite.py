"""Sequence rewriting: T5's random segmentation, one contiguous fragment (MASS), and the
variable-length rewrite kernel (emit counts per position -> cumulative sum -> scatter into a
padded output) that turns a corrupted row into encoder inputs and decoder targets.

Every function works on the whole padded batch at once: no Python loop over rows or tokens.
Rows come in right-padded (B, L) with a ``valid`` mask and go out right-padded (B, W) with one.
"""

from __future__ import annotations

import torch

from objspec.runtime.replace import IGNORE_INDEX
from objspec.runtime.rng import FAR, Keys, below, cdf_index, lowest


def positions_like(ids: torch.Tensor) -> torch.Tensor:
    """(B, L) int64: each position's index, 0..L-1 in every row."""
    return torch.arange(ids.shape[1], device=ids.device).expand_as(ids)


def rank_among(mask: torch.Tensor) -> torch.Tensor:
    """(B, L) int64: the index of each True position among its row's True positions (0-based;
    positions after the last True one carry the last index, those before the first carry -1)."""
    return mask.long().cumsum(dim=1) - 1


def run_starts(selected: torch.Tensor) -> torch.Tensor:
    """(B, L) bool: the first position of every run of consecutive selected positions."""
    before = torch.zeros_like(selected)
    before[:, 1:] = selected[:, :-1]
    return selected & ~before


def run_start_position(selected: torch.Tensor) -> torch.Tensor:
    """(B, L) int64: for a selected position, the position where its run begins (else 0)."""
    pos = positions_like(selected)
    first = torch.where(run_starts(selected), pos, torch.zeros_like(pos))
    return torch.where(selected, first.cummax(dim=1).values, torch.zeros_like(pos))


def random_segmentation(
    keys: Keys,
    stream: int,
    items: torch.Tensor,
    segments: torch.Tensor,
    width: int,
    most_segments: int | None = None,
) -> torch.Tensor:
    """(B, width) int64 segment lengths: ``items`` (B,) split into ``segments`` (B,) positive parts,
    every composition equally likely (T5's ``_random_segmentation``).

    A composition is a choice of ``segments - 1`` cuts among the ``items - 1`` gaps between
    items; the cuts are the gaps with the lowest random keys. Segment i's length sits at column i,
    zeros after the last segment. Rows with ``segments == 0`` or ``items == 0`` are all zero.
    ``most_segments`` bounds every row's segments: the fused path ranks that many keys (the
    width otherwise) instead of reading the largest count on the host.
    """
    b = items.shape[0]
    dev = items.device
    if width == 0:
        return torch.zeros((b, 0), dtype=torch.int64, device=dev)
    gap = torch.arange(width, device=dev).unsqueeze(0)  # gap j lies between items j and j+1
    is_gap = gap < (items - 1).unsqueeze(1)
    u = keys.draw(stream, width)
    key = torch.where(is_gap, u * width + gap, torch.full_like(u, FAR))
    cuts = segments - 1  # the gaps with the ``cuts`` lowest keys are cut
    # fused (torch.compile): no host read, every gap's key ranked (the same cuts)
    if torch.compiler.is_compiling():
        most = width if most_segments is None else min(most_segments, width)
    else:
        most = int(cuts.max()) if b else 0
    lowest_keys = key.topk(min(max(most, 1), width), dim=1, largest=False).values
    last = lowest_keys.gather(1, (cuts - 1).clamp(min=0, max=lowest_keys.shape[1] - 1)[:, None])
    cut = is_gap & (key <= last) & (cuts > 0).unsqueeze(1)
    segment_of_item = cut.long().cumsum(dim=1) - cut.long()  # cuts before item t
    is_item = (gap < items.unsqueeze(1)) & (segments > 0).unsqueeze(1)
    slot = torch.where(is_item, segment_of_item, torch.full_like(segment_of_item, width))
    lengths = torch.zeros((b, width + 1), dtype=torch.int64, device=dev)
    lengths.scatter_add_(1, slot, is_item.long())
    return lengths[:, :width]


def t5_noise_counts(
    n: torch.Tensor, density: float, mean_span: float, max_spans: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """T5's counts for rows of ``n`` (B,) tokens: (noise tokens, noise spans), both (B,) int64.

    ``noise = clip(round(n * density), 1, n - 1)`` and ``spans = max(1, round(noise / mean))``
    with round half to even, as ``random_spans_noise_mask`` computes them. Two guards T5 lacks:
    spans never outnumber the non-noise tokens (transformers#22246: every noise span needs a
    non-noise span before it) nor ``max_spans`` (the vocabulary's sentinels). Rows with fewer
    than 2 tokens get no noise.
    """
    noise = torch.round(n.double() * density).long().clamp(min=1)
    noise = torch.minimum(noise, n - 1).clamp(min=0)
    spans = torch.round(noise.double() / mean_span).long().clamp(min=1)
    spans = torch.minimum(spans, torch.minimum(noise, n - noise))
    if max_spans is not None:
        spans = spans.clamp(max=max_spans)
    return noise, torch.where(noise > 0, spans, torch.zeros_like(spans))


def full_row_counts(
    length: int, density: float, mean_span: float, max_spans: int | None
) -> tuple[int, int]:
    """(noise tokens, noise spans) of :func:`t5_noise_counts` for a row of ``length`` tokens,
    in plain integers (both grow with the row, so no shorter row gets more): the fused path's
    static widths. At least 1 each."""
    noise = max(min(max(round(length * density), 1), length - 1), 0)
    spans = min(max(round(noise / mean_span), 1), noise, length - noise)
    if max_spans is not None:
        spans = min(spans, max_spans)
    return max(noise, 1), max(spans if noise > 0 else 0, 1)


def random_spans_noise(
    keys: Keys,
    streams: tuple[int, int],
    candidates: torch.Tensor,
    density: float,
    mean_span: float,
    *,
    roll_stream: int | None = None,
    max_spans: int | None = None,
) -> torch.Tensor:
    """(B, L) bool: T5's ``random_spans_noise_mask`` over each row's candidate tokens.

    The n candidates of a row (in order, skipping excluded positions) are cut into alternating
    non-noise / noise spans, starting with non-noise and ending with noise, with the noise and
    non-noise lengths each a uniform random composition (:func:`random_segmentation`). With a
    ``roll_stream`` the pattern is rotated by a uniform offset in [0, n) (T5's ``random_roll``,
    t5#905), so short rows are not always noised at their end; it may split the last span in
    two, so a rolled row keeps one of its ``max_spans`` spare. ``streams``: the noise and the
    non-noise lengths.
    """
    b, length = candidates.shape
    dev = candidates.device
    n = candidates.sum(dim=1)
    sentinels = max_spans
    if roll_stream is not None and max_spans is not None:
        # a roll can split the last span in two: keep one sentinel spare (with a single
        # sentinel there is none to spare, so such a vocabulary is not rolled)
        roll_stream = roll_stream if max_spans >= 2 else None
        max_spans = max(max_spans - 1, 1)
    noise, spans = t5_noise_counts(n, density, mean_span, max_spans)
    # each segmentation is as wide as its longest row (one host read for the three widths)
    if torch.compiler.is_compiling():  # fused: static widths, a full row's counts bound all
        most_noise, most_spans = full_row_counts(length, density, mean_span, max_spans)
        most_kept = max(length, 1)
        checks = getattr(keys, "fused_checks", None)
        if checks is not None:  # the bounds, checked on the host (else the batch runs eager)
            checks.append(((noise <= most_noise) & (spans <= most_spans)).all())
    else:
        counts = torch.stack([noise, n - noise, spans])  # (3, B)
        most = counts.amax(dim=1).clamp(min=1).cpu() if b else torch.ones(3, dtype=torch.int64)
        most_noise, most_kept, most_spans = (int(w) for w in most)
    noise_len = random_segmentation(keys, streams[0], noise, spans, most_noise, most_spans)
    keep_len = random_segmentation(keys, streams[1], n - noise, spans, most_kept, most_spans)
    noise_len, keep_len = noise_len[:, :most_spans], keep_len[:, :most_spans]
    span_end = (keep_len + noise_len).cumsum(dim=1)  # in the row's candidate coordinates
    span_begin = span_end - noise_len
    real = torch.arange(most_spans, device=dev).unsqueeze(0) < spans.unsqueeze(1)
    edges = torch.zeros((b, length + 1), dtype=torch.int64, device=dev)
    edges.scatter_add_(1, torch.where(real, span_begin, length), real.long())
    edges.scatter_add_(1, torch.where(real, span_end, length), -real.long())
    noise_compact = edges[:, :length].cumsum(dim=1) > 0
    rank = rank_among(candidates).clamp(min=0)
    if roll_stream is not None:
        offset = below(keys.draw(roll_stream, 1), n.unsqueeze(1))  # (B, 1)
        rank = torch.remainder(rank - offset, n.clamp(min=1).unsqueeze(1))
    noise = candidates & noise_compact.gather(1, rank)
    if sentinels is not None:
        # an excluded token inside a span splits it in two runs, each with its own sentinel:
        # runs past the last sentinel stay text rather than share one
        noise &= rank_among(run_starts(noise)) < sentinels
    return noise


def fragment(keys: Keys, stream: int, candidates: torch.Tensor, size: torch.Tensor) -> torch.Tensor:
    """(B, L) bool: one run of ``size`` (B,) consecutive candidate tokens per row (MASS), its
    first token uniform over the ``n - size + 1`` possible starts (counted over candidates)."""
    n = candidates.sum(dim=1)
    size = torch.minimum(size, n)
    start = below(keys.draw(stream, 1)[:, 0], n - size + 1)
    rank = rank_among(candidates)
    inside = (rank >= start.unsqueeze(1)) & (rank < (start + size).unsqueeze(1))
    return candidates & inside


def sentinels_at(starts: torch.Tensor, sentinel_ids: torch.Tensor) -> torch.Tensor:
    """(B, L) int64: at the start of a row's k-th span, ``sentinel_ids[k]`` (T5's <extra_id_k>,
    the last one reused past the table's end); 0 elsewhere."""
    k = rank_among(starts).clamp(min=0, max=sentinel_ids.numel() - 1)
    return torch.where(starts, sentinel_ids[k], torch.zeros_like(k))


def static_width(length: int, inserts: bool = True) -> int:
    """The width :func:`rewrite` gives its outputs in a fused (compiled) corruption of rows of
    ``length``: every row fits (a kept token per position, an insertion too where it
    ``inserts``, and an appended one). It is wider than the row, which is how
    ``runtime/fused.py`` tells such a group, to cut it to its longest row afterwards: the
    width eager gives it."""
    return (2 if inserts else 1) * length + 1


def longest_or_bound(total: torch.Tensor, bound: int, keys: Keys | None = None) -> int:
    """The width of a kernel's output rows of ``total`` (B,) int64 tokens each: eager, the
    longest row (one host read); fused (compiled), the static ``bound`` every row fits, noted
    on ``keys`` so that ``runtime/fused.py`` cuts the group to its longest row after."""
    if torch.compiler.is_compiling():
        widths = getattr(keys, "fused_widths", None)
        if widths is not None:
            widths.append(bound)
        return bound
    return int(total.max()) if total.numel() else 0


def rewrite(
    tokens: torch.Tensor,
    keep: torch.Tensor,
    *,
    insert: torch.Tensor | None = None,
    inserted: torch.Tensor | None = None,
    fill: int,
    append: int | None = None,
    width: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Emit, per position p in order, ``inserted[p]`` where ``insert[p]`` and then ``tokens[p]``
    where ``keep[p]``; pack each row to the left, then ``append`` one token at its end.

    tokens, inserted: (B, L) int64; keep, insert: (B, L) bool. Returns ``(out, valid)``: out
    (B, W) int64 with ``fill`` past each row's end, valid (B, W) bool. W is the longest row, or
    ``width`` when given (rows longer than that are cut at W: no host sync, fixed shapes).
    """
    b, length = tokens.shape
    dev = tokens.device
    ins = insert.long() if insert is not None else torch.zeros_like(tokens)
    count = ins + keep.long()
    end = count.cumsum(dim=1)
    first = end - count  # where position p's first emitted token lands
    total = (end[:, -1] if length else torch.zeros(b, dtype=torch.int64, device=dev)) + int(
        append is not None
    )
    if width is not None:
        w = width
    elif torch.compiler.is_compiling():  # fused: the static bound, cut to the longest row after
        w = static_width(length, inserts=insert is not None)
    else:
        w = int(total.max()) if b else 0
    out = torch.full((b, w + 1), fill, dtype=torch.int64, device=dev)  # column w: discarded
    if insert is not None:
        assert inserted is not None, "insert needs the inserted tokens"
        out.scatter_(1, torch.where(insert, first, w).clamp(max=w), inserted)
    out.scatter_(1, torch.where(keep, first + ins, w).clamp(max=w), tokens)
    if append is not None:
        out.scatter_(
            1, (total - 1).clamp(max=w).unsqueeze(1), torch.full_like(total, append)[:, None]
        )
    valid = torch.arange(w, device=dev).unsqueeze(0) < total.unsqueeze(1)
    return out[:, :w], valid


def insertion_noise(
    keys: Keys,
    stream: int,
    tokens: torch.Tensor,
    valid: torch.Tensor,
    count: torch.Tensor,
    random_ratio: float,
    *,
    mask_id: int,
    fill: int,
    pool: torch.Tensor | None = None,
    random_stream: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """fairseq's ``add_insertion_noise`` on every row: ``count`` (B,) tokens inserted.

    tokens (B, L) int64, valid (B, L) bool, each row's tokens packed to the left (as
    :func:`rewrite` returns them). The inserted tokens go where :func:`insertion_slots` puts
    them: ``mask_id``, or at its random slots a token drawn from ``pool`` (P,) with
    ``random_stream``; the row's own tokens fill the other slots in order. Returns
    ``(out, out_valid)``, (B, W) int64 and bool, W the longest row, ``fill`` past a row's end.
    """
    length = tokens.shape[1]
    noise, randoms = insertion_slots(
        keys, stream, valid.sum(dim=1), count, random_ratio, most_tokens=length
    )
    slot = positions_like(noise)
    before = noise.long().cumsum(dim=1) - noise.long()  # inserted tokens before each slot
    source = (slot - before).clamp(min=0, max=max(length - 1, 0))
    kept = tokens.gather(1, source) if length else torch.zeros_like(slot)
    out = torch.where(noise, torch.full_like(kept, mask_id), kept)
    if random_ratio > 0:
        if pool is None or random_stream is None:
            raise ValueError("random insertions need a pool of token ids and a stream")
        if torch.compiler.is_compiling():  # fused: a draw everywhere, the same at the slots
            u_all = keys.draw(random_stream, noise.shape[1])
            out = torch.where(randoms, pool[below(u_all, pool.numel())], out)
        else:
            rows, cols = randoms.nonzero(as_tuple=True)  # few: a draw at each of them only
            u_random = keys.draw_at_positions(random_stream, rows, cols, noise.shape[1])
            out = out.index_put((rows, cols), pool[below(u_random, pool.numel())])
    out_valid = slot < (valid.sum(dim=1) + noise.sum(dim=1)).unsqueeze(1)
    return torch.where(out_valid, out, torch.full_like(out, fill)), out_valid


def insertion_slots(
    keys: Keys,
    stream: int,
    n_tokens: torch.Tensor,
    count: torch.Tensor,
    random_ratio: float,
    most_tokens: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Where fairseq's ``add_insertion_noise`` puts ``count`` (B,) new tokens in rows of
    ``n_tokens`` (B,) tokens: ``(inserted, random)``, (B, W) bool over the output rows.

    A row of N >= 2 tokens becomes N + n tokens, the n inserted ones at a uniformly random set
    of n of its N + n - 2 inner positions (never first or last), as fairseq's
    ``randperm(N + n - 2)[:n] + 1``: a token-level place (mid-word too, several in one gap
    possible). ``ceil(n x random_ratio)`` of them (in float64, as fairseq computes it), a
    uniform subset, are random. Rows of fewer than 2 tokens get none. The places come from
    ``stream``, keyed by the output position counted from the row's first token.
    """
    b = n_tokens.shape[0]
    n = torch.where(n_tokens >= 2, count, torch.zeros_like(count))
    total = n_tokens + n
    if torch.compiler.is_compiling() and most_tokens is not None:
        # fused: static widths (rows of at most most_tokens tokens and as many insertions; the
        # fused path checks that bound on the host and redoes a batch past it eager)
        width, most = 2 * most_tokens, most_tokens
        checks = getattr(keys, "fused_checks", None)
        if checks is not None:
            checks.append((n <= most_tokens).all())
    else:
        width = int(total.max()) if b else 0
        most = int(n.max()) if b else 0
    slot = torch.arange(width, device=n.device).unsqueeze(0)
    inner = (slot >= 1) & (slot < (total - 1).unsqueeze(1))
    u = keys.draw(stream, width)
    chosen = lowest(torch.where(inner, u * width + slot, torch.full_like(u, FAR)), most)
    rank = torch.arange(chosen.shape[1], device=n.device).unsqueeze(0)
    n_random = torch.ceil(n.to(torch.float64) * random_ratio).to(torch.int64)
    inserted = _mark(chosen, rank < n.unsqueeze(1), width)
    return inserted, _mark(chosen, rank < n_random.unsqueeze(1), width)


def _mark(columns: torch.Tensor, keep: torch.Tensor, width: int) -> torch.Tensor:
    """(B, width) bool: True at ``columns`` (B, K) int64 where ``keep`` (B, K) bool."""
    marks = torch.zeros((columns.shape[0], width + 1), dtype=torch.bool, device=columns.device)
    marks.scatter_(1, torch.where(keep, columns, torch.full_like(columns, width)), True)
    return marks[:, :width]


def shift_right(ids: torch.Tensor, valid: torch.Tensor, start_id: int, fill: int) -> torch.Tensor:
    """(B, T) int64 decoder inputs: ``start_id`` then ``ids[:, :-1]``, ``fill`` where not valid."""
    shifted = torch.full_like(ids, start_id)
    shifted[:, 1:] = ids[:, :-1]
    return torch.where(valid, shifted, torch.full_like(ids, fill))


def encoder_decoder_outputs(
    input_ids: torch.Tensor,
    input_valid: torch.Tensor,
    target_ids: torch.Tensor,
    target_valid: torch.Tensor,
    decoder_input_ids: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """Hugging Face's encoder-decoder batch: labels are the targets with -100 past their end."""
    return {
        "input_ids": input_ids,
        "attention_mask": input_valid.long(),
        "labels": torch.where(target_valid, target_ids, torch.full_like(target_ids, IGNORE_INDEX)),
        "decoder_input_ids": decoder_input_ids,
        "decoder_attention_mask": target_valid.long(),
    }


def decoder_only_outputs(
    input_ids: torch.Tensor,
    input_valid: torch.Tensor,
    target_ids: torch.Tensor,
    target_valid: torch.Tensor,
    fill: int,
    *,
    prefix_lm: bool = True,
) -> dict[str, torch.Tensor]:
    """The prefix-LM form of the same example: each row is its inputs then its targets, packed.

    ``labels`` hold the target tokens (-100 on the prefix and padding; a causal LM shifts them
    itself), ``prefix_mask`` marks the prefix a prefix LM attends to bidirectionally; with
    ``prefix_lm=False`` (``attention causal``) there is none and the whole row is causal.
    """
    ids, valid = rewrite(
        torch.cat([input_ids, target_ids], dim=1),
        torch.cat([input_valid, target_valid], dim=1),
        fill=fill,
    )
    prefix = torch.arange(ids.shape[1], device=ids.device).unsqueeze(0) < input_valid.sum(
        dim=1, keepdim=True
    )
    target = valid & ~prefix
    out = {
        "input_ids": ids,
        "attention_mask": valid.long(),
        "labels": torch.where(target, ids, torch.full_like(ids, IGNORE_INDEX)),
        "prefix_mask": prefix.long(),
    }
    if not prefix_lm:
        del out["prefix_mask"]
    return out


def suffix(keys: Keys, stream: int, candidates: torch.Tensor, rate: float) -> torch.Tensor:
    """(B, L) bool: the last ``round(1 + u x (n - 1))`` of a row's n candidates, u uniform on
    [0, 2 x rate) (UL2's S-denoiser as llm-foundry draws it), at most n - 1 of them so a prefix
    remains; nothing in rows of fewer than 2 candidates."""
    if not 0.0 < rate <= 0.5:
        raise ValueError(f"the suffix rate must be in (0, 0.5], got {rate}")
    n = candidates.sum(dim=1)
    u = keys.draw(stream, 1)[:, 0].double() / 2**32
    size = torch.round(1 + u * (2 * rate) * (n - 1).clamp(min=0)).long()
    size = torch.minimum(size, n - 1).clamp(min=0)
    return candidates & (rank_among(candidates) >= (n - size).unsqueeze(1))


def choose_member(keys: Keys, stream: int, cdf: torch.Tensor) -> torch.Tensor:
    """(B,) int64: each example's mixture member, the first i with ``u < cdf[i]`` (cdf (M,)
    int64, its last entry 2**32)."""
    u = keys.draw(stream, 1)[:, 0]
    return cdf_index(u, cdf)


def merge_members(
    choice: torch.Tensor, parts: tuple[tuple[torch.Tensor, ...], ...], fill: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each row from its chosen member: ``parts[m]`` is member m's (input ids, input valid,
    target ids, target valid) for the whole batch. Returns the same four, merged."""
    inputs = merge_rows(choice, [(p[0], p[1]) for p in parts], fill)
    targets = merge_rows(choice, [(p[2], p[3]) for p in parts], fill)
    return (*inputs, *targets)


def merge_rows(
    choice: torch.Tensor, parts: list[tuple[torch.Tensor, torch.Tensor]], fill: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Row b of the result is row b of ``parts[choice[b]]`` (each part (B, W_i) ids and valid,
    padded with ``fill``). Returns (ids (B, W), valid (B, W)), W the longest row kept (the
    fused path: the widest part's static width, cut to that row after)."""
    width = max(ids.shape[1] for ids, _ in parts)

    def padded(x: torch.Tensor, value: int | bool) -> torch.Tensor:
        return torch.nn.functional.pad(x, (0, width - x.shape[1]), value=value)

    ids = torch.stack([padded(i, fill) for i, _ in parts])  # (M, B, W)
    valid = torch.stack([padded(v.long(), 0) for _, v in parts]).bool()
    pick = choice.view(1, -1, 1).expand(1, -1, width)
    merged, merged_valid = ids.gather(0, pick)[0], valid.gather(0, pick)[0]
    longest = longest_or_bound(merged_valid.sum(dim=1), width)
    return merged[:, :longest], merged_valid[:, :longest]


def choose_rows(
    choice: torch.Tensor, parts: tuple[tuple[torch.Tensor, ...], ...]
) -> tuple[torch.Tensor, ...]:
    """Row b of each output from member ``choice[b]``: ``parts[m]`` is member m's tuple of
    same-shaped (B, L) tensors (an encoder mixture's input ids and labels)."""
    pick = choice.view(1, -1, 1)
    return tuple(
        torch.stack(fields).gather(0, pick.expand(1, -1, fields[0].shape[1]))[0]
        for fields in zip(*parts, strict=True)
    )


def prepend(
    ids: torch.Tensor, valid: torch.Tensor, first: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-packed rows with ``first`` (B,) int64 put in front of each (UL2's mode token)."""
    ones = torch.ones((valid.shape[0], 1), dtype=valid.dtype, device=valid.device)
    return torch.cat([first.unsqueeze(1), ids], dim=1), torch.cat([ones, valid], dim=1)


def t5_lengths(inputs_length: int, density: float, mean_span: float) -> tuple[int, int]:
    """T5's ``random_spans_helper``: the most tokens a row may have before corruption so that
    its corrupted input (non-noise tokens, one sentinel per span, one end token) fits in
    ``inputs_length``, and the target length that gives (noise tokens, sentinels, end token).
    ``(568, 114)`` for 512 at 15% / 3, as T5's span_corruption sizes its chunks. The search
    starts at ``inputs_length - 1``, with T5's nudge at 50% density, as T5 computes it."""

    def lengths(tokens: int) -> tuple[int, int]:
        noise = round(tokens * density)
        spans = round(noise / mean_span)
        return tokens - noise + spans + 1, noise + spans + 1

    if inputs_length < 2:
        raise ValueError(f"inputs_length must be at least 2, got {inputs_length}")
    tokens = inputs_length - 1
    while lengths(tokens + 1)[0] <= inputs_length:
        tokens += 1
    targets = lengths(tokens)[1]
    if density == 0.5 and targets > inputs_length:  # T5's nudge to a round targets length
        tokens, targets = tokens - 1, targets - 1
    return tokens, targets

"""Attention structures: XLNet's permutation language modelling (factorization order, perm_mask,
target_mapping) and the window placement of its targets, vectorized over the batch."""

from __future__ import annotations

import math

import torch

from objspec.names import UNILM_MASKS
from objspec.runtime.rewrite import positions_like, rank_among
from objspec.runtime.rng import FAR, Keys, below, lowest
from objspec.runtime.spans import sample_lengths


def window_spans(
    keys: Keys,
    streams: tuple[int, int],
    candidates: torch.Tensor,
    values: torch.Tensor,
    cdf: torch.Tensor,
    rate: float,
) -> torch.Tensor:
    """(B, L) bool: HF's PLM target placement over each row's candidate tokens. Windows follow
    each other from the row's start; a window holds one span of n tokens (n drawn from the law
    ``values`` / ``cdf``, all at least 1 as the IR requires) at a uniform offset and is
    ``floor(n / rate)`` long; the last window is cut at the row's end
    (DataCollatorForPermutationLanguageModeling, vectorized)."""
    b, length = candidates.shape
    n = candidates.sum(dim=1, keepdim=True)
    windows = -(-length // max(1, math.floor(1.0 / rate)))  # spans are >= 1: no window is shorter
    span = sample_lengths(keys.draw(streams[0], windows), values, cdf)  # (B, W) window w's span
    window = torch.floor(span.double() / rate).long().clamp(min=1)
    window = torch.maximum(window, span)
    start = window.cumsum(dim=1) - window  # in candidate coordinates
    offset = below(keys.draw(streams[1], windows), window - span + 1)
    first = start + offset
    last = torch.minimum(first + span, n)  # one past the span, cut at the row's end
    real = first < n
    edges = torch.zeros((b, length + 1), dtype=torch.int64, device=candidates.device)
    edges.scatter_add_(1, torch.where(real, first, length).clamp(max=length), real.long())
    edges.scatter_add_(1, torch.where(real, last, length).clamp(max=length), -real.long())
    inside = edges[:, :length].cumsum(dim=1) > 0
    return candidates & inside.gather(1, rank_among(candidates).clamp(min=0))


def factorization_order(keys: Keys, stream: int, targets: torch.Tensor) -> torch.Tensor:
    """(B, L) int64: a uniformly random order 0..k-1 of each row's k targets; -1 elsewhere
    (every other token comes before all targets)."""
    length = targets.shape[1]
    pos = positions_like(targets)
    u = keys.draw(stream, length)
    sort_keys = torch.where(targets, u * length + pos, FAR)
    if torch.compiler.is_compiling():  # fused: whole rows sorted, the targets first, in order
        first = sort_keys.argsort(dim=1)
    else:
        first = lowest(sort_keys, int(targets.sum(dim=1).max()) if targets.numel() else 0)
    ranks = torch.arange(first.shape[1], device=targets.device).expand_as(first)
    rank = torch.full_like(pos, -1).scatter_(1, first, ranks)
    return torch.where(targets, rank, torch.full_like(rank, -1))


def blocked_by_order(order: torch.Tensor) -> torch.Tensor:
    """(B, L, L) bool from a factorization order (B, L) int64 (each target's rank, -1 at
    non-targets): True where token i may not attend to token j, i.e. j is a target no earlier
    than i in the order (a target never sees itself; non-targets see each other and no
    target)."""
    return (order.unsqueeze(2) <= order.unsqueeze(1)) & (order >= 0).unsqueeze(1)


def permutation_masks(order: torch.Tensor) -> torch.Tensor:
    """(B, L, L) float32 ``perm_mask`` in Hugging Face's layout: 1 where blocked."""
    blocked = blocked_by_order(order)
    return blocked.view(torch.uint8).to(torch.float32)  # bytes -> float: ~8x faster on CPU


def order_attention(order: torch.Tensor) -> torch.Tensor:
    """(B, L, L) bool, True where token i may attend to token j: the sparse layout's
    ``perm_order`` expanded where the model runs instead of in the collator."""
    return ~blocked_by_order(order)


def xlnet_inputs(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A permutation-LM batch (either layout) as ``XLNetLMHeadModel`` takes it, built on the
    batch's device: ``perm_mask`` (B, L, L) float32, ``target_mapping`` (B, P, L) one-hot
    rows with ``labels`` (B, P) (the sparse form), and the batch's other model inputs."""
    if not {"target_positions", "labels"} <= batch.keys() or not (
        {"perm_order", "perm_mask"} & batch.keys()
    ):
        raise ValueError(
            "xlnet_inputs takes a permutation-LM batch: labels and target_positions with "
            "perm_order (sparse layout) or perm_mask (dense)"
        )
    out = {k: v for k, v in batch.items() if k not in ("perm_order", "target_positions")}
    if "perm_order" in batch:
        out["perm_mask"] = permutation_masks(batch["perm_order"])
    out["target_mapping"], out["labels"] = sparse_target_mapping(
        batch["target_positions"], batch["labels"]
    )
    return out


def target_mapping_dense(targets: torch.Tensor) -> torch.Tensor:
    """(B, L, L) float32: the identity per row, Hugging Face's ``target_mapping`` for labels of
    shape (B, L) with -100 at non-targets."""
    b, length = targets.shape
    eye = torch.eye(length, device=targets.device)
    return eye.unsqueeze(0).expand(b, length, length).contiguous()


def target_positions(targets: torch.Tensor) -> torch.Tensor:
    """(B, P) int64: each row's target positions in order, -1 past its last (P the most targets
    in a row): the compact form of ``target_mapping``, as the original XLNet's
    (num_predict, L) one-hot; :func:`sparse_target_mapping` expands it."""
    b, length = targets.shape
    # fused: a static P (a row's positions at most), cut to the most targets after
    count = length if torch.compiler.is_compiling() else int(targets.sum(dim=1).max()) if b else 0
    slot = torch.where(targets, rank_among(targets), count)  # non-targets to a dropped column
    out = torch.full((b, count + 1), -1, dtype=torch.int64, device=targets.device)
    return out.scatter_(1, slot, positions_like(targets))[:, :count]


def sparse_target_mapping(
    positions: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """From (B, P) target positions: HF's ``target_mapping`` (B, P, L) float32 one-hot rows and
    the matching labels (B, P) (-100 on padding rows), for XLNetLMHeadModel's sparse form."""
    length = labels.shape[1]
    real = positions >= 0
    mapping = torch.nn.functional.one_hot(positions.clamp(min=0), length).float()
    mapping = mapping * real.unsqueeze(2)
    picked = labels.gather(1, positions.clamp(min=0))
    return mapping, torch.where(real, picked, torch.full_like(picked, -100))


def unilm_masks(
    mode: torch.Tensor, valid: torch.Tensor, segment: torch.Tensor | None
) -> torch.Tensor:
    """(B, L, L) bool self-attention masks, True where token i may attend to token j, by each
    row's ``mode`` (B,) index into UNILM_MASKS (UniLM, Dong et al., 2019, figure 1):
    bidirectional, left-to-right (j <= i), right-to-left (j >= i), or seq2seq (the source,
    segment 0, sees itself; a target token sees the source and the target up to itself)."""
    i = positions_like(valid).unsqueeze(2)
    j = i.transpose(1, 2)
    both = valid.unsqueeze(2) & valid.unsqueeze(1)
    m = mode.view(-1, 1, 1)
    allowed = (m == UNILM_MASKS.index("bidirectional")) | (
        (m == UNILM_MASKS.index("left_to_right")) & (j <= i)
    )
    allowed |= (m == UNILM_MASKS.index("right_to_left")) & (j >= i)
    if segment is not None:
        source_j = (segment == 0).unsqueeze(1)
        target_i = (segment == 1).unsqueeze(2)
        seq2seq = source_j | (target_i & (segment == 1).unsqueeze(1) & (j <= i))
        allowed |= (m == UNILM_MASKS.index("seq2seq")) & seq2seq
    return allowed & both

"""Sentence-pair construction (NSP, SOP, StructBERT's sentence objective): each row's
document split into segments A and B at a sentence boundary, laid out as
``[CLS] A [SEP] B [SEP]`` (B first when swapped, another row's B when random), vectorized."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from objspec.names import PAIR_RELATIONS
from objspec.runtime.batch import Batch
from objspec.runtime.document import document_sentences
from objspec.runtime.rewrite import longest_or_bound
from objspec.runtime.rng import SECOND_DRAW, Keys, below, cdf_index
from objspec.runtime.spans import compact_units


@dataclass
class Pairs:
    """The pair batch (``[CLS] first [SEP] second [SEP]``) and what was drawn.

    batch: the new rows; token_type_ids: (B, W) int64, 1 on the second segment and its [SEP];
    label: (B,) int64, the index of the drawn relation in the spec's mix.
    """

    batch: Batch
    token_type_ids: torch.Tensor
    label: torch.Tensor


def split_points(keys: Keys, stream: int, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row: (members (B, L) bool: the document's tokens, a_len (B,) int64: how many of them
    go to segment A). A ends at a uniformly chosen sentence boundary; a row with one sentence
    is cut at a uniform token boundary instead; a row of fewer than 2 tokens keeps all in A."""
    members, runs, sentences = document_sentences(batch, "pair construction")
    m = members.sum(dim=1)
    u = keys.draw(stream, 1)[:, 0]
    k = 1 + below(u, (sentences - 1).clamp(min=1))  # sentences in A, 1..n-1
    # tokens before sentence k: members whose run is below k
    by_sentence = ((runs < k.unsqueeze(1)) & members).sum(dim=1)
    by_token = 1 + below(u, (m - 1).clamp(min=1))
    a_len = torch.where(sentences >= 2, by_sentence, torch.where(m >= 2, by_token, m))
    return members, a_len


def truncate_pair(
    first: torch.Tensor, second: torch.Tensor, room: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Lengths after BERT's ``truncate_seq_pair`` to ``room`` tokens: the longer segment loses
    tokens first (the second on ties) until both fit (cut at their ends)."""
    if room is None:
        return first, second
    excess = (first + second - room).clamp(min=0)
    fits = excess == 0
    only_first = first - excess >= second + 1  # the first stays strictly longer
    only_second = second - excess >= first
    half_up, half_down = (room + 1) // 2, room // 2
    new_first = torch.where(only_first, first - excess, torch.where(only_second, first, half_up))
    new_second = torch.where(
        only_first, second, torch.where(only_second, second - excess, half_down)
    )
    return torch.where(fits, first, new_first), torch.where(fits, second, new_second)


def most_pair_width(length: int, max_length: int | None) -> int:
    """The widest pair :func:`build_pairs` lays out from rows of ``length`` columns: each
    segment is at most a row, plus three special tokens; ``max_length`` caps it (at 3 at
    least). The fused path's static width."""
    widest = 2 * length + 3
    return widest if max_length is None else min(widest, max(max_length, 3))


def build_pairs(
    keys: Keys,
    stream: int,
    batch: Batch,
    relations: tuple[str, ...],
    cdf: torch.Tensor,
    *,
    cls_id: int,
    sep_id: int,
    pad_id: int,
    max_length: int | None = None,
) -> Pairs:
    """Split each row's document (see :func:`split_points`), draw its relation from
    ``relations`` ('next', 'swapped' / 'previous', 'random') with the integer ``cdf``, and lay
    the pair out. 'random' takes B from another row of the batch (uniformly among the others);
    in a batch of one there is none, and the row is laid out as 'next' with that label. Pairs
    longer than ``max_length`` are truncated longer segment first (BERT's rule)."""
    b, length = batch.shape
    dev = batch.device
    members, a_len = split_points(keys, stream, batch)
    b_len = members.sum(dim=1) - a_len
    u = keys.draw(stream, torch.tensor([SECOND_DRAW, SECOND_DRAW + 1], device=dev))
    label = cdf_index(u[:, 0], cdf)
    kinds = torch.tensor([PAIR_RELATIONS.index(r) for r in relations], device=dev)[label]
    rows = torch.arange(b, device=dev)
    partner = torch.remainder(rows + 1 + below(u[:, 1], max(b - 1, 1)), b)
    random = kinds == PAIR_RELATIONS.index("random")
    if b == 1:
        next_label = relations.index("next") if "next" in relations else 0
        label = torch.where(random, torch.full_like(label, next_label), label)
        random = torch.zeros_like(random)
    swapped = (kinds == PAIR_RELATIONS.index("swapped")) | (
        kinds == PAIR_RELATIONS.index("previous")
    )
    # segments as (row, first member rank, length)
    first_row = rows
    first_start = torch.where(swapped, a_len, torch.zeros_like(a_len))
    first_len = torch.where(swapped, b_len, a_len)
    second_row = torch.where(random, partner, rows)
    second_start = torch.where(swapped, torch.zeros_like(a_len), a_len.gather(0, second_row))
    second_len = torch.where(swapped, a_len, b_len.gather(0, second_row))
    room = None if max_length is None else max(max_length - 3, 0)
    first_len, second_len = truncate_pair(first_len, second_len, room)

    total = first_len + second_len + 3
    width = longest_or_bound(total, most_pair_width(length, max_length), keys)
    p = torch.arange(width, device=dev).unsqueeze(0)
    member_pos = compact_units(members)[0].clamp(max=length - 1)  # r-th member's position
    in_first = (p >= 1) & (p <= first_len.unsqueeze(1))
    second_at = first_len.unsqueeze(1) + 2
    in_second = (p >= second_at) & (p < second_at + second_len.unsqueeze(1))
    src_row = torch.where(in_second, second_row.unsqueeze(1), first_row.unsqueeze(1))
    rank = torch.where(
        in_second, second_start.unsqueeze(1) + p - second_at, first_start.unsqueeze(1) + p - 1
    )
    rank = torch.where(in_first | in_second, rank, torch.zeros_like(rank)).clamp(max=length - 1)
    src_pos = member_pos[src_row, rank]
    token = batch.input_ids[src_row, src_pos]
    seps = (p == first_len.unsqueeze(1) + 1) | (p == total.unsqueeze(1) - 1)
    ids = torch.where(in_first | in_second, token, torch.full_like(token, pad_id))
    ids = torch.where(seps, torch.full_like(ids, sep_id), ids)
    ids = torch.where(p == 0, torch.full_like(ids, cls_id), ids)
    valid = p < total.unsqueeze(1)
    word_ids = None
    if batch.word_ids is not None:
        words = batch.word_ids[src_row, src_pos] + src_row * (length + 1)  # rows never share
        word_ids = torch.where(in_first | in_second, words, torch.full_like(words, -1))
    token_type = ((p >= first_len.unsqueeze(1) + 2) & valid).long()
    return Pairs(Batch(ids, valid, batch.index, word_ids, None, None), token_type, label)

"""Document-level noise: sentence permutation and document rotation (BART), as gathers and
scatters from a computed order, vectorized over the batch."""

from __future__ import annotations

from dataclasses import replace

import torch

from objspec.runtime.batch import Batch
from objspec.runtime.rewrite import positions_like, rank_among
from objspec.runtime.rng import FAR, SECOND_DRAW, Keys, below, threshold


def moved_from(members: torch.Tensor, new_rank: torch.Tensor) -> torch.Tensor:
    """(B, L) int64: the position each position's value comes from when the member of rank r
    among its row's members moves to the position of the member of rank ``new_rank`` (a
    permutation of the ranks); other positions keep theirs. Computed once, it moves any number
    of per-token tensors by one gather each."""
    b, length = members.shape
    pos = positions_like(members)
    slots = torch.full((b, length + 1), length, dtype=torch.int64, device=members.device)
    slots.scatter_(1, torch.where(members, rank_among(members), length), pos)
    target = slots.gather(1, torch.where(members, new_rank, length))
    source = torch.cat([pos, pos[:, :1]], dim=1)  # column L: discarded
    source.scatter_(1, torch.where(members, target, length), pos)
    return source[:, :length]


def move_within(
    values: torch.Tensor, members: torch.Tensor, new_rank: torch.Tensor
) -> torch.Tensor:
    """(B, L): ``values`` with the member positions refilled as :func:`moved_from` says."""
    return values.gather(1, moved_from(members, new_rank))


def sentence_order(
    keys: Keys,
    stream: int,
    sentences: torch.Tensor,
    rate: float,
    count: int,
    document: torch.Tensor | None = None,
) -> torch.Tensor:
    """(B, S) int64: which original sentence sits in each sentence slot after permuting
    ``ceil(rate x n)`` of a row's n ``sentences`` (B,) among their own slots (fairseq's
    permute_sentences; rate 1 shuffles them all). ``count`` is S, the widest row's sentences.
    ``document`` (B, S) int64, non-decreasing along a row, keeps each sentence among the slots
    of its own document (a row packing several)."""
    dev = sentences.device
    slot = torch.arange(count, device=dev).unsqueeze(0)
    real = slot < sentences.unsqueeze(1)
    n_moved = torch.ceil(sentences.double() * rate - 1e-9).long()
    u_choose = keys.draw(stream, count)
    u_order = keys.draw(stream, slot[0] + SECOND_DRAW)  # counters apart from the first draw
    by_choice = torch.where(real, u_choose * count + slot, FAR).argsort(dim=1)
    chosen = torch.zeros_like(real).scatter_(1, by_choice, slot < n_moved.unsqueeze(1))
    # The chosen sentences, in index order (their slots) and in a random order (their owners).
    slots_of_chosen = torch.where(chosen, slot, FAR).argsort(dim=1)
    group = document if document is not None else torch.zeros_like(slot)
    owners = torch.where(chosen, (group << 32 | u_order) * count + slot, FAR).argsort(dim=1)
    moved = slot < n_moved.unsqueeze(1)
    order = slot.expand(sentences.shape[0], count).clone()
    dump = torch.where(moved, slots_of_chosen, count)
    order = torch.cat([order, order[:, :1]], dim=1).scatter_(1, dump, owners)[:, :count]
    return order


def sentence_runs(sentence_ids: torch.Tensor, members: torch.Tensor) -> torch.Tensor:
    """(B, L) int64: sentences renumbered 0, 1, ... left to right, a new one wherever the id
    changes or a non-sentence token intervenes (so packed documents that each count from 0,
    or ids that do not start at 0, are read as the sentences they are); -1 outside."""
    before = torch.cat([torch.full_like(sentence_ids[:, :1], -1), sentence_ids[:, :-1]], dim=1)
    was_member = torch.cat([torch.zeros_like(members[:, :1]), members[:, :-1]], dim=1)
    start = members & (~was_member | (sentence_ids != before))
    runs = start.long().cumsum(dim=1) - 1
    return torch.where(members, runs, torch.full_like(runs, -1))


def document_sentences(batch: Batch, what: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A batch's documents: (members (B, L) bool, the sentence tokens; runs (B, L) int64, each
    token's sentence numbered 0.. from the left (-1 outside); sentences (B,) int64, how many)."""
    if batch.sentence_ids is None:
        raise ValueError(
            f"{what} needs per-token 'sentence_ids' in the examples "
            "(objspec.bundled.encode_examples writes them)"
        )
    members = (batch.sentence_ids >= 0) & batch.valid
    runs = sentence_runs(batch.sentence_ids, members)
    sentences = torch.where(members, runs + 1, torch.zeros_like(runs)).max(dim=1).values
    return members, runs, sentences


def permute_sentences(keys: Keys, stream: int, batch: Batch, rate: float) -> Batch:
    """The batch with its sentences (``batch.sentence_ids`` (B, L), -1 outside sentences)
    permuted by :func:`sentence_order`: the tokens of the sentences refill the sentence
    positions in the new order; tokens outside sentences ([CLS], [SEP], padding) stay put.
    Word ids and sentence ids move with their tokens."""
    members, sid, sentences = document_sentences(batch, "sentence permutation")
    if torch.compiler.is_compiling():  # fused: a row holds at most L sentences (same order)
        width = max(sid.shape[1], 1)
    else:
        width = max(int(sid.max()) + 1, 1) if sid.numel() else 1
    safe = sid.clamp(min=0, max=width - 1)
    # a document: a run of sentence tokens between non-sentence ones ([SEP] between packed docs)
    was_member = torch.cat([torch.zeros_like(members[:, :1]), members[:, :-1]], dim=1)
    doc = (members & ~was_member).long().cumsum(dim=1)
    document = torch.zeros((sid.shape[0], width), dtype=torch.int64, device=sid.device)
    document.scatter_reduce_(1, safe, torch.where(members, doc, 0), "amax")
    order = sentence_order(keys, stream, sentences, rate, width, document)  # slot -> sentence
    slot_of = torch.empty_like(order).scatter_(1, order, positions_like(order))
    lengths = torch.zeros_like(order).scatter_add_(1, safe, members.long())
    new_lengths = lengths.gather(1, order)
    new_start = new_lengths.cumsum(dim=1) - new_lengths  # by slot
    old_start = lengths.cumsum(dim=1) - lengths  # by sentence
    offset = rank_among(members) - old_start.gather(1, safe)
    new_rank = new_start.gather(1, slot_of.gather(1, safe)) + offset

    source = moved_from(members, new_rank)

    def move(x: torch.Tensor | None) -> torch.Tensor | None:
        return None if x is None else x.gather(1, source)

    return replace(
        batch,
        input_ids=batch.input_ids.gather(1, source),
        word_ids=move(batch.word_ids),
        special=move(batch.special),
        sentence_ids=move(batch.sentence_ids),
    )


def rotate(
    keys: Keys,
    stream: int,
    ids: torch.Tensor,
    valid: torch.Tensor,
    special: torch.Tensor,
    rate: float,
) -> torch.Tensor:
    """(B, L) int64: each row, with probability ``rate``, rotated to begin at a uniformly chosen
    token (BART's document rotation). A special token at either end of the row ([CLS]/<s>,
    [SEP]/</s>) stays in place; everything between rotates."""
    pos = positions_like(ids)
    n_valid = valid.sum(dim=1, keepdim=True)
    ends = special & ((pos == 0) | (pos == n_valid - 1))
    members = valid & ~ends
    n = members.sum(dim=1, keepdim=True)
    u = keys.draw(stream, 2)
    rotated = u[:, :1] < threshold(rate)
    start = torch.where(rotated, below(u[:, 1:], n), torch.zeros_like(n))
    new_rank = torch.remainder(rank_among(members) - start, n.clamp(min=1))
    return move_within(ids, members, new_rank)


def ngram_blocks(eligible: torch.Tensor, n: int) -> torch.Tensor:
    """(B, L) bool: starts of disjoint blocks of n consecutive eligible positions, cut from
    each run of eligible positions from its left end."""
    length = eligible.shape[1]
    pos = positions_like(eligible)
    run_first = (
        torch.where(
            eligible & ~torch.cat([torch.zeros_like(eligible[:, :1]), eligible[:, :-1]], 1),
            pos,
            torch.zeros_like(pos),
        )
        .cummax(dim=1)
        .values
    )
    offset = pos - run_first
    last = (pos + n - 1).clamp(max=length - 1)
    whole = (
        (pos + n - 1 < length) & eligible.gather(1, last) & (run_first.gather(1, last) == run_first)
    )
    return eligible & (offset % n == 0) & whole


def shuffle_ngrams(
    keys: Keys,
    streams: tuple[int, int],
    ids: torch.Tensor,
    eligible: torch.Tensor,
    n: int,
    count: torch.Tensor,
    permutations: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Shuffle the tokens inside ``count`` (B,) blocks of n consecutive ``eligible`` positions
    per row (StructBERT's word objective), blocks taken in a random order, each block's order a
    uniform draw from ``permutations`` (P, n) int64 (every order of 0..n-1). Returns the new ids
    (B, L) and the shuffled positions (B, L) bool."""
    from objspec.runtime.selection import take_in_random_order

    starts = ngram_blocks(eligible, n)
    chosen = take_in_random_order(keys, streams[0], starts, None, count)  # one each
    pos = positions_like(ids)
    first = torch.where(chosen, pos, torch.full_like(pos, -1)).cummax(dim=1).values
    inside = (first >= 0) & (pos - first < n)
    perm = below(keys.draw(streams[1], ids.shape[1]), permutations.shape[0])  # per position
    block_perm = perm.gather(1, first.clamp(min=0))  # one draw per block, at its start
    offset = (pos - first).clamp(min=0, max=n - 1)
    source = first.clamp(min=0) + permutations[block_perm, offset]
    shuffled = torch.where(inside, ids.gather(1, source.clamp(max=ids.shape[1] - 1)), ids)
    return shuffled, inside

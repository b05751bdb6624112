"""Which positions are candidates, what a unit is, and per-row selection kernels.

All kernels work on the whole batch at once: (B, L) tensors in, (B, L) tensors out, no Python
loop over rows or tokens. A *unit* (a token, or a whole word) is represented by its first token:
``unit_start`` (B, L) bool marks first tokens, and every token reads its unit's decision from the
start position (``start_position``), so selecting a word selects all its pieces.
"""

from __future__ import annotations

import math

import torch

from objspec.runtime.batch import Batch, BatchError
from objspec.runtime.rng import FAR, Keys, lowest, threshold
from objspec.runtime.vocab import Vocab

ROUNDING_EPS = 1e-9  # rate x count is rounded as the exact rational would be: 15% of 20 is 3


def candidate_mask(
    batch: Batch,
    vocab: Vocab,
    *,
    exclude_special: bool = True,
    exclude_first: bool = False,
    exclude_last: bool = False,
) -> torch.Tensor:
    """(B, L) bool: positions that may be selected. Padding never is."""
    if exclude_special:
        cand = batch.valid & vocab.ordinary_table(batch.device)[batch.input_ids]
        if batch.special is not None:
            cand &= ~batch.special
    else:
        cand = batch.valid.clone()
    if exclude_first or exclude_last:
        # the row's first and last real tokens, wherever its padding is (left or right)
        length = batch.shape[1]
        pos = torch.arange(length, device=batch.device).unsqueeze(0)
        valid = batch.valid.long()
        if exclude_first:
            cand &= pos != valid.argmax(dim=1, keepdim=True)
        if exclude_last:
            cand &= pos != length - 1 - valid.flip(1).argmax(dim=1, keepdim=True)
    return cand


def token_unit_starts(batch: Batch) -> torch.Tensor:
    """(B, L) bool: with token units every position starts its own unit."""
    return torch.ones_like(batch.valid)


def word_unit_starts(batch: Batch, vocab: Vocab) -> torch.Tensor:
    """(B, L) bool: first tokens of words.

    From per-token ``word_ids`` when the batch has them (a fast tokenizer's word ids: a new id
    starts a word, -1 is a word of its own), else from the vocabulary's word-start table. A token
    after a special token or padding always starts a word.
    """
    if batch.word_ids is not None:
        return id_unit_starts(batch, batch.word_ids, vocab)
    ids = batch.input_ids
    return _bounded(batch, vocab, vocab.word_start_table(ids.device)[ids])


def sentence_unit_starts(batch: Batch, vocab: Vocab) -> torch.Tensor:
    """(B, L) bool: first tokens of sentences, from the batch's ``sentence_ids`` (a BatchError
    without them)."""
    if batch.sentence_ids is None:
        raise BatchError(
            "this objective selects whole sentences: each example needs its per-token "
            "sentence_ids (objspec.data or objspec.bundled.encode_examples make them)"
        )
    return id_unit_starts(batch, batch.sentence_ids, vocab)


def id_unit_starts(batch: Batch, ids: torch.Tensor, vocab: Vocab) -> torch.Tensor:
    """(B, L) bool: the units of per-token ids ``ids`` (B, L) int64: a run of equal ids is one
    unit, -1 (or any negative id) a token of its own; special tokens stand alone."""
    prev = torch.full_like(ids, -2)
    prev[:, 1:] = ids[:, :-1]
    return _bounded(batch, vocab, (ids != prev) | (ids < 0))


def _bounded(batch: Batch, vocab: Vocab, starts: torch.Tensor) -> torch.Tensor:
    """``starts`` with every special token, the token after one, and the first token of each
    row starting a unit."""
    ids = batch.input_ids
    prev_ok = torch.zeros_like(batch.valid)
    prev_ok[:, 1:] = batch.valid[:, :-1]
    special = vocab.special_table(ids.device)[ids]
    prev_special = torch.zeros_like(special)
    prev_special[:, 1:] = special[:, :-1]
    return starts | special | prev_special | ~prev_ok


def start_position(unit_start: torch.Tensor) -> torch.Tensor:
    """(B, L) int64: for each token, the position of the first token of its unit."""
    pos = torch.arange(unit_start.shape[1], device=unit_start.device).expand_as(unit_start)
    marked = torch.where(unit_start, pos, torch.zeros_like(pos))
    return marked.cummax(dim=1).values


def unit_lengths(unit_start: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """(B, L) int64: at a unit's start, how many tokens the unit has (0 elsewhere)."""
    starts = unit_start & valid
    unit_id = starts.long().cumsum(dim=1) - 1
    counts = torch.zeros_like(unit_id)
    counts.scatter_add_(1, unit_id.clamp(min=0), (valid & (unit_id >= 0)).long())
    return torch.where(starts, counts.gather(1, unit_id.clamp(min=0)), torch.zeros_like(counts))


def expand_units(selected_starts: torch.Tensor, unit_start: torch.Tensor) -> torch.Tensor:
    """(B, L) bool: a token is selected when its unit's start is."""
    return selected_starts.gather(1, start_position(unit_start))


def budget_bound(length: int, rate: float, *, minimum: int = 0, maximum: int | None = None) -> int:
    """The most :func:`budget_counts` gives any row of ``length`` columns, whatever its count
    and rounding (the count is at most the length, and ``floor(rate * n) + 1`` bounds every
    rounding of ``rate * n``): a static width for the fused path, in plain integers."""
    most = math.floor(rate * length) + 1
    if maximum is not None:
        most = min(most, maximum)
    return min(length, max(most, minimum))


def budget_counts(
    n: torch.Tensor,
    rate: float,
    rounding: str,
    *,
    minimum: int = 0,
    maximum: int | None = None,
    u: torch.Tensor | None = None,
) -> torch.Tensor:
    """(B,) int64 per-row budget: ``rounding(rate * n)`` clamped to [minimum, maximum] and to n.

    ``round`` rounds half to even (Python's and Google BERT's ``round``); ``stochastic`` is
    fairseq's ``floor(rate * n + u)`` with ``u`` (B,) uniform 32-bit draws.
    """
    x = rate * n.to(torch.float64)
    if rounding == "round":
        # half to even on the exact rational: 35% of 90 is 31.5 -> 32, whatever float64 says
        low = torch.floor(x + ROUNDING_EPS)
        frac = x - low
        tie_up = torch.remainder(low, 2)
        k = torch.where(
            frac > 0.5 + ROUNDING_EPS,
            low + 1,
            torch.where(frac < 0.5 - ROUNDING_EPS, low, low + tie_up),
        )
    elif rounding == "ceil":
        k = torch.ceil(x - ROUNDING_EPS)
    elif rounding == "floor":
        k = torch.floor(x + ROUNDING_EPS)
    elif rounding == "stochastic":
        if u is None:
            raise ValueError("stochastic rounding needs uniform draws")
        k = torch.floor(x + u.to(torch.float64) / 2**32)
    else:
        raise ValueError(f"unknown rounding {rounding!r}")
    k = k.to(torch.int64).clamp(min=minimum)
    if maximum is not None:
        k = k.clamp(max=maximum)
    return torch.minimum(k, n)


def bernoulli_select(
    keys: Keys, stream: int, candidate_starts: torch.Tensor, rate: float
) -> torch.Tensor:
    """(B, L) bool: each candidate unit start independently with probability ``rate``."""
    return candidate_starts & (keys.draw(stream, candidate_starts.shape[1]) < threshold(rate))


def take_in_random_order(
    keys: Keys,
    stream: int,
    candidate_starts: torch.Tensor,
    sizes: torch.Tensor | None,
    budget: torch.Tensor,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """(B, L) bool: units taken in a random order, each while it still fits the budget.

    ``sizes`` (B, L) int64 is each unit's cost at its start (the word's token count for a token
    budget over words), or None when every unit costs one (a budget over tokens of token units,
    or over units: :func:`first_in_random_order`); ``budget`` (B,) int64. Going through
    the units in the random order, a unit is taken when it fits in what is left of the budget
    and skipped otherwise, as Google BERT's whole-word loop does (``if len(masked_lms) +
    len(index_set) > num_to_predict: continue``): with unit sizes 1 this is exact-k selection
    without replacement; with words the count can end below the budget when no word left fits.
    With ``weights`` (B, L) float64 > 0 the order is a weighted draw without replacement (XLM's
    frequency^-alpha), through float64 ``log`` (CPU and GPU may differ in its last bit).
    """
    if sizes is None and weights is None:
        return first_in_random_order(keys, stream, candidate_starts, budget)
    length = candidate_starts.shape[1]
    u = keys.draw(stream, length)
    if sizes is None:
        sizes = candidate_starts.long()
    if weights is None:  # bigger units can be skipped, so the whole order may be read
        order = lowest(random_order_keys(u, candidate_starts), length)
    else:
        # Efraimidis-Spirakis: the order of -log(u) / w is a weighted draw without replacement
        race = -torch.log((u.double() + 0.5) / 2**32) / weights
        race = torch.where(candidate_starts, race, torch.full_like(race, float("inf")))
        order = race.sort(dim=1, stable=True).indices
    cost = torch.where(candidate_starts, sizes, torch.zeros_like(sizes)).gather(1, order)
    take_sorted = take_while_fits(
        cost, candidate_starts.gather(1, order), budget, getattr(keys, "fused_checks", None)
    )
    taken = torch.zeros_like(candidate_starts)
    return taken.scatter(1, order, take_sorted)


def random_order_keys(u: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
    """(B, L) int64 sort keys of a uniformly random order of each row's candidates, the others
    last: the draw ``u`` (B, L), ties broken by position, so the order is a strict total one."""
    length = u.shape[1]
    positions = torch.arange(length, device=u.device)
    return torch.where(candidates, u * length + positions, torch.full_like(u, FAR))


def first_in_random_order(
    keys: Keys, stream: int, candidates: torch.Tensor, budget: torch.Tensor
) -> torch.Tensor:
    """(B, L) bool: each row's first ``budget`` (B,) int64 candidates in a uniformly random
    order, exact-k selection without replacement (all of them where there are fewer).

    Eager reads the largest budget to sort only that much of each row (a partial sort); the
    fused path sorts whole rows (a static shape, no host read), the same order."""
    b, length = candidates.shape
    sort_keys = random_order_keys(keys.draw(stream, length), candidates)
    if torch.compiler.is_compiling():
        order = sort_keys.argsort(dim=1)
    else:
        order = lowest(sort_keys, int(budget.max()) if b else 0)
    # each candidate's place in the order (``length`` past the sorted ones), then a compare:
    # inductor (torch 2.13, CPU) miscompiled the scatter of the flags themselves fused with
    # BART's deletion and decoder-only steps after it (rows came out undeleted)
    ranks = torch.arange(order.shape[1], device=order.device).expand_as(order)
    place = torch.full_like(sort_keys, length).scatter_(1, order, ranks)
    return (place < budget.unsqueeze(1)) & candidates


FUSED_ROUNDS = 6  # take_while_fits' rounds in a fused graph (whole words: 3 to 5 measured)


def take_while_fits(
    cost: torch.Tensor,
    eligible: torch.Tensor,
    budget: torch.Tensor,
    fused_checks: list[torch.Tensor] | None = None,
) -> torch.Tensor:
    """(B, K) bool: going left to right, take each eligible item whose ``cost`` fits in what is
    left of ``budget`` (B,), skip the others (a first-fit greedy, Google BERT's whole-word loop).

    cost (B, K) int64 >= 0, eligible (B, K) bool. Vectorized in rounds: a round takes every
    item, from the row's resume point on, that fits the room left, up to the first whose
    running total overflows it; that item is skipped and the next round resumes after it.
    A round that overflows takes an item at least and leaves less room than the skipped item's
    cost, so rounds number at most the largest cost plus one (whole words: a few).

    The fused path runs ``FUSED_ROUNDS`` rounds (a round past the last overflow changes
    nothing) and appends to ``fused_checks`` that the last one overflowed nowhere: the host
    checks it and redoes a batch that needed more rounds eager.
    """
    b, k = cost.shape
    col = torch.arange(k, device=cost.device).unsqueeze(0)
    taken = torch.zeros_like(eligible)
    room = budget.clone()
    resume = torch.zeros_like(budget)
    rounds = 0
    while True:
        open_ = eligible & (col >= resume.unsqueeze(1)) & (cost <= room.unsqueeze(1))
        running = torch.where(open_, cost, torch.zeros_like(cost)).cumsum(dim=1)
        fits = open_ & (running <= room.unsqueeze(1))
        taken |= fits
        over = open_ & ~fits
        room = room - torch.where(fits, cost, torch.zeros_like(cost)).sum(dim=1)
        overflowed = over.any(dim=1)
        rounds += 1
        if torch.compiler.is_compiling():  # static rounds, no host read
            if rounds == FUSED_ROUNDS:
                if fused_checks is not None:
                    fused_checks.append(~overflowed.any())
                return taken
        elif not bool(overflowed.any()):
            return taken
        first_over = torch.where(over, col, torch.full_like(col, k)).min(dim=1).values
        resume = torch.where(overflowed, first_over + 1, torch.full_like(resume, k))

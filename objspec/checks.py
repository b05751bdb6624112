"""Spec-derived property checks of a compiled collator, run with Hypothesis.

Each :class:`Check` states one promise the spec makes (labels exactly at the selected positions,
specials and padding untouched, the budget's rounding, whole words, span lengths in the law's
support, the replacement mix, batch invariance, epoch keying) and tests it on batches drawn by
Hypothesis over batch sizes, row lengths, padding, vocabulary sizes and seeds. ``objspec check``
and the test suite run the same checks; Hypothesis runs derandomized, so results never flake.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from itertools import permutations
from typing import Any

import torch
from hypothesis import HealthCheck, Phase, configuration, given, settings
from hypothesis import strategies as st

from objspec import ir
from objspec.runtime import IGNORE_INDEX, Vocab, read_batch
from objspec.runtime.attention import blocked_by_order
from objspec.runtime.rng import Keys
from objspec.runtime.selection import (
    candidate_mask,
    id_unit_starts,
    sentence_unit_starts,
    word_unit_starts,
)

# Statistical checks fail only past this many standard deviations (a fixed seed makes them
# deterministic; the wide bound keeps a correct collator far from the edge for any seed).
Z_BOUND = 6.0

PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4
MODE_TOKENS = (("[NLU]", 5), ("[NLG]", 6), ("[S2S]", 7))  # UL2's paradigm tokens
# FIM's sentinels (prefix, middle, suffix) on the same special ids: a spec names them by text
FIM_TOKENS = tuple(zip(ir.FIM_TOKENS, (5, 6, 7), strict=True))
GLM_TOKENS = tuple(zip(ir.GLM_TOKENS, (5, 6), strict=True))  # GLM's [sop], [eop] likewise
FIRST_WORD = 8  # ids below are special


class CheckFailure(AssertionError):
    """A property the spec promises does not hold."""


@dataclass(frozen=True)
class Case:
    """One drawn test case: a vocabulary, examples, and the collator seed/epoch."""

    vocab: Vocab
    examples: list[dict[str, Any]]
    seed: int
    epoch: int


@dataclass(frozen=True)
class Check:
    name: str
    promise: str
    run: Callable[[Any, Any, Case], None]  # (objective or mixture, compiled, case)
    statistical: bool = False


@dataclass(frozen=True)
class CheckResult:
    name: str
    promise: str
    passed: bool
    detail: str = ""


# --- drawing cases -------------------------------------------------------------------------------


def sentinel_count(size: int) -> int:
    """How many T5 sentinels a synthetic vocabulary of ``size`` ids has (at its top)."""
    return max(1, min(16, (size - FIRST_WORD - 1) // 4))


def synthetic_vocab(size: int, word_start_every: int = 3) -> Vocab:
    """A vocabulary of ``size`` ids: 0..4 are [PAD] [UNK] [CLS] [SEP] [MASK], 5..7 UL2's mode
    tokens [NLU] [NLG] [S2S], the top
    :func:`sentinel_count` ids are sentinels (<extra_id_0> = size - 1, descending); every
    ``word_start_every``-th other id continues a word (like '##' pieces), the rest start one."""
    starts = tuple(i < FIRST_WORD or i % word_start_every != 0 for i in range(size))
    return Vocab(
        sentinel_ids=tuple(range(size - 1, size - 1 - sentinel_count(size), -1)),
        special_ids=tuple(i for _, i in MODE_TOKENS),
        special_tokens=MODE_TOKENS + FIM_TOKENS + GLM_TOKENS,
        size=size,
        pad_id=PAD,
        unk_id=UNK,
        cls_id=CLS,
        sep_id=SEP,
        mask_id=MASK,
        word_start=starts,
    )


@st.composite
def cases(draw: st.DrawFn, max_batch: int = 6, max_length: int = 48) -> Case:
    """Batches of [CLS] tokens [SEP] rows of ragged lengths (including empty and tiny rows)."""
    size = draw(st.integers(min_value=FIRST_WORD + 4, max_value=400))
    vocab = synthetic_vocab(size)
    n = draw(st.integers(min_value=1, max_value=max_batch))
    lengths = draw(st.lists(st.integers(0, max_length), min_size=n, max_size=n))
    first_index = draw(st.integers(0, 2**40))
    examples = []
    for row, length in enumerate(lengths):
        top = size - 1 - sentinel_count(size)
        body = draw(st.lists(st.integers(FIRST_WORD, top), min_size=length, max_size=length))
        other = draw(st.integers(0, max_length // 2))
        translation = draw(st.lists(st.integers(FIRST_WORD, top), min_size=other, max_size=other))
        cuts = sorted(draw(st.sets(st.integers(1, max(length - 1, 1)), max_size=2)))
        sentences = [sum(t >= c for c in cuts) for t in range(length)]
        examples.append(
            {
                "input_ids": [CLS, *body, SEP],
                "sentence_ids": [-1, *sentences, -1],
                "translation_ids": translation,
                "positive_ids": [CLS, *translation, SEP],
                "index": first_index + row,
            }
        )
    seed = draw(st.integers(0, 2**31 - 1))
    epoch = draw(st.integers(0, 1000))
    return Case(vocab, examples, seed, epoch)


def big_case(seed: int = 1234, rows: int = 64, length: int = 256, size: int = 1000) -> Case:
    """A large fixed case for the statistical checks (counts in the tens of thousands)."""
    g = torch.Generator().manual_seed(seed)
    body = torch.randint(FIRST_WORD, size - sentinel_count(size), (rows, length), generator=g)
    third = length // 3
    sentences = [-1, *(min(t // third, 2) for t in range(length)), -1]
    examples = [
        {
            "input_ids": [CLS, *row.tolist(), SEP],
            "sentence_ids": sentences,
            "translation_ids": row[: length // 2].flip(0).tolist(),
            "positive_ids": [CLS, *row[: length // 2].flip(0).tolist(), SEP],
            "index": i,
        }
        for i, row in enumerate(body)
    ]
    return Case(synthetic_vocab(size), examples, seed, 0)


# --- helpers -------------------------------------------------------------------------------------


def synthetic_counts(size: int) -> list[int]:
    """A count table for frequency-weighted objectives: id i seen i times (0 for specials)."""
    return [0 if i < FIRST_WORD else i for i in range(size)]


def synthetic_tables(vocab: Vocab, needs: tuple[str, ...]) -> dict[str, Any]:
    """Run-time tables for the needs of a spec: every ordinary id i similar to the next two
    ordinary ids, except every fifth id, which lists none (the fallback); a pool of the first
    100 ordinary ids."""
    ordinary = (~vocab.special_table()).nonzero().flatten()
    tables: dict[str, Any] = {}
    if "similar" in needs:
        similar = torch.full((vocab.size, 2), -1, dtype=torch.int64)
        for first in range(2):  # the next two ordinary ids, vectorized over ids
            following = ordinary.roll(-1 - first)
            similar[ordinary, first] = following
        similar[ordinary[::5]] = -1
        tables["similar"] = similar
    if "pool" in needs:
        tables["pool"] = ordinary[:100]
    return {"tables": tables} if tables else {}


def _collator(compiled: Any, case: Case, epoch: int | None = None) -> Any:
    """The compiled collator of ``case`` (its vocabulary, seed and epoch)."""
    needs = compiled.Collator.needs
    counts = synthetic_counts(case.vocab.size) if "counts" in needs else None
    tables = synthetic_tables(case.vocab, needs)
    collator = compiled.Collator(case.vocab, seed=case.seed, token_counts=counts, **tables)
    collator.set_epoch(case.epoch if epoch is None else epoch)
    return collator


def _collate(compiled: Any, case: Case, epoch: int | None = None) -> dict[str, torch.Tensor]:
    collator = _collator(compiled, case, epoch)
    return collator(with_fields(case.examples, collator.fields))  # type: ignore[no-any-return]


def with_fields(examples: list[dict[str, Any]], fields: tuple[tuple[str, str], ...]) -> list[Any]:
    """The examples with the stand-ins of :func:`objspec.bundled.stand_in_fields` for the
    per-token fields a spec declares (these rows have no word_ids: units are token pairs)."""
    from objspec.bundled import stand_in_fields

    return stand_in_fields(examples, fields) if fields else examples


def declared_fields(objective: ir.Objective) -> tuple[tuple[str, str], ...]:
    """The per-token fields ``objective`` reads (names only matter here)."""
    named = ["prompt_mask"] if "prompt" in objective.exclude else []
    named += [objective.unit.field] if objective.unit.field is not None else []
    return tuple((name, "") for name in named)


def unit_starts(objective: ir.Objective, case: Case) -> torch.Tensor:
    """(B, L) bool: the first token of each of the objective's units on the case's rows
    (every real token for token units)."""
    examples = with_fields(case.examples, declared_fields(objective))
    batch = read_batch(examples, case.vocab.pad_id or 0)
    kind = objective.unit.kind
    if kind == "word":
        return word_unit_starts(batch, case.vocab)
    if kind == "sentence":
        return sentence_unit_starts(batch, case.vocab)
    if kind == "field":
        assert objective.unit.field is not None
        ids = batch.extras[objective.unit.field]
        return id_unit_starts(batch, ids, case.vocab)
    return batch.valid


def _inputs(case: Case) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    batch = read_batch(case.examples, case.vocab.pad_id or 0)
    cand = candidate_mask(batch, case.vocab)
    return batch.input_ids, batch.valid, cand


def _fail(message: str) -> CheckFailure:
    return CheckFailure(message)


def _selected(objective: ir.Objective, out: dict[str, torch.Tensor]) -> torch.Tensor:
    """(B, L) bool: the selected positions in the original's coordinates. For encoder outputs
    they are the labelled positions; for a fragment predicted by a decoder (MASS), the decoder's
    labelled positions."""
    if not objective.output.seq2seq:
        labelled = out["labels"] != IGNORE_INDEX
        if "shuffled_mask" in out:  # StructBERT: the shuffled trigrams are not the selection
            labelled &= ~out["shuffled_mask"].bool()
        return labelled
    if objective.predict.target == "all":  # same-length input, every selected token masked
        original = out["labels"].clamp(min=0)
        return out["input_ids"] != original
    ids = out["input_ids"]
    valid = out["labels"] != IGNORE_INDEX
    rows = torch.arange(ids.shape[0]).unsqueeze(1).expand_as(valid)
    selected = torch.zeros_like(ids, dtype=torch.bool)
    selected[rows[valid], out["decoder_position_ids"][valid]] = True
    return selected


def _excluded(objective: ir.Objective, case: Case) -> torch.Tensor:
    batch = read_batch(case.examples, case.vocab.pad_id or 0)
    ex = set(objective.exclude)
    cand = candidate_mask(
        batch,
        case.vocab,
        exclude_special="special" in ex,
        exclude_first="first" in ex,
        exclude_last="last" in ex,
    )
    if "prompt" in ex:
        prompted = with_fields(case.examples, (("prompt_mask", ""),))
        cand &= read_batch(prompted, case.vocab.pad_id or 0).extras["prompt_mask"] == 0
    return ~cand


# --- the checks ----------------------------------------------------------------------------------


def check_labels(objective: ir.Objective, compiled: Any, case: Case) -> None:
    out = _collate(compiled, case)
    ids, _, _ = _inputs(case)
    labels = out["labels"]
    # the positions the labels belong to: themselves, or the decoder's positions (MASS)
    target = _selected(objective, out) if objective.output.seq2seq else labels != IGNORE_INDEX
    if not torch.equal(labels[labels != IGNORE_INDEX], ids[target]):
        raise _fail("a label differs from the original token at its position")
    if not torch.equal(out["input_ids"][~target], ids[~target]):
        raise _fail("a position without a label was changed")
    if objective.output.seq2seq:
        _check_decoder_reads_previous(out, ids, compiled, case)


def _check_decoder_reads_previous(
    out: dict[str, torch.Tensor], ids: torch.Tensor, compiled: Any, case: Case
) -> None:
    """MASS: the decoder input at a target is the original token just before it."""
    valid = out["labels"] != IGNORE_INDEX
    pos = out["decoder_position_ids"]
    start = compiled.Collator(case.vocab).decoder_start_id
    previous = torch.cat([torch.full_like(ids[:, :1], start), ids[:, :-1]], dim=1)
    if not torch.equal(out["decoder_input_ids"][valid], previous.gather(1, pos)[valid]):
        raise _fail("a decoder input is not the original token before its target")
    if bool((pos[:, 1:] <= pos[:, :-1])[valid[:, 1:]].any()):
        raise _fail("decoder positions are not increasing")


def check_untouched(objective: ir.Objective, compiled: Any, case: Case) -> None:
    out = _collate(compiled, case)
    ids, valid, _ = _inputs(case)
    excluded = _excluded(objective, case)
    if bool(_selected(objective, out)[excluded].any()):
        raise _fail("an excluded position (special, padding, first/last, prompt) got a label")
    if not torch.equal(out["input_ids"][excluded], ids[excluded]):
        raise _fail("an excluded position (special, padding, first/last, prompt) was changed")
    if not torch.equal(out["attention_mask"].bool(), valid):
        raise _fail("attention_mask does not mark exactly the real tokens")


def _expected_budget(objective: ir.Objective, budget: ir.Budget, case: Case) -> torch.Tensor:
    batch = read_batch(case.examples, case.vocab.pad_id or 0)
    cand = ~_excluded(objective, case)
    if budget.of == "tokens":
        n = cand.sum(dim=1)
    elif budget.of == "all_tokens":  # every token counts; only candidates can be taken
        n = batch.valid.sum(dim=1)
    else:
        n = (unit_starts(objective, case) & cand).sum(dim=1)
    x = [budget.rate * int(v) for v in n]
    rounded = {
        "round": [round(v) for v in x],
        "ceil": [math.ceil(v - 1e-9) for v in x],
        "floor": [math.floor(v + 1e-9) for v in x],
        "stochastic": [math.floor(v) for v in x],
    }[budget.rounding]
    floored = torch.tensor(rounded, dtype=torch.int64).clamp(min=budget.min)
    capped = floored if budget.max is None else floored.clamp(max=budget.max)
    return torch.minimum(capped, cand.sum(dim=1) if budget.of == "all_tokens" else n)


def _longest_word(objective: ir.Objective, case: Case) -> torch.Tensor:
    """(B,) the token count of each row's longest candidate word."""
    starts = unit_starts(objective, case)
    cand = ~_excluded(objective, case)
    word = (starts & cand).long().cumsum(dim=1) * cand
    size = torch.zeros(word.shape[0], word.shape[1] + 1, dtype=torch.int64)
    size.scatter_add_(1, word, cand.long())
    return size[:, 1:].max(dim=1).values.clamp(min=1)


def check_budget(objective: ir.Objective, compiled: Any, case: Case) -> None:
    sel = objective.select
    unbudgeted = ir.Bernoulli | ir.RandomSpans | ir.CountedSpans | ir.Suffix | ir.Windows
    if isinstance(sel, unbudgeted | ir.NoSelection):
        return
    budget = sel.budget
    if budget is None:  # a fragment sized by its law: fragment_lengths checks it
        return
    out = _collate(compiled, case)
    selected = _selected(objective, out)
    if budget.of == "units":
        selected = selected & unit_starts(objective, case)
    counted = selected.sum(dim=1)
    expected = _expected_budget(objective, budget, case)
    word_budget = objective.unit.kind != "token" and budget.of != "units"
    high = expected + int(budget.rounding == "stochastic")  # floor(x + u) is floor(x) or one more
    low = expected
    if isinstance(sel, ir.Exact) and word_budget:
        # a whole word that would overflow is skipped: the count ends short by less than a word
        low = expected - _longest_word(objective, case) + 1
    ok = (counted >= low) & (counted <= high)
    if not bool(ok.all()):
        row = int((~ok).nonzero()[0, 0])
        raise _fail(
            f"row {row}: {int(counted[row])} tokens selected, the budget "
            f"({budget.rounding} of {budget.rate:g} x count) says {int(expected[row])}"
        )


def check_whole_words(objective: ir.Objective, compiled: Any, case: Case) -> None:
    if objective.unit.kind == "token":
        return
    out = _collate(compiled, case)
    batch = read_batch(case.examples, case.vocab.pad_id or 0)
    starts = unit_starts(objective, case)
    selected = _selected(objective, out)
    word = starts.long().cumsum(dim=1)
    # Per word: selected tokens vs tokens; a word is partial when 0 < selected < size.
    size = torch.zeros(word.shape[0], word.shape[1] + 1, dtype=torch.int64)
    hit = torch.zeros_like(size)
    size.scatter_add_(1, word, batch.valid.long())
    hit.scatter_add_(1, word, selected.long())
    partial = ((hit > 0) & (hit < size)).sum(dim=1)
    allowed = 1 if isinstance(objective.select, ir.Spans) else 0  # the budget cut, mid-word
    if bool((partial > allowed).any()):
        raise _fail(f"a row has {int(partial.max())} partly selected words (allowed {allowed})")


def check_span_support(objective: ir.Objective, compiled: Any, case: Case) -> None:
    sel = objective.select
    if not isinstance(sel, ir.Spans):
        return
    out = _collate(compiled, case)
    starts = unit_starts(objective, case)
    selected = out["labels"] != IGNORE_INDEX
    span_start, span_end = out["span_start"], out["span_end"]
    if not torch.equal(span_start >= 0, selected):
        raise _fail("span_start is set exactly where tokens are selected")
    pos = torch.arange(selected.shape[1]).unsqueeze(0)
    inside = (pos >= span_start) & (pos < span_end)
    if not bool(inside[selected].all()):
        raise _fail("a selected token lies outside its span's [span_start, span_end)")
    units = (starts & selected).long()
    units_per_span = torch.zeros(selected.shape[0], selected.shape[1] + 1, dtype=torch.int64)
    units_per_span.scatter_add_(1, torch.where(selected, span_start, selected.shape[1]), units)
    counts = units_per_span[:, :-1]
    if bool((counts > sel.length.table.high).any()):
        raise _fail(f"a span has {int(counts.max())} units, more than the law's maximum")


def check_batch_invariance(objective: ir.Objective, compiled: Any, case: Case) -> None:
    together = _collate(compiled, case)
    for row, example in enumerate(case.examples):
        alone = _collate(compiled, Case(case.vocab, [example], case.seed, case.epoch))
        for key, value in alone.items():
            part = together[key][row]
            if value.dim() > 1:  # each output has its own width (inputs, targets, (L, L))
                n = value.shape[1]
                part = part[:n, :n] if value.dim() == 3 else part[:n]
            if not torch.equal(value[0], part):
                raise _fail(f"example {row} is corrupted differently alone ({key})")
        if "labels" in alone:
            n = alone["labels"].shape[1]
            if bool((together["labels"][row, n:] != IGNORE_INDEX).any()):
                raise _fail(f"example {row} has labels in its padding")


def check_epochs(objective: ir.Objective, compiled: Any, case: Case) -> None:
    first = _collate(compiled, case, epoch=case.epoch)
    again = _collate(compiled, case, epoch=case.epoch)
    for key in first:
        if not torch.equal(first[key], again[key]):
            raise _fail("the same seed and epoch gave a different corruption")
    copies = objective.masks.copies if objective.masks.kind == "static" else None
    if copies is not None:
        later = _collate(compiled, case, epoch=case.epoch + copies)
        if not torch.equal(first["labels"], later["labels"]):
            raise _fail(f"static masks differ after {copies} epochs")


# Outputs that are the collator's random keys themselves (ELECTRA's sample_keys): they always
# carry the epoch, so they say nothing about whether the corruption follows it.
KEY_OUTPUTS = ("sample_keys",)


def _corruption(objective: ir.Spec, out: dict[str, torch.Tensor], case: Case) -> list[torch.Tensor]:
    """What a new epoch must redraw: a same-length masked LM's selected positions, else every
    output but the random keys (rewritten rows, targets, pair labels, attention orders)."""
    if isinstance(objective, ir.Objective) and _masks_in_place(objective):
        return [(out["labels"] != IGNORE_INDEX)[~_excluded(objective, case)]]
    return [value for key, value in sorted(out.items()) if key not in KEY_OUTPUTS]


def _masks_in_place(objective: ir.Objective) -> bool:
    """Whether the corruption is a masked LM on the example's own row (its labels say all)."""
    return (
        not objective.output.seq2seq
        and objective.pair is None
        and objective.input.kind != "parallel"
    )


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(x.shape == y.shape and torch.equal(x, y) for x, y in zip(a, b, strict=True))


def check_epochs_change(objective: ir.Spec, compiled: Any, case: Case) -> None:
    """A new epoch redraws the corruption, wherever the spec draws anything: a corruption that
    another seed does not change either (a causal LM: the whole row is the target, nothing is
    random) has nothing to redraw."""
    if objective.masks.kind == "static" and objective.masks.copies == 1:
        return
    big = big_case()
    first, second = (_corruption(objective, _collate(compiled, big, epoch=e), big) for e in (0, 1))
    if not _same(first, second):
        return
    reseeded = replace(big, seed=big.seed + 1)
    if _same(first, _corruption(objective, _collate(compiled, reseeded, epoch=0), reseeded)):
        return  # neither the seed nor the epoch changes anything: the objective is deterministic
    raise _fail("dynamic masks did not change between epochs 0 and 1 (another seed changes them)")


def _binomial_ok(hits: int, n: int, p: float) -> tuple[bool, str]:
    sd = math.sqrt(max(n * p * (1 - p), 1e-12))
    ok = abs(hits - n * p) <= Z_BOUND * sd + 1e-9
    return ok, f"{hits}/{n} = {hits / max(n, 1):.4f}, expected {p:.4f}"


def check_rate(objective: ir.Objective, compiled: Any, case: Case) -> None:
    sel = objective.select
    if not isinstance(sel, ir.Bernoulli):
        return
    big = big_case()
    out = _collate(compiled, big)
    _, _, cand = _inputs(big)
    if sel.rate_law is not None:
        _check_rates_per_example(objective, sel.rate_law, out, ~_excluded(objective, big))
        return
    assert sel.rate is not None
    selected = int(_selected(objective, out).sum())
    ok, detail = _binomial_ok(selected, int(cand.sum()), sel.rate)
    if not ok:
        raise _fail(f"selection rate off: {detail}")


def _check_rates_per_example(
    objective: ir.Objective, law: ir.RateLaw, out: dict[str, torch.Tensor], cand: torch.Tensor
) -> None:
    """Each row selected at a rate of its own, the rates spread over the law's interval:
    every row's fraction within the interval (6 sigma), the rows' mean fraction the law's mean
    and their spread its standard deviation (within stated bounds); where the loss weighs
    labels by the inverse rate, each row's weight is one over its observed rate (6 sigma)."""
    hits = _selected(objective, out).sum(dim=1).double()
    n = cand.sum(dim=1).double()
    fraction = hits / n
    slack = Z_BOUND * torch.sqrt(0.25 / n)
    if bool((fraction < law.low - slack).any()) or bool((fraction > law.high + slack).any()):
        raise _fail(f"a row's selection rate lies outside {law.describe()}")
    mean, std = (law.low + law.high) / 2, (law.high - law.low) / math.sqrt(12)
    rows = fraction.numel()
    if abs(float(fraction.mean()) - mean) > Z_BOUND * std / math.sqrt(rows):
        raise _fail(f"rows' mean selection rate {float(fraction.mean()):.3f}, expected {mean:.3f}")
    if abs(float(fraction.std()) - std) > 0.35 * std:  # 64 rows: the sample std within 35%
        raise _fail(f"rows' rates spread {float(fraction.std()):.3f}, expected about {std:.3f}")
    if objective.loss.weight != "inverse_rate":
        return
    weights = out["label_weights"].double()
    labelled = out["labels"] != IGNORE_INDEX
    per_row = weights.max(dim=1).values
    if bool((weights[labelled] != per_row.unsqueeze(1).expand_as(weights)[labelled]).any()):
        raise _fail("label weights differ within a row")
    if bool(weights[~labelled].any()):
        raise _fail("a position with nothing to predict has a loss weight")
    if objective.loss.over == "examples":
        per_row = per_row * n
    drawn = 1.0 / per_row[hits > 0]
    sd = torch.sqrt(drawn * (1 - drawn) / n[hits > 0])
    if bool(((fraction[hits > 0] - drawn).abs() > Z_BOUND * sd + 1e-9).any()):
        raise _fail("a row's loss weight is not one over its selection rate")


def check_mix(objective: ir.Objective, compiled: Any, case: Case) -> None:
    """Each action's share among the decisions (per token, or per span or unit), against
    its expectation per decided token: a random draw may equal the original or one of its
    similar tokens, a token with no similar one falls back to a random token."""
    big = big_case()
    collator = _collator(compiled, big)
    out = collator(with_fields(big.examples, collator.fields))
    ids, _, _ = _inputs(big)
    decided = _decisions(objective, out, ids, big)
    new, old = out["input_ids"][decided], ids[decided]
    expected, observed = _mix_counts(objective.replace, collator, new, old)
    n = int(decided.sum())
    for action, count in expected.items():
        ok, detail = _binomial_ok(observed[action], n, count / max(n, 1))
        if not ok:
            raise _fail(f"share of {action!r} off: {detail}")


def _decisions(
    objective: ir.Objective, out: dict[str, torch.Tensor], ids: torch.Tensor, case: Case
) -> torch.Tensor:
    """(B, L) bool: the positions whose draw decides an action: every selected token, or per
    span the first token of each span (of each unit, for 'select exact')."""
    target = _selected(objective, out)
    if objective.replace.per != "span":
        return target
    if "span_start" in out:
        return target & (torch.arange(ids.shape[1]).unsqueeze(0) == out["span_start"])
    if isinstance(objective.select, ir.Exact) and objective.unit.kind != "token":
        return target & unit_starts(objective, case)
    if isinstance(objective.select, ir.Exact):
        return target
    return target & ~torch.cat([torch.zeros_like(target[:, :1]), target[:, :-1]], 1)


def _random_law(collator: Any, source: str) -> torch.Tensor:
    """(V,) float64: the probability of each id as a random replacement token, drawn from
    ``source`` (the vocabulary or a pool uniformly, or by the unigram counts)."""
    cpu = torch.device("cpu")
    if source == "unigram":
        cdf = collator.unigram(cpu)
        return torch.diff(cdf, prepend=torch.zeros(1, dtype=torch.int64)).double() / (1 << 32)
    law = torch.zeros(collator.vocab.size, dtype=torch.float64)
    pool = collator.random_pool(cpu)
    law[pool] = 1.0 / pool.numel()
    return law


def _mix_counts(
    rep: ir.Replacement, collator: Any, new: torch.Tensor, old: torch.Tensor
) -> tuple[dict[str, float], dict[str, int]]:
    """(expected, observed) counts of mask, random and similar replacements at the decided
    tokens ``new`` (N,) replacing ``old`` (N,)."""
    law = _random_law(collator, rep.random_from)
    equal = law[old]
    similar_ids = collator.tables.get("similar")
    if similar_ids is not None:
        rows = similar_ids[old]
        listed = rows >= 0
        has = listed.any(dim=1).double()
        in_row = torch.where(listed, law[rows.clamp(min=0)], 0.0).sum(dim=1)
        is_similar = (rows == new.unsqueeze(1)).any(dim=1) & (new != old)
    else:
        has = in_row = torch.zeros_like(equal)
        is_similar = torch.zeros_like(new, dtype=torch.bool)
    drawn = rep.share_of("random") + rep.share_of("similar") * (1 - has)  # random tokens
    expected = {
        "mask": rep.share_of("mask") * new.numel(),
        "random": float((drawn * (1 - equal - in_row)).sum()),
        "similar": float((rep.share_of("similar") * has + drawn * in_row).sum()),
    }
    changed = (new != MASK) & (new != old)
    observed = {
        "mask": int((new == MASK).sum()),
        "random": int((changed & ~is_similar).sum()),
        "similar": int(is_similar.sum()),
    }
    return expected, observed


# --- contrastive views and one fragment per row --------------------------------------------


def check_views(objective: ir.Objective, compiled: Any, case: Case) -> None:
    """A contrastive view is the clean row (dropout, corrupted), [CLS] and the row's selected
    tokens in order (selected), or the example's positive_ids (paired); 'predict views' leaves
    the input untouched."""
    out = _collate(compiled, case)
    ids, valid, _ = _inputs(case)
    view, view_valid = out["view_input_ids"], out["view_attention_mask"].bool()
    assert objective.views is not None
    if objective.views.kind == "paired":
        positive = read_batch([{"input_ids": e["positive_ids"]} for e in case.examples], 0)
        if not torch.equal(view.masked_fill(~view_valid, 0), positive.input_ids):
            raise _fail("'views paired' is not each example's positive_ids")
        return
    if objective.views.kind != "selected":
        width = ids.shape[1]
        if not (torch.equal(view[:, :width], ids) and torch.equal(view_valid, valid)):
            raise _fail(f"'views {objective.views.kind}' is not the clean row")
        if objective.predict.target == "views" and not torch.equal(out["input_ids"], ids):
            raise _fail("'predict views' changed the input")
        return
    selected = _selected(objective, out)
    for row in range(ids.shape[0]):
        expected = [CLS, *ids[row][selected[row]].tolist()]
        got = view[row][view_valid[row]].tolist()
        if got != expected:
            raise _fail(f"row {row}: view {got} is not [CLS] + the selected tokens {expected}")


def _fragment_size(objective: ir.Objective) -> Callable[[list[int], list[int], Case], int] | None:
    """How to read a row's fragment length off (inputs, target) in every output form: its
    targets (the selected tokens), its target less the sentinel and the end token, or, for a
    whole-row target, the tokens deleted or masked; None where the batch does not tell."""
    rep = objective.replace
    target = objective.predict.target
    if target == "selected":
        return lambda inputs, labels, case: len(labels)
    if target == "sentinels":
        return lambda inputs, labels, case: sum(
            t not in case.vocab.sentinel_ids for t in labels[:-1]
        )
    if target != "all" or objective.transforms or objective.inserts or rep.collapse:
        return None
    if rep.share_of("delete") == 1.0:
        return lambda inputs, labels, case: len(labels) - len(inputs)
    if rep.share_of("mask") == 1.0:
        return lambda inputs, labels, case: sum(t == MASK for t in inputs)
    return None


def check_fragment_lengths(objective: ir.Objective, compiled: Any, case: Case) -> None:
    """Per-row fragment lengths against the lowered law, on rows long enough that no fragment
    is cut (6-sigma binomial bound per length)."""
    sel = objective.select
    size = _fragment_size(objective)
    assert isinstance(sel, ir.Fragment) and sel.length is not None and size is not None
    table = sel.length.table
    big = big_case(rows=4000, length=table.high + 2)
    rows = _rows(_collate(compiled, big))
    lengths = torch.tensor([size(inputs, target, big) for inputs, target in rows])
    for value, p in zip(table.values, table.probs, strict=True):
        ok, detail = _binomial_ok(int((lengths == value).sum()), lengths.numel(), p)
        if not ok:
            raise _fail(f"fragments of length {value}: {detail}")
    if bool(((lengths < table.low) | (lengths > table.high)).any()):
        raise _fail("a fragment length lies outside the law's support")


# --- BART: the whole document as the target ------------------------------------------------


def check_document_target(objective: ir.Objective, compiled: Any, case: Case) -> None:
    out = _collate(compiled, case)
    ids, valid, _ = _inputs(case)
    if objective.output.kind == "decoder_only":  # the row's packed tail: 'packed' checks it
        for row, (_, target) in enumerate(_rows(out)):
            if target != ids[row][valid[row]].tolist():
                raise _fail(f"row {row}: the target is not the original row")
        return
    start = compiled.Collator(case.vocab).decoder_start_id
    labels = out["labels"]
    if labels.shape != ids.shape or not torch.equal(labels[valid], ids[valid]):
        raise _fail("the target is not the original row")
    if bool((labels[~valid] != IGNORE_INDEX).any()):
        raise _fail("a padding position has a label")
    shifted = torch.cat([torch.full_like(ids[:, :1], start), ids[:, :-1]], dim=1)
    decoder_inputs = out["decoder_input_ids"]
    if decoder_inputs.shape != ids.shape or not torch.equal(decoder_inputs[valid], shifted[valid]):
        raise _fail("decoder inputs are not the target shifted right")


# --- the two sequence-to-sequence forms ------------------------------------------------------


def check_packed(objective: ir.Spec, compiled: Any, case: Case) -> None:
    """``decoder_only``: each row is its input (``prefix_mask``) then its target, packed from
    the row's first column; the labels are exactly the target's tokens, -100 elsewhere."""
    out = _collate(compiled, case)
    ids, labels = out["input_ids"], out["labels"]
    valid = out["attention_mask"].bool()
    pos = torch.arange(ids.shape[1]).unsqueeze(0)
    if "prefix_mask" in out:
        prefix = out["prefix_mask"].bool()
    elif "sequence" in _targets(objective):  # 'attention causal', every token a target
        prefix = torch.zeros_like(valid)
    else:  # 'attention causal' with targets after the input: the input is unlabelled
        first = torch.where(labels != IGNORE_INDEX, pos, ids.shape[1]).amin(dim=1, keepdim=True)
        prefix = valid & (pos < first)
    if not torch.equal(valid, pos < valid.sum(dim=1, keepdim=True)):
        raise _fail("a row's tokens are not packed from its first column")
    if not torch.equal(prefix, pos < prefix.sum(dim=1, keepdim=True)) or bool(
        (prefix & ~valid).any()
    ):
        raise _fail("prefix_mask is not a leading run of the row's tokens")
    target = valid & ~prefix
    if not torch.equal(labels != IGNORE_INDEX, target):
        raise _fail("the labels are not exactly on the row's target (after its prefix)")
    if not torch.equal(labels[target], ids[target]):
        raise _fail("a label is not the token the packed row holds at its position")


def check_decoder_inputs(objective: ir.Spec, compiled: Any, case: Case) -> None:
    """``encoder_decoder``: the decoder-side outputs have the labels' shape and
    ``decoder_attention_mask`` marks exactly the targets; a target that is a sequence of its
    own (T5's sentinels, BART's row) is read shifted right after the decoder start token (a
    fragment's targets read the original token before each: 'labels' checks MASS)."""
    out = _collate(compiled, case)
    labels = out["labels"]
    decoder = [k for k in out if k.startswith("decoder_")]
    if any(out[k].shape != labels.shape for k in decoder):
        raise _fail("a decoder output is not the labels' shape: " + ", ".join(decoder))
    valid = labels != IGNORE_INDEX
    if not torch.equal(out["decoder_attention_mask"].bool(), valid):
        raise _fail("decoder_attention_mask does not mark exactly the targets")
    if "selected" in _targets(objective):
        return
    start = compiled.Collator(case.vocab).decoder_start_id
    shifted = torch.cat([torch.full_like(labels[:, :1], start), labels[:, :-1]], dim=1)
    if not torch.equal(out["decoder_input_ids"][valid], shifted[valid]):
        raise _fail("decoder inputs are not the target shifted right after the start token")


def _targets(objective: ir.Spec) -> set[str]:
    """What an objective's (or each mixture member's) labels hold: 'selected', 'all', ..."""
    if isinstance(objective, ir.Mixture):
        return {m.objective.predict.target for m in objective.members}
    if isinstance(objective, ir.Composition):
        return {t.objective.predict.target for t in objective.tasks}
    return {objective.predict.target}


def check_deletion(objective: ir.Objective, compiled: Any, case: Case) -> None:
    sel = objective.select
    assert isinstance(sel, ir.Exact)
    out = _collate(compiled, case)
    excluded = _excluded(objective, case)
    expected = _expected_budget(objective, sel.budget, case)
    for row, ((inputs, _), example) in enumerate(zip(_rows(out), case.examples, strict=True)):
        original = list(example["input_ids"])
        kept = iter(original)
        if not all(tok in kept for tok in inputs):  # consumes the original in order
            raise _fail(f"row {row}: the input is not a subsequence of the original")
        if len(original) - len(inputs) != int(expected[row]):
            raise _fail(f"row {row}: {len(original) - len(inputs)} deleted, budget {expected[row]}")
        must_stay = [t for t, ex in zip(original, excluded[row].tolist(), strict=False) if ex]
        if [t for t in inputs if t in set(must_stay)][: len(must_stay)] != must_stay:
            raise _fail(f"row {row}: an excluded token was deleted")


def _infills(
    inputs: list[int],
    original: list[int],
    mask: int,
    random: bool,
    special: set[int],
    deletes: bool = False,
) -> bool:
    """Whether ``inputs`` is ``original`` with disjoint runs of non-special tokens (possibly
    empty) each replaced by one noise token, and with ``deletes`` any non-special token
    dropped: a dynamic program over (input, original) prefixes. A noise token is ``mask``, or
    with ``random`` also any non-special token."""
    n, m = len(inputs), len(original)
    reach = [[False] * (m + 1) for _ in range(n + 1)]
    reach[0][0] = True
    for i in range(n + 1):
        if deletes:  # a deleted token: the original moves on, the input does not
            for j in range(m):
                if reach[i][j] and original[j] not in special:
                    reach[i][j + 1] = True
        if i == n:
            break
        tok = inputs[i]
        is_noise = tok == mask or (random and tok not in special)
        for j in range(m + 1):
            if not reach[i][j]:
                continue
            if j < m and tok == original[j]:
                reach[i + 1][j + 1] = True
            if is_noise:  # this token stands for original[j:k], a run without specials
                k = j
                while True:
                    reach[i + 1][k] = True
                    if k == m or original[k] in special:
                        break
                    k += 1
    return reach[n][m]


def _sentence_orders(objective: ir.Objective, example: dict[str, Any]) -> list[list[int]]:
    """The rows the noise may have started from: the original, or with sentence permutation
    every order of its sentences (specials outside sentences kept in place)."""
    ids = list(example["input_ids"])
    if not any(t.kind == "permute_sentences" for t in objective.transforms):
        return [ids]
    sid = list(example["sentence_ids"])
    members = [p for p, s in enumerate(sid) if s >= 0]
    sentences: dict[int, list[int]] = {}
    for p in members:
        sentences.setdefault(sid[p], []).append(ids[p])
    rows = []
    for order in permutations(sorted(sentences)):
        flat = [tok for s in order for tok in sentences[s]]
        row = list(ids)
        for p, tok in zip(members, flat, strict=True):
            row[p] = tok
        rows.append(row)
    return rows


def check_infilling(objective: ir.Objective, compiled: Any, case: Case) -> None:
    out = _collate(compiled, case)
    special = set(case.vocab.special_ids)
    random = objective.replace.share_of("random") > 0
    deletes = objective.replace.share_of("delete") > 0
    mask = case.vocab.mask_id if case.vocab.mask_id is not None else MASK
    for row, ((inputs, _), example) in enumerate(zip(_rows(out), case.examples, strict=True)):
        sources = _sentence_orders(objective, example)
        if not any(_infills(inputs, src, mask, random, special, deletes) for src in sources):
            raise _fail(f"row {row}: the input is not the original with spans collapsed")


def check_permutation(objective: ir.Objective, compiled: Any, case: Case) -> None:
    out = _collate(compiled, case)
    for row, ((inputs, _), example) in enumerate(zip(_rows(out), case.examples, strict=True)):
        if inputs not in _sentence_orders(objective, example):
            raise _fail(f"row {row}: the input is not the row with its whole sentences reordered")


def check_rotation(objective: ir.Objective, compiled: Any, case: Case) -> None:
    out = _collate(compiled, case)
    special = set(case.vocab.special_ids)
    for row, ((inputs, _), example) in enumerate(zip(_rows(out), case.examples, strict=True)):
        ids = list(example["input_ids"])
        lo = 1 if ids and ids[0] in special else 0
        hi = len(ids) - 1 if len(ids) > lo and ids[-1] in special else len(ids)
        inner = ids[lo:hi]
        rotations = [inner[r:] + inner[:r] for r in range(max(len(inner), 1))]
        if inputs[:lo] != ids[:lo] or inputs[hi:] != ids[hi:] or inputs[lo:hi] not in rotations:
            raise _fail(f"row {row}: the input is not a rotation of the row between its ends")


# --- StructBERT: shuffled trigrams -------------------------------------------------------------


def _blocks_available(unselected: list[bool], n: int) -> int:
    """Disjoint blocks of n consecutive unselected positions, cut from each run's left."""
    total = run = 0
    for free in [*unselected, False]:
        if free:
            run += 1
        else:
            total += run // n
            run = 0
    return total


def check_shuffle(objective: ir.Objective, compiled: Any, case: Case) -> None:
    out = _collate(compiled, case)
    ids, _, cand = _inputs(case)
    rate = next(t.rate for t in objective.transforms if t.kind == "shuffle_trigrams")
    shuffled = out["shuffled_mask"].bool()
    labels, inputs = out["labels"], out["input_ids"]
    for row in range(ids.shape[0]):
        where = shuffled[row].nonzero().flatten().tolist()
        if len(where) % 3:
            raise _fail(f"row {row}: {len(where)} shuffled positions, not whole trigrams")
        blocks = [where[i : i + 3] for i in range(0, len(where), 3)]
        for block in blocks:
            if block != list(range(block[0], block[0] + 3)):
                raise _fail(f"row {row}: a shuffled block is not 3 consecutive positions")
            if sorted(inputs[row, block].tolist()) != sorted(ids[row, block].tolist()):
                raise _fail(f"row {row}: a trigram's tokens are not its original tokens")
            if labels[row, block].tolist() != ids[row, block].tolist():
                raise _fail(f"row {row}: a shuffled position is not labelled with its token")
        unselected = (cand[row] & (labels[row] == IGNORE_INDEX) | shuffled[row]).tolist()
        u = sum(unselected)
        expected = min(round(rate / 3 * u), _blocks_available(unselected, 3))
        if len(blocks) != expected:
            raise _fail(f"row {row}: {len(blocks)} trigrams shuffled, expected {expected}")


def check_frequency(objective: ir.Objective, compiled: Any, case: Case) -> None:
    """With count(id) = id, the rarer half of the ids must be selected more often than the
    commoner half, by more than 6 standard deviations of the difference."""
    big = big_case()
    out = _collate(compiled, big)
    ids, _, cand = _inputs(big)
    selected = _selected(objective, out)
    middle = (FIRST_WORD + big.vocab.size) // 2
    rates = []
    for half in (cand & (ids < middle), cand & (ids >= middle)):
        n = int(half.sum())
        rates.append((int((selected & half).sum()) / n, n))
    (p_rare, n_rare), (p_common, n_common) = rates
    sd = math.sqrt(p_rare * (1 - p_rare) / n_rare + p_common * (1 - p_common) / n_common)
    if not p_rare - p_common > Z_BOUND * sd:
        raise _fail(f"rare ids selected at {p_rare:.4f}, common ones at {p_common:.4f}")


# --- sentence pairs ---------------------------------------------------------------------------


def _members(example: dict[str, Any]) -> list[int]:
    return [t for t, s in zip(example["input_ids"], example["sentence_ids"], strict=True) if s >= 0]


def _occurs_from(haystack: list[int], needle: list[int], lowest: int) -> bool:
    """Whether ``needle`` occurs in ``haystack`` at an offset of at least ``lowest``."""
    span = len(needle)
    if span == 0:
        return True
    return any(haystack[a : a + span] == needle for a in range(lowest, len(haystack) - span + 1))


def check_pairs(objective: ir.Objective, compiled: Any, case: Case) -> None:
    assert objective.pair is not None
    out = _collate(compiled, case)
    relations = [s.relation for s in objective.pair.shares]
    labels = out[objective.pair.label_key].tolist()
    members = [_members(e) for e in case.examples]
    for row, (ids, kinds) in enumerate(
        zip(out["input_ids"].tolist(), out["token_type_ids"].tolist(), strict=True)
    ):
        n = int(out["attention_mask"][row].sum())
        ids, kinds = ids[:n], kinds[:n]
        sep = ids.index(SEP, 1)
        x, y = ids[1:sep], ids[sep + 1 : n - 1]
        if ids[0] != CLS or ids[n - 1] != SEP or kinds != [0] * (sep + 1) + [1] * (n - sep - 1):
            raise _fail(f"row {row} is not [CLS] A [SEP] B [SEP] with token types 0 then 1")
        doc = members[row]
        relation = relations[labels[row]]
        if relation == "next":
            ok = doc[: len(x)] == x and _occurs_from(doc, y, max(len(x), 1))
        elif relation in ("swapped", "previous"):
            ok = doc[: len(y)] == y and _occurs_from(doc, x, max(len(y), 1))
        else:
            others = [m for r, m in enumerate(members) if r != row]
            ok = doc[: len(x)] == x and any(_occurs_from(m, y, 0) for m in others)
        if not ok:
            raise _fail(f"row {row}: the segments are not a {relation!r} pair of its document")


def check_pair_rates(objective: ir.Objective, compiled: Any, case: Case) -> None:
    assert objective.pair is not None
    big = big_case()
    labels = _collate(compiled, big)[objective.pair.label_key]
    for i, share in enumerate(objective.pair.shares):
        ok, detail = _binomial_ok(int((labels == i).sum()), int(labels.numel()), share.share)
        if not ok:
            raise _fail(f"share of {share.relation!r}: {detail}")


def check_pair_labels(objective: ir.Objective, compiled: Any, case: Case) -> None:
    """The drawn relation is the example's own, alone or in any batch (a random partner's
    tokens are the batch's, so only the label is promised)."""
    assert objective.pair is not None
    key = objective.pair.label_key
    together = _collate(compiled, case)[key]
    for row, example in enumerate(case.examples):
        alone = _collate(compiled, Case(case.vocab, [example], case.seed, case.epoch))[key]
        relation = objective.pair.shares[int(together[row])].relation
        if int(alone[0]) != int(together[row]) and relation != "random":
            raise _fail(f"example {row} draws another relation alone")


# --- UniLM: attention masks -----------------------------------------------------------------------


def _unilm_mask(mode: str, valid: list[bool], segment: list[int]) -> list[list[int]]:
    """The mask a row of this mode must have, entry by entry (1: i may attend to j)."""
    n = len(valid)

    def allowed(i: int, j: int) -> bool:
        if mode == "left_to_right":
            return j <= i
        if mode == "right_to_left":
            return j >= i
        if mode == "seq2seq":
            return segment[j] == 0 or (segment[i] == 1 and j <= i)
        return True

    return [[int(valid[i] and valid[j] and allowed(i, j)) for j in range(n)] for i in range(n)]


def check_segments(objective: ir.Objective, compiled: Any, case: Case) -> None:
    """'pair next 100%' with a masked LM: each row, its labels put back, is [CLS] A [SEP] B
    [SEP] of its document in order, and holds exactly the budget's masked-LM targets."""
    out = _collate(compiled, case)
    labelled = out["labels"] != IGNORE_INDEX
    rows = torch.where(labelled, out["labels"], out["input_ids"])
    sel = objective.select
    assert isinstance(sel, ir.Exact)
    for row, example in enumerate(case.examples):
        n = int(out["attention_mask"][row].sum())
        ids = rows[row, :n].tolist()
        doc = _members(example)
        sep = ids.index(SEP, 1)
        if ids[0] != CLS or ids[n - 1] != SEP or ids[1:sep] + ids[sep + 1 : n - 1] != doc:
            raise _fail(f"row {row} is not [CLS] A [SEP] B [SEP] of its document")
        if bool(labelled[row, [0, sep, n - 1]].any()):
            raise _fail(f"row {row}: [CLS] or a [SEP] got a label")
        want = min(round(sel.budget.rate * (n - 3)), n - 3)
        if int(labelled[row].sum()) != want:
            raise _fail(f"row {row}: {int(labelled[row].sum())} targets, the budget says {want}")


def check_translation(objective: ir.Objective, compiled: Any, case: Case) -> None:
    """XLM's TLM: each row, labels put back, is </s> x </s> y </s>; positions restart at y;
    langs are the sentence's then the translation's; the budget covers both sentences."""
    out = _collate(compiled, case)
    end = compiled.Collator(case.vocab).end_id
    labelled = out["labels"] != IGNORE_INDEX
    rows = torch.where(labelled, out["labels"], out["input_ids"])
    sel = objective.select
    assert isinstance(sel, ir.Exact)
    for row, example in enumerate(case.examples):
        x, y = list(example["input_ids"]), list(example["translation_ids"])
        n = len(x) + len(y) + 3
        if rows[row, :n].tolist() != [end, *x, end, *y, end]:
            raise _fail(f"row {row} is not </s> sentence </s> translation </s>")
        positions = [*range(len(x) + 2), *range(len(y) + 1)]
        if out["position_ids"][row, :n].tolist() != positions:
            raise _fail(f"row {row}: positions do not restart at the translation")
        langs = [example.get("lang", 0)] * (len(x) + 2) + [example.get("translation_lang", 1)] * (
            len(y) + 1
        )
        if out["langs"][row, :n].tolist() != langs:
            raise _fail(f"row {row}: language ids do not follow the two sentences")
        words = sum(t not in case.vocab.special_ids for t in x + y)
        if int(labelled[row].sum()) != min(round(sel.budget.rate * words), words):
            raise _fail(f"row {row}: {int(labelled[row].sum())} targets, not the budget's")


def check_unilm(objective: ir.Objective, compiled: Any, case: Case) -> None:
    out = _collate(compiled, case)
    for row in range(out["input_ids"].shape[0]):
        mode = ir.UNILM_MASKS[int(out["attention_mode"][row])]
        valid = out["attention_mask"][row].bool().tolist()
        segment = (
            out["token_type_ids"][row].tolist() if "token_type_ids" in out else [0] * len(valid)
        )
        if out["self_attention_mask"][row].tolist() != _unilm_mask(mode, valid, segment):
            raise _fail(f"row {row}: the attention mask is not exactly the {mode} mask")


def check_unilm_rates(objective: ir.Objective, compiled: Any, case: Case) -> None:
    big = big_case()
    modes = _collate(compiled, big)["attention_mode"]
    for name, share in objective.attention.mix:
        ok, detail = _binomial_ok(
            int((modes == ir.UNILM_MASKS.index(name)).sum()), int(modes.numel()), share
        )
        if not ok:
            raise _fail(f"share of the {name} mask: {detail}")


# --- XLNet: the factorization order -------------------------------------------------------------


def check_factorization(objective: ir.Objective, compiled: Any, case: Case) -> None:
    out = _collate(compiled, case)
    _, valid, _ = _inputs(case)
    targets = out["labels"] != IGNORE_INDEX
    length = targets.shape[1]
    if "perm_order" in out:  # the sparse layout: the order itself, expanded here
        order = out["perm_order"]
        if not torch.equal(order >= 0, targets):
            raise _fail("perm_order ranks other tokens than the targets")
        blocked = blocked_by_order(order)
    else:
        blocked = out["perm_mask"].bool()
        mapping = out["target_mapping"]
        if not torch.equal(mapping, torch.eye(length).expand_as(mapping)):
            raise _fail("target_mapping is not the identity of each row")
    listed = out["target_positions"]
    want = [row.nonzero().flatten() for row in targets]
    for row, positions in enumerate(listed):
        if not torch.equal(positions[positions >= 0], want[row]) or bool(
            (positions[len(want[row]) :] >= 0).any()
        ):
            raise _fail(f"row {row}: target_positions does not list the targets in order")
    for row in range(targets.shape[0]):
        t = targets[row]
        others = valid[row] & ~t
        if not torch.equal(blocked[row][others], t.expand(int(others.sum()), length)):
            raise _fail(f"row {row}: a non-target sees a target or misses a non-target")
        sub = blocked[row][t][:, t]  # among targets: sub[i, j] = i may not see j
        if not bool(sub.diagonal().all()):
            raise _fail(f"row {row}: a target sees itself")
        sees = ~sub
        k = int(t.sum())
        if bool((sees & sees.T).any()) or bool(((~sees) & (~sees.T)).fill_diagonal_(False).any()):
            raise _fail(f"row {row}: two targets are not ordered one way")
        # a tournament is an order (acyclic) iff its scores are 0, 1, ..., k-1
        if sorted(sees.sum(dim=1).tolist()) != list(range(k)):
            raise _fail(f"row {row}: the targets' order has a cycle")


# --- T5: sentinel-delimited spans -------------------------------------------------------------


def _rows(out: dict[str, torch.Tensor]) -> list[tuple[list[int], list[int]]]:
    """Per row: (encoder input tokens, target tokens), padding dropped."""
    prefix = out["prefix_mask"] if "prefix_mask" in out else out["attention_mask"]
    if "prefix_mask" not in out and "decoder_attention_mask" not in out:  # causal decoder rows
        prefix = out["attention_mask"].bool() & (out["labels"] == IGNORE_INDEX)
    inputs = [row[mask.bool()].tolist() for row, mask in zip(out["input_ids"], prefix, strict=True)]
    targets = [row[row != IGNORE_INDEX].tolist() for row in out["labels"]]
    return list(zip(inputs, targets, strict=True))


def _split_target(target: list[int], sentinels: set[int]) -> tuple[list[int], list[list[int]]]:
    """A T5 target ``<X> a b <Y> c </s>`` -> ([X, Y], [[a, b], [c]]) (the end token removed)."""
    marks: list[int] = []
    spans: list[list[int]] = []
    for tok in target[:-1]:
        if tok in sentinels:
            marks.append(tok)
            spans.append([])
        elif not spans:
            raise _fail("the target does not start with a sentinel")
        else:
            spans[-1].append(tok)
    return marks, spans


def check_reconstruct(objective: ir.Objective, compiled: Any, case: Case) -> None:
    out = _collate(compiled, case)
    end = compiled.Collator(case.vocab).end_id
    sentinels = set(case.vocab.sentinel_ids)
    special = set(case.vocab.special_ids)
    for row, ((inputs, target), example) in enumerate(zip(_rows(out), case.examples, strict=True)):
        if not target or target[-1] != end:
            raise _fail(f"row {row}: the target does not end with the end token {end}")
        marks, spans = _split_target(target, sentinels)
        if any(tok in special for span in spans for tok in span):
            raise _fail(f"row {row}: a special token was taken into a noise span")
        by_sentinel = dict(zip(marks, spans, strict=True))
        rebuilt: list[int] = []
        for tok in inputs:
            rebuilt += by_sentinel.get(tok, []) if tok in sentinels else [tok]
        if rebuilt != list(example["input_ids"]):
            raise _fail(f"row {row}: inputs and targets do not interleave back to the original")
        if [t for t in inputs if t in sentinels] != marks:
            raise _fail(f"row {row}: the input's sentinels differ from the target's")
        if marks != list(case.vocab.sentinel_ids[: len(marks)]):
            raise _fail(f"row {row}: sentinels are not <extra_id_0>, <extra_id_1>, ... in order")


def t5_counts(n: int, density: float, mean: float, sentinels: int) -> tuple[int, int]:
    """(noise tokens, noise spans) of a row of n tokens, by T5's formulas (round half to even)
    with objspec's two guards: spans <= non-noise tokens, spans <= sentinels."""
    if n < 2:
        return 0, 0
    noise = min(max(round(n * density), 1), n - 1)
    spans = max(round(noise / mean), 1)
    return noise, min(spans, noise, n - noise, sentinels)


def check_t5_counts(objective: ir.Objective, compiled: Any, case: Case) -> None:
    sel = objective.select
    assert isinstance(sel, ir.RandomSpans)
    out = _collate(compiled, case)
    _, _, cand = _inputs(case)
    sentinels = set(case.vocab.sentinel_ids)
    for row, (_, target) in enumerate(_rows(out)):
        marks, spans = _split_target(target, sentinels)
        cap = len(sentinels) - 1 if sel.random_roll and len(sentinels) > 1 else len(sentinels)
        noise, k = t5_counts(int(cand[row].sum()), sel.density, sel.mean, cap)
        got = sum(len(span) for span in spans)
        allowed = (k, k + 1) if sel.random_roll else (k,)  # a rolled span can wrap around
        if got != noise or len(marks) not in allowed or not all(spans):
            raise _fail(
                f"row {row}: {got} noise tokens in {len(marks)} spans, "
                f"T5's formulas say {noise} in {k}"
            )


CHECKS: tuple[Check, ...] = (
    Check(
        "labels",
        "labels are the original tokens, exactly at the changed/selected positions",
        check_labels,
    ),
    Check(
        "untouched",
        "special tokens, padding and excluded positions are never selected or changed",
        check_untouched,
    ),
    Check(
        "budget",
        "the number of selected tokens per row follows the budget's rounding",
        check_budget,
    ),
    Check(
        "whole_words",
        "units (words, sentences, runs of a unit field) are selected whole (one budget cut "
        "per row for spans)",
        check_whole_words,
    ),
    Check(
        "span_support",
        "spans are contiguous and no longer than the length law allows",
        check_span_support,
    ),
    Check(
        "batch_invariance",
        "an example is corrupted the same alone or in any batch",
        check_batch_invariance,
    ),
    Check(
        "epochs",
        "the same seed and epoch reproduce the corruption; static masks cycle",
        check_epochs,
    ),
    Check("dynamic", "dynamic masks change from one epoch to the next", check_epochs_change, True),
    Check(
        "rate",
        "the Bernoulli selection rate matches the spec (6-sigma binomial bound)",
        check_rate,
        True,
    ),
    Check("mix", "the replacement mix matches the spec (6-sigma binomial bound)", check_mix, True),
    Check(
        "document_target",
        "the target is the original row, and decoder inputs are it shifted right",
        check_document_target,
    ),
    Check(
        "deletion",
        "the input is the original with exactly the budget's tokens deleted, specials kept",
        check_deletion,
    ),
    Check(
        "infilling",
        "the input is the original with its spans collapsed, masked or deleted, and insertions",
        check_infilling,
    ),
    Check(
        "permutation",
        "the input is the row with its whole sentences reordered, specials in place",
        check_permutation,
    ),
    Check(
        "rotation",
        "the input is the row rotated between its end tokens",
        check_rotation,
    ),
    Check(
        "shuffle",
        "round(rate x unselected / 3) trigrams, each a reordering of its own tokens, labelled",
        check_shuffle,
    ),
    Check(
        "pairs",
        "each row is [CLS] A [SEP] B [SEP] of its document, by the relation its label says",
        check_pairs,
    ),
    Check(
        "pair_labels",
        "an example draws the same relation alone or in any batch",
        check_pair_labels,
    ),
    Check(
        "pair_rates",
        "the relations are drawn with the spec's shares (6-sigma binomial bound)",
        check_pair_rates,
        True,
    ),
    Check(
        "segments",
        "each row is [CLS] A [SEP] B [SEP] of its document with the budget's MLM targets",
        check_segments,
    ),
    Check(
        "translation",
        "rows are </s> x </s> y </s>, positions restart at y, langs per sentence, MLM budget",
        check_translation,
    ),
    Check(
        "unilm",
        "each row's self-attention mask is exactly its drawn type's; padding is never attended",
        check_unilm,
    ),
    Check(
        "unilm_rates",
        "the mask types are drawn with the spec's shares (6-sigma binomial bound)",
        check_unilm_rates,
        True,
    ),
    Check(
        "frequency",
        "frequency weighting selects rare tokens more often than common ones (6 sigma)",
        check_frequency,
        True,
    ),
    Check(
        "factorization",
        "the attention (perm_mask, or perm_order expanded) is a factorization order: targets"
        " see earlier targets only, never themselves; non-targets see no target;"
        " target_positions lists the targets in order",
        check_factorization,
    ),
    Check(
        "reconstruct",
        "inputs and targets interleave back to the original; sentinels distinct and in order",
        check_reconstruct,
    ),
    Check(
        "t5_counts",
        "noise tokens and spans per row equal T5's formulas (round half to even)",
        check_t5_counts,
    ),
)

CHECKS += (
    Check(
        "views",
        "contrastive views are the clean row, [CLS] + the selected tokens, or the positive",
        check_views,
    ),
    Check(
        "fragment_lengths",
        "fragment lengths follow the lowered law (6-sigma binomial bound per length)",
        check_fragment_lengths,
        True,
    ),
)

CHECKS += (
    Check(
        "packed",
        "a decoder_only row is its input (prefix_mask) then its target, labelled exactly there",
        check_packed,
    ),
    Check(
        "decoder_inputs",
        "decoder outputs have the labels' shape and mask; a sequence target is read shifted right",
        check_decoder_inputs,
    ),
)

# --- decoder-only objectives: the causal LM's row, fill-in-the-middle ----------------------------


def _end_id(vocab: Vocab) -> int:
    return vocab.eos_id if vocab.eos_id is not None else vocab.require("sep")


def _with_end(row: list[int], end: int) -> list[int]:
    """A causal LM's row: the end-of-text token appended unless the row ends with it."""
    return row + [end] if row and row[-1] != end else row


def check_sequence(objective: ir.Objective, compiled: Any, case: Case) -> None:
    """'predict sequence': every token of each row is its own label (unshifted), -100 only
    on padding; a non-empty row ends with the end token; no prefix_mask. With 'select none'
    and no transform the row is the example itself, the end token appended if missing."""
    out = _collate(compiled, case)
    ids, valid = out["input_ids"], out["attention_mask"].bool()
    labels = out["labels"]
    if "prefix_mask" in out:
        raise _fail("a causal LM's batch has a prefix_mask")
    if not torch.equal(labels[valid], ids[valid]) or bool((labels[~valid] != IGNORE_INDEX).any()):
        raise _fail("the labels are not the row's own tokens, -100 exactly on padding")
    end = _end_id(case.vocab)
    original, original_valid, _ = _inputs(case)
    plain = isinstance(objective.select, ir.NoSelection) and not objective.transforms
    for row in range(ids.shape[0]):
        tokens = ids[row][valid[row]].tolist()
        if tokens and tokens[-1] != end:
            raise _fail(f"row {row} does not end with the end-of-text token")
        want = _with_end(original[row][original_valid[row]].tolist(), end)
        if plain and tokens != want:
            raise _fail(f"row {row} is not the example with its end token")


def _fim_ids(objective: ir.Objective, vocab: Vocab) -> tuple[int, int, int]:
    fim = next(t for t in objective.transforms if t.kind == "fim")
    pre, mid, suf = (vocab.id_of(text) for text in fim.tokens)
    return pre, mid, suf


def _fim_pieces(
    tokens: list[int], original: list[int], fim: tuple[int, int, int], special: set[int]
) -> tuple[str, int, int] | None:
    """How ``tokens`` rearranges ``original``: ('plain', 0, 0), or ('psm'|'spm', prefix
    length, middle length) (SPM: the prefix and middle together, as the middle), or None if
    it is neither (a piece lost, moved or duplicated, a sentinel missing or doubled)."""
    pre, mid, suf = fim
    marks = [i for i, t in enumerate(tokens) if t in fim]
    if not marks:
        return ("plain", 0, 0) if tokens == original else None
    if [tokens[i] for i in marks] != [pre, suf, mid]:
        return None
    at_pre, at_suf, at_mid = marks
    docs = [i for i, t in enumerate(original) if t not in special]
    if not docs:
        return None
    first, last = docs[0], docs[-1]
    head, body, tail = original[:first], original[first : last + 1], original[last + 1 :]
    if tokens[:at_pre] != head or tokens[len(tokens) - len(tail) :] != tail:
        return None
    end = len(tokens) - len(tail)
    if at_suf == at_pre + 1:  # SPM: <PRE> <SUF> suffix <MID> prefix middle
        suffix, front = tokens[at_suf + 1 : at_mid], tokens[at_mid + 1 : end]
        return ("spm", 0, len(front)) if front + suffix == body else None
    prefix, suffix = tokens[at_pre + 1 : at_suf], tokens[at_suf + 1 : at_mid]
    middle = tokens[at_mid + 1 : end]
    return ("psm", len(prefix), len(middle)) if prefix + middle + suffix == body else None


def _fim_layouts(objective: ir.Objective, compiled: Any, case: Case) -> list[tuple[str, int, int]]:
    out = _collate(compiled, case)
    ids, valid = out["input_ids"], out["attention_mask"].bool()
    original, original_valid, _ = _inputs(case)
    fim = _fim_ids(objective, case.vocab)
    end = _end_id(case.vocab)
    special = set(case.vocab.special_ids)
    layouts = []
    for row in range(ids.shape[0]):
        tokens = ids[row][valid[row]].tolist()
        source = original[row][original_valid[row]].tolist()
        if source and source[-1] != end and tokens and tokens[-1] == end:
            tokens = tokens[:-1]  # the appended end-of-text token
        layout = _fim_pieces(tokens, source, fim, special)
        if layout is None:
            raise _fail(f"row {row} is neither the example nor a FIM rearrangement of it")
        layouts.append(layout)
    return layouts


def check_fim(objective: ir.Objective, compiled: Any, case: Case) -> None:
    """FIM: each row is the example, or its document cut into prefix, middle and suffix and
    laid out PSM (<PRE> prefix <SUF> suffix <MID> middle) or SPM (<PRE> <SUF> suffix <MID>
    prefix middle), every piece once and in one piece, each sentinel once, the head and tail
    in place: a permutation of the document's pieces with its sentinels."""
    _fim_layouts(objective, compiled, case)


def check_fim_rates(objective: ir.Objective, compiled: Any, case: Case) -> None:
    """FIM's rate and SPM share (6-sigma binomial bounds), and the cut points uniform: over
    PSM rows of n tokens the mean middle is E|X - Y| = n(n+2)/(3(n+1)) and the mean prefix
    E[min(X, Y)], X and Y uniform on 0..n (6-sigma bounds)."""
    fim = next(t for t in objective.transforms if t.kind == "fim")
    n = 30
    big = big_case(rows=4000, length=n, size=200)
    layouts = _fim_layouts(objective, compiled, big)
    moved = [kind for kind, _, _ in layouts if kind != "plain"]
    ok, detail = _binomial_ok(len(moved), len(layouts), fim.rate)
    if not ok:
        raise _fail(f"share of rows rearranged: {detail}")
    if moved:
        ok, detail = _binomial_ok(moved.count("spm"), len(moved), fim.spm)
        if not ok:
            raise _fail(f"share of SPM among them: {detail}")
    psm = [(a, m) for kind, a, m in layouts if kind == "psm"]
    if len(psm) < 100:
        return
    gap = n * (n + 2) / (3 * (n + 1))
    for name, mean, values in (
        ("middle", gap, [m for _, m in psm]),
        ("prefix", (n - gap) / 2, [a for a, _ in psm]),
    ):
        bound = Z_BOUND * (n / math.sqrt(12)) / math.sqrt(len(values))
        got = sum(values) / len(values)
        if abs(got - mean) > bound:
            raise _fail(f"mean {name} {got:.3f}, expected {mean:.3f} +- {bound:.3f}")


def check_split(objective: ir.Objective, compiled: Any, case: Case) -> None:
    """A prefix LM ('select suffix' deleted from the input, 'predict original at selected'):
    each row's input then target is the example itself, split once, the target 1..n-1 of the
    row's n candidates (none when n < 2)."""
    out = _collate(compiled, case)
    original, original_valid, _ = _inputs(case)
    candidates = candidate_mask(
        read_batch(case.examples, PAD), case.vocab, **_exclusions(objective)
    )
    for row, (inputs, target) in enumerate(_rows(out)):
        if inputs + target != original[row][original_valid[row]].tolist():
            raise _fail(f"row {row}: prefix and target are not the example split once")
        n = int(candidates[row].sum())
        if not (1 <= len(target) <= n - 1 if n >= 2 else not target):
            raise _fail(f"row {row}: a target of {len(target)} of {n} candidate tokens")


# --- CM3: spans moved to the row's end after their sentinels -------------------------------------


def _moved_spans(row: int, tokens: list[int], original: list[int], vocab: Vocab) -> int:
    """The number of spans of a CM3 row ``left <0> middle <1> right <0> span0 <1> span1 end``,
    after checking that it is ``original`` with each span cut out for its sentinel and moved,
    in order, to the end after the same sentinel (sentinels <extra_id_0>, <extra_id_1>, ... in
    order, spans non-empty, free of special tokens)."""
    sentinels = set(vocab.sentinel_ids)
    end = _end_id(vocab)
    at = [i for i, t in enumerate(tokens) if t in sentinels]
    if len(at) % 2:
        raise _fail(f"row {row}: {len(at)} sentinels, not two per span")
    k = len(at) // 2
    split = at[k] if k else len(tokens) - (len(tokens) > len(original))
    inputs, target = tokens[:split], tokens[split:]
    if not target or target[-1] != end:
        raise _fail(f"row {row} does not end with the end-of-text token {end}")
    marks, spans = _split_target(target, sentinels) if k else ([], [])
    want = list(vocab.sentinel_ids[:k])
    if marks != want or [t for t in inputs if t in sentinels] != want:
        raise _fail(f"row {row}: the sentinels are not <extra_id_0>, <extra_id_1>, ... in order")
    special = set(vocab.special_ids)
    if not all(spans) or any(t in special for span in spans for t in span):
        raise _fail(f"row {row}: an empty span, or a special token moved with one")
    by_sentinel = dict(zip(marks, spans, strict=True))
    rebuilt: list[int] = []
    for tok in inputs:
        rebuilt += by_sentinel.get(tok, []) if tok in sentinels else [tok]
    if rebuilt != original:
        raise _fail(f"row {row}: the pieces and the moved spans do not rebuild the example")
    return k


def _span_counts(objective: ir.Objective, compiled: Any, case: Case) -> list[tuple[int, int]]:
    """(spans, candidate tokens) per row, each row checked by :func:`_moved_spans`."""
    out = _collate(compiled, case)
    ids, valid = out["input_ids"], out["attention_mask"].bool()
    original, original_valid, cand = _inputs(case)
    counts = []
    for row in range(ids.shape[0]):
        tokens = ids[row][valid[row]].tolist()
        source = original[row][original_valid[row]].tolist()
        counts.append((_moved_spans(row, tokens, source, case.vocab), int(cand[row].sum())))
    return counts


def check_moved_spans(objective: ir.Objective, compiled: Any, case: Case) -> None:
    """CM3: each row is a permutation of the example's pieces plus sentinels: the spans cut
    out, each for its sentinel, and moved in order after the same sentinel to the row's end;
    1..min(law's top, (n + 1) // 2, sentinels) spans over n candidate tokens (none if n = 0)."""
    sel = objective.select
    assert isinstance(sel, ir.CountedSpans)
    top = min(sel.count.table.high, len(case.vocab.sentinel_ids))
    for row, (k, n) in enumerate(_span_counts(objective, compiled, case)):
        if not (1 <= k <= min(top, (n + 1) // 2) if n else k == 0):
            raise _fail(f"row {row}: {k} spans over {n} candidate tokens")


def check_span_counts(objective: ir.Objective, compiled: Any, case: Case) -> None:
    """The span count follows the lowered law (6-sigma binomial bound per count), and one
    span's two ends are uniform over the document: its mean length is E|X - Y| + 1 for X, Y
    uniform on 0..n - 1 (a 6-sigma bound)."""
    sel = objective.select
    assert isinstance(sel, ir.CountedSpans)
    n = 64
    big = big_case(rows=3000, length=n, size=1000)
    counts = [k for k, _ in _span_counts(objective, compiled, big)]
    top = min(len(big.vocab.sentinel_ids), (n + 1) // 2)
    table = sel.count.table
    for value in table.values:
        p = sum(table.prob_of(v) for v in table.values if min(v, top) == value)
        if value > top:
            continue
        ok, detail = _binomial_ok(counts.count(value), len(counts), p)
        if not ok:
            raise _fail(f"rows with {value} spans: {detail}")
    out = _collate(compiled, big)
    lengths = [
        int((row == big.vocab.sentinel_ids[0]).nonzero()[-1]) for row in out["input_ids"]
    ]  # the moved span starts after the second <extra_id_0>
    ones = [
        int(valid.sum()) - at - 2
        for k, at, valid in zip(counts, lengths, out["attention_mask"], strict=True)
        if k == 1
    ]
    m = n - 1
    mean = m * (m + 2) / (3 * (m + 1)) + 1
    bound = Z_BOUND * (n / math.sqrt(12)) / math.sqrt(max(len(ones), 1))
    got = sum(ones) / max(len(ones), 1)
    if ones and abs(got - mean) > bound:
        raise _fail(f"mean length of a lone span {got:.3f}, expected {mean:.3f} +- {bound:.3f}")


@dataclass(frozen=True)
class BlankRow:
    """One GLM row read back: Part A's length, each span's [MASK] in Part A (in order), and
    Part B's spans in their order there, each as (mask number, first column, tokens)."""

    part_a: int
    masks: list[int]
    pieces: list[tuple[int, int, list[int]]]


def _blank_rows(
    objective: ir.Objective, out: dict[str, torch.Tensor], case: Case
) -> list[BlankRow]:
    """Each row of a GLM batch checked as Part A then Part B (``prefix_mask`` a leading run of
    the row's tokens, packed from column 0): Part A is the example with each span collapsed to
    one [MASK]; Part B is ``[sop] span`` for each span, in some order (told by the position of
    the [MASK] its tokens carry), then one [eop]; the spans are non-empty, free of special
    tokens, and together cover the budget; the labels are -100 on Part A and the first [sop],
    each span's tokens themselves, [eop] on each later [sop] and on the closing token."""
    sop, eop = (case.vocab.id_of(t) for t in objective.predict.tokens)
    mask = case.vocab.mask_id if case.vocab.mask_id is not None else MASK
    special = set(case.vocab.special_ids) | {sop, eop, mask}
    original, original_valid, _ = _inputs(case)
    sel = objective.select
    assert isinstance(sel, ir.Spans)
    expected = _expected_budget(objective, sel.budget, case)
    valid = out["attention_mask"].bool()
    prefix = out["prefix_mask"].bool()
    pos = torch.arange(valid.shape[1]).unsqueeze(0)
    if not torch.equal(valid, pos < valid.sum(dim=1, keepdim=True)):
        raise _fail("a row's tokens are not packed from its first column")
    if not torch.equal(prefix, pos < prefix.sum(dim=1, keepdim=True)) or bool(
        (prefix & ~valid).any()
    ):
        raise _fail("prefix_mask is not a leading run of the row's tokens (Part A)")
    rows = []
    for row in range(valid.shape[0]):
        tokens = out["input_ids"][row][valid[row]].tolist()
        labels = out["labels"][row][valid[row]].tolist()
        where = out["position_ids"][row][valid[row]].tolist()
        source = original[row][original_valid[row]].tolist()
        n_a = int(prefix[row].sum())
        part_a, part_b = tokens[:n_a], tokens[n_a:]
        masks = [i for i, t in enumerate(part_a) if t == mask]
        starts = [n_a + i for i, t in enumerate(part_b) if t == sop]
        if part_b and (part_b[0] != sop or part_b[-1] != eop or eop in part_b[:-1]):
            raise _fail(f"row {row}: Part B is not [sop] span ... [sop] span [eop]")
        ends = [*starts[1:], len(tokens) - 1] if starts else []
        pieces = [
            (masks.index(where[a]) if where[a] in masks else -1, a, tokens[a + 1 : b])
            for a, b in zip(starts, ends, strict=True)
        ]
        if sorted(p[0] for p in pieces) != list(range(len(masks))):
            raise _fail(f"row {row}: Part B's spans are not one for each [MASK] of Part A")
        spans = {m: piece for m, _, piece in pieces}
        if not all(spans.values()) or any(t in special for p in spans.values() for t in p):
            raise _fail(f"row {row}: an empty span, or a special token blanked with one")
        if any(len(p) > sel.length.table.high for p in spans.values()):
            raise _fail(f"row {row}: a span longer than the length law's support")
        rebuilt: list[int] = []
        for i, tok in enumerate(part_a):
            rebuilt += spans[masks.index(i)] if tok == mask else [tok]
        if rebuilt != source:
            raise _fail(f"row {row}: Part A with its blanks filled is not the example")
        if sum(map(len, spans.values())) != int(expected[row]):
            raise _fail(
                f"row {row}: the spans cover {sum(map(len, spans.values()))} tokens, "
                f"the budget is {int(expected[row])}"
            )
        want = [IGNORE_INDEX] * n_a
        for r, (_, _, piece) in enumerate(pieces):
            want += [eop if r else IGNORE_INDEX, *piece]
        want += [eop] if pieces else []
        if labels != want:
            raise _fail(f"row {row}: the labels are not the spans, each ended by [eop]")
        rows.append(BlankRow(n_a, masks, pieces))
    return rows


def check_blanks(objective: ir.Objective, compiled: Any, case: Case) -> None:
    _blank_rows(objective, _collate(compiled, case), case)


def check_blank_positions(objective: ir.Objective, compiled: Any, case: Case) -> None:
    """GLM's 2D positions: ``position_ids`` 0.. over Part A, and each Part B token its span's
    [MASK]'s (the closing [eop] the last span's); ``block_position_ids`` 0 over Part A, 1 at
    each [sop], i + 1 at a span's i-th token, n + 2 at the closing [eop]; 0 on padding."""
    out = _collate(compiled, case)
    valid = out["attention_mask"].bool()
    for row, blank in enumerate(_blank_rows(objective, out, case)):
        where = out["position_ids"][row]
        block = out["block_position_ids"][row]
        n = int(valid[row].sum())
        want_pos = list(range(blank.part_a))
        want_block = [0] * blank.part_a
        for m, _, piece in blank.pieces:
            want_pos += [blank.masks[m]] * (len(piece) + 1)
            want_block += list(range(1, len(piece) + 2))
        if blank.pieces:
            want_pos.append(want_pos[-1])
            want_block.append(len(blank.pieces[-1][2]) + 2)
        if where[:n].tolist() != want_pos or bool(where[n:].any()):
            raise _fail(f"row {row}: position_ids are not Part A's, then each span's [MASK]'s")
        if block[:n].tolist() != want_block or bool(block[n:].any()):
            raise _fail(f"row {row}: block_position_ids are not 0 on Part A, 1.. in each span")


def check_block_order(objective: ir.Objective, compiled: Any, case: Case) -> None:
    """The spans' order in Part B: shuffled, the first span of Part A comes first in Part B
    with probability 1/k in a row of k spans (a 6-sigma bound on the count over the rows with
    two or more), so the order is not always the original; otherwise always in order."""
    big = big_case(rows=1500, length=48, size=1000)
    rows = _blank_rows(objective, _collate(compiled, big), big)
    orders = [[m for m, _, _ in blank.pieces] for blank in rows if len(blank.pieces) >= 2]
    if not orders:
        raise _fail("no row has two spans")
    if not objective.predict.shuffled:
        if any(o != sorted(o) for o in orders):
            raise _fail("the spans are not in their order in Part B")
        return
    hits = sum(o[0] == 0 for o in orders)
    mean = sum(1 / len(o) for o in orders)
    sd = math.sqrt(sum((1 / len(o)) * (1 - 1 / len(o)) for o in orders))
    if abs(hits - mean) > Z_BOUND * sd:
        raise _fail(
            f"the first span leads Part B in {hits} of {len(orders)} rows, "
            f"expected {mean:.1f} +- {Z_BOUND * sd:.1f}"
        )


def _exclusions(objective: ir.Objective) -> dict[str, bool]:
    ex = set(objective.exclude)
    return {f"exclude_{w}": w in ex for w in ("special", "first", "last")}


CHECKS += (
    Check(
        "split",
        "a prefix LM's row is the example split once, the target 1..n-1 candidate tokens",
        check_split,
    ),
    Check(
        "sequence",
        "a causal LM's row is every token its own label, ending with the end-of-text token",
        check_sequence,
    ),
    Check(
        "fim",
        "each row is the example or a PSM/SPM permutation of its pieces with each sentinel once",
        check_fim,
    ),
    Check(
        "fim_rates",
        "FIM rate and SPM share as stated, cut points uniform (6-sigma bounds)",
        check_fim_rates,
        True,
    ),
    Check(
        "moved_spans",
        "each row is the example's pieces plus sentinels: the spans moved in order to the end,"
        " each after its matching sentinel, 1..k of them",
        check_moved_spans,
    ),
    Check(
        "span_counts",
        "span counts follow the count law, a lone span's ends uniform (6-sigma bounds)",
        check_span_counts,
        True,
    ),
    Check(
        "blanks",
        "Part A is the example with each span one [MASK] (the budget's tokens); Part B each"
        " span after [sop], one closing [eop]; labels the spans, each ended by [eop]",
        check_blanks,
    ),
    Check(
        "blank_positions",
        "position_ids: Part A's, then each span's [MASK]'s; block_position_ids: 0 on Part A,"
        " 1.. within each span",
        check_blank_positions,
    ),
    Check(
        "block_order",
        "the spans' order in Part B is a random permutation (shuffled; 6-sigma bound), else"
        " their own",
        check_block_order,
        True,
    ),
)

SAME_LENGTH_CHECKS = ("labels", "untouched", "budget", "whole_words", "span_support", "mix", "rate")


# --- mixtures ------------------------------------------------------------------------------------

_MEMBERS: dict[tuple[str, str, str], Any] = {}


def member_compiled(mixture: ir.Mixture | ir.Composition, member: ir.Member | ir.Task) -> Any:
    """A mixture member (or a composition's task) compiled as an objective of its own, in the
    batch form the member has (one source compiles to several forms)."""
    from compiler import compile_objective, load
    from objspec import CompiledObjective

    key = (mixture.sha256, member.name, member.objective.output.kind)
    if key not in _MEMBERS:
        generated = compile_objective(member.objective)
        _MEMBERS[key] = CompiledObjective(generated.name, generated.source, load(generated))
    return _MEMBERS[key]


def check_mixture_members(mixture: ir.Mixture, compiled: Any, case: Case) -> None:
    out = _collate(compiled, case)
    alone = [_rows(_collate(member_compiled(mixture, m), case)) for m in mixture.members]
    modes = [case.vocab.id_of(m.mode) if m.mode else None for m in mixture.members]
    for row, (inputs, target) in enumerate(_rows(out)):
        candidates = [
            rows[row]
            for rows, mode in zip(alone, modes, strict=True)
            if mode is None or (inputs and inputs[0] == mode)
        ]
        body = inputs[1:] if modes[0] is not None else inputs
        if (body, target) not in candidates:
            raise _fail(f"row {row} is not its mode's member's corruption of the example")


def check_mixture_rates(mixture: ir.Mixture, compiled: Any, case: Case) -> None:
    if mixture.members[0].mode is None:
        _check_rates_by_member(mixture, compiled)
        return
    big = big_case()
    first = _collate(compiled, big)["input_ids"][:, 0]
    n = int(first.numel())
    rates: dict[str, float] = {}
    for m in mixture.members:
        assert m.mode is not None
        rates[m.mode] = rates.get(m.mode, 0.0) + m.rate
    for mode, p in rates.items():
        ok, detail = _binomial_ok(int((first == big.vocab.id_of(mode)).sum()), n, p)
        if not ok:
            raise _fail(f"share of mode {mode}: {detail}")


def _check_rates_by_member(mixture: ir.Mixture, compiled: Any) -> None:
    """Without mode tokens, each row is told by the one member whose own corruption it is
    (rows that several members would corrupt alike are left out; at most 10% may be): each
    member's share of the told rows within the binomial bound."""
    big = big_case(rows=1024, length=24)
    rows = _rows(_collate(compiled, big))
    alone = [_rows(_collate(member_compiled(mixture, m), big)) for m in mixture.members]
    told = [
        [i for i, member_rows in enumerate(alone) if member_rows[r] == row]
        for r, row in enumerate(rows)
    ]
    unique = [t[0] for t in told if len(t) == 1]
    if len(unique) < 0.9 * len(rows):
        return  # the members corrupt too much alike to tell them apart by their rows
    for i, m in enumerate(mixture.members):
        ok, detail = _binomial_ok(unique.count(i), len(unique), m.rate)
        if not ok:
            raise _fail(f"share of member {m.name}: {detail}")


def check_composed(composition: ir.Composition, compiled: Any, case: Case) -> None:
    """The composed batch is the pair task's rows, corrupted by the masked-LM task alone
    (keyed, as in the composition, by the original examples' keys)."""
    out = _collate(compiled, case)
    pairs = _collate(member_compiled(composition, composition.pair_task), case)
    key = composition.pair_task.objective.pair.label_key  # type: ignore[union-attr]
    rows = [
        {"input_ids": ids[mask.bool()].tolist()}
        for ids, mask in zip(pairs["input_ids"], pairs["attention_mask"], strict=True)
    ]
    examples_keys = read_batch(case.examples, case.vocab.pad_id or 0).index
    mlm_task = _collator(member_compiled(composition, composition.mlm_task), case)
    paired = replace(read_batch(rows, case.vocab.pad_id or 0), index=examples_keys)
    mlm = mlm_task.corrupt(paired, Keys(case.seed, mlm_task.mask_epoch(), examples_keys))
    for name, want in (
        ("input_ids", mlm["input_ids"]),
        ("labels", mlm["labels"]),
        ("token_type_ids", pairs["token_type_ids"]),
        (key, pairs[key]),
    ):
        if not torch.equal(out[name], want):
            raise _fail(f"{name} is not the pair task's rows corrupted by the masked-LM task")


COMPOSITION_CHECKS: tuple[Check, ...] = (
    Check(
        "composed",
        "the batch is the pair task's rows, corrupted by the masked-LM task as it is alone",
        check_composed,
    ),
)

MIXTURE_CHECKS: tuple[Check, ...] = (
    Check(
        "members",
        "each row is its member's own corruption of the example, after its mode token",
        check_mixture_members,
    ),
    Check(
        "mixture_rates",
        "members are drawn with their rates (6-sigma binomial bound per mode token, or per "
        "member among the rows only one member would make)",
        check_mixture_rates,
        True,
    ),
)


# The checks of one batch form's own layout.
FORM_CHECKS: dict[str, tuple[str, ...]] = {
    "encoder": (),
    "encoder_decoder": ("decoder_inputs",),
    "decoder_only": ("packed",),
}


def applicable(objective: ir.Spec) -> tuple[Check, ...]:
    """The checks whose promise the spec makes (a mixture's own; see :func:`run_checks` for
    its members')."""
    form = FORM_CHECKS[objective.output.kind]
    if isinstance(objective, ir.Mixture):
        generic = ("batch_invariance", "epochs", "dynamic", *form)
        return (*MIXTURE_CHECKS, *(c for c in CHECKS if c.name in generic))
    if isinstance(objective, ir.Composition):
        generic = ("epochs", "dynamic", "pair_labels", "pair_rates", *form)
        return (*COMPOSITION_CHECKS, *(c for c in CHECKS if c.name in generic))
    skip = {name for names in FORM_CHECKS.values() for name in names} - set(form)
    if not isinstance(objective.select, ir.Bernoulli):
        skip.add("rate")
    else:
        skip.add("budget")
    if objective.views is None:
        skip.add("views")
    if not (isinstance(objective.select, ir.Fragment) and objective.select.length is not None):
        skip.add("fragment_lengths")
    else:
        skip.add("budget")  # the law sizes the fragment: fragment_lengths checks it
        if _fragment_size(objective) is None:
            skip.add("fragment_lengths")
    if objective.predict.target == "views":
        skip.update(("labels", "untouched", "mix", "dynamic"))  # no targets: 'views' checks it
    if objective.unit.kind == "token":
        skip.add("whole_words")
    if not isinstance(objective.select, ir.Spans):
        skip.add("span_support")
    if objective.masks.kind == "static" and objective.masks.copies == 1:
        skip.add("dynamic")
    if objective.predict.target != "sentinels":
        skip.add("reconstruct")
    if objective.predict.target != "sequence":
        skip.add("sequence")
    split = (
        isinstance(objective.select, ir.Suffix)
        and objective.replace.share_of("delete") == 1.0
        and objective.predict.target == "selected"
        and objective.output.seq2seq
    )
    if not split:
        skip.add("split")
    if not any(t.kind == "fim" for t in objective.transforms):
        skip.update(("fim", "fim_rates"))
    if not (
        isinstance(objective.select, ir.CountedSpans) and objective.predict.target == "sequence"
    ):
        skip.update(("moved_spans", "span_counts"))
    blanks = objective.predict.target == "blanks"
    if not blanks:
        skip.update(("blanks", "blank_positions", "block_order"))
    else:
        skip.update(("infilling", "packed"))  # 'blanks' checks the layout; packing refuses it
    if not (objective.replace.collapse or objective.inserts):
        skip.add("infilling")
    if not any(t.kind == "shuffle_trigrams" for t in objective.transforms):
        skip.add("shuffle")
    if objective.attention.kind != "permutation":
        skip.add("factorization")
    if objective.attention.kind != "unilm":
        skip.update(("unilm", "unilm_rates"))
    if objective.input.kind != "parallel":
        skip.add("translation")
    else:
        skip.update(SAME_LENGTH_CHECKS)  # the masked LM runs on the joined row: 'translation'
    if objective.pair is None:
        skip.update(("pairs", "pair_labels", "pair_rates", "segments"))
    elif objective.pair.labelled:
        skip.update((*SAME_LENGTH_CHECKS, "segments"))
        if any(s.relation == "random" for s in objective.pair.shares):
            skip.add("batch_invariance")  # a random partner is the batch's: pair_labels instead
    else:  # segments for a masked LM, which runs on the pair row: 'segments' checks it
        skip.update((*SAME_LENGTH_CHECKS, "pairs", "pair_labels", "pair_rates"))
    if not (isinstance(objective.select, ir.Exact) and objective.select.alpha is not None):
        skip.add("frequency")
    transforms = {t.kind for t in objective.transforms} - {"shuffle_trigrams"}
    nothing = isinstance(objective.select, ir.NoSelection)
    if not (nothing and transforms == {"permute_sentences"}):
        skip.add("permutation")
    if not (nothing and transforms == {"rotate"}):
        skip.add("rotation")
    if objective.predict.target != "all":
        skip.add("document_target")
    else:
        skip.add("labels")  # the labels are the whole row: document_target checks them
    if objective.replace.share_of("delete") != 1.0 or not isinstance(objective.select, ir.Exact):
        skip.add("deletion")
    if not isinstance(objective.select, ir.RandomSpans) or objective.predict.target != "sentinels":
        skip.add("t5_counts")
    mask_only = objective.replace.share_of("mask") == 1.0 and not objective.transforms
    mass = objective.predict.target == "selected" and isinstance(objective.select, ir.Fragment)
    same_length = not objective.output.seq2seq or (
        objective.output.kind == "encoder_decoder"
        and (mass or mask_only)
        and objective.replace.share_of("delete") == 0
        and not objective.replace.collapse
        and not objective.inserts
    )
    if not same_length:
        skip.update(SAME_LENGTH_CHECKS)
    return tuple(c for c in CHECKS if c.name not in skip)


def run_check(check: Check, objective: ir.Spec, compiled: Any, max_examples: int) -> CheckResult:
    """Run one check: once on the fixed big case if statistical, else under Hypothesis."""
    try:
        if check.statistical:
            check.run(objective, compiled, big_case())
        else:
            _hypothesis(check, objective, compiled, max_examples)
    except CheckFailure as exc:
        return CheckResult(check.name, check.promise, False, str(exc).splitlines()[0])
    except Exception as exc:  # a crash is a failed check too, reported with its type
        return CheckResult(check.name, check.promise, False, f"{type(exc).__name__}: {exc}")
    return CheckResult(check.name, check.promise, True)


@contextmanager
def _storage_outside_cwd() -> Iterator[None]:
    """Point Hypothesis' storage (its example database, and the cache of constants it reads
    from local modules, written even with ``database=None``) at a temporary folder for the
    duration, so that a check writes nothing into the current directory."""
    previous = vars(configuration).get("__hypothesis_home_directory")
    with tempfile.TemporaryDirectory(prefix="objspec-hypothesis-") as folder:
        configuration.set_hypothesis_home_dir(folder)
        try:
            yield
        finally:
            configuration.set_hypothesis_home_dir(previous)


def _hypothesis(check: Check, objective: ir.Spec, compiled: Any, max_examples: int) -> None:
    @settings(
        max_examples=max_examples,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
        phases=(Phase.explicit, Phase.generate),  # a check reports its first failure unshrunk
    )
    @given(cases())
    def property_holds(case: Case) -> None:
        check.run(objective, compiled, case)

    with _storage_outside_cwd():
        property_holds()


def run_checks(
    objective: ir.Spec, compiled: Any, max_examples: int = 40, statistical: bool = True
) -> list[CheckResult]:
    """Every applicable check of a compiled objective; for a mixture, also every member's own
    checks on the member compiled alone (reported as ``member:check``). ``statistical=False``
    leaves out the checks that run once on the big fixed case (rates, mixes, laws)."""

    def chosen(spec: ir.Spec) -> list[Check]:
        return [c for c in applicable(spec) if statistical or not c.statistical]

    results = [run_check(c, objective, compiled, max_examples) for c in chosen(objective)]
    if isinstance(objective, ir.Mixture | ir.Composition):
        parts = objective.members if isinstance(objective, ir.Mixture) else objective.tasks
        for m in parts:
            sub = member_compiled(objective, m)
            for c in chosen(m.objective):
                r = run_check(c, m.objective, sub, max_examples)
                results.append(CheckResult(f"{m.name}:{r.name}", r.promise, r.passed, r.detail))
    return results

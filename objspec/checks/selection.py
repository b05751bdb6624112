"""Checks of the selection and the replacement: labels, untouched positions, budgets, whole
units, span support, batch invariance, epochs, rates and the replacement mix."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import torch

from objspec import ir
from objspec.checks.framework import (
    MASK,
    Z_BOUND,
    Case,
    _collate,
    _collator,
    _excluded,
    _fail,
    _inputs,
    _selected,
    big_case,
    unit_starts,
    with_fields,
)
from objspec.runtime import IGNORE_INDEX, read_batch
from objspec.runtime.tasks import base_key, task_names


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
        if not _same(_corruption(objective, first, case), _corruption(objective, later, case)):
            raise _fail(f"static masks differ after {copies} epochs")


# Outputs that are the collator's random keys themselves (ELECTRA's sample_keys): they always
# carry the epoch, so they say nothing about whether the corruption follows it.
KEY_OUTPUTS = ("sample_keys",)


def _corruption(objective: ir.Spec, out: dict[str, torch.Tensor], case: Case) -> list[torch.Tensor]:
    """What a new epoch must redraw: a same-length masked LM's selected positions, else every
    output but the random keys (rewritten rows, targets, pair labels, attention orders)."""
    if isinstance(objective, ir.Objective) and _masks_in_place(objective):
        return [(out["labels"] != IGNORE_INDEX)[~_excluded(objective, case)]]
    tasks = task_names(out)
    return [value for key, value in sorted(out.items()) if base_key(key, tasks) not in KEY_OUTPUTS]


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

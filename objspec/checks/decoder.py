"""Checks of decoder-only objectives: the causal LM's row, a prefix LM's split,
fill-in-the-middle, CM3's moved spans and GLM's blanks."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from objspec import ir
from objspec.checks.framework import (
    MASK,
    PAD,
    Z_BOUND,
    Case,
    Check,
    _collate,
    _fail,
    _inputs,
    big_case,
)
from objspec.checks.selection import _binomial_ok, _expected_budget
from objspec.checks.targets import _rows, _split_target
from objspec.runtime import IGNORE_INDEX, Vocab, read_batch
from objspec.runtime.selection import candidate_mask


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


DECODER_CHECKS: tuple[Check, ...] = (
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

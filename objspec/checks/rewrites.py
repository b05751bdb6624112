"""Checks of rewritten rows: contrastive views, fragments, document targets, the decoder-only
row, decoder inputs, deletion, infilling, BART's document transforms and XLM's frequencies."""

from __future__ import annotations

import math
from collections.abc import Callable
from itertools import permutations
from typing import Any

import torch

from objspec import ir
from objspec.checks.framework import (
    CLS,
    FIRST_WORD,
    MASK,
    Z_BOUND,
    Case,
    _collate,
    _excluded,
    _fail,
    _inputs,
    _selected,
    big_case,
)
from objspec.checks.selection import _binomial_ok, _expected_budget
from objspec.checks.targets import _rows
from objspec.runtime import IGNORE_INDEX, read_batch


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

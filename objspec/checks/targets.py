"""Checks of T5's targets: each span after its sentinel, and T5's noise and span counts."""

from __future__ import annotations

from typing import Any

import torch

from objspec import ir
from objspec.checks.framework import Case, _collate, _fail, _inputs
from objspec.runtime import IGNORE_INDEX


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

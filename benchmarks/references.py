"""Per-example reference implementations, written from the published algorithms.

These are the incumbents a user would otherwise run: a Python loop over examples (and tokens),
as in the original code. They are used for timing only (the compiled collators are tested
against the spec's promises, not against these).
"""

from __future__ import annotations

import math
import random

import numpy as np
import torch


def spanbert_mask(
    ids: list[int],
    word_start: list[bool],
    special: set[int],
    rng: random.Random,
    *,
    mask_id: int,
    vocab_size: int,
    rate: float = 0.15,
    p: float = 0.2,
    lower: int = 1,
    upper: int = 10,
) -> tuple[list[int], list[int]]:
    """SpanBERT's ``PairWithSpanMaskingScheme.mask`` for one example (its per-token loop).

    Budget ceil(rate x len) tokens; span length in words from a geometric(p) truncated to
    [lower, upper]; anchor uniform over tokens, skipped if already masked; the span extends over
    whole words from the anchor's word; 80/10/10 decided per span. Returns (inputs, labels).
    """
    lens = list(range(lower, upper + 1))
    weights = [p * (1 - p) ** (n - lower) for n in lens]
    budget = math.ceil(len(ids) * rate)
    masked: set[int] = set()
    spans: list[tuple[int, int]] = []
    tries = 0
    while len(masked) < budget and tries < 10 * len(ids):
        tries += 1
        span_len = rng.choices(lens, weights)[0]
        anchor = rng.randrange(len(ids))
        if anchor in masked or ids[anchor] in special:
            continue
        start = anchor
        while start > 0 and not word_start[start]:
            start -= 1
        end = start
        words = 0
        while end < len(ids) and words < span_len and len(masked) < budget:
            if ids[end] in special:
                break
            masked.add(end)
            end += 1
            if end >= len(ids) or word_start[end]:
                words += 1
        spans.append((start, end))
    inputs = list(ids)
    labels = [-100] * len(ids)
    for start, end in spans:
        u = rng.random()
        for i in range(start, end):
            labels[i] = ids[i]
            if u < 0.8:
                inputs[i] = mask_id
            elif u < 0.9:
                inputs[i] = rng.randrange(vocab_size)
    return inputs, labels


def spanbert_collate(
    examples: list[list[int]],
    word_start_table: list[bool],
    special: set[int],
    *,
    mask_id: int,
    pad_id: int,
    vocab_size: int,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """A per-example SpanBERT collator: mask each example in Python, then pad into tensors."""
    rng = random.Random(seed)
    width = max(len(e) for e in examples)
    inputs = np.full((len(examples), width), pad_id, dtype=np.int64)
    labels = np.full((len(examples), width), -100, dtype=np.int64)
    for row, ids in enumerate(examples):
        starts = [word_start_table[i] for i in ids]
        x, y = spanbert_mask(ids, starts, special, rng, mask_id=mask_id, vocab_size=vocab_size)
        inputs[row, : len(ids)] = x
        labels[row, : len(ids)] = y
    return {"input_ids": torch.from_numpy(inputs), "labels": torch.from_numpy(labels)}

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


def t5_noise_mask(length: int, rng: np.random.Generator, density: float, mean: float) -> np.ndarray:
    """T5's ``random_spans_noise_mask`` for one row, as its numpy ports run it (HF Flax's
    ``FlaxDataCollatorForT5MLM.random_spans_noise_mask``): exact counts, uniform compositions,
    non-noise first, noise last."""
    num_noise = min(max(int(np.round(length * density)), 1), length - 1)
    num_spans = max(int(np.round(num_noise / mean)), 1)
    num_spans = min(num_spans, length - num_noise)  # transformers#22246

    def segmentation(items: int, segments: int) -> np.ndarray:
        marks = np.arange(items - 1) < (segments - 1)
        rng.shuffle(marks)
        first = np.pad(marks, [[1, 0]])
        ids = np.cumsum(first)
        _, lengths = np.unique(ids, return_counts=True)
        return lengths

    noise_lengths = segmentation(num_noise, num_spans)
    keep_lengths = segmentation(length - num_noise, num_spans)
    interleaved = np.reshape(np.stack([keep_lengths, noise_lengths], axis=1), [num_spans * 2])
    starts = np.cumsum(interleaved)[:-1]
    start_mark = np.zeros((length,), dtype=np.int8)
    start_mark[starts] = True
    span_num = np.cumsum(start_mark)
    return np.asarray(span_num % 2 == 1)


def t5_span_collate(
    examples: list[list[int]],
    special: set[int],
    *,
    vocab_size: int,
    eos_id: int,
    pad_id: int,
    seed: int = 0,
    density: float = 0.15,
    mean: float = 3.0,
) -> dict[str, torch.Tensor]:
    """A per-example T5 span-corruption collator: a noise mask per row (over its non-special
    tokens), sentinels ``vocab_size - 1 - k`` per span, inputs and targets, padded."""
    rng = np.random.default_rng(seed)
    inputs: list[list[int]] = []
    targets: list[list[int]] = []
    for ids in examples:
        body = [i for i, t in enumerate(ids) if t not in special]
        noise = np.zeros(len(ids), dtype=bool)
        if len(body) >= 2:
            noise[body] = t5_noise_mask(len(body), rng, density, mean)
        x: list[int] = []
        y: list[int] = []
        k = 0
        for i, tok in enumerate(ids):
            if noise[i]:
                if i == 0 or not noise[i - 1]:
                    x.append(vocab_size - 1 - k)
                    y.append(vocab_size - 1 - k)
                    k += 1
                y.append(tok)
            else:
                x.append(tok)
        inputs.append(x)
        targets.append(y + [eos_id])
    return {
        "input_ids": _pad(inputs, pad_id),
        "labels": _pad(targets, -100),
    }


def _pad(rows: list[list[int]], fill: int) -> torch.Tensor:
    width = max((len(r) for r in rows), default=0)
    out = np.full((len(rows), width), fill, dtype=np.int64)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return torch.from_numpy(out)


def bart_noise(
    ids: torch.Tensor,
    word_start: torch.Tensor,
    sentence_end: torch.Tensor,
    *,
    mask_id: int,
    vocab_size: int,
    ratio: float = 0.3,
    random_ratio: float = 0.1,
    lam: float = 3.0,
) -> torch.Tensor:
    """fairseq ``DenoisingDataset``'s noise for one example, in its order: permute all
    sentences, then whole-word span-Poisson masking with replace_length=1 (each span to one
    mask, zero-length spans as insertions). ``ids`` (L,) starts with BOS and ends with EOS."""
    # permute_sentences(p=1.0): sentences end at full stops
    ends = (sentence_end[1:-1].nonzero().flatten() + 2).tolist()
    bounds = [1, *[e for e in ends if e < len(ids) - 1], len(ids) - 1]
    pieces = [ids[a:b] for a, b in zip(bounds, bounds[1:], strict=False) if b > a]
    order = torch.randperm(len(pieces))
    body = torch.cat([pieces[i] for i in order.tolist()]) if pieces else ids[1:-1]
    source = torch.cat([ids[:1], body, ids[-1:]])
    is_word_start = word_start[source].clone()
    is_word_start[0] = is_word_start[-1] = False

    # add_whole_word_mask(source, ratio) with span-poisson lengths
    num_to_mask = math.ceil(int(is_word_start.sum()) * ratio)
    if num_to_mask == 0:
        return source
    k = torch.arange(0, 128)
    poisson = torch.exp(k * math.log(lam) - lam - torch.lgamma(k + 1.0))
    dist = torch.distributions.Categorical(poisson[poisson > 1e-7])
    lengths = dist.sample(sample_shape=(num_to_mask,))
    cum = torch.cumsum(lengths, 0)
    while cum[-1] < num_to_mask:
        lengths = torch.cat([lengths, dist.sample(sample_shape=(num_to_mask,))])
        cum = torch.cumsum(lengths, 0)
    i = 0
    while cum[i] < num_to_mask:
        i += 1
    lengths[i] = num_to_mask - (0 if i == 0 else cum[i - 1])
    lengths = lengths[: i + 1]
    num_inserts = int((lengths == 0).sum())
    lengths = lengths[lengths > 0]
    starts_pool = is_word_start.nonzero()
    indices = starts_pool[torch.randperm(starts_pool.size(0))[: lengths.size(0)]].squeeze(1)
    mask_random = torch.rand(lengths.size(0)) < random_ratio
    to_keep = torch.ones(source.size(0), dtype=torch.bool)
    is_word_start = is_word_start.long()
    is_word_start[-1] = 255  # stops span extension at EOS (fairseq's sentinel value)
    source = source.clone()
    source[indices] = mask_id
    rand_ids = torch.randint(1, vocab_size, (int(mask_random.sum()),))
    source[indices[mask_random]] = rand_ids
    lengths = lengths - 1
    while indices.size(0) > 0:
        lengths = lengths - is_word_start[indices + 1]
        uncompleted = lengths >= 0
        indices = indices[uncompleted] + 1
        lengths = lengths[uncompleted]
        to_keep[indices] = False  # replace_length = 1: the rest of the span is dropped
    source = source[to_keep]
    if num_inserts:  # add_insertion_noise
        n = source.size(0)
        positions = torch.randperm(n + num_inserts - 2)[:num_inserts] + 1
        noise_mask = torch.zeros(n + num_inserts, dtype=torch.bool)
        noise_mask[positions] = True
        out = torch.full((n + num_inserts,), -1, dtype=torch.long)
        out[positions] = mask_id
        out[~noise_mask] = source
        source = out
    return source


def bart_collate(
    examples: list[list[int]],
    word_start_table: torch.Tensor,
    full_stop: int,
    *,
    mask_id: int,
    pad_id: int,
    vocab_size: int,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """A per-example BART (text infilling + sentence permutation) collator, padded."""
    torch.manual_seed(seed)
    sources = []
    for row in examples:
        ids = torch.tensor(row)
        noisy = bart_noise(
            ids, word_start_table, ids == full_stop, mask_id=mask_id, vocab_size=vocab_size
        )
        sources.append(noisy.tolist())
    return {"input_ids": _pad(sources, pad_id), "labels": _pad(examples, -100)}


def fim_permute(
    row: list[int],
    rng: np.random.Generator,
    sentinels: tuple[int, int, int],
    fim_rate: float = 0.5,
    spm_rate: float = 0.5,
) -> list[int]:
    """One document's fill-in-the-middle, per example as bigcode's Megatron ``permute`` does
    it (token-level here): with probability ``fim_rate`` cut at two sorted uniform points into
    prefix, middle, suffix and lay them out PSM, or SPM with probability ``spm_rate``."""
    if rng.random() >= fim_rate:
        return list(row)
    prefix_id, middle_id, suffix_id = sentinels
    low, high = sorted(rng.integers(0, len(row) + 1, size=2).tolist())
    prefix, middle, suffix = row[:low], row[low:high], row[high:]
    if rng.random() < spm_rate:
        return [prefix_id, suffix_id, *suffix, middle_id, *prefix, *middle]
    return [prefix_id, *prefix, suffix_id, *suffix, middle_id, *middle]


def fim_collate(
    examples: list[list[int]],
    sentinels: tuple[int, int, int],
    *,
    eos_id: int,
    pad_id: int,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """A per-example FIM collator for a causal LM: each document (between its first and last
    token) permuted, eos appended, labels the row itself (-100 on padding)."""
    rng = np.random.default_rng(seed)
    rows = [[r[0], *fim_permute(r[1:-1], rng, sentinels), r[-1], eos_id] for r in examples]
    ids = _pad(rows, pad_id)
    return {
        "input_ids": ids,
        "attention_mask": _pad([[1] * len(r) for r in rows], 0),
        "labels": _pad(rows, -100),
    }

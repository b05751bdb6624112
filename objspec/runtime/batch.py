"""Batch in: a list of examples or an already padded dict of tensors, on any device."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np
import torch

from objspec.runtime.rng import GOLDEN, MASK32, hash32, mul32

Examples = Sequence[Mapping[str, Any]] | Mapping[str, Any]


class BatchError(ValueError):
    """A batch the collator cannot read (missing input_ids, ragged tensors, ...)."""


@dataclass
class Batch:
    """A padded batch.

    input_ids: (B, L) int64; valid: (B, L) bool, True on real tokens (False on padding);
    index: (B,) int64, each example's identity for the counter RNG;
    word_ids: (B, L) int64 word index per token (-1 where none) or None;
    special: (B, L) bool or None, a caller-provided special_tokens_mask;
    sentence_ids: (B, L) int64 sentence index per token (-1 outside sentences) or None;
    translation: the parallel sentences (a Batch of ``translation_ids``) or None;
    langs: (B, 2) int64 language ids of the sentence and its translation (with a
    translation), or None;
    positive: each row's paired view (a Batch of ``positive_ids``: an entailed sentence, a
    back-translation) for a contrastive objective, or None.
    """

    input_ids: torch.Tensor
    valid: torch.Tensor
    index: torch.Tensor
    word_ids: torch.Tensor | None = None
    special: torch.Tensor | None = None
    sentence_ids: torch.Tensor | None = None
    translation: Batch | None = None
    langs: torch.Tensor | None = None
    positive: Batch | None = None

    @property
    def shape(self) -> tuple[int, int]:
        b, length = self.input_ids.shape
        return int(b), int(length)

    @property
    def device(self) -> torch.device:
        return self.input_ids.device


def read_batch(examples: Examples, pad_id: int, device: torch.device | str | None = None) -> Batch:
    """Read either input form into a :class:`Batch` on ``device`` (default: where the data is)."""
    if isinstance(examples, Mapping):
        return _from_padded(examples, pad_id, device)
    if not isinstance(examples, Sequence) or isinstance(examples, str | bytes):
        raise BatchError(f"expected a list of examples or a dict of tensors, got {type(examples)}")
    return _from_examples(examples, pad_id, device)


def _as_long(x: Any, device: torch.device | str | None) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.to(device=device if device is not None else x.device, dtype=torch.int64)
    return torch.as_tensor(np.asarray(x, dtype=np.int64), device=device)


def _from_padded(batch: Mapping[str, Any], pad_id: int, device: torch.device | str | None) -> Batch:
    if "input_ids" not in batch:
        raise BatchError("the batch has no 'input_ids'")
    ids = _as_long(batch["input_ids"], device)
    if ids.dim() != 2:
        raise BatchError(f"padded input_ids must be (B, L), got shape {tuple(ids.shape)}")
    mask = batch.get("attention_mask")
    valid = _as_long(mask, ids.device).bool() if mask is not None else ids != pad_id
    if valid.shape != ids.shape:
        raise BatchError("attention_mask and input_ids differ in shape")
    index = batch.get("index")
    idx = (
        _as_long(index, ids.device).reshape(-1) if index is not None else content_index(ids, valid)
    )
    if idx.numel() != ids.shape[0]:
        raise BatchError("'index' must hold one entry per row")
    word_ids = batch.get("word_ids")
    special = batch.get("special_tokens_mask")
    sentence_ids = batch.get("sentence_ids")
    translation = _second_padded(batch, "translation", idx, pad_id)
    return Batch(
        input_ids=ids,
        valid=valid,
        index=idx,
        word_ids=_as_long(word_ids, ids.device) if word_ids is not None else None,
        special=_as_long(special, ids.device).bool() if special is not None else None,
        sentence_ids=_as_long(sentence_ids, ids.device) if sentence_ids is not None else None,
        translation=translation,
        langs=(
            _langs(batch.get("lang"), batch.get("translation_lang"), ids.shape[0], ids.device)
            if translation is not None
            else None
        ),
        positive=_second_padded(batch, "positive", idx, pad_id),
    )


def _second_padded(
    batch: Mapping[str, Any], name: str, index: torch.Tensor, pad_id: int
) -> Batch | None:
    """The padded second sequence ``<name>_ids`` of each row, keyed by the row's index."""
    if batch.get(f"{name}_ids") is None:
        return None
    fields = {
        "input_ids": batch[f"{name}_ids"],
        "attention_mask": batch.get(f"{name}_attention_mask"),
        "index": index,
    }
    return _from_padded(fields, pad_id, index.device)


def _second_listed(
    examples: Sequence[Mapping[str, Any]], name: str, index: torch.Tensor, pad_id: int
) -> Batch | None:
    """The second sequence ``<name>_ids`` of each example, when every example has one."""
    if not examples or not all(f"{name}_ids" in e for e in examples):
        return None
    ids, valid = _padded_rows([e[f"{name}_ids"] for e in examples], pad_id)
    return Batch(ids, valid, index)


def _langs(first: Any, second: Any, rows: int, device: torch.device) -> torch.Tensor:
    """(B, 2) int64 language ids (defaults 0 and 1: the sentence's and its translation's)."""
    out = torch.tensor([[0, 1]], dtype=torch.int64, device=device).repeat(rows, 1)
    for col, given in enumerate((first, second)):
        if given is not None:
            out[:, col] = _as_long(given, device).reshape(-1).expand(rows)
    return out


def _from_examples(
    examples: Sequence[Mapping[str, Any]], pad_id: int, device: torch.device | str | None
) -> Batch:
    if not all(isinstance(e, Mapping) and "input_ids" in e for e in examples):
        raise BatchError("every example must be a dict with 'input_ids'")
    ids, valid = _padded_rows([e["input_ids"] for e in examples], pad_id)
    word_ids = _per_token(examples, "word_ids", valid)
    sentence_ids = _per_token(examples, "sentence_ids", valid)
    special = None
    if all("special_tokens_mask" in e for e in examples) and examples:
        special = _pad_flat([e["special_tokens_mask"] for e in examples], valid, 1).bool()
    given = [i for i, e in enumerate(examples) if e.get("index") is not None]
    if len(given) == len(examples):
        index = torch.tensor([int(e["index"]) for e in examples], dtype=torch.int64)
    else:  # an example without an index (alone in its batch) falls back to its content
        index = content_index(ids, valid)
        if given:
            index[given] = torch.tensor(
                [int(examples[i]["index"]) for i in given], dtype=torch.int64
            )
    translation = _second_listed(examples, "translation", index, pad_id)
    positive = _second_listed(examples, "positive", index, pad_id)
    langs = None
    if translation is not None:
        langs = _langs(
            [e.get("lang", 0) for e in examples],
            [e.get("translation_lang", 1) for e in examples],
            len(examples),
            ids.device,
        )
    batch = Batch(ids, valid, index, word_ids, special, sentence_ids, translation, langs, positive)
    return _to(batch, device) if device is not None else batch


def _padded_rows(rows: Sequence[Any], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Ragged rows of ids as (B, L) int64 padded with ``pad_id`` and their (B, L) bool
    validity."""
    lengths = torch.tensor([len(r) for r in rows], dtype=torch.int64)
    width = int(lengths.max()) if len(rows) else 0
    valid = torch.arange(width).unsqueeze(0) < lengths.unsqueeze(1)
    return _pad_flat(rows, valid, pad_id), valid


def _per_token(
    examples: Sequence[Mapping[str, Any]], key: str, valid: torch.Tensor
) -> torch.Tensor | None:
    """(B, L) int64 of a per-token id field (None entries and padding -1), if every example
    has it."""
    if not examples or not all(key in e for e in examples):
        return None
    return _pad_flat([e[key] for e in examples], valid, -1)


def _pad_flat(rows: Sequence[Any], valid: torch.Tensor, fill: int) -> torch.Tensor:
    """Pad ragged rows into (B, L) from one flat buffer (no per-row tensor construction);
    None entries become ``fill``."""
    out = torch.full(valid.shape, fill, dtype=torch.int64)
    if not rows:
        return out
    if isinstance(rows[0], torch.Tensor):
        flat = torch.cat([r.reshape(-1).to(torch.int64).cpu() for r in rows])
    elif isinstance(rows[0], np.ndarray):
        joined = np.concatenate(rows)
        if joined.dtype.kind in "fO":  # None (object) or NaN (float) entries become fill
            joined = np.nan_to_num(joined.astype(np.float64), nan=fill)
        flat = torch.from_numpy(joined.astype(np.int64, copy=False))
    else:  # numpy reads a flat iterator of Python ints about 4x faster than torch.tensor
        total = sum(len(r) for r in rows)
        try:
            flat = torch.from_numpy(np.fromiter(chain.from_iterable(rows), np.int64, count=total))
        except TypeError:  # None entries (a fast tokenizer's word_ids): read as NaN, then fill
            as_float = np.array(list(chain.from_iterable(rows)), dtype=np.float64)
            flat = torch.from_numpy(np.nan_to_num(as_float, nan=fill).astype(np.int64))
    if flat.numel() != int(valid.sum()):
        raise BatchError("a per-token field does not have one entry per token")
    out[valid] = flat
    return out


def _to(batch: Batch, device: torch.device | str) -> Batch:
    def move(x: torch.Tensor | None) -> torch.Tensor | None:
        return x.to(device) if x is not None else None

    return Batch(
        batch.input_ids.to(device),
        batch.valid.to(device),
        batch.index.to(device),
        move(batch.word_ids),
        move(batch.special),
        move(batch.sentence_ids),
        _to(batch.translation, device) if batch.translation is not None else None,
        move(batch.langs),
        _to(batch.positive, device) if batch.positive is not None else None,
    )


def content_index(ids: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """(B,) int64 identity from each row's tokens alone, for examples that carry no 'index'.

    Equal rows get equal keys (and so equal corruptions within an epoch); any other row, in any
    batch, keeps its own.
    """
    positions = torch.arange(ids.shape[1], device=ids.device)
    mixed = hash32((ids & MASK32) ^ mul32(positions, GOLDEN).unsqueeze(0))
    mixed = torch.where(valid, mixed, torch.zeros_like(mixed))
    return hash32(mixed.sum(dim=1) & MASK32 ^ valid.sum(dim=1))

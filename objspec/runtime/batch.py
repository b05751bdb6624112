"""Batch in: a list of examples, a list of id rows, or an already padded dict of tensors.

Whatever the input form, the :class:`Batch` a collator sees is validated once (integer ids
inside the vocabulary, 0/1 attention masks, one contiguous run of tokens per row) and
left-aligned: every row's tokens start at column 0, so a draw keyed by a position counts from
the example's own first token, whatever the padding side or width of the batch it came in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import numpy as np
import torch

from objspec.runtime.checked import (
    ID_LIMIT,
    BatchError,
    check_ids,
    check_row_types,
    first_bad_row,
    given_index,
    integer_tensor,
    mask_tensor,
    require_pad,
    right_padded,
    row_starts,
)
from objspec.runtime.example_keys import example_key

Examples = Sequence[Mapping[str, Any]] | Sequence[Sequence[int]] | Mapping[str, Any]

# Fields the reader turns into the Batch; every other field of an example is passed through.
READ_FIELDS = frozenset(
    {
        "input_ids",
        "attention_mask",
        "index",
        "word_ids",
        "special_tokens_mask",
        "sentence_ids",
        "translation_ids",
        "translation_attention_mask",
        "lang",
        "translation_lang",
        "positive_ids",
        "positive_attention_mask",
    }
)


@dataclass
class Batch:
    """A padded, left-aligned batch.

    input_ids: (B, L) int64; valid: (B, L) bool, True on real tokens, a prefix of each row;
    index: (B,) int64, each example's key for the counter RNG (its given ``index`` mixed with
    its content, or its content alone);
    word_ids: (B, L) int64 word index per token (-1 where none) or None;
    special: (B, L) bool or None, a caller-provided special_tokens_mask;
    sentence_ids: (B, L) int64 sentence index per token (-1 outside sentences) or None;
    translation: the parallel sentences (a Batch of ``translation_ids``) or None;
    langs: (B, 2) int64 language ids of the sentence and its translation (with a
    translation), or None;
    positive: each row's paired view (a Batch of ``positive_ids``: an entailed sentence, a
    back-translation) for a contrastive objective, or None;
    extras: the fields a spec does not read, to pass through: per-token ones (B, L) int64
    (padded with 0, left-aligned like input_ids) and per-example ones (B, ...);
    left_padded: True when the batch came in padded on the left (a padded dict).
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
    extras: dict[str, torch.Tensor] = field(default_factory=dict)
    per_token: frozenset[str] = frozenset()
    left_padded: bool = False

    @property
    def shape(self) -> tuple[int, int]:
        b, length = self.input_ids.shape
        return int(b), int(length)

    @property
    def device(self) -> torch.device:
        return self.input_ids.device


def read_batch(
    examples: Examples,
    pad_id: int | None,
    device: torch.device | str | None = None,
    *,
    vocab_size: int | None = None,
) -> Batch:
    """Read any input form into a validated, left-aligned :class:`Batch` on ``device``
    (default: where the data is). ``pad_id`` None (a vocabulary without a pad token) reads
    only batches that need no padding; ``vocab_size`` bounds the ids when given."""
    if isinstance(examples, Mapping):
        batch = _from_padded(examples, pad_id, device)
    elif not isinstance(examples, Sequence) or isinstance(examples, str | bytes):
        raise BatchError(
            f"expected a list of examples, a list of id rows or a dict of tensors, "
            f"got {type(examples).__name__}"
        )
    else:
        batch = _from_examples(_as_examples(examples), pad_id, device)
    if vocab_size is not None:
        check_ids(batch.input_ids, batch.valid, vocab_size, "input_ids")
        for name, second in (
            ("translation_ids", batch.translation),
            ("positive_ids", batch.positive),
        ):
            if second is not None:
                check_ids(second.input_ids, second.valid, vocab_size, name)
    return batch


def _as_examples(rows: Sequence[Any]) -> Sequence[Mapping[str, Any]]:
    """A list of id rows (lists, arrays or tensors of ids) read as examples with input_ids."""
    if rows and not isinstance(rows[0], Mapping):
        return [{"input_ids": r} for r in rows]
    return rows  # type: ignore[return-value]


def _from_padded(
    batch: Mapping[str, Any], pad_id: int | None, device: torch.device | str | None
) -> Batch:
    if "input_ids" not in batch:
        raise BatchError("the batch has no 'input_ids'")
    ids = integer_tensor(batch["input_ids"], device, "input_ids")
    if ids.dim() != 2:
        raise BatchError(f"padded input_ids must be (B, L), got shape {tuple(ids.shape)}")
    mask = batch.get("attention_mask")
    if mask is not None:
        valid = mask_tensor(mask, ids.device, "attention_mask")
    elif pad_id is not None:
        valid = ids != pad_id
    else:
        valid = torch.ones_like(ids, dtype=torch.bool)
    if valid.shape != ids.shape:
        raise BatchError("attention_mask and input_ids differ in shape")
    rows, width = ids.shape
    per_token = {
        key: integer_tensor(batch[key], ids.device, key)
        for key in ("word_ids", "sentence_ids")
        if batch.get(key) is not None
    }
    special = batch.get("special_tokens_mask")
    if special is not None:
        per_token["special_tokens_mask"] = mask_tensor(special, ids.device, "special_tokens_mask")
    extras, extra_tokens = _padded_extras(batch, rows, width)
    per_token.update({k: extras[k] for k in extra_tokens})
    for key, value in per_token.items():
        if tuple(value.shape) != (rows, width):
            raise BatchError(f"{key} must be (B, L) like input_ids, got {tuple(value.shape)}")
    left_padded = not right_padded(valid)
    if left_padded:
        ids, valid, per_token = _left_align(ids, valid, row_starts(valid), per_token)
    if pad_id is not None:
        ids = torch.where(valid, ids, torch.full_like(ids, pad_id))
    require_pad(valid, pad_id)
    given = batch.get("index")
    index = given_index(given, rows, ids.device) if given is not None else None
    row_keys = example_key(ids, valid, index)
    extras.update({k: per_token[k] for k in extra_tokens})
    translation = _second_padded(batch, "translation", row_keys, pad_id)
    return Batch(
        input_ids=ids,
        valid=valid,
        index=row_keys,
        word_ids=per_token.get("word_ids"),
        special=per_token.get("special_tokens_mask"),
        sentence_ids=per_token.get("sentence_ids"),
        translation=translation,
        langs=(
            _langs(batch.get("lang"), batch.get("translation_lang"), rows, ids.device)
            if translation is not None
            else None
        ),
        positive=_second_padded(batch, "positive", row_keys, pad_id),
        extras=extras,
        per_token=frozenset(extra_tokens),
        left_padded=left_padded,
    )


def _padded_extras(
    batch: Mapping[str, Any], rows: int, width: int
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The fields of a padded batch the reader does not use, as tensors, and which of them
    are per token ((B, L), like input_ids). Strings and None are left out."""
    extras: dict[str, torch.Tensor] = {}
    per_token: list[str] = []
    for key, value in batch.items():
        if key in READ_FIELDS or value is None or isinstance(value, str):
            continue
        tensor = value if isinstance(value, torch.Tensor) else torch.as_tensor(np.asarray(value))
        if tensor.dim() == 0 or tensor.shape[0] != rows:
            raise BatchError(
                f"'{key}' must have one entry per row ({rows}), got {tuple(tensor.shape)}"
            )
        extras[key] = tensor
        if tensor.dim() == 2 and tensor.shape[1] == width:
            per_token.append(key)
    return extras, per_token


def _left_align(
    ids: torch.Tensor,
    valid: torch.Tensor,
    starts: torch.Tensor,
    per_token: dict[str, torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """Move each row's tokens to start at column 0 (one gather per tensor)."""
    width = ids.shape[1]
    columns = torch.arange(width, device=ids.device).unsqueeze(0)
    source = (columns + starts.unsqueeze(1)).clamp(max=width - 1)
    aligned_valid = columns < valid.sum(dim=1, keepdim=True)
    moved = {k: v.gather(1, source) for k, v in per_token.items()}
    return ids.gather(1, source), aligned_valid, moved


def _second_padded(
    batch: Mapping[str, Any], name: str, key: torch.Tensor, pad_id: int | None
) -> Batch | None:
    """The padded second sequence ``<name>_ids`` of each row, keyed by the row's key."""
    if batch.get(f"{name}_ids") is None:
        return None
    fields = {
        "input_ids": batch[f"{name}_ids"],
        "attention_mask": batch.get(f"{name}_attention_mask"),
    }
    second = _from_padded(fields, pad_id, key.device)
    if second.input_ids.shape[0] != key.shape[0]:
        raise BatchError(f"{name}_ids must have one row per example")
    return Batch(second.input_ids, second.valid, key)


def _second_listed(
    examples: Sequence[Mapping[str, Any]], name: str, key: torch.Tensor, pad_id: int | None
) -> Batch | None:
    """The second sequence ``<name>_ids`` of each example, when every example has one."""
    if not examples or not all(f"{name}_ids" in e for e in examples):
        return None
    ids, valid = _padded_rows([e[f"{name}_ids"] for e in examples], pad_id, f"{name}_ids")
    return Batch(ids, valid, key)


def _langs(first: Any, second: Any, rows: int, device: torch.device) -> torch.Tensor:
    """(B, 2) int64 language ids (defaults 0 and 1: the sentence's and its translation's)."""
    out = torch.tensor([[0, 1]], dtype=torch.int64, device=device).repeat(rows, 1)
    for col, given in enumerate((first, second)):
        if given is not None:
            out[:, col] = integer_tensor(given, device, "lang").reshape(-1).expand(rows)
    return out


def _from_examples(
    examples: Sequence[Mapping[str, Any]], pad_id: int | None, device: torch.device | str | None
) -> Batch:
    if not all(isinstance(e, Mapping) and "input_ids" in e for e in examples):
        raise BatchError("every example must be a dict with 'input_ids'")
    ids, valid = _padded_rows([e["input_ids"] for e in examples], pad_id, "input_ids")
    word_ids = _per_token(examples, "word_ids", valid)
    sentence_ids = _per_token(examples, "sentence_ids", valid)
    special = None
    if all("special_tokens_mask" in e for e in examples) and examples:
        special = _pad_flat([e["special_tokens_mask"] for e in examples], valid, 1).bool()
    given = [e.get("index") for e in examples]
    index = None
    if any(i is not None for i in given):  # an example without one is keyed by its content
        index = given_index([-1 if i is None else i for i in given], len(given), ids.device, -1)
    key = example_key(ids, valid, index)
    extras, per_token = _listed_extras(examples, valid)
    translation = _second_listed(examples, "translation", key, pad_id)
    positive = _second_listed(examples, "positive", key, pad_id)
    langs = None
    if translation is not None:
        langs = _langs(
            [e.get("lang", 0) for e in examples],
            [e.get("translation_lang", 1) for e in examples],
            len(examples),
            ids.device,
        )
    batch = Batch(
        ids,
        valid,
        key,
        word_ids,
        special,
        sentence_ids,
        translation,
        langs,
        positive,
        extras,
        frozenset(per_token),
    )
    return _to(batch, device) if device is not None else batch


def _listed_extras(
    examples: Sequence[Mapping[str, Any]], valid: torch.Tensor
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The fields of listed examples the reader does not use: per-example numbers as (B,)
    tensors, per-token sequences (one entry per token) padded with 0, equal-shaped arrays
    stacked. Strings and None are left out; a field not every example has is an error."""
    if not examples:
        return {}, []
    lengths = valid.sum(dim=1).tolist()
    extras: dict[str, torch.Tensor] = {}
    per_token: list[str] = []
    names = [k for k in examples[0] if k not in READ_FIELDS]
    for key in names:
        values = [e.get(key) for e in examples]
        if all(v is None or isinstance(v, str) for v in values):
            continue
        if any(v is None for v in values):
            raise BatchError(f"'{key}' is missing from some examples of this batch")
        if isinstance(values[0], int | float | bool | np.number):  # one number per example
            extras[key] = torch.as_tensor(np.asarray(values))
        elif all(_length(v) == n for v, n in zip(values, lengths, strict=True)):
            extras[key] = _pad_flat(values, valid, 0)
            per_token.append(key)
        else:  # equal-shaped arrays or tensors (0-d ones too), stacked
            try:
                extras[key] = torch.stack([torch.as_tensor(np.asarray(v)) for v in values])
            except (RuntimeError, ValueError, TypeError):
                raise BatchError(
                    f"'{key}' is neither one value per example, one per token, nor of one shape "
                    "in every example: it cannot be passed through"
                ) from None
    return extras, per_token


def _length(value: Any) -> int:
    try:
        return len(value)
    except TypeError:
        return -1


def _padded_rows(
    rows: Sequence[Any], pad_id: int | None, what: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Ragged rows of ids as (B, L) int64 padded with ``pad_id`` and their (B, L) bool
    validity."""
    lengths = torch.tensor([_row_length(r, what) for r in rows], dtype=torch.int64)
    width = int(lengths.max()) if len(rows) else 0
    valid = torch.arange(width).unsqueeze(0) < lengths.unsqueeze(1)
    require_pad(valid, pad_id)
    return _pad_flat(rows, valid, pad_id or 0, what=what), valid


def _row_length(row: Any, what: str) -> int:
    if isinstance(row, torch.Tensor | np.ndarray) and row.ndim != 1:
        raise BatchError(f"each example's {what} must be one row of ids, got shape {row.shape}")
    if isinstance(row, str | bytes) or _length(row) < 0:
        raise BatchError(f"each example's {what} must be a list of ids, got {type(row).__name__}")
    return len(row)


def _per_token(
    examples: Sequence[Mapping[str, Any]], key: str, valid: torch.Tensor
) -> torch.Tensor | None:
    """(B, L) int64 of a per-token id field (None entries and padding -1), if every example
    has it."""
    if not examples or not all(key in e for e in examples):
        return None
    return _pad_flat([e[key] for e in examples], valid, -1)


def _pad_flat(
    rows: Sequence[Any], valid: torch.Tensor, fill: int, what: str | None = None
) -> torch.Tensor:
    """Pad ragged rows into (B, L) from one flat buffer (no per-row tensor construction).

    ``what`` names a field of ids (input_ids): a row must be of an integer dtype, or a list
    whose first entry is an int and whose entries are all integer-valued (2.5, None or NaN is
    an error naming the example; an entry 3.0 or True inside a list of ints reads as 3 or 1).
    Other fields read None and NaN entries as ``fill`` (a fast tokenizer's word_ids have None
    at special tokens).
    """
    out = torch.full(valid.shape, fill, dtype=torch.int64)
    if not rows:
        return out
    if what is not None:
        check_row_types(rows, what)
    try:
        flat = _flat_ints(rows, fill, strict=what is not None)
    except (TypeError, ValueError, OverflowError):
        raise BatchError(first_bad_row(rows, what or "a per-token field")) from None
    if flat.numel() != int(valid.sum()):
        raise BatchError("a per-token field does not have one entry per token")
    out[valid] = flat
    return out


def _flat_ints(rows: Sequence[Any], fill: int, strict: bool) -> torch.Tensor:
    """All rows' entries, concatenated, as a flat int64 tensor."""
    if isinstance(rows[0], torch.Tensor):
        return torch.cat([r.reshape(-1).to(torch.int64).cpu() for r in rows])
    if isinstance(rows[0], np.ndarray):
        joined = np.concatenate(rows)
        if joined.dtype.kind in "fO" and not strict:  # None (object) or NaN entries: fill
            joined = np.nan_to_num(joined.astype(np.float64), nan=fill)
        return torch.from_numpy(joined.astype(np.int64, copy=False))
    # numpy reads a flat iterator of Python ints about 4x faster than torch.tensor
    total = sum(len(r) for r in rows)
    if strict:  # read as floats, so that 2.5 or NaN is seen rather than truncated
        values = np.fromiter(chain.from_iterable(rows), np.float64, count=total)
        if not bool(np.all((values == np.floor(values)) & (np.abs(values) < ID_LIMIT))):
            raise ValueError("an entry is not an integer id")
        return torch.from_numpy(values.astype(np.int64))
    try:
        return torch.from_numpy(np.fromiter(chain.from_iterable(rows), np.int64, count=total))
    except TypeError:  # None entries (a fast tokenizer's word_ids): read as NaN, then fill
        if strict:
            raise
        as_float = np.array(list(chain.from_iterable(rows)), dtype=np.float64)
        return torch.from_numpy(np.nan_to_num(as_float, nan=fill).astype(np.int64))


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
        {k: v.to(device) for k, v in batch.extras.items()},
        batch.per_token,
        batch.left_padded,
    )

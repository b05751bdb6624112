"""Checks of a batch's input, each vectorized over the batch: one-line errors that name the
example (and position), never a batch built from bad input."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

INDEX_LIMIT = 1 << 63
ID_LIMIT = 1 << 53  # ids read as float64 are exact below this (any vocabulary is far smaller)


class BatchError(ValueError):
    """A batch the collator cannot read (missing input_ids, ragged tensors, bad ids, ...)."""


def check_ids(ids: torch.Tensor, valid: torch.Tensor, vocab_size: int, what: str) -> None:
    """Raise a BatchError naming the first example and position whose id lies outside
    ``[0, vocab_size)`` (one vectorized test per batch, one host read; the padding of a batch
    read here holds the pad id, so a clean batch is told by one clamp of the whole grid)."""
    if not bool((ids.clamp(0, vocab_size - 1) != ids).any()):  # padding holds valid ids too
        return
    bad = valid & ((ids < 0) | (ids >= vocab_size))
    if bool(bad.any()):
        row, col = (int(v) for v in bad.nonzero()[0])
        raise BatchError(
            f"{what} of example {row} at position {col} is {int(ids[row, col])}, outside the "
            f"vocabulary [0, {vocab_size})"
        )


def integer_tensor(x: Any, device: torch.device | str | None, what: str) -> torch.Tensor:
    """``x`` as an int64 tensor, refusing floats, bools and non-numbers (never truncated)."""
    if isinstance(x, torch.Tensor):
        if x.dtype == torch.bool or x.is_floating_point() or x.is_complex():
            raise BatchError(f"{what} must hold integers, got a {x.dtype} tensor")
        return x.to(device=device if device is not None else x.device, dtype=torch.int64)
    try:
        array = np.asarray(x)
    except ValueError as err:  # ragged nested lists
        raise BatchError(f"{what} is ragged: {err}") from None
    if array.dtype.kind not in "iu":
        raise BatchError(f"{what} must hold integers, got {array.dtype} values")
    return torch.as_tensor(array.astype(np.int64, copy=False), device=device)


def mask_tensor(x: Any, device: torch.device | str | None, what: str) -> torch.Tensor:
    """A 0/1 (or bool) mask as a bool tensor; any other value is an error."""
    mask = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    mask = mask.to(device) if device is not None else mask
    if mask.dtype == torch.bool:
        return mask
    flags = mask.bool()
    if bool((mask != flags.to(mask.dtype)).any()):
        raise BatchError(f"{what} must hold only 0 and 1")
    return flags


def right_padded(valid: torch.Tensor) -> bool:
    """Whether every row's tokens are a prefix of it (no token after a padded column): the
    common case, told by one comparison of neighbours."""
    return valid.shape[1] < 2 or not bool((valid[:, 1:] > valid[:, :-1]).any())


def row_starts(valid: torch.Tensor) -> torch.Tensor:
    """(B,) int64 column of each row's first token (0 for an empty row); a BatchError when a
    row's tokens are not one contiguous run (a hole in its attention_mask)."""
    count = valid.sum(dim=1)
    columns = torch.arange(valid.shape[1], device=valid.device)
    first = torch.where(valid, columns, valid.shape[1]).amin(dim=1) if valid.shape[1] else count
    last = torch.where(valid, columns, -1).amax(dim=1) if valid.shape[1] else count
    holes = (count > 0) & (last - first + 1 != count)
    if bool(holes.any()):
        row = int(holes.nonzero()[0, 0])
        raise BatchError(
            f"the attention_mask of example {row} has a hole: each row's tokens must be one "
            "contiguous run, padded on the left or the right"
        )
    return torch.where(count > 0, first, 0)


def require_pad(valid: torch.Tensor, pad_id: int | None) -> None:
    if pad_id is None and valid.numel() and not bool(valid.all()):
        raise BatchError(
            "these rows differ in length but the vocabulary has no pad token to pad them with; "
            "set one (e.g. tokenizer.pad_token = tokenizer.eos_token) or pass rows of one length"
        )


def given_index(given: Any, rows: int, device: torch.device, lowest: int = 0) -> torch.Tensor:
    """(B,) int64 indices as given, checked: integers in [0, 2**63), one per row (``lowest``
    -1 lets -1 stand for an example without one)."""
    try:
        index = integer_tensor(given, device, "index").reshape(-1)
    except OverflowError:
        raise BatchError("'index' must be below 2**63") from None
    if index.numel() != rows:
        raise BatchError(f"'index' must hold one entry per row ({rows}), got {index.numel()}")
    if bool((index < lowest).any()):
        raise BatchError("'index' must be non-negative")
    return index


def check_row_types(rows: Sequence[Any], what: str) -> None:
    """Each row of ids holds integers: a tensor or array of an integer dtype, or a list whose
    first entry is an int (one look per row; the flat read refuses None and NaN)."""
    for b, row in enumerate(rows):
        if isinstance(row, torch.Tensor):
            ok = not (row.dtype == torch.bool or row.is_floating_point() or row.is_complex())
        elif isinstance(row, np.ndarray):
            ok = row.dtype.kind in "iu"
        else:
            ok = len(row) == 0 or (
                isinstance(row[0], int | np.integer) and not isinstance(row[0], bool | np.bool_)
            )
        if not ok:
            raise BatchError(f"{what} of example {b} must hold integers, got {_kind(row)}")


def _kind(row: Any) -> str:
    if isinstance(row, torch.Tensor | np.ndarray):
        return f"{row.dtype} values"
    return f"{type(row[0]).__name__} values"


def first_bad_row(rows: Sequence[Any], what: str) -> str:
    """The message for the first row whose entries are not all integers (the slow path,
    taken only to report an error)."""
    for b, row in enumerate(rows):
        for position, value in enumerate(row):
            if not isinstance(value, int | np.integer) or isinstance(value, bool | np.bool_):
                return f"{what} of example {b} at position {position} is {value!r}, not an id"
            if not -INDEX_LIMIT <= int(value) < INDEX_LIMIT:
                return f"{what} of example {b} at position {position} is {value!r}, too large"
    return f"{what} holds entries that are not integers"

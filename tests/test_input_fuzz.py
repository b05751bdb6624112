"""Fuzzing the collators' input: any batch Hypothesis draws (dtypes, shapes, id ranges, masks,
indices; lists, arrays and tensors) is either a one-line BatchError or, exactly when an
independent oracle finds it valid, a batch whose ids all lie in the vocabulary."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import objspec
from objspec.checks import synthetic_vocab
from objspec.runtime import BatchError

V = 40
VOCAB = synthetic_vocab(V)
SPECS = ("bert_mlm", "bart_token_deletion", "spanbert")
COLLATORS = {
    name: objspec.compile_file(f"specs/{name}.objspec").Collator(VOCAB, seed=1, epoch=0)
    for name in SPECS
}

ids_values = st.one_of(
    st.integers(min_value=-3, max_value=V + 3),
    st.integers(min_value=V, max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=False, width=32),
    st.booleans(),
    st.none(),
)


def id_row(draw: st.DrawFn, length: int) -> list[Any]:
    """Mostly valid ids, sometimes a bad entry."""
    row = draw(
        st.lists(st.integers(min_value=0, max_value=V - 1), min_size=length, max_size=length)
    )
    if row and draw(st.integers(0, 3)) == 0:
        row[draw(st.integers(0, length - 1))] = draw(ids_values)
    return row


@st.composite
def listed(draw: st.DrawFn) -> tuple[Any, bool]:
    """A list of examples, each ``input_ids`` a list, array or tensor; and whether it is valid."""
    rows = [id_row(draw, draw(st.integers(1, 12))) for _ in range(draw(st.integers(1, 4)))]
    form = draw(st.sampled_from(["list", "numpy", "tensor"]))
    valid = all(_ok_first(row) and all(_ok_entry(v) for v in row) for row in rows)
    examples = []
    for row in rows:
        if form == "list" or not all(isinstance(v, int) and -(2**63) <= v < 2**63 for v in row):
            value: Any = row
        elif form == "numpy":
            small = all(abs(v) < 2**31 for v in row)
            dtypes = [np.int64, np.int32, np.float32] if small else [np.int64, np.float32]
            value = np.asarray(row, dtype=draw(st.sampled_from(dtypes)))
            valid &= value.dtype.kind == "i"
        else:
            small = all(abs(v) < 2**31 for v in row)
            dtypes = [torch.int64, torch.float32, torch.bool] + ([torch.int32] if small else [])
            dtype = draw(st.sampled_from(dtypes))
            value = torch.tensor(row).to(dtype)
            ok_dtype = dtype in (torch.int64, torch.int32)
            valid = valid and ok_dtype and torch.equal(value.long(), torch.tensor(row))
        examples.append({"input_ids": value})
    if draw(st.booleans()):
        indices = draw(st.lists(st.integers(-2, 2**64), min_size=len(rows), max_size=len(rows)))
        for example, index in zip(examples, indices, strict=True):
            example["index"] = index
        valid &= all(0 <= i < 2**63 for i in indices)
    return examples, valid


@st.composite
def padded(draw: st.DrawFn) -> tuple[Any, bool]:
    """A padded dict: ids (B, L), a mask of 0/1 (sometimes 2, sometimes with a hole)."""
    b, length = draw(st.integers(1, 4)), draw(st.integers(1, 10))
    rows = [id_row(draw, length) for _ in range(b)]
    lengths = draw(st.lists(st.integers(0, length), min_size=b, max_size=b))
    left = draw(st.booleans())
    mask = torch.zeros((b, length), dtype=torch.int64)
    for r, n in enumerate(lengths):
        if left:
            mask[r, length - n :] = 1
        else:
            mask[r, :n] = 1
    valid = True
    defect = draw(st.integers(0, 5))
    if defect == 0:  # a value other than 0/1
        mask[0, 0] = 2
        valid = False
    elif defect == 1 and length >= 3 and lengths[0] == length:  # a hole
        mask[0, 1] = 0
        valid = False
    if not all(isinstance(v, int) and -(2**63) <= v < 2**63 for row in rows for v in row):
        return {"input_ids": rows, "attention_mask": mask}, False
    ids = torch.tensor(rows)
    valid &= bool(((ids >= 0) & (ids < V))[mask.bool()].all()) if mask.max() <= 1 else False
    return {"input_ids": ids, "attention_mask": mask}, valid


def _ok_id(value: Any) -> bool:
    """An id as an integer dtype holds it: an int (not a bool) in the vocabulary."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < V


def _ok_first(row: list[Any]) -> bool:
    """The documented rule for a list of ids: its first entry is an int."""
    return not row or _ok_id(row[0])


def _ok_entry(value: Any) -> bool:
    """...and every entry an integer value in the vocabulary (3.0 and True read as 3 and 1)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return False
    return float(value).is_integer() and 0 <= value < V


def check(name: str, batch: Any, valid: bool) -> None:
    try:
        out = COLLATORS[name](batch)
    except BatchError as err:
        assert "\n" not in str(err)
        assert not valid, f"a valid batch was refused: {err}"
        return
    assert valid, "an invalid batch became a batch"
    ids = out["input_ids"][out["attention_mask"].bool()]
    assert bool(((ids >= 0) & (ids < V)).all())
    labels = out["labels"]
    assert bool(((labels == -100) | ((labels >= 0) & (labels < V))).all())


@pytest.mark.parametrize("name", SPECS)
@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(case=st.one_of(listed(), padded()))
def test_any_input_is_a_clear_error_or_a_valid_batch(name: str, case: tuple[Any, bool]) -> None:
    batch, valid = case
    check(name, batch, valid)


def test_the_oracle_follows_the_documented_rule() -> None:
    assert not _ok_entry(math.nan) and not _ok_entry(2.5) and _ok_entry(3.0) and _ok_entry(True)
    assert not _ok_first([True, 3]) and not _ok_first([3.0]) and _ok_first([3, 2.0])

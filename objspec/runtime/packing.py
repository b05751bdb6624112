"""Packing: the corrupted rows of several documents (examples) in one row.

Pre-training packs documents into rows so that no compute is spent on padding. Each document
is corrupted alone first (its draws are keyed by its own key and positions, as always), so
packing never changes a document's corruption; then the rows are laid end to end:

- ``pack=N``: greedy, in order, into rows of N columns; a document never straddles two rows.
  ``position_ids`` restart at each document, ``document_ids`` (-1 on padding) tell the heads
  (``rt.encode``) to keep attention inside a document (a block-diagonal mask, with the
  decoder-only form's causal / prefix mask inside each block);
- ``pack="flat"``: every document in one row with no padding at all, in the layout of Hugging
  Face's ``DataCollatorWithFlattening``: ``position_ids`` restarting per document,
  ``cu_seq_lens_q/k`` (D + 1,) int32, ``max_length_q/k`` ints and ``seq_idx``, which
  flash-attention's variable-length kernels read.

In the decoder-only form, each document's first label is -100: a causal LM predicts the
token after each position, so that label would be predicted from the previous document.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from objspec.runtime.batch import BatchError
from objspec.runtime.layout import POSITION_VALUED, fill_value
from objspec.runtime.replace import IGNORE_INDEX

FLAT = "flat"


def pack_assignment(lengths: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Greedy in-order packing of documents of ``lengths`` (D,) into rows of ``width``:
    (D,) row of each document and (D,) its first column there. One searchsorted per packed
    row (not per document)."""
    rows = np.zeros(len(lengths), dtype=np.int64)
    offsets = np.zeros(len(lengths), dtype=np.int64)
    start, row = 0, 0
    while start < len(lengths):
        ends = np.cumsum(lengths[start:])
        take = max(1, int(np.searchsorted(ends, width, side="right")))
        rows[start : start + take] = row
        offsets[start : start + take] = ends[:take] - lengths[start : start + take]
        start, row = start + take, row + 1
    return rows, offsets


def packable(out: dict[str, Any]) -> None:
    """A BatchError naming what stops this batch from being packed: per-example outputs,
    (B, L, L) attention outputs, decoder targets, contrastive views."""
    blocked = [
        key
        for key, value in out.items()
        if value.dim() != 2
        or key.startswith(("decoder_", "view_"))
        or value.shape[1] != out["input_ids"].shape[1]
    ]
    if "block_position_ids" in out:
        raise BatchError(
            "GLM's batch cannot be packed: packing rewrites position_ids, which hold Part B's "
            "[MASK] positions beside block_position_ids"
        )
    if blocked:
        raise BatchError(
            f"this objective's batch cannot be packed: {', '.join(blocked)} "
            "(per-example, per-pair or encoder-decoder outputs); packing takes encoder and "
            "decoder-only batches"
        )


def pack_rows(
    out: dict[str, torch.Tensor], pack: int | str, pad_id: int, decoder_only: bool
) -> dict[str, Any]:
    """The documents of ``out`` (B, L) packed into rows (see the module docstring)."""
    packable(out)
    valid = out["attention_mask"].bool()
    lengths = valid.sum(dim=1).cpu().numpy()
    width = int(lengths.sum()) if pack == FLAT else int(pack)
    if int(lengths.max(initial=0)) > width:
        longest = int(lengths.argmax())
        raise BatchError(
            f"example {longest} has {int(lengths[longest])} tokens, more than pack={width}: "
            "cut documents with max_length"
        )
    rows, offsets = pack_assignment(lengths, max(width, 1))
    device = valid.device
    row = torch.from_numpy(rows).to(device)
    offset = torch.from_numpy(offsets).to(device)
    shape = (int(rows.max(initial=-1)) + 1, width)
    columns = torch.arange(valid.shape[1], device=device).unsqueeze(0)
    target = (row.unsqueeze(1) * width + offset.unsqueeze(1) + columns)[valid]  # flat index

    def scatter(values: torch.Tensor, fill: int) -> torch.Tensor:
        packed = torch.full(shape, fill, dtype=values.dtype, device=device)
        packed.view(-1)[target] = values[valid]
        return packed

    packed = {}
    for key, value in out.items():
        if key in POSITION_VALUED:
            value = torch.where(value >= 0, value + offset.unsqueeze(1), value)
        packed[key] = scatter(value, fill_value(key, pad_id))
    packed["position_ids"] = scatter(columns.expand_as(valid), 0)
    number = np.arange(len(rows)) - np.searchsorted(rows, rows, side="left")  # within its row
    packed["document_ids"] = scatter(
        torch.from_numpy(number).to(device)[:, None].expand_as(valid), -1
    )
    if decoder_only:  # no label is predicted from the previous document
        starts = (row * width + offset)[torch.from_numpy(lengths > 0).to(device)]
        packed["labels"].view(-1)[starts] = IGNORE_INDEX
    if pack == FLAT:
        packed.update(flat_extras(lengths, packed["document_ids"]))
    return packed


def flat_extras(lengths: np.ndarray, document_ids: torch.Tensor) -> dict[str, Any]:
    """Hugging Face's padding-free keys for one flat row of documents of ``lengths``."""
    cumulative = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    cu = torch.from_numpy(cumulative).to(document_ids.device)
    longest = int(lengths.max(initial=0))
    return {
        "cu_seq_lens_q": cu,
        "cu_seq_lens_k": cu.clone(),
        "max_length_q": longest,
        "max_length_k": longest,
        "seq_idx": document_ids.to(torch.int32),
    }

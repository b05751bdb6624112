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

**The encoder-decoder form** (T5, BART, MASS, UL2) packs its two sides with one assignment:
documents go to rows by their encoder length alone (``input_ids`` and every output of its
width fit in N, as above), and each document's decoder part (``decoder_input_ids``,
``decoder_attention_mask``, ``labels``, ``decoder_position_ids``) lands in the same row, in
the same order, laid end to end in rows of their own width: the longest packed decoder row
(so the decoder side is not bounded by N: BART's targets are longer than its inputs; the
collator's ``pad_to_multiple_of`` then buckets that width like any other). The packed batch
adds ``decoder_document_ids`` (the same numbers as ``document_ids``, -1 on padding) and
``decoder_position_ids``: when the objective has none, 0.. restarting at each document; MASS's
keep their values, which are positions in the document's own encoder row (as the restarted
``position_ids`` count: the encoder column of a target is its decoder position plus the
first column of its document). Labels are not shifted by the head in this form (the
document's ``decoder_input_ids`` are its targets shifted right within the document, starting
with its own start token, before packing), so no label changes: what keeps a label from
seeing another document is the attention, which ``rt.encode`` keeps inside each document on
all three sides (encoder self-attention, causal decoder self-attention, cross-attention from a
decoder token to its own document's encoder tokens). With ``pack="flat"`` both sides are one
row each; there is no Hugging Face convention for flattened encoder-decoder batches, and these
keys are what flash-attention's varlen cross-attention reads (queries the decoder, keys the
encoder): ``cu_seq_lens_q`` (D + 1,) int32 the decoder's document boundaries,
``cu_seq_lens_k`` the encoder's, ``max_length_q`` / ``max_length_k`` the longest document on
each side; the encoder's self-attention takes ``cu_seq_lens_k`` for both, the decoder's
``cu_seq_lens_q`` for both (causal); ``seq_idx`` is the encoder's ``document_ids`` (int32).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from objspec.runtime.batch import BatchError
from objspec.runtime.layout import POSITION_VALUED, fill_value
from objspec.runtime.replace import IGNORE_INDEX

FLAT = "flat"
DECODER = "decoder_"  # the prefix of the decoder group's keys (and of its mask)


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


def offsets_in_rows(rows: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """(D,) int64: the first column of each document when the documents of ``lengths`` (D,)
    are laid end to end in the rows ``rows`` (D,) (non-decreasing) already assigned."""
    starts = np.cumsum(lengths) - lengths
    return starts - starts[np.searchsorted(rows, rows, side="left")]


def document_numbers(rows: np.ndarray) -> np.ndarray:
    """(D,) int64: each document's number within its row (0, 1, ..), ``rows`` (D,)
    non-decreasing."""
    return np.arange(len(rows)) - np.searchsorted(rows, rows, side="left")


@dataclass(frozen=True)
class Placement:
    """Where the tokens of one group of outputs (the inputs, or the decoder targets) land:
    ``valid`` (D, W_in) bool the documents' tokens, ``target`` (N,) int64 the flat index of
    each of them in the packed (R, W) ``shape``, ``offset`` (D,) int64 each document's first
    column."""

    valid: torch.Tensor
    target: torch.Tensor
    offset: torch.Tensor
    shape: tuple[int, int]

    def scatter(self, values: torch.Tensor, fill: int) -> torch.Tensor:
        """(R, W) of ``values``' dtype: ``values`` (D, W_in) at their documents' tokens,
        ``fill`` elsewhere."""
        packed = torch.full(self.shape, fill, dtype=values.dtype, device=values.device)
        packed.view(-1)[self.target] = values[self.valid]
        return packed

    def positions(self) -> torch.Tensor:
        """(R, W) int64: 0.. restarting at each document, 0 on padding."""
        columns = torch.arange(self.valid.shape[1], device=self.valid.device)
        return self.scatter(columns.expand_as(self.valid), 0)

    def per_document(self, values: np.ndarray) -> torch.Tensor:
        """(R, W) int64: ``values`` (D,) on each document's tokens, -1 on padding."""
        per = torch.from_numpy(values).to(self.valid.device)
        return self.scatter(per[:, None].expand_as(self.valid), -1)


def placement(valid: torch.Tensor, rows: np.ndarray, offsets: np.ndarray, width: int) -> Placement:
    """The :class:`Placement` of documents ``valid`` (D, W_in) bool in rows ``rows`` (D,) at
    columns ``offsets`` (D,) of packed rows ``width`` wide."""
    device = valid.device
    row = torch.from_numpy(rows).to(device)
    offset = torch.from_numpy(offsets).to(device)
    columns = torch.arange(valid.shape[1], device=device).unsqueeze(0)
    target = (row.unsqueeze(1) * width + offset.unsqueeze(1) + columns)[valid]
    return Placement(valid, target, offset, (int(rows.max(initial=-1)) + 1, width))


def is_encoder_decoder(out: dict[str, Any]) -> bool:
    """Whether ``out`` is an encoder-decoder batch (decoder targets with their own mask)."""
    return f"{DECODER}attention_mask" in out


def target_keys(out: dict[str, Any]) -> list[str]:
    """The keys of ``out`` laid out like the decoder targets: ``decoder_*`` and, in the
    encoder-decoder form, ``labels``."""
    if not is_encoder_decoder(out):
        return []
    return [key for key in out if key.startswith(DECODER) or key == "labels"]


def packable(out: dict[str, Any]) -> None:
    """A BatchError naming what stops this batch from being packed: several tasks' batches
    (``task.key``), GLM's 2D positions, per-example outputs, (B, L, L) attention outputs,
    contrastive views, and outputs as wide as neither the inputs nor the decoder targets."""
    tasks = sorted({key.split(".")[0] for key in out if "." in key})
    if tasks:
        raise BatchError(
            f"a composition of several tasks cannot be packed yet ({', '.join(tasks)}: each "
            "task's batch under its own name); use pack=None"
        )
    if "block_position_ids" in out:
        raise BatchError(
            "GLM's batch cannot be packed: packing rewrites position_ids, which hold Part B's "
            "[MASK] positions beside block_position_ids"
        )
    targets = target_keys(out)
    widths = {key: out["input_ids"].shape[1] for key in out}
    widths.update({key: out[f"{DECODER}attention_mask"].shape[1] for key in targets})
    blocked = [
        key
        for key, value in out.items()
        if not isinstance(value, torch.Tensor)
        or value.dim() != 2
        or key.startswith("view_")
        or (key.startswith(DECODER) and key not in targets)
        or value.shape[1] != widths[key]
    ]
    if blocked:
        raise BatchError(
            f"this objective's batch cannot be packed: {', '.join(blocked)} (per-example, "
            "per-pair, (B, L, L) attention or contrastive-view outputs); packing takes "
            "encoder, decoder-only and encoder-decoder batches of one sequence per example"
        )


def pack_rows(
    out: dict[str, torch.Tensor], pack: int | str, pad_id: int, decoder_only: bool
) -> dict[str, Any]:
    """The documents of ``out`` (B, L) packed into rows (see the module docstring)."""
    packable(out)
    lengths = out["attention_mask"].bool().sum(dim=1).cpu().numpy()
    width = int(lengths.sum()) if pack == FLAT else int(pack)
    if int(lengths.max(initial=0)) > width:
        longest = int(lengths.argmax())
        raise BatchError(
            f"example {longest} has {int(lengths[longest])} tokens, more than pack={width}: "
            "cut documents with max_length"
        )
    rows, offsets = pack_assignment(lengths, max(width, 1))
    targets = target_keys(out)
    inputs = {key: value for key, value in out.items() if key not in targets}
    packed = pack_inputs(inputs, rows, offsets, width, pad_id)
    if decoder_only:  # no label is predicted from the previous document
        starts = torch.from_numpy((rows * width + offsets)[lengths > 0])
        packed["labels"].view(-1)[starts.to(packed["labels"].device)] = IGNORE_INDEX
    target_lengths = None
    if targets:
        decoder = pack_targets({key: out[key] for key in targets}, rows, pad_id)
        packed.update(decoder)
        target_lengths = out[f"{DECODER}attention_mask"].bool().sum(dim=1).cpu().numpy()
    if pack == FLAT:
        packed.update(flat_extras(lengths, packed["document_ids"], target_lengths))
    return packed


def pack_inputs(
    inputs: dict[str, torch.Tensor],
    rows: np.ndarray,
    offsets: np.ndarray,
    width: int,
    pad_id: int,
) -> dict[str, torch.Tensor]:
    """The outputs laid out like ``input_ids`` (D, L) packed into (R, ``width``) at
    ``rows``/``offsets`` (D,), position-valued outputs moved by their document's offset, plus
    ``position_ids`` and ``document_ids`` (R, width) int64."""
    place = placement(inputs["attention_mask"].bool(), rows, offsets, width)
    packed = {}
    for key, value in inputs.items():
        if key in POSITION_VALUED:
            value = torch.where(value >= 0, value + place.offset.unsqueeze(1), value)
        packed[key] = place.scatter(value, fill_value(key, pad_id))
    packed["position_ids"] = place.positions()
    packed["document_ids"] = place.per_document(document_numbers(rows))
    return packed


def pack_targets(
    targets: dict[str, torch.Tensor], rows: np.ndarray, pad_id: int
) -> dict[str, torch.Tensor]:
    """The decoder targets (D, T) (``decoder_*``, ``labels``) packed into the same rows
    ``rows`` (D,) as their documents' inputs, end to end in the same order, (R, T') with T'
    the longest packed decoder row; plus ``decoder_document_ids`` (R, T') int64 and, when the
    objective has none, ``decoder_position_ids`` (0.. restarting at each document)."""
    valid = targets[f"{DECODER}attention_mask"].bool()
    lengths = valid.sum(dim=1).cpu().numpy()
    offsets = offsets_in_rows(rows, lengths)
    width = int((offsets + lengths).max(initial=0))
    place = placement(valid, rows, offsets, width)
    packed = {key: place.scatter(value, fill_value(key, pad_id)) for key, value in targets.items()}
    if f"{DECODER}position_ids" not in packed:
        packed[f"{DECODER}position_ids"] = place.positions()
    packed[f"{DECODER}document_ids"] = place.per_document(document_numbers(rows))
    return packed


def flat_extras(
    lengths: np.ndarray, document_ids: torch.Tensor, target_lengths: np.ndarray | None = None
) -> dict[str, Any]:
    """Hugging Face's padding-free keys for one flat row of documents of ``lengths`` (D,):
    queries and keys alike (self-attention); in the encoder-decoder form the queries are the
    decoder's documents of ``target_lengths`` (D,) and the keys the encoder's."""
    queries = lengths if target_lengths is None else target_lengths
    return {
        "cu_seq_lens_q": cumulative_lengths(queries, document_ids.device),
        "cu_seq_lens_k": cumulative_lengths(lengths, document_ids.device),
        "max_length_q": int(queries.max(initial=0)),
        "max_length_k": int(lengths.max(initial=0)),
        "seq_idx": document_ids.to(torch.int32),
    }


def cumulative_lengths(lengths: np.ndarray, device: torch.device) -> torch.Tensor:
    """(D + 1,) int32: 0 and the running sums of ``lengths`` (D,), flash-attention's
    ``cu_seqlens``."""
    cumulative = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    return torch.from_numpy(cumulative).to(device)

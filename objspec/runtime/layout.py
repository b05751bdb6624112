"""Batch out: the layout of a corrupted batch (pass-through fields, width, padding side).

A collator corrupts a left-aligned batch (every row's tokens from column 0). These functions
then give its outputs the layout a Hugging Face collator would: the fields the spec does not
touch passed through, widths padded to a multiple, and rows padded on the tokenizer's side.
Outputs come in groups that share one validity mask: the inputs (``attention_mask``), the
decoder targets (``decoder_attention_mask``, with ``labels`` in the encoder-decoder form) and
a contrastive view (``view_attention_mask``).
"""

from __future__ import annotations

import torch

from objspec.runtime.replace import IGNORE_INDEX

SQUARE_OUTPUTS = ("perm_mask", "target_mapping", "self_attention_mask")  # (B, L, L)
POSITION_OUTPUTS = ("target_positions",)  # (B, P) positions in the row, -1 past the last
# values are positions in the row, or -1 (moved with their row's tokens). MASS's
# decoder_position_ids are not: they are positions within the document, as position_ids are
POSITION_VALUED = ("span_start", "span_end", "target_positions")
TARGET_KEYS = ("labels", "decoder_input_ids", "decoder_attention_mask", "decoder_position_ids")
ID_OUTPUTS = ("input_ids", "decoder_input_ids", "view_input_ids")  # padded with the pad id
MINUS_ONE_OUTPUTS = (
    "span_start",
    "span_end",
    "perm_order",
    "target_positions",
    "document_ids",
    "decoder_document_ids",
)
GROUP_PREFIXES = ("decoder_", "view_", "")  # each group's mask is ``<prefix>attention_mask``


def fill_value(key: str, pad_id: int) -> int:
    """What a padded column of output ``key`` holds."""
    if key in ID_OUTPUTS:
        return pad_id
    if key == "labels":
        return IGNORE_INDEX
    return -1 if key in MINUS_ONE_OUTPUTS else 0


def group_of(key: str, out: dict[str, torch.Tensor]) -> str | None:
    """The prefix of the group whose mask ``key``'s columns follow, or None for a
    per-example output (B,) or one whose columns are not positions of a row."""
    value = out[key]
    if not isinstance(value, torch.Tensor) or value.dim() < 2 or key in POSITION_OUTPUTS:
        return None  # per-example outputs; a packed batch's ints (max_length_q)
    if key == "labels" and "decoder_attention_mask" in out:
        return "decoder_"
    for prefix in GROUP_PREFIXES:
        if key.startswith(prefix) and f"{prefix}attention_mask" in out:
            return prefix
    return None


def pad_to_multiple(
    out: dict[str, torch.Tensor], multiple: int, pad_id: int
) -> dict[str, torch.Tensor]:
    """Every row-shaped output padded on the right to a width that is a multiple of
    ``multiple`` (square outputs in both dimensions), with :func:`fill_value`."""
    for key, value in out.items():
        if group_of(key, out) is None:
            continue
        width = value.shape[1]
        extra = -width % multiple
        if extra:
            pads: tuple[int, ...] = (0, extra, 0, extra) if key in SQUARE_OUTPUTS else (0, extra)
            if key not in SQUARE_OUTPUTS and value.dim() > 2:
                pads = (0, 0) * (value.dim() - 2) + pads
            fill = fill_value(key, pad_id)
            out[key] = torch.nn.functional.pad(value, pads, value=fill)
    return out


def to_left_padding(out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Right-padded outputs moved to the left: each row of a group is rolled right by its
    padding width (square outputs in both dimensions); position-valued outputs shift by the
    same amount (their -1 stays)."""
    shifts = {
        prefix: out[f"{prefix}attention_mask"].shape[1] - out[f"{prefix}attention_mask"].sum(dim=1)
        for prefix in GROUP_PREFIXES
        if f"{prefix}attention_mask" in out
    }
    moved: dict[str, torch.Tensor] = {}
    for key, value in out.items():
        prefix = group_of(key, out)
        if prefix is not None:
            value = _roll_rows(value, shifts[prefix], square=key in SQUARE_OUTPUTS)
        if key in POSITION_VALUED and "" in shifts:
            value = torch.where(value >= 0, value + _as_column(shifts[""], value), value)
        moved[key] = value
    return moved


def _as_column(shift: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return shift.view(-1, *([1] * (like.dim() - 1)))


def _roll_rows(value: torch.Tensor, shift: torch.Tensor, square: bool) -> torch.Tensor:
    """Row b of ``value`` (B, W, ...) rolled right by ``shift[b]`` columns (a gather)."""
    width = value.shape[1]
    columns = torch.arange(width, device=value.device).unsqueeze(0)
    source = (columns - shift.unsqueeze(1)) % width if width else columns.expand(len(shift), 0)
    rolled = value.gather(
        1, source.view(*source.shape, *([1] * (value.dim() - 2))).expand_as(value)
    )
    if square:
        rolled = rolled.gather(2, source.unsqueeze(1).expand_as(rolled))
    return rolled


def pass_through(
    out: dict[str, torch.Tensor],
    extras: dict[str, torch.Tensor],
    per_token: frozenset[str],
    same_layout: bool,
) -> list[str]:
    """Add the batch's fields the spec does not write to ``out``: per-example ones always,
    per-token ones only where the inputs kept their layout (``same_layout``: no token moved,
    deleted or inserted). Returns the per-token fields left out because the layout changed."""
    dropped = []
    for key, value in extras.items():
        if key in out:
            continue
        if key in per_token and not same_layout:
            dropped.append(key)
            continue
        out[key] = value
    return dropped

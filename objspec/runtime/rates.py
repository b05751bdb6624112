"""Rates drawn per example, and the loss weights that follow from them (masked diffusion).

A masked diffusion LM (MDLM, LLaDA) draws one masking rate per sequence, masks each token with
that probability and weights the sequence's loss by the inverse rate. The rate comes from the
example's own key (``Keys.draw`` at counter 0 of its stream), so it is the same in any batch, at
any padding, on any device, like every other draw.
"""

from __future__ import annotations

import torch

from objspec.runtime.replace import IGNORE_INDEX
from objspec.runtime.rng import U32, Keys

LOSS_OVER = ("selected", "tokens", "examples")


def uniform_rates(keys: Keys, stream: int, low: float, high: float) -> torch.Tensor:
    """(B,) float64: one rate per example, uniform on [low, high) (a 32-bit draw, so the grid is
    2**-32 of the interval)."""
    u = keys.draw(stream, 1)[:, 0].to(torch.float64) / U32
    return low + (high - low) * u


def rate_thresholds(rates: torch.Tensor) -> torch.Tensor:
    """(B, 1) int64: ``u < threshold`` has probability ``rates[b]`` for a uniform 32-bit u."""
    return torch.round(rates * U32).to(torch.int64).unsqueeze(1)


def bernoulli_select_rates(
    keys: Keys, stream: int, candidate_starts: torch.Tensor, rates: torch.Tensor
) -> torch.Tensor:
    """(B, L) bool: each candidate unit start of row b independently with probability
    ``rates[b]`` ((B,) float64)."""
    draws = keys.draw(stream, candidate_starts.shape[1])
    return candidate_starts & (draws < rate_thresholds(rates))


def label_weights(
    labels: torch.Tensor,
    candidates: torch.Tensor,
    rates: torch.Tensor | None,
    over: str,
) -> torch.Tensor:
    """(B, L) float32: each labelled position's weight in the loss, 0 where nothing is predicted.

    ``rates`` (B,) float64, when given, weights a row's labels by its inverse rate (MDLM's
    1/t, LLaDA's 1/p_mask). ``over`` says what the loss is averaged over: ``selected`` and
    ``tokens`` leave the weights as they are (the head divides by the batch's labelled or real
    token count); ``examples`` divides each row's weights by its candidate count (LLaDA's
    answer length), and the head divides by the number of rows.
    """
    if over not in LOSS_OVER:
        raise ValueError(f"unknown loss average {over!r} (one of {', '.join(LOSS_OVER)})")
    labelled = labels != IGNORE_INDEX
    per_row = torch.ones(labels.shape[0], dtype=torch.float64, device=labels.device)
    if rates is not None:
        per_row = per_row / rates
    if over == "examples":
        per_row = per_row / candidates.sum(dim=1).clamp(min=1)
    return torch.where(labelled, per_row.unsqueeze(1), 0.0).to(torch.float32)


def loss_total(
    labels: torch.Tensor, attention_mask: torch.Tensor | None, over: str
) -> torch.Tensor:
    """() float32: the loss's denominator for ``over``: the batch's labelled positions
    (``selected``), its real tokens (``tokens``, MDLM's sum of the attention mask) or its rows
    (``examples``). At least 1, so a batch with nothing to predict has loss 0."""
    if over == "selected":
        total = (labels != IGNORE_INDEX).sum()
    elif over == "tokens":
        mask = attention_mask if attention_mask is not None else torch.ones_like(labels)
        total = mask.sum()
    elif over == "examples":
        total = torch.tensor(labels.shape[0], device=labels.device)
    else:
        raise ValueError(f"unknown loss average {over!r} (one of {', '.join(LOSS_OVER)})")
    return total.clamp(min=1).to(torch.float32)

"""The optimisation of a run: AdamW's parameter groups (weight decay on matrices only) and
the learning-rate schedule (warm-up, then constant, linear or cosine)."""

from __future__ import annotations

import math
from typing import Any

from torch import nn


def lr_factor(step: int, steps: int, warmup: int, kind: str) -> float:
    """The learning rate of optimizer step ``step`` (from 0) as a fraction of ``--lr``, as
    ``transformers.get_scheduler`` computes it: ``step / warmup`` during the warm-up, then
    constant, linear to 0 at ``steps``, or a half cosine to 0."""
    if step < warmup:
        return step / max(1, warmup)
    if kind == "constant":
        return 1.0
    progress = (step - warmup) / max(1, steps - warmup)
    if kind == "linear":
        return max(0.0, 1.0 - progress)
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))


def parameter_groups(module: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW's groups: weight decay on matrices (weights, embeddings), none on biases and
    norm scales (1-d), as BERT and Hugging Face's Trainer do."""
    decayed: list[nn.Parameter] = []
    kept: list[nn.Parameter] = []
    seen: set[int] = set()
    for parameter in module.parameters():
        if not parameter.requires_grad or id(parameter) in seen:
            continue
        seen.add(id(parameter))
        (decayed if parameter.dim() >= 2 else kept).append(parameter)
    groups = [{"params": decayed, "weight_decay": weight_decay}]
    if kept:
        groups.append({"params": kept, "weight_decay": 0.0})
    return groups

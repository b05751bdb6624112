"""What a run is: :class:`PretrainConfig` (what it trains, on what, and where it writes), the
checks its settings must pass, and what identifies a run for a resume (the settings a resumed
run must share with its checkpoint, and the hashes of the contents it trains on)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from objspec.pretrain import hf
from objspec.pretrain.checkpoints import file_sha256, folder_sha256

MIXED_PRECISION = ("no", "bf16", "fp16")
SCHEDULERS = ("constant", "linear", "cosine")


@dataclass
class PretrainConfig:
    """What a run trains, on what, and where it writes. ``batch_size`` is the global batch
    (split over the ranks under torchrun, then into ``grad_accum`` micro-batches)."""

    spec: str
    out: str = "runs/pretrain"
    steps: int = 200
    batch_size: int = 32
    lr: float = 1e-3
    seed: int = 0
    max_length: int = 64
    # the tiny model (no --model)
    hidden_size: int = 64
    layers: int = 2
    heads: int = 4
    dropout: float = 0.1
    # a Hugging Face model and tokenizer (local only)
    model: str | None = None
    tokenizer: str | None = None
    loss_from: str = "auto"
    # data
    text: list[str] = field(default_factory=list)
    dataset: str | None = None
    text_column: str = "text"
    train_split: str = "train"
    eval_split: str | None = None
    eval_fraction: float = 0.0
    eval_every: int = 50
    language: str = "en"
    limit: int | None = None  # train on the corpus' first ``limit`` examples only
    workers: int = 0
    # optimisation
    grad_accum: int = 1
    mixed_precision: str = "no"
    scheduler: str = "constant"
    warmup_steps: int = 0
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    # checkpoints and logs
    checkpoint_every: int = 50
    keep_last: int = 3
    log: str = "csv"
    device: str = "cpu"


RESUME_FIXED = (
    "seed",
    "batch_size",
    "max_length",
    "hidden_size",
    "layers",
    "heads",
    "limit",
    "loss_from",
    "text_column",
    "train_split",
    "eval_split",
    "eval_fraction",
    "language",
)  # what a resumed run must share with the checkpoint's (beside the contents it trains on)


def check_config(config: PretrainConfig) -> None:
    """Raise ValueError for settings no run can train with."""
    if config.steps < 0 or config.batch_size < 1 or config.checkpoint_every < 1:
        raise ValueError("steps must be >= 0, batch_size and checkpoint_every >= 1")
    if config.grad_accum < 1 or config.eval_every < 1 or config.keep_last < 0:
        raise ValueError("grad_accum and eval_every must be >= 1, keep_last >= 0")
    if config.model is None and (
        config.hidden_size < 1 or config.heads < 1 or config.hidden_size % config.heads
    ):
        raise ValueError(
            f"hidden_size {config.hidden_size} must be a positive multiple of the "
            f"{config.heads} attention heads"
        )
    if config.mixed_precision not in MIXED_PRECISION:
        raise ValueError(f"mixed_precision must be one of {', '.join(MIXED_PRECISION)}")
    if config.scheduler not in SCHEDULERS:
        raise ValueError(f"scheduler must be one of {', '.join(SCHEDULERS)}")
    if config.loss_from not in hf.LOSS_FROM:
        raise ValueError(f"loss_from must be one of {', '.join(hf.LOSS_FROM)}")
    if not 0.0 <= config.eval_fraction < 1.0:
        raise ValueError("eval_fraction must be in [0, 1)")
    if config.dataset is not None and config.text:
        raise ValueError("give --dataset or --text, not both")


def source_hashes(config: PretrainConfig, tokenizer: hf.TokenizerChoice) -> dict[str, Any]:
    """The contents a run trains on: the spec's sha256, each text file's in order, the
    dataset folder's, the model config's and the tokenizer's."""
    return {
        "spec": file_sha256(config.spec),
        "text": [file_sha256(t) for t in config.text],
        "dataset": (folder_sha256(config.dataset) if config.dataset is not None else None),
        "model": (file_sha256(_config_file(config.model)) if config.model is not None else None),
        "tokenizer": hf.tokenizer_hash(tokenizer),
    }


def _config_file(model: str) -> Path:
    path = Path(model)
    return path / "config.json" if path.is_dir() else path

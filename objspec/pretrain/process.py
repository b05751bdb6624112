"""This process's part in a run: the ``accelerate`` accelerator, the rank's device, the
process group torchrun describes, and the stop signals (SIGINT, SIGTERM) noted while training."""

from __future__ import annotations

import contextlib
import os
import signal
from typing import Any

import torch
import torch.distributed as dist

from objspec.pretrain.config import PretrainConfig


class StopRequests:
    """SIGINT and SIGTERM while training: note the signal, let the step finish (the run then
    checkpoints and stops). ``signal_number`` is the first one received, or None."""

    def __init__(self) -> None:
        self.signal_number: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopRequests:
        for number in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):  # not the main thread: signals stay as they are
                self._previous[number] = signal.signal(number, self._note)
        return self

    def _note(self, number: int, frame: Any) -> None:
        self.signal_number = self.signal_number or number

    def __exit__(self, *exc: object) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)


def make_accelerator(config: PretrainConfig) -> Any:
    """An ``accelerate.Accelerator`` for this run (one per process: a second run in the same
    process with other settings resets accelerate's process-wide state first)."""
    try:
        from accelerate import Accelerator, DistributedDataParallelKwargs
        from accelerate.state import AcceleratorState
    except ImportError:  # pragma: no cover - depends on the environment
        raise ValueError(
            "objspec pretrain runs on accelerate: pip install 'objspec[pretrain]'"
        ) from None

    options = {
        "cpu": torch.device(config.device).type == "cpu",
        "mixed_precision": config.mixed_precision,
        # single-segment objectives leave the tiny model's token-type table unused
        "kwargs_handlers": [DistributedDataParallelKwargs(find_unused_parameters=True)],
    }
    try:
        return Accelerator(**options)
    except ValueError as exc:
        if "already been initialized" not in str(exc):
            raise
        AcceleratorState._reset_state()
        return Accelerator(**options)


def rank_device(device: str) -> torch.device:
    """The device of this rank: under torchrun, ``cuda`` means this rank's own GPU
    (``LOCAL_RANK``), made current for NCCL."""
    chosen = torch.device(device)
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but CUDA is not available here")
    if chosen.type == "cuda" and chosen.index is None and "LOCAL_RANK" in os.environ:
        chosen = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    if chosen.type == "cuda":
        torch.cuda.set_device(chosen)
    return chosen


def init_distributed() -> bool:
    """Join the process group torchrun describes (gloo on CPU, nccl on GPU); False when not
    launched by torchrun."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return False
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return True

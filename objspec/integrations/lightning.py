"""objspec under PyTorch Lightning.

Lightning sets its samplers' epoch, never its collate function's. One line keeps dynamic
masks dynamic::

    trainer = lightning.Trainer(..., callbacks=[EpochCallback(collator)])

The callback sets the collator's epoch at every epoch's start, before that epoch's first batch
is requested (tested with persistent workers and a resumed run).
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch.callbacks import Callback

from objspec.runtime.collator import Collator


class EpochCallback(Callback):
    """Sets ``collator``'s epoch to ``trainer.current_epoch`` under ``lightning.Trainer``."""

    def __init__(self, collator: Collator) -> None:
        if not hasattr(collator, "set_epoch"):
            raise TypeError(f"EpochCallback needs an objspec collator, got {type(collator)}")
        self.collator = collator

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self.collator.set_epoch(int(trainer.current_epoch))

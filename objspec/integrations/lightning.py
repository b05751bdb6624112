"""objspec under PyTorch Lightning.

Lightning sets its samplers' epoch, never its collate function's. One line keeps dynamic
masks dynamic::

    trainer = lightning.Trainer(..., callbacks=[EpochCallback(collator)])

The callback sets the collator's epoch at every epoch's start, before that epoch's first batch
is requested. A resumed run is the subtle case: Lightning creates the first epoch's data
iterator (and persistent workers start collating) before any epoch hook runs, so the callback
also sets the epoch the run resumes in when fitting starts, read from the checkpoint's loop
progress as Lightning restores it.
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch.callbacks import Callback

from objspec.runtime.collator import Collator


def resumed_epoch(checkpoint: dict[str, Any]) -> int | None:
    """The epoch a run resumed from ``checkpoint`` continues in, or None when it does not say:
    Lightning's ``current_epoch`` after the restore, the fit loop's processed epochs (its
    ``on_run_start`` sets the completed count to them)."""
    try:
        progress = checkpoint["loops"]["fit_loop"]["epoch_progress"]["current"]
        return int(progress["processed"])
    except (KeyError, TypeError, ValueError):
        return None


class EpochCallback(Callback):
    """Sets ``collator``'s epoch under ``lightning.Trainer``: the resumed epoch when fitting
    starts, ``trainer.current_epoch`` at each epoch's start."""

    def __init__(self, collator: Collator) -> None:
        if not hasattr(collator, "set_epoch"):
            raise TypeError(f"EpochCallback needs an objspec collator, got {type(collator)}")
        self.collator = collator
        self.resumed: int | None = None

    def on_load_checkpoint(self, trainer: Any, pl_module: Any, checkpoint: dict[str, Any]) -> None:
        self.resumed = resumed_epoch(checkpoint)
        if self.resumed is not None:
            self.collator.set_epoch(self.resumed)

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        # a fresh run starts at 0 (a collator reused from an earlier fit may hold another)
        epoch = self.resumed if self.resumed is not None else int(trainer.current_epoch)
        self.collator.set_epoch(epoch)

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self.collator.set_epoch(int(trainer.current_epoch))

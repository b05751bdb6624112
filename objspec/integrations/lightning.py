"""objspec under PyTorch Lightning.

Lightning sets its samplers' epoch, never its collate function's. One line keeps dynamic
masks dynamic::

    trainer = lightning.Trainer(..., callbacks=[EpochCallback(collator)])

:class:`ObjspecModule` trains any compiled objective's heads. The callback sets the
collator's epoch at every epoch's start, before that epoch's first batch
is requested. A resumed run is the subtle case: Lightning creates the first epoch's data
iterator (and persistent workers start collating) before any epoch hook runs, so the callback
also sets the epoch the run resumes in when fitting starts, read from the checkpoint's loop
progress as Lightning restores it.
"""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch import LightningModule
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


class ObjspecModule(LightningModule):
    """A ``LightningModule`` for any compiled objective: ``ObjspecModule(compiled.Heads(model),
    lr=1e-3)``. Each step runs the heads on the collated batch and returns ``'loss'``, their
    weighted sum; each head's loss is logged beside it (``train/loss_mlm``, ...), and the
    validation loss as ``val/loss``. Optimizer: AdamW over the heads (the model included),
    ``lr`` and ``weight_decay`` as given. Pair it with :class:`EpochCallback` on the
    collator."""

    def __init__(self, heads: torch.nn.Module, lr: float = 1e-3, weight_decay: float = 0.0):
        super().__init__()
        self.heads = heads
        self.lr = lr
        self.weight_decay = weight_decay

    def _losses(self, batch: dict[str, torch.Tensor], stage: str) -> torch.Tensor:
        losses = self.heads(batch)
        rows = int(batch["input_ids"].shape[0])
        for name, value in losses.items():
            key = f"{stage}/loss" if name == "loss" else f"{stage}/loss_{name}"
            self.log(key, value.detach(), batch_size=rows, prog_bar=name == "loss")
        return losses["loss"]  # type: ignore[no-any-return]

    def training_step(self, batch: dict[str, torch.Tensor], batch_index: int) -> torch.Tensor:
        return self._losses(batch, "train")

    def validation_step(self, batch: dict[str, torch.Tensor], batch_index: int) -> torch.Tensor:
        return self._losses(batch, "val")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(
            self.heads.parameters(), lr=self.lr, weight_decay=self.weight_decay
        )

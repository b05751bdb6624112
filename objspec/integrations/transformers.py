"""objspec under ``transformers.Trainer``.

``Trainer`` tells its sampler the epoch, never its ``data_collator``, and by default
(``remove_unused_columns=True``) it drops every dataset column its model's ``forward`` does not
take, ``index``, ``word_ids`` and ``sentence_ids`` included. One line keeps dynamic masks
dynamic::

    trainer = Trainer(..., data_collator=collator, callbacks=[EpochCallback(collator)])

The callback sets the collator's epoch at the start of every epoch (before the epoch's first
batch is requested, so DataLoader workers, persistent ones included, see it; a resumed run
gets the epoch it resumes in), and warns at start-up when ``remove_unused_columns`` would
drop columns the collator reads.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import torch
from transformers import Trainer, TrainerCallback

from objspec.runtime.collator import Collator

# Columns a collator reads that no Hugging Face model's forward takes.
COLLATOR_COLUMNS = ("index", "word_ids", "sentence_ids", "translation_ids", "positive_ids")


def trainer_epoch(epoch: float | None) -> int:
    """The epoch a Trainer is in, from ``TrainerState.epoch`` (a float: 2.0 at the start of
    the third epoch, 1.5 when resumed half-way through the second)."""
    value = float(epoch or 0.0)
    nearest = round(value)
    return int(nearest) if math.isclose(value, nearest, abs_tol=1e-6) else math.floor(value)


class EpochCallback(TrainerCallback):
    """Sets ``collator``'s epoch at every epoch's start under ``transformers.Trainer``."""

    def __init__(self, collator: Collator, quiet: bool = False) -> None:
        if not hasattr(collator, "set_epoch"):
            raise TypeError(f"EpochCallback needs an objspec collator, got {type(collator)}")
        self.collator = collator
        self.quiet = quiet  # ObjspecTrainer keeps the columns: nothing to warn about

    def on_init_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if getattr(args, "remove_unused_columns", False) and not self.quiet:
            warnings.warn(
                "objspec: remove_unused_columns=True makes the Trainer drop dataset columns its "
                f"model does not take ({', '.join(COLLATOR_COLUMNS)}): examples lose their "
                "index (they are then keyed by their content alone) and their word and "
                "sentence ids. Pass TrainingArguments(remove_unused_columns=False) to keep them.",
                RuntimeWarning,
                stacklevel=2,
            )

    def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.collator.set_epoch(trainer_epoch(state.epoch))


WEIGHTS = "objspec_heads.pt"  # the heads and model weights in a Trainer checkpoint


class HeadsModel(torch.nn.Module):
    """A compiled ``Heads`` (holding the user's model) as ``transformers.Trainer`` calls a
    model: ``forward(**batch)`` returns the dict of losses, ``'loss'`` their weighted sum.

    ``accepts_loss_kwargs = False``: the heads average their losses over each micro-batch, so
    Trainer divides by the gradient-accumulation steps itself (a model that takes loss kwargs
    is left to normalise, and the loss then doubles at two accumulation steps).
    ``return_loss`` tells Trainer's evaluation to compute the loss."""

    accepts_loss_kwargs = False

    def __init__(self, heads: torch.nn.Module) -> None:
        super().__init__()
        self.heads = heads

    def forward(self, return_loss: bool = True, **batch: Any) -> dict[str, torch.Tensor]:
        return self.heads(batch)  # type: ignore[no-any-return]


class ObjspecTrainer(Trainer):
    """``transformers.Trainer`` for a compiled objective: ``ObjspecTrainer(heads=Heads(model),
    collator=Collator(...), args=..., train_dataset=..., eval_dataset=...)``.

    Over a plain Trainer it: runs the heads through :class:`HeadsModel`; keeps the dataset
    columns the collator reads (``remove_unused_columns`` would drop them); sets the collator's
    epoch each epoch (:class:`EpochCallback`), and evaluates with the masks of epoch 0 (an
    evaluation's ``eval_loss`` compares with the next); reports ``eval_loss`` and logs each head's
    training loss beside ``loss``; saves and resumes checkpoints whose weights are shared
    (ELECTRA's generator shares the embedding) with ``torch.save`` and a strict load.
    """

    def __init__(self, *, heads: torch.nn.Module, collator: Collator, **kwargs: Any) -> None:
        self.eval_collator = collator.with_epoch(0)
        self._head_sums: dict[str, float] = {}
        self._head_steps = 0
        callbacks = [*(kwargs.pop("callbacks", None) or []), EpochCallback(collator, quiet=True)]
        super().__init__(
            model=HeadsModel(heads), data_collator=collator, callbacks=callbacks, **kwargs
        )

    def get_eval_dataloader(self, eval_dataset: Any = None) -> Any:
        """The evaluation set's batches, masked as at epoch 0 whatever the training epoch, so
        that eval_loss compares across evaluations."""
        training = self.data_collator
        self.data_collator = self.eval_collator
        try:
            return super().get_eval_dataloader(eval_dataset)
        finally:
            self.data_collator = training

    def _remove_unused_columns(self, dataset: Any, description: str | None = None) -> Any:
        return dataset  # the collator reads index, word_ids, ... and passes the rest through

    def _get_collator_with_removed_columns(
        self, data_collator: Any, description: str | None = None
    ) -> Any:
        return data_collator

    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> Any:
        losses = model(**inputs)
        if model.training:
            for name, value in losses.items():
                if name != "loss":
                    self._head_sums[name] = self._head_sums.get(name, 0.0) + float(value.detach())
            self._head_steps += 1
        return (losses["loss"], losses) if return_outputs else losses["loss"]

    def prediction_step(
        self,
        model: torch.nn.Module,
        inputs: dict[str, Any],
        prediction_loss_only: bool,
        ignore_keys: list[str] | None = None,
    ) -> tuple[torch.Tensor | None, None, None]:
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad():
            loss = model(**inputs)["loss"].detach()
        return loss, None, None

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._head_steps:  # each head's mean since the last log
            for name, total in self._head_sums.items():
                logs[f"loss_{name}"] = round(total / self._head_steps, 4)
            self._head_sums, self._head_steps = {}, 0
        super().log(logs, start_time)

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        folder = Path(output_dir or self.args.output_dir or ".")
        folder.mkdir(parents=True, exist_ok=True)
        assert self.model is not None
        torch.save(self.model.state_dict(), folder / WEIGHTS)
        torch.save(self.args, folder / "training_args.bin")

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: Any = None) -> None:
        path = Path(resume_from_checkpoint) / WEIGHTS
        if not path.exists():
            raise ValueError(f"{path} is missing: not a checkpoint of an ObjspecTrainer run")
        state = torch.load(path, map_location="cpu", weights_only=True)
        target = model if model is not None else self.model
        assert target is not None
        target.load_state_dict(state)

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
from typing import Any

from transformers import TrainerCallback

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

    def __init__(self, collator: Collator) -> None:
        if not hasattr(collator, "set_epoch"):
            raise TypeError(f"EpochCallback needs an objspec collator, got {type(collator)}")
        self.collator = collator

    def on_init_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if getattr(args, "remove_unused_columns", False):
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

"""The epoch a collator keys its masks by, seen by every process that runs the collator.

A DataLoader's workers hold their own copy of the collator (forked, or unpickled under spawn),
and persistent workers keep that copy across epochs. So the epoch lives in shared memory: one
int64 slot per collator in a table that torch shares with worker processes (a forked worker
inherits the mapping; a spawned one receives the table through torch's multiprocessing
pickler). ``set_epoch`` in the main process therefore reaches every worker, as long as it is
called before the epoch's first batch is requested (before ``iter(loader)``), as a sampler's
``set_epoch`` is. A table holds many slots so that a process with thousands of collators (a
test suite) uses a few shared segments, not one per collator.

A collator that is never told its epoch cannot know it. :meth:`SharedEpoch.observe` notices
the symptom instead: the same examples collated again at the same epoch (a second pass over the
data) and warns once, in whatever process sees it.
"""

from __future__ import annotations

import numbers
import threading
import warnings
from typing import Any

import torch

from objspec.runtime.rng import GOLDEN, MASK32, hash32

SLOTS = 4096
EPOCH_LIMIT = 1 << 32  # epochs key 32-bit hashes: larger ones would alias
EPOCH, TOLD, SEEN, WARNED = range(4)  # the columns of a slot
WATCH_BITS = 1 << 20  # one bit per hashed example key, shared by a table's slots
WATCH_LIMIT = WATCH_BITS // 16  # stop watching past this many examples: repeats stay real


class _Tables:
    """Shared tables of slots (SLOTS, 4) int64 and their bitmaps, handed out a slot at a time
    (never reused: a reused slot would inherit its bitmap bits)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.table = torch.zeros(0)
        self.seen = torch.zeros(0)
        self.used = SLOTS

    def take(self) -> tuple[torch.Tensor, torch.Tensor, int]:
        with self.lock:
            if self.used == SLOTS:
                self.table = torch.zeros((SLOTS, 4), dtype=torch.int64).share_memory_()
                self.seen = torch.zeros(WATCH_BITS, dtype=torch.bool).share_memory_()
                self.used = 0
            self.used += 1
            return self.table, self.seen, self.used - 1


_TABLES = _Tables()


class SharedEpoch:
    """One collator's epoch in a shared-memory slot, and the watch for a forgotten one.

    ``get`` / ``set`` the epoch; ``observe`` the keys of each batch collated while the epoch
    was never set: when most examples of a batch were already collated, the data is being
    seen a second time with the same masks, so it warns once, naming the fix. The watch stops
    after ``WATCH_LIMIT`` examples, so one pass over a large corpus is never taken for two.
    """

    def __init__(self) -> None:
        self.table, self.seen, self.slot = _TABLES.take()  # epoch 0, never set
        self.row = self.table[self.slot].numpy()  # a view of the shared slot (fast to read)

    def get(self) -> int:
        return int(self.row[EPOCH])

    def set(self, epoch: int) -> None:
        self.row[EPOCH] = checked_epoch(epoch)
        self.row[TOLD] = 1

    def __getstate__(self) -> dict[str, Any]:
        # the tables themselves: shared with a worker by torch's pickler, copied by a plain one
        return {"table": self.table, "seen": self.seen, "slot": self.slot}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.table, self.seen, self.slot = state["table"], state["seen"], state["slot"]
        self.row = self.table[self.slot].numpy()

    def observe(self, keys: torch.Tensor) -> None:
        """Mark (B,) int64 example keys collated at a never-set epoch; warn on a repeat."""
        row = self.row
        if row[TOLD] or row[WARNED] or row[SEEN] >= WATCH_LIMIT:
            return
        bits = hash32((keys.cpu() ^ self.slot * GOLDEN) & MASK32) % WATCH_BITS
        repeats = int(self.seen[bits].sum())
        self.seen[bits] = True
        row[SEEN] += keys.numel()
        if keys.numel() and 2 * repeats > keys.numel():
            row[WARNED] = 1
            warnings.warn(
                "objspec: this collator is collating the same examples again and was never "
                "told the epoch, so every epoch gets the same masks. Call "
                "collator.set_epoch(epoch) before each epoch (under transformers.Trainer: "
                "callbacks=[objspec.integrations.transformers.EpochCallback(collator)])",
                RuntimeWarning,
                stacklevel=3,
            )


def checked_epoch(epoch: Any) -> int:
    """``epoch`` as an int in [0, 2**32), or a ValueError (a larger one would alias another)."""
    if isinstance(epoch, bool) or not isinstance(epoch, numbers.Integral):
        raise ValueError(f"epoch must be an int in [0, 2**32), got {epoch!r}")
    if not 0 <= int(epoch) < EPOCH_LIMIT:
        raise ValueError(f"epoch must be an int in [0, 2**32), got {epoch!r}")
    return int(epoch)

"""The base class of every generated collator: batch reading, keys, epochs, constants."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import torch

from objspec.runtime.batch import Batch, BatchError, Examples, read_batch
from objspec.runtime.epochs import SharedEpoch
from objspec.runtime.fused import Fuser, widened
from objspec.runtime.generated import PickledBySource
from objspec.runtime.layout import (
    POSITION_OUTPUTS,
    SQUARE_OUTPUTS,
    TARGET_KEYS,
    group_of,
    pad_to_multiple,
    pass_through,
    to_left_padding,
)
from objspec.runtime.packing import FLAT, pack_rows
from objspec.runtime.rng import Keys
from objspec.runtime.tables import pool_table, similar_table, table_of, unigram_cdf
from objspec.runtime.tasks import base_key, per_task, task_names
from objspec.runtime.vocab import Vocab, VocabError

PADDING_SIDES = ("right", "left")


class SpecDefault:
    """The default of an argument a spec may set (``pack``): the spec's value, else None."""

    def __repr__(self) -> str:
        return "the spec's"


SPEC_DEFAULT = SpecDefault()


class Collator(PickledBySource):
    """Batch in, corrupted batch and targets out (``collator(examples) -> dict of tensors``).

    ``vocab`` is a :class:`Vocab` or a tokenizer to read one from; ``seed`` and the epoch key
    every random draw (call :meth:`set_epoch` each epoch, like a DistributedSampler: the epoch
    is shared with DataLoader workers, persistent ones included); ``device`` is where list
    inputs are placed (padded tensor inputs stay where they are).

    Like Hugging Face's collators, it takes lists of example dicts, lists of id rows, or a
    padded dict; passes the fields the spec does not read through (per-example ones always,
    per-token ones where no token moved); pads to ``pad_to_multiple_of``; and pads on
    ``padding_side`` ('right' or 'left'; by default the tokenizer's, else the side a padded
    input came in, else right). The corruption never depends on the side or the width.
    ``pack=N`` packs the corrupted examples into rows of N tokens, ``pack='flat'`` into one
    padding-free row (see ``runtime/packing.py``); each is still corrupted as alone. By
    default a spec's ``pack`` statement decides; ``pack=None`` turns packing off.
    ``fused=True`` runs the corruption through ``torch.compile(fullgraph=True)`` (inductor),
    the same bits as eager; where it cannot (no C++ compiler, a step that does not trace
    whole) it warns once and runs eager (``runtime/fused.py``; a string names the backend).

    Subclasses (the generated code) set ``needs`` (the tokens they write, e.g. ``('mask',)``),
    ``mask_copies`` (None for dynamic masks, k for k static copies) and implement :meth:`corrupt`.
    ``decoder_start_id`` starts encoder-decoder decoder inputs (default: pad, as T5; BART's
    models start with eos). ``max_length`` / ``max_target_length`` cap the output widths
    (see :meth:`cut`; to size rows so that nothing is cut, see ``rewrite.t5_lengths``).
    """

    needs: ClassVar[tuple[str, ...]] = ()
    modes: ClassVar[tuple[str, ...]] = ()  # mixture members' mode tokens, by text
    mask_copies: ClassVar[int | None] = None
    decoder_only: ClassVar[bool] = False  # the decoder-only form: labels are next tokens
    outputs: ClassVar[tuple[str, ...]] = ("input_ids", "attention_mask", "labels")
    # per-token input fields the spec reads (a prompt mask, phrase ids), by name and purpose
    fields: ClassVar[tuple[tuple[str, str], ...]] = ()
    pack_default: ClassVar[int | str | None] = None  # the spec's 'pack' statement
    # a composition's row tasks whose outputs are each under its name (runtime/tasks.py)
    tasks: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        vocab: Vocab | Any,
        *,
        seed: int = 0,
        epoch: int | None = None,
        device: torch.device | str | None = None,
        decoder_start_id: int | None = None,
        max_length: int | None = None,
        max_target_length: int | None = None,
        token_counts: Any = None,
        pad_to_multiple_of: int | None = None,
        padding_side: str | None = None,
        pack: int | str | None | SpecDefault = SPEC_DEFAULT,
        tables: Mapping[str, Any] | None = None,
        fused: bool | str = False,
    ) -> None:
        self.vocab = vocab if isinstance(vocab, Vocab) else Vocab.from_tokenizer(vocab)
        self.padding_side = padding_side_of(vocab, padding_side)
        self.tables: dict[str, torch.Tensor] = {}
        for what in self.needs:
            if what == "counts":
                token_counts = self._checked_counts(token_counts)
            elif what in TABLE_CHECKS:
                purpose, check = TABLE_CHECKS[what]
                self.tables[what] = check(table_of(tables, what, purpose), self.vocab)
            elif what in NEEDS_CHECKS:  # each check raises a VocabError that names the need
                NEEDS_CHECKS[what](self)
            else:
                self.vocab.require(what)
        self.decoder_start_id = self.pad_id if decoder_start_id is None else decoder_start_id
        self.max_length = positive_or_none("max_length", max_length)
        self.max_target_length = positive_or_none("max_target_length", max_target_length)
        self.pad_to_multiple_of = positive_or_none("pad_to_multiple_of", pad_to_multiple_of)
        pack = self.pack_default if isinstance(pack, SpecDefault) else pack
        self.pack = pack if pack == FLAT else positive_or_none("pack", pack, "or 'flat'")
        if self.pack is not None and self.tasks:
            raise ValueError(
                f"pack={self.pack!r}: a composition of several tasks ({', '.join(self.tasks)}) "
                "cannot be packed yet; pack=None"
            )
        self.mode_token_ids = tuple(self.vocab.id_of(m) for m in self.modes)
        self.token_counts = token_counts
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 1 << 64:
            raise ValueError(f"seed must be an int in [0, 2**64), got {seed!r}")
        self.seed = seed
        self._epoch = SharedEpoch()
        if epoch is not None:
            self.set_epoch(epoch)
        self._warned_dropped = False
        self.device = torch.device(device) if device is not None else None
        self._consts: dict[tuple[Any, ...], torch.Tensor] = {}
        # fused=True: the corruption through torch.compile (runtime/fused.py); a string names
        # the backend ('inductor' is True's; 'aot_eager' traces without a C++ compiler)
        self._fuser = Fuser("inductor" if fused is True else fused) if fused else None

    @property
    def pad_id(self) -> int:
        """The id padding is written with (0 for a vocabulary without a pad token: such a
        batch is refused wherever it would need padding)."""
        return self.vocab.pad_id if self.vocab.pad_id is not None else 0

    @property
    def epoch(self) -> int:
        """The epoch the masks are keyed by (shared with DataLoader workers)."""
        return self._epoch.get()

    @property
    def mask_id(self) -> int:
        return self.vocab.require("mask")

    @property
    def end_id(self) -> int:
        """The token that ends a target sequence: eos (T5's </s>), else sep."""
        for value in (self.vocab.eos_id, self.vocab.sep_id):
            if value is not None:
                return int(value)
        raise VocabError(
            "this objective ends its targets with eos (or sep); the vocabulary has neither"
        )

    @property
    def sentinel_count(self) -> int:
        return len(self.vocab.sentinel_ids)

    def sentinels(self, device: torch.device) -> torch.Tensor:
        """(S,) int64 sentinel ids in order (<extra_id_0> first), on ``device`` (cached)."""
        return self.const(self.vocab.sentinel_ids, device)

    def __getstate__(self) -> dict[str, Any]:
        """The state, without the cached device constants (rebuilt where it is used)."""
        return {**self.__dict__, "_consts": {}}

    def set_epoch(self, epoch: int) -> None:
        """Masks are keyed by the epoch: dynamic masking changes them every epoch. Call it in
        the main process before the epoch's first batch is requested; DataLoader workers,
        persistent or not, see it. ``epoch`` is an int in [0, 2**32)."""
        self._epoch.set(epoch)

    def with_epoch(self, epoch: int) -> Collator:
        """A copy of this collator with an epoch of its own, set to ``epoch`` (an evaluation
        set's collator, whose masks must not move with the training epoch)."""
        clone = copy.copy(self)
        clone._epoch = SharedEpoch()
        clone._consts = {}
        clone.set_epoch(epoch)
        return clone

    def mask_epoch(self) -> int:
        """The epoch the masks are keyed by (cycles through ``mask_copies`` for static masks)."""
        return self.epoch if self.mask_copies is None else self.epoch % self.mask_copies

    def const(self, values: tuple[int, ...], device: torch.device) -> torch.Tensor:
        """A constant int64 table on ``device`` (cached)."""
        key = (values, device)
        if key not in self._consts:
            self._consts[key] = torch.tensor(values, dtype=torch.int64, device=device)
        return self._consts[key]

    def _checked_counts(self, counts: Any) -> torch.Tensor:
        if counts is None:
            raise ValueError(
                "this objective weighs tokens by their corpus frequency (XLM's selection, unigram "
                "random tokens): pass "
                "token_counts=, a count per vocabulary id"
            )
        table = torch.as_tensor(counts, dtype=torch.float64).flatten()
        if table.numel() != self.vocab.size or not bool(torch.isfinite(table).all()):
            raise ValueError(
                f"token_counts must hold {self.vocab.size} finite counts, one per id; "
                f"got {table.numel()}"
            )
        return table

    def frequency_weights(self, device: torch.device, alpha: float) -> torch.Tensor:
        """(V,) float64 selection weights ``max(count, 1) ** -alpha`` (XLM), on ``device``."""
        key = ("frequency", alpha, device)
        if key not in self._consts:
            counts = self.token_counts.clamp(min=1.0)
            self._consts[key] = (counts ** (-alpha)).to(device)
        return self._consts[key]

    def mode_ids(self, device: torch.device) -> torch.Tensor:
        """(M,) int64 ids of the mixture members' mode tokens, on ``device`` (cached)."""
        return self.const(self.mode_token_ids, device)

    def random_pool(self, device: torch.device) -> torch.Tensor:
        """(N,) int64 ids random replacements draw from, on ``device`` (cached): the run-time
        ``pool`` table where the spec draws from one, else every non-special id."""
        key = ("random_pool", device)
        if key not in self._consts:
            given = self.tables.get("pool")
            pool = given.to(device) if given is not None else self.vocab.random_pool(device)
            self._consts[key] = pool
        return self._consts[key]

    def table(self, name: str, device: torch.device) -> torch.Tensor:
        """A run-time table the spec reads (``similar``), on ``device`` (cached)."""
        key = ("table", name, device)
        if key not in self._consts:
            self._consts[key] = self.tables[name].to(device)
        return self._consts[key]

    def unigram(self, device: torch.device) -> torch.Tensor:
        """(V,) int64 cdf of the unigram law over non-special ids (``token_counts``), on
        ``device`` (cached): ``random ... from unigram``."""
        key = ("unigram", device)
        if key not in self._consts:
            self._consts[key] = unigram_cdf(self.token_counts, self.vocab).to(device)
        return self._consts[key]

    def __call__(self, examples: Examples) -> dict[str, torch.Tensor]:
        batch = read_batch(examples, self.vocab.pad_id, self.device, vocab_size=self.vocab.size)
        if batch.input_ids.numel() == 0:
            return self.empty(batch)
        if self.mask_copies is None:
            self._epoch.observe(batch.index)
        keys = Keys(self.seed, self.mask_epoch(), batch.index)
        if self._fuser is not None:
            if self.pad_to_multiple_of is not None:  # shape buckets: a compile per bucket
                width = -(-batch.input_ids.shape[1] // self.pad_to_multiple_of)
                batch = widened(batch, width * self.pad_to_multiple_of, self.pad_id)
            out = self._fuser.corrupt(self, batch, keys)
        else:
            out = self.corrupt(batch, keys)
        self._pass_through(out, batch)
        out = per_task(out, self.cut)  # each task's batch laid out as a batch of its own
        if self.pack is not None:
            out = pack_rows(out, self.pack, self.pad_id, self.decoder_only)
        if self.pad_to_multiple_of is not None:
            multiple = self.pad_to_multiple_of
            out = per_task(out, lambda part: pad_to_multiple(part, multiple, self.pad_id))
        out = per_task(out, self._require_pad)
        side = self.padding_side or ("left" if batch.left_padded else "right")
        return per_task(out, to_left_padding) if side == "left" else out

    def _pass_through(self, out: dict[str, torch.Tensor], batch: Batch) -> None:
        """The batch's fields the spec does not write, passed through (per-token ones only
        where every token kept its place); a one-time warning names those left out."""
        if not batch.extras:
            return
        inputs = out.get("input_ids")
        same_layout = (
            inputs is not None
            and inputs.shape == batch.input_ids.shape
            and torch.equal(out["attention_mask"].bool(), batch.valid)
        )
        read = {name for name, _ in self.fields}
        unread = {k: v for k, v in batch.extras.items() if k not in read}
        dropped = pass_through(out, unread, batch.per_token, same_layout)
        if dropped and not self._warned_dropped:
            self._warned_dropped = True
            warnings.warn(
                f"objspec: {', '.join(dropped)} left out of the batch: this objective moves, "
                "deletes or inserts tokens, so per-token fields no longer line up",
                RuntimeWarning,
                stacklevel=3,
            )

    def token_field(self, batch: Batch, name: str, *, binary: bool = False) -> torch.Tensor:
        """(B, L) int64: the per-token input field ``name`` the spec declares (0 on padding);
        a BatchError when the examples lack it or, for a ``binary`` field, hold other than
        0 and 1."""
        purpose = dict(self.fields).get(name, "the spec reads it")
        value = batch.extras.get(name)
        if value is None or name not in batch.per_token:
            raise BatchError(
                f"this objective reads a per-token field {name!r} ({purpose}): every example "
                "needs one, one value per token"
            )
        if binary and bool(((value != 0) & (value != 1)).any()):
            raise BatchError(f"{name} must hold only 0 and 1 ({purpose})")
        return torch.where(batch.valid, value, 0)

    def _require_pad(self, out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``out``, if it needs no padding or the vocabulary has a pad token; else BatchError."""
        if self.vocab.pad_id is not None:
            return out
        for key in ("attention_mask", "decoder_attention_mask"):
            if key in out and not bool(out[key].bool().all()):
                raise BatchError(
                    "this batch needs padding but the vocabulary has no pad token; set one "
                    "(e.g. tokenizer.pad_token = tokenizer.eos_token)"
                )
        return out

    def cut(self, out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Outputs no wider than ``max_length`` (inputs; every output of a one-sequence form)
        and ``max_target_length`` (decoder targets): longer rows are truncated, what lies past
        the cut is dropped, as a tokenizer's truncation does."""
        decoder = "decoder_attention_mask" in out
        for key, value in out.items():
            limit = self.max_target_length if decoder and key in TARGET_KEYS else self.max_length
            if limit is None:
                continue
            if key in POSITION_OUTPUTS:  # cut the positions, not columns
                out[key] = torch.where(value < limit, value, -1)
            elif group_of(key, out) is not None and value.shape[1] > limit:
                out[key] = value[:, :limit, :limit] if key in SQUARE_OUTPUTS else value[:, :limit]
        return out

    def empty(self, batch: Batch) -> dict[str, torch.Tensor]:
        """The outputs of an empty batch: every key present, every tensor empty."""
        b, length = batch.shape

        tasks = task_names(self.outputs)

        def zeros(key: str) -> torch.Tensor:
            if base_key(key, tasks) in SQUARE_OUTPUTS:  # a task's key pads as the key it names
                return torch.zeros((b, length, length), device=batch.device)
            return torch.zeros((b, length), dtype=torch.int64, device=batch.device)

        return {k: zeros(k) for k in self.outputs}

    def corrupt(self, batch: Batch, keys: Keys) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def _require_sentinels(self) -> None:
        if not self.vocab.sentinel_ids:
            raise VocabError(
                "this objective needs sentinel tokens (<extra_id_0>, ...) "
                "but the vocabulary has none"
            )


def padding_side_of(vocab: Any, given: str | None) -> str | None:
    """The padding side asked for: ``given``, else the tokenizer's, else None (the side a
    padded input came in, or right)."""
    if given is None and not isinstance(vocab, Vocab):
        side = getattr(vocab, "padding_side", None)
        given = side if side in PADDING_SIDES else None
    if given is not None and given not in PADDING_SIDES:
        raise ValueError(f"padding_side must be 'right' or 'left', got {given!r}")
    return given


def positive_or_none(name: str, value: Any, alternative: str = "") -> Any:
    """``value`` when it is None or a positive int, else a ValueError naming ``name``."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        also = f" {alternative}" if alternative else ""
        raise ValueError(f"{name} must be a positive int{also}, got {value!r}")
    return value


# The run-time tables a spec's ``needs`` name: what the spec reads each for, and its check.
TABLE_CHECKS: dict[str, tuple[str, Callable[[Any, Vocab], torch.Tensor]]] = {
    "similar": ("replaces tokens with similar ones (a (V, K) table of ids)", similar_table),
    "pool": ("draws random tokens from a pool of ids", pool_table),
}

# What a spec's ``needs`` ask of the vocabulary beyond a named special token ('mask', 'cls',
# ...: ``vocab.require``); 'counts' is the run-time count table, checked with it.
NEEDS_CHECKS: dict[str, Callable[[Collator], object]] = {
    "random": lambda c: c.vocab.random_pool(),
    "sentinel": Collator._require_sentinels,
    "end": lambda c: c.end_id,
}


__all__ = ["Collator", "VocabError"]

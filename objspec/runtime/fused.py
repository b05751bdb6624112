"""Fused collators: a generated ``corrupt()`` run through ``torch.compile(fullgraph=True)``.

``Collator(..., fused=True)`` reads and checks the batch on the host as always
(``read_batch``, example keys), then runs the corruption, the part between the batch read and
the pass-through and padding, as one compiled graph: inductor turns it into a few fused
C++/OpenMP kernels on CPU (Triton on GPU). Every draw is a counter-based integer hash and
every law an integer table, so the compiled graph computes the same bits as eager; the tests
(``tests/test_fused.py``) hold every bundled spec to that.

Shapes are static (``dynamic=False``): one compile per (batch size, width). With
``pad_to_multiple_of=m`` the batch is widened to a multiple of m before the corruption
(padding columns, which change no draw: positions count from each row's first token), so a
run with varied row lengths compiles once per bucket, not per batch.

Where the compiled path cannot run (no C++ compiler for inductor on CPU, a step that does
not trace whole, a compiler error), the collator warns once and runs eager from then on: the
batch is the same either way. The first batch of each shape is collated eager as well (its
warm-up) and the compiled batch must equal it, so a miscompiled graph is caught there, not
trained on (inductor once miscompiled BART's token deletion, decoder-only form).
"""

from __future__ import annotations

import dataclasses
import shutil
import warnings
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any

import torch

from objspec.runtime.batch import Batch
from objspec.runtime.layout import POSITION_OUTPUTS, SQUARE_OUTPUTS, group_of
from objspec.runtime.rng import Keys
from objspec.runtime.tasks import per_task

if TYPE_CHECKING:
    from objspec.runtime.collator import Collator

Corrupt = Callable[[Batch, Keys], dict[str, torch.Tensor]]

# One compiled graph per collator class (its own ``corrupt`` code object), per shape bucket.
_COMPILED: dict[tuple[type[Collator], str], Callable[..., dict[str, torch.Tensor]]] = {}
RECOMPILE_LIMIT = 64  # shape buckets x input forms a process may compile for one class


class FusedUnavailable(RuntimeError):
    """The fused path cannot run here (raised only with ``strict=True``)."""


def toolchain_reason(device: torch.device, backend: str = "inductor") -> str | None:
    """Why the compiled path cannot run on ``device`` (None: it can): inductor needs a C++
    compiler on CPU."""
    compilers = ("c++", "g++", "clang++", "cc", "gcc")
    if backend == "inductor" and device.type == "cpu" and not any(map(shutil.which, compilers)):
        return "no C++ compiler on PATH (inductor builds CPU kernels with one)"
    return None


def compiled_corrupt(cls: type[Collator], backend: str) -> Callable[..., dict[str, torch.Tensor]]:
    """``cls.corrupt`` compiled whole (``fullgraph=True``, static shapes), once per class."""
    key = (cls, backend)
    if key not in _COMPILED:
        dynamo_config = torch._dynamo.config
        limit = max(getattr(dynamo_config, "recompile_limit", 8), RECOMPILE_LIMIT)
        if hasattr(dynamo_config, "recompile_limit"):
            dynamo_config.recompile_limit = limit
        _COMPILED[key] = torch.compile(cls.corrupt, fullgraph=True, dynamic=False, backend=backend)
    return _COMPILED[key]


def widened(batch: Batch, width: int, pad_id: int) -> Batch:
    """``batch`` with padding columns appended up to ``width`` (the fill each field's reader
    pads with): no draw changes, as every position counts from its row's first token."""
    extra = width - batch.input_ids.shape[1]
    if extra <= 0:
        return batch

    def pad(t: torch.Tensor | None, fill: int | bool) -> torch.Tensor | None:
        if t is None:
            return None
        return torch.nn.functional.pad(t, (0, extra), value=fill)

    extras = {
        k: torch.nn.functional.pad(v, (0, extra), value=0) if k in batch.per_token else v
        for k, v in batch.extras.items()
    }
    return dataclasses.replace(
        batch,
        input_ids=pad(batch.input_ids, pad_id),  # type: ignore[arg-type]
        valid=pad(batch.valid, False),  # type: ignore[arg-type]
        word_ids=pad(batch.word_ids, -1),
        special=pad(batch.special, False),
        sentence_ids=pad(batch.sentence_ids, -1),
        extras=extras,
    )


def cut_static_widths(
    out: dict[str, torch.Tensor], length: int, widths: Collection[int] = ()
) -> dict[str, torch.Tensor]:
    """Each group of outputs (one validity mask) that a fused kernel wrote at a static bound,
    cut to its longest row: the width eager computes on the host. One host read per such
    group. Such a group is wider than the batch's rows of ``length`` columns (a rewrite's
    ``rewrite.static_width``, pair rows from two rows), or of one of the ``widths`` the trace
    recorded (pair rows capped by ``max_length``). Target positions (B, P) are cut to the
    most targets of a row, eager's P."""
    cuts: dict[str, int] = {}
    out = {  # positions are -1 past a row's last: eager's P is the most real ones in a row
        key: value[:, : int((value >= 0).sum(dim=1).max()) if value.shape[0] else 0]
        if key in POSITION_OUTPUTS
        else value
        for key, value in out.items()
    }
    for key in out:
        prefix = group_of(key, out)
        if prefix is None or prefix in cuts:
            continue
        mask = out[f"{prefix}attention_mask"]
        if mask.dim() == 2 and (mask.shape[1] > length or mask.shape[1] in widths):
            cuts[prefix] = int(mask.sum(dim=1).max()) if mask.shape[0] else 0
    if not cuts:
        return out
    cut = dict(out)
    for key, value in out.items():
        prefix = group_of(key, out)
        if prefix in cuts:
            width = cuts[prefix] + value.shape[1] - out[f"{prefix}attention_mask"].shape[1]
            square = key in SQUARE_OUTPUTS  # (B, W, W): both sides are columns
            cut[key] = value[:, :width, :width] if square else value[:, :width]
    return cut


def same_batches(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    """Whether two batches hold the same keys, dtypes, shapes and values."""
    return a.keys() == b.keys() and all(
        a[k].dtype == b[k].dtype and a[k].shape == b[k].shape and torch.equal(a[k], b[k]) for k in a
    )


class Fuser:
    """The compiled corruption of one collator, with its one-time fallback to eager."""

    def __init__(self, backend: str = "inductor", *, strict: bool = False) -> None:
        self.backend = backend
        self.strict = strict
        self.reason: str | None = None  # why it runs eager (None: fused so far)
        self.checked: set[str] = set()  # device types whose toolchain was looked for (once:
        # a PATH search costs as much as a short batch's corruption)
        self.warm: set[tuple[Any, ...]] = set()  # (device, B, L) seen

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "warm": set(), "checked": set()}

    def corrupt(self, collator: Collator, batch: Batch, keys: Keys) -> dict[str, torch.Tensor]:
        if self.reason is None and batch.device.type not in self.checked:
            self.checked.add(batch.device.type)
            self.reason = toolchain_reason(batch.device, self.backend)
            if self.reason is not None:
                self._fall_back(self.reason)
        if self.reason is not None:
            return collator.corrupt(batch, keys)
        fn = compiled_corrupt(type(collator), self.backend)
        shape = (batch.device, *batch.input_ids.shape)
        expected = None
        if shape not in self.warm:
            # the first batch of a shape runs eager first: it fills the collator's cached
            # device tables and the position-mix table, which the graph then reads as inputs
            # (built inside the trace they would be data-dependent), and the compiled graph's
            # batch must equal it (a compiler's miscompile is caught here, not trained on)
            expected = collator.corrupt(batch, keys)
            self.warm.add(shape)
        try:
            out = self._compiled(fn, collator, batch, keys)
        except Exception as error:  # a compiler's failure; eager decides what the data says
            if self.strict:
                raise FusedUnavailable(f"{type(collator).__name__}: {error}") from error
            out = collator.corrupt(batch, keys)  # the data's own error, if any, raises here
            self._fall_back(f"{type(error).__name__}: {str(error).splitlines()[0][:200]}")
            return out
        if expected is not None and not same_batches(out, expected):
            self._fall_back(
                f"the compiled corruption of the first {tuple(shape[1:])} batch differed "
                f"from eager's (a compiler error in {self.backend}); eager's batch is used"
            )
            return expected
        return out

    def _compiled(
        self,
        fn: Callable[..., dict[str, torch.Tensor]],
        collator: Collator,
        batch: Batch,
        keys: Keys,
    ) -> dict[str, torch.Tensor]:
        """The compiled graph's batch, its static widths cut; eager's where a bound the graph
        assumed did not hold for this batch."""
        # what the graph records: bounds it assumed (checked here) and static widths
        keys.fused_checks = []  # type: ignore[attr-defined]
        keys.fused_widths = []  # type: ignore[attr-defined]
        out = fn(collator, batch, keys)
        checks = keys.fused_checks  # type: ignore[attr-defined]
        widths = set(keys.fused_widths)  # type: ignore[attr-defined]
        del keys.fused_checks, keys.fused_widths  # type: ignore[attr-defined]
        if checks and not bool(torch.stack(checks).all()):
            return collator.corrupt(batch, keys)  # a static round fell short: eager's rounds
        length = batch.input_ids.shape[1]
        return per_task(out, lambda part: cut_static_widths(part, length, widths))

    def _fall_back(self, reason: str) -> None:
        self.reason = reason
        if self.strict:
            raise FusedUnavailable(reason)
        warnings.warn(
            f"objspec: fused=True runs eager from now on (the same batches): {reason}",
            RuntimeWarning,
            stacklevel=4,
        )

"""Counter-based randomness: every draw is a hash of (seed, epoch, example, stream, counter).

No generator state exists. A draw for example ``index`` at counter ``c`` of stream ``s`` is a pure
function of those integers, computed with int64 tensor ops that give the same bits on any device,
so an example's corruption does not depend on its batch, the worker or rank that built it, or
the device; a run resumes exactly; and a new epoch gives new (dynamic) masks.

Draws are uniform 32-bit integers held in int64 tensors. Probabilities are compared as integer
thresholds (``u < round(p * 2**32)``), never as floats, so CPU and GPU agree bit for bit.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from functools import lru_cache
from typing import TypeVar

import numpy as np
import torch
from torch.fx.experimental.symbolic_shapes import guard_or_false

MASK32 = 0xFFFFFFFF
U32 = 1 << 32
GOLDEN = 0x9E3779B9
COUNTER_SALT = 0x5BE0CD19

IntLike = TypeVar("IntLike", int, torch.Tensor, np.ndarray)


def mul32(x: IntLike, c: int) -> IntLike:
    """``(x * c) mod 2**32`` for x in [0, 2**32) and c in [0, 2**32), without int64 overflow.

    A constant of 2**31 or more is used as ``c - 2**32`` (the same residue mod 2**32), so the
    product's magnitude stays below 2**63; the mask takes its two's-complement low 32 bits.
    """
    return (x * _signed(c)) & MASK32


def hash32(x: IntLike) -> IntLike:
    """A 32-bit integer mixer (``lowbias32``), on Python ints, numpy int64 arrays and int64
    tensors alike (tensors in place on a fresh copy: the same ops, fewer allocations)."""
    if isinstance(x, torch.Tensor):
        return _tensor_hash(x)
    x = x & MASK32
    x = x ^ (x >> 16)
    x = mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def _hash32_tensor(x: torch.Tensor) -> torch.Tensor:
    return _mix_in_place(x & MASK32)  # a fresh tensor for the in-place steps


def _mix_in_place(y: torch.Tensor) -> torch.Tensor:
    """``hash32`` of a fresh int64 tensor already in [0, 2**32), updating it in place (a
    draw's ``key ^ position`` is one: it skips the copy and the first mask)."""
    y ^= y >> 16
    y.mul_(_signed(0x7FEB352D)).bitwise_and_(MASK32)
    y ^= y >> 15
    y.mul_(_signed(0x846CA68B)).bitwise_and_(MASK32)
    y ^= y >> 16
    return y


_tensor_hash: Callable[[torch.Tensor], torch.Tensor] = _hash32_tensor
_tensor_mix: Callable[[torch.Tensor], torch.Tensor] = _mix_in_place


def use_compiled_hash(enabled: bool = True) -> None:
    """Fuse the hash's ten integer ops into one kernel with ``torch.compile`` (opt-in, for the
    whole process: a one-time compile of a few seconds, and a C++ compiler on CPU). The bits
    are the same. On one CPU thread it pays on long rows and costs on short ones, where the
    compiled call's fixed overhead outweighs the fused kernel (docs/benchmarks.md).
    """
    global _tensor_hash, _tensor_mix
    _tensor_hash = torch.compile(_hash32_tensor, dynamic=True) if enabled else _hash32_tensor
    _tensor_mix = torch.compile(_mix_in_place, dynamic=True) if enabled else _mix_in_place


def _signed(c: int) -> int:
    """A 32-bit constant as ``mul32`` uses it: the same residue mod 2**32, below 2**31."""
    return c - U32 if c >= 1 << 31 else c


def stream_key(seed: int, epoch: int, stream: int) -> int:
    """The key of one random stream of one epoch (a Python int, computed once per batch)."""
    h = hash32(seed & MASK32 ^ 0x6A09E667)
    h = hash32(h ^ ((seed >> 32) & MASK32))
    h = hash32(h ^ (epoch & MASK32))
    return hash32(h ^ (stream & MASK32) ^ 0x3C6EF372)


STREAMS = 40  # stream numbers are 1..STREAMS-1; all streams' keys are made in one pass


@lru_cache(maxsize=256)
def stream_keys(seed: int, epoch: int) -> tuple[int, ...]:
    """The key of every stream of one epoch (Python ints, computed once per batch)."""
    return tuple(stream_key(seed, epoch, s) for s in range(STREAMS))


def example_stream_keys(index: IntLike, per_stream: IntLike) -> IntLike:
    """(B, STREAMS) int64: every example's key for every stream, from (B,) int64 indices and the
    (STREAMS,) stream keys; the same bits from numpy arrays (the CPU path) and tensors."""
    base = hash32(hash32(index & MASK32) ^ ((index >> 32) & MASK32))
    return hash32(base[:, None] ^ per_stream[None, :])  # type: ignore[index]


_MIXED_POSITIONS: dict[torch.device, torch.Tensor] = {}


def mixed_positions(length: int, device: torch.device) -> torch.Tensor:
    """(L,) ``hash32(position ^ salt)``: the same for every batch, so one table per device is
    kept (grown by doubling) and any length reads a prefix of it."""
    table = _MIXED_POSITIONS.get(device)
    if table is not None and guard_or_false(length <= table.numel()):
        return table[:length]
    if torch.compiler.is_compiling():  # a traced width the table may not cover: inline
        return hash32(torch.arange(length, dtype=torch.int64, device=device) ^ COUNTER_SALT)
    if table is None or table.numel() < length:
        size = max(1024, 1 << max(length - 1, 0).bit_length())
        positions = torch.arange(size, dtype=torch.int64, device=device)
        table = _MIXED_POSITIONS[device] = hash32(positions ^ COUNTER_SALT)
    return table[:length]


_SIGNED_POSITIONS: dict[torch.device, torch.Tensor] = {}


def signed_mixed_positions(length: int, device: torch.device) -> torch.Tensor:
    """(L,) :func:`mixed_positions` as ``mul32`` uses a constant (the same residue mod 2**32,
    below 2**31 in magnitude), so a product with a value below 2**32 cannot overflow int64."""
    table = _SIGNED_POSITIONS.get(device)
    if table is None or table.numel() < length:
        mixed = mixed_positions(max(length, 1024), device)
        table = _SIGNED_POSITIONS[device] = torch.where(mixed >= 1 << 31, mixed - U32, mixed)
    return table[:length]


class Keys:
    """The random keys of one batch: draws for stream ``s`` at any counter, per example.

    ``index`` is (B,) int64, the examples' dataset indices (the identity that makes a corruption
    independent of the batch). A draw is ``hash32(key[b, s] ^ hash32(counter ^ salt))`` where
    ``key[b, s]`` mixes (seed, epoch, stream) with the example's index.
    """

    def __init__(self, seed: int, epoch: int, index: torch.Tensor) -> None:
        self.seed = seed
        self.epoch = epoch
        self.index = index.to(torch.int64)
        if self.index.device.type == "cpu":  # numpy: the same int64 ops, less overhead per op
            per_stream_np = np.asarray(stream_keys(seed, epoch), dtype=np.int64)
            self._keys = torch.from_numpy(example_stream_keys(self.index.numpy(), per_stream_np))
        else:
            per_stream = torch.tensor(stream_keys(seed, epoch), device=self.index.device)
            self._keys = example_stream_keys(self.index, per_stream)

    def salted(self, salt: int) -> Keys:
        """The keys of a draw independent of this one, for the same examples (a composition's
        task): each example's stream keys mixed with ``salt`` (a 32-bit int), so a row gets
        the same draws in any batch, as with the unsalted keys."""
        salted = copy.copy(self)
        salted._keys = hash32(self._keys ^ (salt & MASK32))
        return salted

    def example_keys(self, stream: int) -> torch.Tensor:
        """(B,) int64 in [0, 2**32): one key per example for ``stream``."""
        return self._keys[:, stream]

    def draw(
        self, stream: int, counter: torch.Tensor | int, below_length: int | None = None
    ) -> torch.Tensor:
        """Uniform 32-bit draws, int64 in [0, 2**32).

        ``counter`` is an int L (the positions 0..L-1, the common case), an (N,) tensor (the
        same counters for every row: span slots) or (B, N) (per-row counters, e.g. the start
        position of each token's span). Returns (B, N). ``below_length``, when the counters are
        known to be positions below it, reads their mix from the cached position table (the
        same values, one gather instead of a hash).
        """
        k = self._keys[:, stream].unsqueeze(1)
        if isinstance(counter, int):
            mixed = mixed_positions(counter, k.device).unsqueeze(0)
        elif below_length is not None:
            mixed = mixed_positions(below_length, k.device)[counter.to(k.device)]
            mixed = mixed if mixed.dim() == 2 else mixed.unsqueeze(0)
        else:
            c = counter.to(device=k.device, dtype=torch.int64)
            mixed = hash32((c & MASK32) ^ COUNTER_SALT)
            mixed = mixed if mixed.dim() == 2 else mixed.unsqueeze(0)
        return _tensor_mix(k ^ mixed)  # both in [0, 2**32): so is their xor, a fresh tensor

    def draw_at_positions(
        self, stream: int, rows: torch.Tensor, cols: torch.Tensor, length: int
    ) -> torch.Tensor:
        """(N,) draws at scattered positions of a (B, ``length``) grid: the values ``draw``
        gives at ``[rows[i], cols[i]]`` (for the few positions a decision is needed at)."""
        k = self._keys[rows, stream]
        return _tensor_mix(k ^ mixed_positions(length, k.device)[cols])


def threshold(p: float) -> int:
    """The integer threshold for probability p: ``u < threshold(p)`` has probability p exactly
    up to 2**-32 (p = 1 gives 2**32, always true)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"probability {p} outside [0, 1]")
    return round(p * U32)


def below(u: torch.Tensor, n: torch.Tensor | int) -> torch.Tensor:
    """Map uniform 32-bit draws to uniform integers in [0, n): ``(u * n) >> 32`` (n < 2**31)."""
    return (u * n) >> 32


FAR = 1 << 62  # a sort key past every real one (a 32-bit draw times a row length)
SECOND_DRAW = 1 << 30  # counter offset of a step's second draw per slot (no batch dependence)


def lowest(sort_keys: torch.Tensor, k: int) -> torch.Tensor:
    """(B, min(k, N)) int64: the columns of each row's k lowest ``sort_keys`` (B, N), lowest
    first. A partial sort (``topk``), several times cheaper than an argsort of the whole row
    when k is a fraction of it; the same columns as ``argsort()[:, :k]`` when the keys are
    distinct (a draw times the width plus the column), as every caller's are."""
    return sort_keys.topk(min(k, sort_keys.shape[1]), dim=1, largest=False).indices


def cdf_index(u: torch.Tensor, cdf: torch.Tensor) -> torch.Tensor:
    """The index i of a finite law for each uniform 32-bit draw: the first ``u < cdf[i]``
    (``cdf`` int64, its last entry 2**32)."""
    return torch.searchsorted(cdf, u.contiguous(), right=True).clamp(max=cdf.numel() - 1)

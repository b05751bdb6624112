"""Counter-based randomness: every draw is a hash of (seed, epoch, example, stream, counter).

No generator state exists. A draw for example ``index`` at counter ``c`` of stream ``s`` is a pure
function of those integers, computed with int64 tensor ops that give the same bits on any device,
so an example's corruption does not depend on its batch, the worker or rank that built it, or
the device; a run resumes exactly; and a new epoch gives new (dynamic) masks.

Draws are uniform 32-bit integers held in int64 tensors. Probabilities are compared as integer
thresholds (``u < round(p * 2**32)``), never as floats, so CPU and GPU agree bit for bit.
"""

from __future__ import annotations

from typing import TypeVar

import torch

MASK32 = 0xFFFFFFFF
U32 = 1 << 32
GOLDEN = 0x9E3779B9

IntLike = TypeVar("IntLike", int, torch.Tensor)


def mul32(x: IntLike, c: int) -> IntLike:
    """``(x * c) mod 2**32`` for x in [0, 2**32), in 16-bit halves: int64 never overflows."""
    lo, hi = c & 0xFFFF, c >> 16
    return (x * lo + (((x * hi) & 0xFFFF) << 16)) & MASK32


def hash32(x: IntLike) -> IntLike:
    """A 32-bit integer mixer (``lowbias32``), on Python ints and int64 tensors alike."""
    x = x & MASK32
    x = x ^ (x >> 16)
    x = mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def stream_key(seed: int, epoch: int, stream: int) -> int:
    """The key of one random stream of one epoch (a Python int, computed once per batch)."""
    h = hash32(seed & MASK32 ^ 0x6A09E667)
    h = hash32(h ^ ((seed >> 32) & MASK32))
    h = hash32(h ^ (epoch & MASK32))
    return hash32(h ^ (stream & MASK32) ^ 0x3C6EF372)


class Keys:
    """The random keys of one batch: draws for stream ``s`` at any counter, per example.

    ``index`` is (B,) int64, the examples' dataset indices (the identity that makes a corruption
    independent of the batch).
    """

    def __init__(self, seed: int, epoch: int, index: torch.Tensor) -> None:
        self.seed = seed
        self.epoch = epoch
        self.index = index.to(torch.int64)

    def example_keys(self, stream: int) -> torch.Tensor:
        """(B,) int64 in [0, 2**32): one key per example for ``stream``."""
        base = stream_key(self.seed, self.epoch, stream)
        k = hash32((self.index & MASK32) ^ base)
        return hash32(k ^ ((self.index >> 32) & MASK32) ^ GOLDEN)

    def draw(self, stream: int, counter: torch.Tensor) -> torch.Tensor:
        """Uniform 32-bit draws, int64 in [0, 2**32).

        ``counter`` is (N,) (the same counters for every row: positions, span slots) or (B, N)
        (per-row counters, e.g. the start position of each token's span). Returns (B, N).
        """
        k = self.example_keys(stream).unsqueeze(1)
        c = counter if counter.dim() == 2 else counter.unsqueeze(0)
        c = c.to(device=k.device, dtype=torch.int64)
        h = hash32(k ^ mul32(c & MASK32, GOLDEN))
        return hash32(h + (k >> 7) + c)


def threshold(p: float) -> int:
    """The integer threshold for probability p: ``u < threshold(p)`` has probability p exactly
    up to 2**-32 (p = 1 gives 2**32, always true)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"probability {p} outside [0, 1]")
    return round(p * U32)


def below(u: torch.Tensor, n: torch.Tensor | int) -> torch.Tensor:
    """Map uniform 32-bit draws to uniform integers in [0, n): ``(u * n) >> 32`` (n < 2**31)."""
    return (u * n) >> 32

"""Length laws -> exact finite probability tables (compile-time math, no torch).

A law such as ``geometric(p=0.2) truncated 1..10`` becomes a :class:`LengthTable`: its support,
its probabilities and an integer CDF for sampling with a 32-bit draw. Unbounded laws are cut where
the tail mass falls below :data:`TAIL_MASS` and renormalised.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate

TAIL_MASS = 1e-9
U32 = 2**32
MAX_SUPPORT = 100_000  # values in one table
MAX_LENGTH = 2**20  # the longest length (and range bound) a law may give, in tokens
MAX_LAMBDA = 10_000.0  # poisson's mean: its bulk, about 80 sqrt(lambda) values, stays small

LAW_NAMES: tuple[str, ...] = (
    "fixed",
    "geometric",
    "poisson",
    "normal",
    "uniform",
    "inverse",
    "table",
)
BOUND_KINDS = ("truncated", "clipped", "on")


class LawError(ValueError):
    """A law that cannot be built. ``hint`` says what would be valid."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


@dataclass(frozen=True)
class LengthTable:
    """A finite law: ``values`` strictly ascending, ``probs`` positive and summing to 1."""

    values: tuple[int, ...]
    probs: tuple[float, ...]

    @property
    def mean(self) -> float:
        return sum(v * p for v, p in zip(self.values, self.probs, strict=True))

    @property
    def low(self) -> int:
        return self.values[0]

    @property
    def high(self) -> int:
        return self.values[-1]

    def cdf_u32(self) -> tuple[int, ...]:
        """Thresholds for sampling with a uniform 32-bit draw u: the value is ``values[i]`` for the
        first i with ``u < thresholds[i]``; the last threshold is exactly 2**32."""
        cdf = [round(c * U32) for c in accumulate(self.probs)]
        cdf[-1] = U32
        return tuple(min(c, U32) for c in cdf)

    def prob_of(self, n: int) -> float:
        lookup = dict(zip(self.values, self.probs, strict=True))
        return lookup.get(n, 0.0)


# --- point masses of each law (unnormalised is fine; the caller normalises) ---------------------


@dataclass(frozen=True)
class _Law:
    """A law on ``start, start+1, ...``: its point masses and its two tails.

    ``below(n)`` is P(N < n) and ``above(n)`` is P(N > n); clipping folds them onto the ends
    of a range, so they are closed forms (or sums over the law's bulk only), never a loop
    from ``start`` to a far bound.
    """

    start: int
    mass: Callable[[int], float]
    below: Callable[[int], float]
    above: Callable[[int], float]


def _geometric(p: float) -> _Law:
    return _Law(
        1,
        lambda n: p * (1 - p) ** (n - 1),
        lambda n: 1 - (1 - p) ** max(n - 1, 0),
        lambda n: (1 - p) ** max(n, 0),
    )


def _poisson(lam: float) -> _Law:
    def mass(n: int) -> float:
        return math.exp(n * math.log(lam) - lam - math.lgamma(n + 1))

    # Outside lam +- 40 sd (+40) every point mass underflows to 0.0 in float64.
    spread = 40 * math.sqrt(lam) + 40
    bulk_lo, bulk_hi = max(0, math.floor(lam - spread)), math.ceil(lam + spread)

    def summed(lo: int, hi: int) -> float:
        return math.fsum(mass(k) for k in range(max(lo, bulk_lo), min(hi, bulk_hi + 1)))

    return _Law(0, mass, lambda n: summed(0, n), lambda n: max(1.0 - summed(0, n + 1), 0.0))


def _normal(mean: float, std: float) -> _Law:
    def phi(x: float) -> float:
        return 0.5 * math.erfc(-x / math.sqrt(2))

    def z(x: float) -> float:
        return (x - mean) / std

    def mass(n: int) -> float:
        if n > mean:  # difference of the small upper tails keeps far-tail precision
            return phi(-z(n - 0.5)) - phi(-z(n + 0.5))
        return phi(z(n + 0.5)) - phi(z(n - 0.5))

    return _Law(
        min(0, math.floor(mean - 40 * std)),
        mass,
        lambda n: phi(z(n - 0.5)),
        lambda n: phi(-z(n + 0.5)),
    )


def _params(
    name: str,
    args: Sequence[float],
    kwargs: Mapping[str, float],
    order: tuple[str, ...],
) -> dict[str, float]:
    """Bind positional and keyword parameters, each required exactly once."""
    usage = f"{name}({', '.join(f'{k}=...' for k in order)})" if order else name
    if len(args) > len(order):
        raise LawError(f"{name} takes {len(order)} parameter(s), got {len(args)}", f"write {usage}")
    bound = dict(zip(order, args, strict=False))
    for key, value in kwargs.items():
        if key not in order:
            raise LawError(f"{name} has no parameter {key!r}", f"write {usage}")
        if key in bound:
            raise LawError(f"{name} parameter {key!r} given twice", f"write {usage}")
        bound[key] = value
    missing = [k for k in order if k not in bound]
    if missing:
        raise LawError(f"{name} needs parameter {missing[0]!r}", f"write {usage}")
    for key, value in bound.items():
        if not math.isfinite(value):
            raise LawError(f"{name} parameter {key!r} must be finite, got {value!r}")
    return bound


def _check_range(bound: str | None, low: int | None, high: int | None) -> None:
    if bound is None:
        if low is not None or high is not None:
            raise LawError("a range needs 'truncated', 'clipped' or 'on' before it")
        return
    if bound not in BOUND_KINDS:
        raise LawError(f"unknown bound {bound!r}", f"valid: {', '.join(BOUND_KINDS)}")
    if low is None or high is None:
        raise LawError(f"'{bound}' needs a range like 1..10")
    if low < 0 or high < low:
        raise LawError(
            f"range {low}..{high} is empty or negative", "write a range a..b with 0 <= a <= b"
        )
    if high > MAX_LENGTH:
        raise LawError(
            f"range {low}..{high} goes past the longest length, {MAX_LENGTH}",
            f"lengths are at most {MAX_LENGTH} tokens",
        )
    if high - low + 1 > MAX_SUPPORT:
        raise LawError(f"range {low}..{high} is too wide", f"at most {MAX_SUPPORT} values")


def _normalise(values: Sequence[int], weights: Sequence[float], what: str) -> LengthTable:
    pairs = [(v, w) for v, w in zip(values, weights, strict=True) if w > 0]
    scale = max((w for _, w in pairs), default=1.0)  # so that huge weights do not overflow
    pairs = [(v, w / scale) for v, w in pairs]
    total = math.fsum(w for _, w in pairs)
    if not pairs or total <= 0 or not math.isfinite(total):
        raise LawError(f"{what} leaves no probability mass", "widen the range")
    return LengthTable(tuple(v for v, _ in pairs), tuple(w / total for _, w in pairs))


def _unbounded(start: int, mass: Callable[[int], float], what: str) -> list[tuple[int, float]]:
    """Values from ``start`` until the remaining tail mass is below TAIL_MASS."""
    out: list[tuple[int, float]] = []
    seen = 0.0
    n = start
    while n - start < MAX_SUPPORT:
        p = mass(n)
        out.append((n, p))
        seen += p
        if 1.0 - seen < TAIL_MASS and p < TAIL_MASS:
            return out
        n += 1
    raise LawError(f"{what} has a support wider than {MAX_SUPPORT} values", "bound it with a range")


def _shaped(
    law: _Law, bound: str | None, low: int | None, high: int | None, what: str
) -> LengthTable:
    """Apply ``truncated`` / ``clipped`` (or the tail cut) to a law on start, start+1, ..."""
    if bound == "on":
        raise LawError(f"{what} takes 'truncated' or 'clipped', not 'on'")
    if bound is None:
        pairs = _unbounded(law.start, law.mass, what)
        return _normalise([v for v, _ in pairs], [p for _, p in pairs], what)
    assert low is not None and high is not None
    values = list(range(low, high + 1))
    inside = [law.mass(n) if n >= law.start else 0.0 for n in values]
    if bound == "truncated":
        return _normalise(values, inside, f"{what} truncated {low}..{high}")
    inside[0] += law.below(low)
    inside[-1] += law.above(high)
    return _normalise(values, inside, f"{what} clipped {low}..{high}")


def _on_range(name: str, bound: str | None, low: int | None, high: int | None) -> list[int]:
    if bound != "on" or low is None or high is None:
        raise LawError(
            f"{name} needs its support", f"write '{name} on a..b', e.g. '{name} on 1..5'"
        )
    return list(range(low, high + 1))


def build_law(
    name: str,
    args: Sequence[float] = (),
    kwargs: Mapping[str, float] | None = None,
    bound: str | None = None,
    low: int | None = None,
    high: int | None = None,
) -> LengthTable:
    """Lower a length law to its exact finite table. Raises LawError (with a hint) if invalid."""
    kw = dict(kwargs or {})
    if name not in LAW_NAMES:
        raise LawError(f"unknown law {name!r}", f"valid: {', '.join(LAW_NAMES)}")
    _check_range(bound, low, high)
    if name == "fixed":
        k = _params(name, args, kw, ("k",))["k"]
        if bound is not None:
            raise LawError("fixed(k) takes no range")
        if k < 0 or k != int(k):
            raise LawError(f"fixed length must be a whole number >= 0, got {k:g}")
        if k > MAX_LENGTH:
            raise LawError(f"fixed length {k:g} is past the longest length, {MAX_LENGTH}")
        return LengthTable((int(k),), (1.0,))
    if name == "geometric":
        p = _params(name, args, kw, ("p",))["p"]
        if not 0 < p <= 1:
            raise LawError(f"geometric p must be in (0, 1], got {p:g}", "e.g. geometric(p=0.2)")
        return _shaped(_geometric(p), bound, low, high, describe_law(name, args, kw))
    if name == "poisson":
        lam = _params(name, args, kw, ("lambda",))["lambda"]
        if not 0 < lam <= MAX_LAMBDA:
            raise LawError(
                f"poisson lambda must be > 0 and at most {MAX_LAMBDA:g}, got {lam:g}",
                "e.g. poisson(lambda=3)",
            )
        return _shaped(_poisson(lam), bound, low, high, describe_law(name, args, kw))
    if name == "normal":
        ps = _params(name, args, kw, ("mean", "std"))
        if ps["std"] <= 0:
            raise LawError(f"normal std must be > 0, got {ps['std']:g}")
        if abs(ps["mean"]) > MAX_LENGTH or ps["std"] > MAX_LENGTH:
            raise LawError(
                f"normal mean and std must be at most {MAX_LENGTH} in size, "
                f"got mean={ps['mean']:g}, std={ps['std']:g}"
            )
        if bound not in ("truncated", "clipped"):
            raise LawError(
                "a normal length law needs a range",
                "write e.g. 'normal(mean=5, std=1) clipped 1..10' (rounded, then clipped)",
            )
        assert low is not None and high is not None
        return _shaped(
            _normal(ps["mean"], ps["std"]), bound, low, high, describe_law(name, args, kw)
        )
    if name == "uniform":
        _params(name, args, kw, ())
        values = _on_range(name, bound, low, high)
        return _normalise(values, [1.0] * len(values), "uniform")
    if name == "inverse":
        _params(name, args, kw, ())
        values = _on_range(name, bound, low, high)
        if values[0] < 1:
            raise LawError("inverse (1/n) needs lengths from 1", "write 'inverse on 1..N'")
        return _normalise(values, [1.0 / n for n in values], "inverse")
    values = _on_range(name, bound, low, high)  # table
    if kw:
        raise LawError("table weights are positional", "write 'table(0.5, 0.3, 0.2) on 1..3'")
    if len(args) != len(values):
        raise LawError(
            f"table has {len(args)} weights for {len(values)} lengths {low}..{high}",
            "give one weight per length in the range",
        )
    if any(w < 0 or not math.isfinite(w) for w in args):
        raise LawError("table weights must be finite and >= 0")
    return _normalise(values, list(args), "table")


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def describe_law(
    name: str,
    args: Sequence[float] = (),
    kwargs: Mapping[str, float] | None = None,
    bound: str | None = None,
    low: int | None = None,
    high: int | None = None,
) -> str:
    """Canonical text of a law, e.g. ``geometric(p=0.2) truncated 1..10``."""
    parts = [_num(a) for a in args] + [f"{k}={_num(v)}" for k, v in (kwargs or {}).items()]
    text = f"{name}({', '.join(parts)})" if parts else name
    if bound is not None:
        text += f" {bound} {low}..{high}"
    return text

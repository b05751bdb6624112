"""objspec.distributions: length laws lowered to exact tables, checked against closed forms."""

from __future__ import annotations

import math
from typing import Any

import pytest

from objspec.distributions import (
    BOUND_KINDS,
    LAW_NAMES,
    MAX_LAMBDA,
    MAX_LENGTH,
    MAX_SUPPORT,
    TAIL_MASS,
    U32,
    LawError,
    LengthTable,
    build_law,
    describe_law,
)

# --- closed forms, computed independently of the module -------------------------------------


def geometric_pmf(p: float, n: int) -> float:
    return p * (1 - p) ** (n - 1)


def poisson_pmf(lam: float, n: int) -> float:
    return lam**n * math.exp(-lam) / math.factorial(n)


def normal_cdf(x: float, mean: float, std: float) -> float:
    return 0.5 * (1 + math.erf((x - mean) / (std * math.sqrt(2))))


def normal_rounded_pmf(mean: float, std: float, n: int) -> float:
    return normal_cdf(n + 0.5, mean, std) - normal_cdf(n - 0.5, mean, std)


def check_table(t: LengthTable) -> None:
    """The LengthTable invariants."""
    assert len(t.values) == len(t.probs) >= 1
    assert all(isinstance(v, int) and v >= 0 for v in t.values)
    assert all(a < b for a, b in zip(t.values, t.values[1:], strict=False))
    assert all(p > 0 for p in t.probs)
    assert abs(math.fsum(t.probs) - 1) < 1e-12
    assert (t.low, t.high) == (t.values[0], t.values[-1])


# --- SpanBERT / Megatron geometric ------------------------------------------------------------


def test_spanbert_truncated_geometric() -> None:
    t = build_law("geometric", (), {"p": 0.2}, "truncated", 1, 10)
    check_table(t)
    weights = [0.8 ** (n - 1) for n in range(1, 11)]  # SpanBERT: p(1-p)^(i-a), renormalised
    exact = sum(n * w for n, w in zip(range(1, 11), weights, strict=True)) / sum(weights)
    assert t.values == tuple(range(1, 11))
    assert abs(t.mean - exact) < 1e-12
    assert abs(t.mean - 3.797) < 1e-3
    for n, w in zip(range(1, 11), weights, strict=True):
        assert abs(t.prob_of(n) - w / sum(weights)) < 1e-15


def test_truncated_geometric_from_a_later_start() -> None:
    t = build_law("geometric", (0.3,), {}, "truncated", 3, 6)
    weights = [0.7 ** (n - 3) for n in range(3, 7)]  # the same law, relative to a
    assert t.values == (3, 4, 5, 6)
    for n, w in zip(t.values, weights, strict=True):
        assert abs(t.prob_of(n) - w / sum(weights)) < 1e-15


def test_megatron_clipped_geometric() -> None:
    t = build_law("geometric", (0.2,), {}, "clipped", 1, 10)
    check_table(t)
    exact = sum(n * geometric_pmf(0.2, n) for n in range(1, 10)) + 10 * 0.8**9
    assert abs(t.mean - exact) < 1e-12
    assert abs(t.mean - 4.46) < 1e-2
    assert abs(t.prob_of(10) - 0.8**9) < 1e-15  # P(X >= 10) piled on 10


def test_clipped_geometric_piles_both_ends() -> None:
    t = build_law("geometric", (0.5,), {}, "clipped", 3, 5)
    assert t.values == (3, 4, 5)
    assert abs(t.prob_of(3) - (0.5 + 0.25 + 0.125)) < 1e-15  # P(X <= 3)
    assert abs(t.prob_of(4) - 0.0625) < 1e-15
    assert abs(t.prob_of(5) - 0.0625) < 1e-15  # P(X >= 5) = 0.5^4


def test_geometric_p_one_is_a_point_mass() -> None:
    assert build_law("geometric", (1,)) == LengthTable((1,), (1.0,))
    assert build_law("geometric", (1,), {}, "clipped", 2, 4) == LengthTable((2,), (1.0,))


@pytest.mark.parametrize("p", [0.05, 0.2, 0.3, 0.5, 0.85])
def test_unbounded_geometric_cuts_the_tail(p: float) -> None:
    t = build_law("geometric", (), {"p": p})
    check_table(t)
    assert t.low == 1 and t.values == tuple(range(1, t.high + 1))

    def pmf(n: int) -> float:
        return p * (1 - p) ** (n - 1)

    # The cut is the first N whose own mass and the tail past it are both below TAIL_MASS.
    assert (1 - p) ** t.high < TAIL_MASS and pmf(t.high) < TAIL_MASS
    n = t.high - 1
    assert not ((1 - p) ** n < TAIL_MASS and pmf(n) < TAIL_MASS)
    assert abs(t.mean - 1 / p) < 1e-6


# --- Poisson ----------------------------------------------------------------------------------


def test_poisson() -> None:
    t = build_law("poisson", (), {"lambda": 3})
    check_table(t)
    assert t.low == 0
    assert abs(t.prob_of(0) - 0.0498) < 1e-4
    assert abs(t.prob_of(0) - math.exp(-3)) < 1e-9
    assert abs(t.mean - 3) < 1e-6
    assert abs(build_law("poisson", (3.5,)).prob_of(0) - 0.0302) < 1e-4


@pytest.mark.parametrize("lam", [0.5, 3.0, 10.0, 40.0])
def test_unbounded_poisson_cuts_the_tail(lam: float) -> None:
    t = build_law("poisson", (lam,))
    check_table(t)
    kept = math.fsum(poisson_pmf(lam, n) for n in range(t.high + 1))
    assert 1 - kept < TAIL_MASS
    assert abs(t.mean - lam) < 1e-6


def test_clipped_poisson_keeps_all_mass() -> None:
    t = build_law("poisson", (), {"lambda": 3}, "clipped", 2, 5)
    assert t.values == (2, 3, 4, 5)
    assert abs(t.prob_of(2) - sum(poisson_pmf(3, n) for n in range(3))) < 1e-15
    assert abs(t.prob_of(4) - poisson_pmf(3, 4)) < 1e-15
    assert abs(t.prob_of(5) - (1 - sum(poisson_pmf(3, n) for n in range(5)))) < 1e-14


def test_truncated_poisson_renormalises() -> None:
    t = build_law("poisson", (), {"lambda": 3}, "truncated", 1, 4)
    weights = [poisson_pmf(3, n) for n in range(1, 5)]
    for n, w in zip(range(1, 5), weights, strict=True):
        assert abs(t.prob_of(n) - w / sum(weights)) < 1e-15


def test_poisson_far_ranges() -> None:
    # all the mass lies below a far range: clipping piles it on the low end
    far = MAX_LENGTH - 3
    assert build_law("poisson", (3,), {}, "clipped", far, MAX_LENGTH) == LengthTable((far,), (1.0,))
    # the largest lambda lies above a small range: clipping piles it on the high end
    assert build_law("poisson", (MAX_LAMBDA,), {}, "clipped", 1, 3) == LengthTable((3,), (1.0,))


# --- normal -----------------------------------------------------------------------------------


def test_infoword_normal_clipped() -> None:
    t = build_law("normal", (), {"mean": 5, "std": 1}, "clipped", 1, 10)
    check_table(t)
    assert t.values == tuple(range(1, 11))
    assert abs(sum(t.probs) - 1) < 1e-12
    assert abs(t.mean - 5) < 1e-3
    p5 = 0.5 * (math.erf(0.5 / math.sqrt(2)) - math.erf(-0.5 / math.sqrt(2)))
    assert abs(t.prob_of(5) - p5) < 1e-12
    assert abs(t.prob_of(1) - normal_cdf(1.5, 5, 1)) < 1e-12  # everything rounding to <= 1
    assert abs(t.prob_of(10) - (1 - normal_cdf(9.5, 5, 1))) < 1e-12


def test_normal_truncated_renormalises() -> None:
    t = build_law("normal", (5, 1), {}, "truncated", 4, 6)
    check_table(t)
    weights = [normal_rounded_pmf(5, 1, n) for n in (4, 5, 6)]
    assert t.values == (4, 5, 6)
    for n, w in zip((4, 5, 6), weights, strict=True):
        assert abs(t.prob_of(n) - w / sum(weights)) < 1e-12
    assert abs(t.mean - 5) < 1e-12  # symmetric about the mean


def test_normal_far_tail_keeps_precision() -> None:
    t = build_law("normal", (0, 1), {}, "truncated", 10, 12)
    check_table(t)
    assert t.values[0] == 10 and t.prob_of(10) > 0.99


# --- support laws -----------------------------------------------------------------------------


def test_simple_laws() -> None:
    t = build_law("fixed", (3,))
    assert (t.values, t.probs) == ((3,), (1.0,))
    assert build_law("fixed", (), {"k": 0}) == LengthTable((0,), (1.0,))
    u = build_law("uniform", bound="on", low=1, high=5)
    assert u.values == (1, 2, 3, 4, 5)
    assert all(abs(p - 1 / 5) < 1e-15 for p in u.probs)
    t = build_law("table", (1, 0, 3), bound="on", low=2, high=4)
    assert (t.values, t.probs) == ((2, 4), (0.25, 0.75))


def test_albert_inverse_ngrams() -> None:
    t = build_law("inverse", bound="on", low=1, high=3)
    check_table(t)
    assert all(abs(a - b) < 1e-3 for a, b in zip(t.probs, (0.545, 0.273, 0.182), strict=True))
    assert abs(t.mean - 1.64) < 1e-2
    assert abs(t.mean - 18 / 11) < 1e-12  # 3 / (1 + 1/2 + 1/3)


def test_table_with_huge_weights_normalises() -> None:
    t = build_law("table", (1e308, 1e308), bound="on", low=0, high=1)
    assert t.probs == (0.5, 0.5)


def test_prob_of_outside_the_support() -> None:
    t = build_law("table", (1, 0, 3), bound="on", low=2, high=4)
    assert t.prob_of(3) == 0.0 and t.prob_of(1) == 0.0 and t.prob_of(99) == 0.0


# --- sampling thresholds ----------------------------------------------------------------------

TABLES = [
    ("geometric", (), {"p": 0.2}, "truncated", 1, 10),
    ("geometric", (0.2,), {}, "clipped", 1, 10),
    ("geometric", (0.05,), {}, None, None, None),
    ("poisson", (), {"lambda": 3}, None, None, None),
    ("normal", (5, 1), {}, "clipped", 1, 10),
    ("inverse", (), {}, "on", 1, 3),
    ("table", (1, 0, 3), {}, "on", 2, 4),
    ("fixed", (7,), {}, None, None, None),
]


@pytest.mark.parametrize("law", TABLES, ids=lambda law: describe_law(*law))
def test_cdf_thresholds(law: tuple[Any, ...]) -> None:
    t = build_law(*law)
    cdf = t.cdf_u32()
    assert len(cdf) == len(t.values)
    assert cdf[-1] == U32
    assert all(isinstance(c, int) for c in cdf) and list(cdf) == sorted(cdf)
    steps = [b - a for a, b in zip((0, *cdf[:-1]), cdf, strict=True)]
    assert all(abs(s / U32 - p) < 1e-9 for s, p in zip(steps, t.probs, strict=True))


def test_cdf_matches_the_spanbert_golden() -> None:
    t = build_law("geometric", (), {"p": 0.2}, "truncated", 1, 10)
    assert t.cdf_u32() == (
        962321997,
        1732179594,
        2348065672,
        2840774535,
        3234941624,
        3550275296,
        3802542234,
        4004355784,
        4165806624,
        4294967296,
    )


# --- errors -----------------------------------------------------------------------------------

NAN, INF = float("nan"), float("inf")

INVALID = [
    # (name, args, kwargs, bound, low, high), fragment of the message
    (("lognormal", (), {}, None, None, None), "unknown law"),
    (("fixed", (-1,), {}, None, None, None), "whole number"),
    (("fixed", (1.5,), {}, None, None, None), "whole number"),
    (("fixed", (3,), {}, "on", 1, 5), "no range"),
    (("fixed", (), {}, None, None, None), "needs parameter 'k'"),
    (("geometric", (), {"p": 0}, None, None, None), "in (0, 1]"),
    (("geometric", (), {"p": 1.5}, None, None, None), "in (0, 1]"),
    (("geometric", (-0.1,), {}, None, None, None), "in (0, 1]"),
    (("geometric", (), {"p": NAN}, None, None, None), "finite"),
    (("geometric", (), {"p": INF}, None, None, None), "finite"),
    (("geometric", (), {"q": 0.2}, None, None, None), "no parameter 'q'"),
    (("geometric", (0.2,), {"p": 0.2}, None, None, None), "twice"),
    (("geometric", (), {}, None, None, None), "needs parameter 'p'"),
    (("geometric", (0.2, 0.3), {}, None, None, None), "takes 1 parameter"),
    (("geometric", (0.2,), {}, "truncated", 5, 2), "empty"),
    (("geometric", (0.2,), {}, "truncated", -1, 2), "negative"),
    (("geometric", (0.2,), {}, "truncated", None, 2), "needs a range"),
    (("geometric", (0.2,), {}, None, 1, 2), "needs 'truncated'"),
    (("geometric", (0.2,), {}, "squashed", 1, 2), "unknown bound"),
    (("geometric", (0.2,), {}, "on", 1, 3), "not 'on'"),
    (("geometric", (1e-5,), {}, None, None, None), "values"),
    (("geometric", (0.2,), {}, "truncated", 1, MAX_SUPPORT + 1), "too wide"),
    (("geometric", (0.9,), {}, "truncated", 400, 500), "no probability mass"),
    (("poisson", (), {"lambda": 0}, None, None, None), "> 0"),
    (("poisson", (-2,), {}, None, None, None), "> 0"),
    (("poisson", (), {"lam": 3}, None, None, None), "no parameter 'lam'"),
    (("poisson", (1e-3,), {}, "truncated", 400, 500), "no probability mass"),
    (("poisson", (1e6,), {}, None, None, None), "at most 10000"),
    (("poisson", (1e18,), {}, "clipped", 1, 3), "at most 10000"),
    (("geometric", (0.2,), {}, "truncated", 1, MAX_LENGTH + 1), "longest length"),
    (("fixed", (1e300,), {}, None, None, None), "longest length"),
    (("normal", (1e300, 1), {}, "clipped", 1, 3), "at most"),
    (("normal", (5, 1), {}, None, None, None), "needs a range"),
    (("normal", (5, 0), {}, "clipped", 1, 3), "std"),
    (("normal", (5, -1), {}, "clipped", 1, 3), "std"),
    (("normal", (5,), {}, "clipped", 1, 3), "needs parameter 'std'"),
    (("normal", (5, 1), {}, "on", 1, 3), "needs a range"),
    (("uniform", (), {}, None, None, None), "needs its support"),
    (("uniform", (3,), {}, "on", 1, 3), "takes 0 parameter"),
    (("uniform", (), {}, "truncated", 1, 3), "needs its support"),
    (("inverse", (), {}, "on", 0, 3), "from 1"),
    (("inverse", (), {}, "clipped", 1, 3), "needs its support"),
    (("table", (1, 2), {}, "on", 1, 3), "2 weights for 3"),
    (("table", (1, -1, 2), {}, "on", 1, 3), ">= 0"),
    (("table", (0, 0), {}, "on", 1, 2), "no probability mass"),
    (("table", (1, NAN), {}, "on", 1, 2), "finite"),
    (("table", (), {"w": 1}, "on", 1, 1), "positional"),
    (("table", (1, 2), {}, None, None, None), "needs its support"),
]


@pytest.mark.parametrize(("law", "message"), INVALID, ids=[m for _, m in INVALID])
def test_invalid_laws_raise_law_error_with_a_hint(law: tuple[Any, ...], message: str) -> None:
    with pytest.raises(LawError) as info:
        build_law(*law)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


def test_unknown_law_hint_lists_the_laws() -> None:
    with pytest.raises(LawError) as info:
        build_law("geometrc", (0.2,))
    assert info.value.hint is not None
    assert all(name in info.value.hint for name in LAW_NAMES)


def test_unknown_bound_hint_lists_the_bounds() -> None:
    with pytest.raises(LawError) as info:
        build_law("geometric", (0.2,), {}, "within", 1, 3)
    assert info.value.hint is not None
    assert all(kind in info.value.hint for kind in BOUND_KINDS)


def test_law_error_hint_defaults_to_none() -> None:
    assert LawError("bad").hint is None
    assert LawError("bad", "do this").hint == "do this"


# --- describe ---------------------------------------------------------------------------------

EXAMPLES = [
    ("geometric(p=0.2) truncated 1..10", ("geometric", (), {"p": 0.2}, "truncated", 1, 10)),
    ("poisson(lambda=3)", ("poisson", (), {"lambda": 3.0}, None, None, None)),
    ("uniform on 1..5", ("uniform", (), {}, "on", 1, 5)),
    ("table(0.5, 0.3, 0.2) on 1..3", ("table", (0.5, 0.3, 0.2), {}, "on", 1, 3)),
    (
        "normal(mean=5, std=1) clipped 1..10",
        ("normal", (), {"mean": 5, "std": 1}, "clipped", 1, 10),
    ),
    ("inverse on 1..3", ("inverse", (), {}, "on", 1, 3)),
    ("fixed(k=3)", ("fixed", (), {"k": 3}, None, None, None)),
]


@pytest.mark.parametrize(("text", "law"), EXAMPLES, ids=[t for t, _ in EXAMPLES])
def test_describe_round_trips(text: str, law: tuple[Any, ...]) -> None:
    assert describe_law(*law) == text
    build_law(*law)  # every example is a valid law

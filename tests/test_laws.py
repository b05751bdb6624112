"""Length laws lowered to exact tables, against closed forms."""

from __future__ import annotations

import math

import pytest

from objspec.distributions import U32, LawError, build_law, describe_law


def geometric_mean_truncated(p: float, a: int, b: int) -> float:
    w = [(1 - p) ** (n - 1) for n in range(a, b + 1)]
    return sum(n * x for n, x in zip(range(a, b + 1), w, strict=True)) / sum(w)


def test_spanbert_truncated_geometric() -> None:
    t = build_law("geometric", (), {"p": 0.2}, "truncated", 1, 10)
    assert t.values == tuple(range(1, 11))
    assert abs(t.mean - 3.797) < 1e-3
    assert abs(t.mean - geometric_mean_truncated(0.2, 1, 10)) < 1e-12


def test_megatron_clipped_geometric() -> None:
    t = build_law("geometric", (0.2,), {}, "clipped", 1, 10)
    exact = sum(n * 0.2 * 0.8 ** (n - 1) for n in range(1, 10)) + 10 * 0.8**9
    assert abs(t.mean - exact) < 1e-12
    assert abs(t.mean - 4.46) < 1e-2


def test_albert_inverse_ngrams() -> None:
    t = build_law("inverse", bound="on", low=1, high=3)
    assert [round(p, 3) for p in t.probs] == [0.545, 0.273, 0.182]
    assert abs(t.mean - 18 / 11) < 1e-12


def test_poisson() -> None:
    t = build_law("poisson", (), {"lambda": 3})
    assert abs(t.prob_of(0) - math.exp(-3)) < 1e-9
    assert abs(t.mean - 3) < 1e-6
    assert abs(build_law("poisson", (3.5,)).prob_of(0) - 0.0302) < 1e-4


def test_normal_rounded_and_clipped() -> None:
    t = build_law("normal", (), {"mean": 5, "std": 1}, "clipped", 1, 10)
    assert abs(sum(t.probs) - 1) < 1e-12
    assert abs(t.mean - 5) < 1e-3
    expected = 0.5 * (math.erf(0.5 / math.sqrt(2)) - math.erf(-0.5 / math.sqrt(2)))
    assert abs(t.prob_of(5) - expected) < 1e-12
    truncated = build_law("normal", (5, 1), {}, "truncated", 4, 6)
    assert abs(sum(truncated.probs) - 1) < 1e-12 and truncated.values == (4, 5, 6)


def test_simple_laws() -> None:
    assert build_law("fixed", (3,)).values == (3,)
    assert build_law("uniform", bound="on", low=1, high=5).probs == (0.2,) * 5
    t = build_law("table", (1, 0, 3), bound="on", low=2, high=4)
    assert (t.values, t.probs) == ((2, 4), (0.25, 0.75))


def test_unbounded_geometric_cuts_the_tail() -> None:
    t = build_law("geometric", (0.3,))
    assert abs(t.mean - 1 / 0.3) < 1e-6
    assert 0.7 ** (t.high - 1) < 1e-8


def test_cdf_thresholds() -> None:
    t = build_law("geometric", (), {"p": 0.2}, "truncated", 1, 10)
    cdf = t.cdf_u32()
    assert cdf[-1] == U32 and list(cdf) == sorted(cdf)
    steps = [b - a for a, b in zip((0, *cdf), cdf, strict=False)]
    assert all(abs(s / U32 - p) < 1e-9 for s, p in zip(steps, t.probs, strict=True))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("geometric", (), {"p": 0}, None, None, None), "in (0, 1]"),
        (("geometric", (), {"p": 1.5}, None, None, None), "in (0, 1]"),
        (("poisson", (), {"lambda": 0}, None, None, None), "> 0"),
        (("normal", (5, 1), {}, None, None, None), "needs a range"),
        (("normal", (5, 0), {}, "clipped", 1, 3), "std"),
        (("uniform", (), {}, None, None, None), "needs its support"),
        (("table", (1, 2), {}, "on", 1, 3), "2 weights for 3"),
        (("fixed", (-1,), {}, None, None, None), "whole number"),
        (("fixed", (1.5,), {}, None, None, None), "whole number"),
        (("geometric", (), {"q": 0.2}, None, None, None), "no parameter"),
        (("geometric", (0.2,), {"p": 0.2}, None, None, None), "twice"),
        (("geometric", (), {}, None, None, None), "needs parameter"),
        (("geometric", (), {"p": float("nan")}, None, None, None), "finite"),
        (("geometric", (0.2,), {}, "truncated", 5, 2), "empty"),
        (("poisson", (1e-3,), {}, "truncated", 400, 500), "no probability mass"),
        (("geometric", (0.2,), {}, "on", 1, 3), "not 'on'"),
        (("inverse", (), {}, "on", 0, 3), "from 1"),
        (("lognormal", (), {}, None, None, None), "unknown law"),
    ],
)
def test_invalid_laws_raise_law_error(args: tuple, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(LawError, match=message.replace("(", r"\(").replace("]", r"\]")):
        build_law(*args)


def test_describe() -> None:
    assert describe_law("geometric", (), {"p": 0.2}, "truncated", 1, 10) == (
        "geometric(p=0.2) truncated 1..10"
    )
    assert describe_law("poisson", (), {"lambda": 3.0}) == "poisson(lambda=3)"
    assert describe_law("uniform", (), {}, "on", 1, 5) == "uniform on 1..5"

"""Infilling objectives of the decoder-only form: CM3's causal masking (spans of a drawn count,
their ends uniform, moved to the row's end after their sentinels) and UL2's mixture in decoder
form (specs/ul2_decoder.objspec).

The properties are objspec's own checks (objspec/checks.py: 'moved_spans', 'span_counts',
'sequence', 'packed'), run on the compiled collators and, to show they bite, on broken ones.
Each spec trains through ``objspec pretrain``'s loop with the tiny model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from objspec import compile_file, compile_spec
from objspec import runtime as rt
from objspec.checks import CHECKS, applicable, run_check
from objspec.parser import parse_file, parse_spec
from objspec.runtime import IGNORE_INDEX
from tests.spec_tools import broken, compiled, spec_error

SPECS = Path(__file__).resolve().parent.parent / "specs"
BY_NAME = {c.name: c for c in CHECKS}

CM3 = (SPECS / "cm3.objspec").read_text()
SELECT = "select    spans count ~ poisson(lambda=1) clipped 1..16, ends uniform"


pytestmark = pytest.mark.usefixtures("one_thread")


def select_line() -> int:
    return next(i for i, line in enumerate(CM3.splitlines(), 1) if line.startswith("  select"))


# --- the language ------------------------------------------------------------------------------


def test_cm3_parses_to_counted_spans() -> None:
    spec = parse_spec(CM3)
    assert spec.select.kind == "counted_spans"
    assert spec.select.count.table.low == 1 and spec.select.count.table.high == 16
    assert compiled("cm3").Collator.outputs == ("input_ids", "attention_mask", "labels")
    assert "STREAM_SPAN_COUNT = 29" in compiled("cm3").source


@pytest.mark.parametrize(
    ("select", "message"),
    [
        ("spans count ~ poisson(lambda=1), ends uniform", "draws 0 spans"),
        ("spans count ~ uniform on 1..300, ends uniform", "at most 256"),
        ("spans count ~ poisson(lambda=1) truncated 1..16", "need their ends"),
        ("spans ends uniform", "need their count"),
        ("spans count ~ poisson(lambda=1) truncated 1..16, ends edges", "unknown span ends"),
        (
            "spans count ~ poisson(lambda=1) truncated 1..16, ends uniform, "
            "length ~ poisson(lambda=3)",
            "no length law",
        ),
        ("spans count ~ poisson(lambda=1) truncated 1..16, ends uniform\n  budget 15%", "budget"),
    ],
)
def test_counted_span_faults_are_located(select: str, message: str) -> None:
    err = spec_error(CM3.replace(SELECT, f"select    {select}"))
    assert message in str(err), str(err)
    lines = {d.loc.line for d in err.diagnostics if d.loc is not None}
    assert lines & {select_line(), select_line() + 1}, str(err)


# --- the kernel ----------------------------------------------------------------------------------


def test_counted_spans_kernel() -> None:
    """Spans of a fixed count k: k runs, each at least one token, one apart, inside the
    candidates; the count capped at (n + 1) // 2; nothing in an empty row."""
    b, length = 64, 40
    candidates = torch.zeros(b, length, dtype=torch.bool)
    n = torch.arange(b) % 12  # documents of 0..11 tokens after a [CLS]
    candidates[:, 1:] = torch.arange(1, length).unsqueeze(0) <= n.unsqueeze(1)
    keys = rt.Keys(7, 0, torch.arange(b))
    values, cdf = torch.tensor([3]), torch.tensor([2**32])
    selected = rt.counted_spans(keys, (29, 30), candidates, values, cdf)
    assert not (selected & ~candidates).any()
    starts = selected & ~torch.cat([torch.zeros(b, 1, dtype=torch.bool), selected[:, :-1]], 1)
    assert torch.equal(starts.sum(dim=1), torch.minimum(torch.tensor(3), (n + 1) // 2))
    again = rt.counted_spans(keys, (29, 30), candidates, values, cdf)
    assert torch.equal(selected, again)
    capped = rt.counted_spans(keys, (29, 30), candidates, values, cdf, max_spans=1)
    assert (capped.sum(dim=1) > 0).long().sum() == (n > 0).sum()


# --- the properties, and that they catch broken collators ----------------------------------------


@pytest.mark.parametrize("name", ["cm3"])
def test_objspec_check_passes(name: str) -> None:
    spec = parse_file(SPECS / f"{name}.objspec")
    names = {c.name for c in applicable(spec)}
    assert {"cm3": {"moved_spans", "span_counts", "sequence", "packed"}}[name] <= names
    for check in applicable(spec):
        result = run_check(check, spec, compiled(name), 15)
        assert result.passed, (check.name, result.detail)


def relabel(out: dict[str, torch.Tensor]) -> None:
    out["labels"] = torch.where(out["labels"] == IGNORE_INDEX, out["labels"], out["input_ids"])


def renumber_moved(out: dict[str, torch.Tensor], collator: Any) -> None:
    """The moved spans' sentinels renumbered (<extra_id_0> where <extra_id_1> belongs)."""
    s0, s1 = collator.vocab.sentinel_ids[:2]
    ids = out["input_ids"]
    ids[ids == s1] = s0
    relabel(out)


def corrupt_a_moved_token(out: dict[str, torch.Tensor], collator: Any) -> None:
    """The token after the last sentinel changed: a moved span is not the cut-out text."""
    sentinels = torch.tensor(collator.vocab.sentinel_ids)
    ids = out["input_ids"]
    is_sentinel = torch.isin(ids, sentinels)
    last = torch.where(is_sentinel, torch.arange(ids.shape[1]), -1).amax(dim=1)
    rows = torch.arange(ids.shape[0])[last >= 0]
    ids[rows, last[last >= 0] + 1] += 1
    relabel(out)


@pytest.mark.parametrize(
    ("name", "damage", "check"),
    [
        ("cm3", renumber_moved, "moved_spans"),
        ("cm3", corrupt_a_moved_token, "moved_spans"),
    ],
)
def test_the_checks_catch_broken_collators(name: str, damage: Any, check: str) -> None:
    spec = parse_file(SPECS / f"{name}.objspec")
    result = run_check(BY_NAME[check], spec, broken(name, damage), 30)
    assert not result.passed, f"{check} passed a collator with {damage.__name__}"


def test_span_counts_catch_a_wrong_law() -> None:
    """The bundled collator judged against a spec whose count law is Poisson(2)."""
    other = parse_spec(CM3.replace("lambda=1", "lambda=2"))
    result = run_check(BY_NAME["span_counts"], other, compiled("cm3"), 1)
    assert not result.passed


def test_ul2_decoder_is_ul2_in_decoder_form() -> None:
    """The bundled ul2_decoder spec is ul2 with 'output decoder_only': the same batch, byte for
    byte, as ``objspec compile ul2 --output decoder_only``; the mode token opens the prefix."""
    from objspec.checks import _collate, big_case

    mine = parse_file(SPECS / "ul2_decoder.objspec")
    theirs = parse_file(SPECS / "ul2.objspec").with_output("decoder_only")
    assert [(m.name, m.rate, m.mode) for m in mine.members] == [
        (m.name, m.rate, m.mode) for m in theirs.members
    ]
    case = big_case(rows=40, length=60, size=300)
    a = _collate(compiled("ul2_decoder"), case)
    b = _collate(compile_file(SPECS / "ul2.objspec", output="decoder_only"), case)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    modes = {case.vocab.id_of(t) for t in ("[NLU]", "[NLG]", "[S2S]")}
    assert set(a["input_ids"][:, 0].tolist()) <= modes and a["prefix_mask"][:, 0].all()
    spec = parse_file(SPECS / "ul2_decoder.objspec")
    names = {c.name for c in applicable(spec)}
    assert {"members", "mixture_rates", "packed"} <= names
    for check in applicable(spec):
        result = run_check(check, spec, compiled("ul2_decoder"), 10)
        assert result.passed, (check.name, result.detail)


# --- training ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["cm3", "ul2_decoder"])
def test_trains_through_the_pretrain_loop(name: str, tmp_path: Path) -> None:
    """``objspec pretrain``'s loop (the tiny model, the bundled corpus): 30 steps lose well
    over a nat (measured in the report)."""
    from tests.test_e2e import train

    losses = train(SPECS / f"{name}.objspec", tmp_path, steps=30)
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    print(f"{name}: loss {first:.3f} -> {last:.3f}")
    assert last < first - 1.0, f"loss {first:.3f} -> {last:.3f}"


def test_compiles_from_text() -> None:
    assert compile_spec(CM3).Collator.needs == ("sentinel", "end")

"""Variants by reference: ``objective NAME from BASE`` with replaced, added and dropped
statements and merged mixture members; the flattened spec they compile to, and errors located
in the file that caused them. About 3 s."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import objspec
from objspec import parse_file, parse_spec
from objspec.errors import SpecError
from tests.spec_tools import SPECS


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def error_of(path: Path) -> SpecError:
    with pytest.raises(SpecError) as caught:
        parse_file(path)
    return caught.value


def same_objective(a: objspec.ir.Spec, b: objspec.ir.Spec) -> bool:
    """Equal IR but for the name, the source and the source locations."""

    def bare(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: bare(v) for k, v in value.items() if k not in ("loc", "mode_loc")}
        if isinstance(value, list | tuple):
            return [bare(v) for v in value]
        return value

    strip = {"name", "source", "path"}
    return bool(bare(a.model_dump(exclude=strip)) == bare(b.model_dump(exclude=strip)))


def test_a_variant_is_its_base_with_the_statement_replaced() -> None:
    variant = parse_file(SPECS / "spanbert_unigram.objspec")
    written = (
        (SPECS / "spanbert.objspec").read_text().replace("random 10%", "random 10% from unigram")
    )
    assert variant.name == "spanbert_unigram"
    assert same_objective(variant, parse_spec(written))
    assert "objective spanbert_unigram\n" in variant.source  # flattened: no 'from'
    assert "from spanbert" not in variant.source.split("objective spanbert_unigram")[1]


def test_the_flattened_source_compiles_without_its_base(tmp_path: Path) -> None:
    base = write(tmp_path, "base.objspec", (SPECS / "bert_mlm.objspec").read_text())
    variant = write(
        tmp_path,
        "v.objspec",
        'objective mlm40 from "base.objspec"\n  select   bernoulli 40%\n',
    )
    flat = parse_file(variant).source
    base.unlink()
    again = parse_spec(flat)
    assert again.select.rate == pytest.approx(0.4)
    assert objspec.compile_spec(flat).Collator.outputs == ("input_ids", "attention_mask", "labels")


def test_add_drop_and_variants_of_variants(tmp_path: Path) -> None:
    write(
        tmp_path,
        "a.objspec",
        "objective a from spanbert\n  drop     head span_boundary\n  masks    static(copies=3)\n",
    )
    b = write(tmp_path, "b.objspec", 'objective b from "a.objspec"\n  exclude  special, first\n')
    spec = parse_file(b)
    assert [h.name for h in spec.heads] == ["mlm"]
    assert spec.masks.copies == 3 and spec.exclude == ("special", "first")


def test_mixture_members_merge_by_name(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "ul2_light.objspec",
        "objective ul2_light from ul2\n"
        "  mixture per example:\n"
        '    r_mean3 2/7, mode "[NLU]"   # twice as often\n'
        '    x_mean3 1/7, mode "[NLG]":\n'
        "      select   random_spans density 30%, mean 3\n"
        "      replace  per span: sentinel 100%\n"
        "      predict  spans as sentinels\n"
        "  drop member x_mean64_dense\n",
    )
    spec = parse_file(path)
    rates = {m.name: m.rate for m in spec.members}
    assert "x_mean64_dense" not in rates and rates["r_mean3"] == pytest.approx(2 / 7)
    x_mean3 = next(m for m in spec.members if m.name == "x_mean3")
    assert x_mean3.objective.select.density == pytest.approx(0.3)
    names = [m.name for m in spec.members]
    assert names == ["r_mean3", "r_mean8", "x_mean3", "x_mean8", "x_mean64", "s_prefix_lm"]


@pytest.mark.parametrize(
    ("text", "message", "line", "column"),
    [
        ("objective v from nothing_here\n  select bernoulli 15%\n", "no bundled spec", 1, 18),
        ('objective v from "missing.objspec"\n  masks static\n', "no file", 1, 18),
        ("objective v from spanbert\n  drop head nsp\n", "no `head nsp` to drop", 2, 3),
        ("objective v from ul2\n  drop member r_mean99\n", "no member 'r_mean99'", 2, 3),
        ("objective v from spanbert\n  masks    static(copies=0)\n", "at least 1", 2, 3),
        ("objective v\n  select bernoulli 15%\n  drop head mlm\n", "belongs to a variant", 3, 3),
        (
            'objective v from ul2\n  mixture per example:\n    r_mean3 0/7, mode "[NLU]"\n',
            "greater than 0",
            3,
            13,
        ),
    ],
)
def test_errors_are_located_in_the_variant(
    tmp_path: Path, text: str, message: str, line: int, column: int
) -> None:
    error = error_of(write(tmp_path, "v.objspec", text))
    first = error.first
    assert message in first.message, error.render()
    assert error.path == str(tmp_path / "v.objspec")
    assert first.loc is not None and (first.loc.line, first.loc.column) == (line, column)


def test_a_base_statement_at_fault_is_located_in_the_base(tmp_path: Path) -> None:
    """spanbert's budget does not go with a Bernoulli selection: the error is at the budget
    line of spanbert.objspec, where the statement is."""
    error = error_of(
        write(tmp_path, "v.objspec", "objective v from spanbert\n  select bernoulli 15%\n")
    )
    assert "takes no budget" in error.first.message
    assert error.path is not None and error.path.endswith("spanbert.objspec")
    budget = next(
        i
        for i, ln in enumerate((SPECS / "spanbert.objspec").read_text().splitlines(), 1)
        if ln.lstrip().startswith("budget")
    )
    assert error.first.loc is not None and error.first.loc.line == budget
    assert "budget" in error.render()


def test_a_loop_of_bases_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "a.objspec", 'objective a from "b.objspec"\n  masks static\n')
    b = write(tmp_path, "b.objspec", 'objective b from "a.objspec"\n  masks static\n')
    assert "loops" in error_of(b).first.message


def test_tasks_merge_by_name(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "bert_sop.objspec",
        "objective bert_sop from bert\n"
        "  task nsp weight 0.5:\n"
        "    pair     next 50%, swapped 50%\n"
        "    select   none\n"
        "    predict  label\n"
        "    head     sentence_classification\n",
    )
    spec = parse_file(path)
    pair = next(t for t in spec.tasks if t.name == "nsp")
    assert pair.weight == 0.5 and [s.relation for s in pair.objective.pair.shares] == [
        "next",
        "swapped",
    ]
    assert [t.name for t in spec.tasks] == [
        t.name for t in parse_file(SPECS / "bert.objspec").tasks
    ]

"""The front end never crashes: grammar-generated text, arbitrary text and bytes, and mutated
specs either compile or fail with a located SpecError. Plus a table of located errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.lark import from_lark
from lark import Lark

from objspec import compile_spec, parse_spec
from objspec.errors import SpecError
from objspec.ir import Composition, Mixture
from objspec.parser import grammar_text

SPECS = sorted((Path(__file__).resolve().parent.parent / "specs").glob("*.objspec"))
TEXTS = [p.read_text() for p in SPECS]


def compiles_or_located_error(text: str) -> None:
    """The property: success, or a SpecError whose locations lie inside the text."""
    try:
        compile_spec(text)
    except SpecError as exc:
        rendered = exc.render()
        assert rendered and "error:" in rendered
        lines = max(len(text.splitlines()), 1) + 1
        for d in exc.diagnostics:
            if d.loc is not None:
                assert 1 <= d.loc.line <= lines, (d, text)


GENERATOR = Lark(grammar_text(), parser="lalr", start="start")
NAMES = st.sampled_from(
    ["bernoulli", "exact", "spans", "token", "word", "mask", "random", "keep", "geometric",
     "poisson", "uniform", "mlm", "span_boundary", "special", "round", "ceil", "x", "selct"]
)  # fmt: skip
NUMBERS = st.sampled_from(["0", "1", "3", "10", "15", "0.2", "1.5", "100"])
GENERATED = from_lark(
    GENERATOR,
    explicit={
        "_INDENT": st.just(""),
        "_DEDENT": st.just(""),
        "_NL": st.just("\n  "),
        # spaces around names and numbers keep them apart from the keywords next to them
        "NAME": NAMES.map(lambda n: f" {n} "),
        "NUMBER": NUMBERS.map(lambda n: f" {n} "),
        "PERCENT": st.sampled_from([" 10% ", " 15% ", " 80% ", " 110% "]),
        "STRING": st.just('"[MASK]"'),
    },
).map(str.lstrip)  # the optional leading newline would indent 'objective' itself


@settings(max_examples=150)
@given(GENERATED)
def test_grammar_generated_specs(text: str) -> None:
    compiles_or_located_error(text)


@settings(max_examples=150)
@given(st.text(max_size=200))
def test_arbitrary_text(text: str) -> None:
    compiles_or_located_error(text)


@settings(max_examples=100)
@given(st.binary(max_size=200))
def test_arbitrary_bytes(data: bytes) -> None:
    compiles_or_located_error(data.decode("utf-8", errors="replace"))


@settings(max_examples=150)
@given(
    st.sampled_from(TEXTS),
    st.lists(
        st.tuples(st.sampled_from(["delete", "dup", "swap"]), st.integers(0, 10**6)), max_size=4
    ),
)
def test_mutated_bundled_specs(text: str, edits: list[tuple[str, int]]) -> None:
    chars = list(text)
    for kind, at in edits:
        i = at % max(len(chars), 1)
        if not chars:
            break
        if kind == "delete":
            del chars[i]
        elif kind == "dup":
            chars.insert(i, chars[i])
        else:
            j = (i + 1) % len(chars)
            chars[i], chars[j] = chars[j], chars[i]
    compiles_or_located_error("".join(chars))


GOOD = """objective t
  unit word
  select spans length ~ geometric(p=0.2) truncated 1..10
  budget 15% of tokens, ceil
  replace per span: mask 80%, random 10%, keep 10%
  predict original at selected
  head mlm
"""


@pytest.mark.parametrize(
    ("old", "new", "message", "line", "hint"),
    [
        ("random 10%, keep", "random 20%, keep", "sums to 110%", 5, "80% + 20% + 10%"),
        ("geometric(", "geometrc(", "unknown law 'geometrc'", 3, "did you mean 'geometric'"),
        ("  select spans", "  selct spans", "unexpected 'selct'", 3, "did you mean 'select'"),
        ("head mlm", "head mln", "unknown head 'mln'", 7, "did you mean 'mlm'"),
        ("ceil", "cell", "unknown rounding 'cell'", 4, "did you mean 'ceil'"),
        ("unit word", "unit wrd", "unknown unit 'wrd'", 2, "did you mean 'word'"),
        ("budget 15%", "budget 15", "not a rate", 4, "15%"),
        ("  budget 15% of tokens, ceil\n", "", "needs a 'budget' statement", 3, "budget 15%"),
        ("p=0.2", "p=1.5", "in (0, 1]", 3, "geometric(p=0.2)"),
        ("per span:", "per tokn:", "unknown replacement granularity", 5, "did you mean 'token'"),
        (
            "  head mlm\n",
            "  head mlm\n  task nsp:\n    pair next 50%, random 50%\n",
            "'select' belongs inside each task",
            3,
            "shared",
        ),
        ("objective t", "objective class", "not a valid objective name", 1, None),
        ("  unit word\n", "  unit word\n    unit word\n", "unexpected indentation", 3, None),
    ],
)
def test_located_errors(old: str, new: str, message: str, line: int, hint: str | None) -> None:
    text = GOOD.replace(old, new)
    assert text != GOOD
    with pytest.raises(SpecError) as info:
        parse_spec(text, "x.objspec")
    d = next((d for d in info.value.diagnostics if message in d.message), None)
    assert d is not None, info.value.render()
    assert d.loc is not None and d.loc.line == line, info.value.render()
    if hint is not None:
        assert d.hint is not None and hint in d.hint
    rendered = info.value.render()
    assert f"x.objspec:{line}:" in rendered and "^" in rendered


def test_several_faults_are_reported_together() -> None:
    text = GOOD.replace("geometric(", "geometrc(").replace("head mlm", "head mln")
    with pytest.raises(SpecError) as info:
        parse_spec(text)
    assert len(info.value.diagnostics) == 2


@pytest.mark.parametrize("text", ["", "# only a comment\n", "\n\n", "objective\n", "select x\n"])
def test_empty_and_headless_specs(text: str) -> None:
    with pytest.raises(SpecError):
        parse_spec(text)


def test_bundled_specs_parse_with_locations() -> None:
    for text in TEXTS:
        spec = parse_spec(text)
        if isinstance(spec, Mixture):
            objectives = [m.objective for m in spec.members]
        elif isinstance(spec, Composition):
            objectives = [t.objective for t in spec.tasks]
        else:
            objectives = [spec]
        for objective in objectives:
            assert objective.select.loc is not None
            line = spec.source.splitlines()[objective.select.loc.line - 1]  # a variant: flat
            assert line.lstrip().startswith("select")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("  select random_spans density 0%, mean 3\n", "the noise density must be greater than 0"),
        (
            "  select random_spans density 15%, mean 0.5\n",
            "the mean span length must be at least 1",
        ),
    ],
)
def test_bounds_read_as_sentences(body: str, message: str) -> None:
    text = (
        "objective a\n" + body + "  replace per span: sentinel 100%\n"
        "  predict spans as sentinels\n  output encoder_decoder\n  head seq2seq\n"
    )
    with pytest.raises(SpecError, match=message) as info:
        parse_spec(text)
    assert info.value.diagnostics[0].loc is not None
    assert info.value.diagnostics[0].loc.line == 2


XLNET_BODY = (
    "objective a\n  select windows length ~ uniform on 1..5, rate 1/6\n"
    "  replace per token: mask 100%\n  predict original at selected\n  attention {}\n"
    "  head mlm\n"
)


@pytest.mark.parametrize(
    ("attention", "message"),
    [
        ("permutation(layout=diagonal)", "unknown permutation layout 'diagonal'"),
        ("permutation(layout=2)", "layout is a word"),
        ("permutation(order=sparse)", "permutation takes one keyword, layout"),
        ("bidirectional(layout=sparse)", "takes no arguments"),
    ],
)
def test_permutation_layouts_are_checked(attention: str, message: str) -> None:
    with pytest.raises(SpecError, match=message) as info:
        parse_spec(XLNET_BODY.format(attention))
    assert info.value.diagnostics[0].loc is not None
    assert info.value.diagnostics[0].loc.line == 5


def test_permutation_layout_is_read() -> None:
    assert parse_spec(XLNET_BODY.format("permutation(layout=sparse)")).attention.layout == "sparse"
    assert parse_spec(XLNET_BODY.format("permutation")).attention.layout == "dense"


MLM_LINES = [
    "objective a",
    "  select bernoulli 15%",
    "  replace per token: mask 80%, random 10%, keep 10%",
    "  predict original at selected",
    "  head mlm",
]


@pytest.mark.parametrize(
    ("change", "message", "line"),
    [
        ({5: "  head mlm\n  head mlm"}, "head 'mlm' is declared twice", 6),
        ({5: "  head mlm\n  head span_boundary"}, "the span_boundary head needs spans", 2),
        (
            {
                2: "  select windows length ~ uniform on 1..5, rate 1/6",
                3: "  replace per span: mask 100%",
            },
            "'replace per span' needs spans",
            3,
        ),
        ({5: "  head mlm\n  views dropout"}, "a contrastive head and a 'views' statement", 6),
        ({4: "  predict original at all"}, "needs a sequence-to-sequence form", 4),
        ({4: "  predict original at selected\n  attention unilm(seq2seq=1)"}, "segments", 5),
        (
            {2: "  unit word\n  select random_spans density 15%, mean 3"},
            "counts tokens",
            2,
        ),
    ],
)
def test_a_rule_across_statements_points_at_the_statement_to_change(
    change: dict[int, str], message: str, line: int
) -> None:
    """Errors of rules that tie statements together are located at the statement the hint
    asks to change, not at the objective line."""
    text = "\n".join(change.get(i + 1, ln) for i, ln in enumerate(MLM_LINES)) + "\n"
    with pytest.raises(SpecError, match=message) as info:
        parse_spec(text)
    loc = info.value.diagnostics[0].loc
    assert loc is not None and loc.line == line, (loc, text)

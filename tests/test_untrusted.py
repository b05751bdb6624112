"""A spec is untrusted input: no text of it runs, no parameter makes the compiler loop or
overflow, whatever compiles runs, and pickled generated code runs only if this compiler made it."""

from __future__ import annotations

import ast
import builtins
import io
import pickle
import time
import tokenize
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

import objspec
from compiler import codegen, compile_objective
from compiler.codegen import loading
from objspec import bundled, parse_spec
from objspec.errors import IntegrityError, SpecError
from objspec.runtime.models import TinyEncoder

ROOT = Path(__file__).resolve().parent.parent
FAST = settings(max_examples=100, derandomize=True, database=None, deadline=None)

# --- 1. no spec text runs -----------------------------------------------------------------------

MIXTURE = """objective mix
  output encoder_decoder
  head seq2seq
  mixture per example:
    {member} 1/2, mode "{mode}":
      select random_spans density 15%, mean 3
      replace per span: sentinel 100%
      predict spans as sentinels
    a 1/2, mode "[NLG]":
      select random_spans density 50%, mean 8
      replace per span: sentinel 100%
      predict spans as sentinels
"""
SIMCSE = """objective {name}
  select none
  predict views
  views dropout
  head contrastive(temperature=0.05, pooling={pooling}, similarity="{similarity}")
"""
XLNET = """objective xl
  select windows length ~ uniform on 1..5, rate 1/6
  replace per token: keep 100%
  predict original at selected
  attention permutation(layout="{layout}")
  head mlm
"""
COMPOSITION = """objective both  # {comment}
  task {task}:
    select exact
    budget 15% of tokens
    replace per token: mask 80%, random 10%, keep 10%
    predict original at selected
    head mlm
  task nsp:
    pair next 50%, random 50%
    select none
    predict label
    head sentence_classification
"""
BUDGET = """objective b
  select exact
  budget 15% of tokens, max {max}
  replace per token: mask 100%
  predict original at selected
  head mlm
"""


@dataclass(frozen=True)
class Field:
    """A place spec text can reach codegen: its template, a harmless value, whether it names
    something (identifiers may then differ), and the values that legitimately change code."""

    template: str
    key: str
    harmless: str
    names: bool = False
    choices: tuple[str, ...] = ()

    def spec(self, value: str) -> str:
        defaults = {
            "member": "r",
            "mode": "[NLU]",
            "name": "sim",
            "pooling": "first",
            "similarity": "cosine",
            "layout": "dense",
            "comment": "c",
            "task": "mlm",
            "max": "20",
        }
        return self.template.format(**{**defaults, self.key: value})


FIELDS = {
    "mode": Field(MIXTURE, "mode", "[NLU]"),
    "member": Field(MIXTURE, "member", "r", names=True),
    "objective": Field(SIMCSE, "name", "sim", names=True),
    "pooling word": Field(SIMCSE, "pooling", "first", choices=("first", "mean")),
    "similarity string": Field(SIMCSE, "similarity", "cosine", choices=("cosine", "dot")),
    "layout string": Field(XLNET, "layout", "dense", choices=("dense", "sparse")),
    "task": Field(COMPOSITION, "task", "mlm", names=True),
    "comment": Field(COMPOSITION, "comment", "c"),
    "number": Field(BUDGET, "max", "20", choices=tuple(str(i) for i in range(100))),
}
HOSTILE = [
    "\rimport os",
    "x\r__import__('os').system('echo pwned')",
    "\x00",
    "\u2028x = 1",
    "\u2029",
    "\x85y",
    "\x0c",
    "\x1b[31m",
    '"',
    "\\",
    "\n",
    "\r\n",
    "'''",
    "{}",
    "é",
    "\u202e",
    "A",
    "torch",
    "rt",
    "SPEC_SOURCE",
    "denoise_a",
    "__import__",
    "True",
]


def _generated(text: str) -> str:
    return compile_objective(parse_spec(text)).source  # generated, never run


class _Normalised(ast.NodeTransformer):
    """String constants blanked; with ``rename``, identifiers numbered by first appearance."""

    def __init__(self, rename: bool) -> None:
        self.rename = rename
        self.names: dict[str, str] = {}

    def visit_Constant(self, node: ast.Constant) -> ast.Constant:  # noqa: N802 - ast's name
        return ast.Constant("") if isinstance(node.value, str) else node

    def generic_visit(self, node: ast.AST) -> ast.AST:
        if self.rename:
            for attr in ("id", "attr", "name", "arg"):
                value = getattr(node, attr, None)
                if isinstance(value, str):
                    setattr(node, attr, self.names.setdefault(value, f"n{len(self.names)}"))
        return super().generic_visit(node)


def _shape(source: str, rename: bool) -> str:
    return ast.dump(_Normalised(rename).visit(ast.parse(source)))


def _comments(source: str) -> list[str]:
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return [t.string for t in tokens if t.type == tokenize.COMMENT]


@FAST
@given(
    field=st.sampled_from(sorted(FIELDS)),
    text=st.one_of(st.sampled_from(HOSTILE), st.text(max_size=12)),
)
@example(field="mode", text="\rimport os")
@example(field="member", text="A")
def test_spec_text_reaches_code_only_as_repr_or_checked_names(field: str, text: str) -> None:
    f = FIELDS[field]
    if text in f.choices:
        return
    try:
        source = _generated(f.spec(text))
    except SpecError as exc:
        assert exc.first.loc is not None, str(exc)  # located: file:line:col, caret, hint
        return
    harmless = _generated(f.spec(f.harmless))
    assert _shape(source, f.names) == _shape(harmless, f.names)
    if not f.names:  # comments hold the text only as its repr
        expected = [c.replace(repr(f.harmless), repr(text)) for c in _comments(harmless)]
        assert _comments(source) == expected


def test_a_carriage_return_in_a_mode_is_a_located_error() -> None:
    text = FIELDS["mode"].spec("[NLU]\rimport os")
    with pytest.raises(SpecError) as caught:
        parse_spec(text, "ul2.objspec")
    report = str(caught.value)
    assert report.startswith("ul2.objspec:5:12: error: mode token '[NLU]\\rimport os'")
    assert "U+000D" in report


def test_mode_tokens_appear_in_comments_as_reprs() -> None:
    source = _generated(FIELDS["mode"].spec("[NLU]"))
    assert "# mixture per example: r 50% '[NLU]', a 50% '[NLG]'" in source


# --- 2. a pickle runs only what this compiler generates -----------------------------------------


def _pickled_collator() -> tuple[tuple[str, str, str], dict[str, Any]]:
    compiled = objspec.compile_file(ROOT / "specs" / "bert_mlm.objspec")
    collator = compiled.Collator(objspec.bundled_vocab(), seed=0)
    _, (generated_from, state) = collator.__reduce_ex__(pickle.HIGHEST_PROTOCOL)
    return generated_from, state


def _tampered(source: str, old: str, new: str) -> str:
    assert old in source
    return source.replace(old, new, 1)


PLANTED = "\nimport builtins\nbuiltins.objspec_planted = True\n"


def test_rebuild_recompiles_the_embedded_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    (name, source, cls), state = _pickled_collator()
    monkeypatch.setattr(loading, "_LOADED", {})  # as in a fresh process
    rebuilt = codegen.rebuild_generated((name, source, cls), state)
    assert type(rebuilt).__name__ == cls


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s + PLANTED, "not what objspec"),
        (lambda s: _tampered(s, "0.15", "0.16"), "not what objspec"),
        (lambda s: _tampered(s, "objective bert_mlm", "objective bert_mln"), "sha256"),
        (lambda s: _tampered(s, "OBJSPEC_VERSION = '", "OBJSPEC_VERSION = '9"), "objspec 9"),
        (lambda s: "import os\n", "spec header"),
        (lambda s: "(" * 300_000, "cannot be read"),
    ],
)
def test_rebuild_refuses_other_source(
    change: Any, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    (name, source, cls), state = _pickled_collator()
    monkeypatch.setattr(loading, "_LOADED", {})
    with pytest.raises(IntegrityError, match=message):
        codegen.rebuild_generated((name, change(source), cls), state)
    assert not hasattr(builtins, "objspec_planted")


class _Planted:
    """Pickles as a generated collator whose carried source has code appended."""

    def __init__(self, generated_from: tuple[str, str, str], state: dict[str, Any]) -> None:
        self.generated_from, self.state = generated_from, state

    def __reduce__(self) -> Any:
        name, source, cls = self.generated_from
        return codegen.rebuild_generated, ((name, source + PLANTED, cls), self.state)


def test_a_pickle_with_planted_code_is_refused() -> None:
    data = pickle.dumps(_Planted(*_pickled_collator()))
    with pytest.raises(IntegrityError, match="not what objspec"):
        pickle.loads(data)
    assert not hasattr(builtins, "objspec_planted")


def test_load_shared_compiles_the_text_when_its_hash_matches() -> None:
    text = (ROOT / "specs" / "bert_mlm.objspec").read_text(encoding="utf-8")
    compiled = objspec.load_shared(text, objspec.spec_sha256(text), version=objspec.__version__)
    recorded = compiled.module.SPEC_SHA256
    assert recorded == objspec.spec_sha256(text)
    assert compiled.source == objspec.compile_spec(text).source
    with pytest.raises(IntegrityError, match="sha256"):
        objspec.load_shared(text + "# more\n", objspec.spec_sha256(text))
    with pytest.raises(IntegrityError, match="objspec 0.0.1"):
        objspec.load_shared(text, objspec.spec_sha256(text), version="0.0.1")


# --- 3, 4. bounded compiles, and what compiles runs ---------------------------------------------

SPANS = """objective s
  select spans length ~ {law}
  budget 15% of tokens{budget}
  replace per span: mask 100%
  predict original at selected
  head mlm
  {head}
"""


def _spans(law: str = "geometric(p=0.2) truncated 1..10", budget: str = "", head: str = "") -> str:
    return SPANS.format(law=law, budget=budget, head=head)


HOSTILE_SPECS = {
    "poisson 1e15": (
        _spans("poisson(lambda=1e15) clipped 999999999999990..1000000000000010"),
        "past the longest length, 1048576",
    ),
    "poisson 1e18": (_spans("poisson(lambda=1e18)"), "at most 10000"),
    "far range": (_spans("uniform on 100000000000000000000..100000000000000000000"), "1048576"),
    "fixed 1e300": (_spans("fixed(1e300)"), "1048576"),
    "normal far": (_spans("normal(mean=1e300, std=1e300) clipped 1..3"), "at most 1048576"),
    "geometric tail": (_spans("geometric(p=1e-300)"), "100000 values"),
    "budget max": (_spans(budget=", max 100000000000000000000"), "at most 1048576"),
    "max span": (
        _spans(head="head span_boundary(max_span=100000000000000000000)"),
        "between 1 and 4096",
    ),
    "position dim": (_spans(head="head span_boundary(position_dim=1000000)"), "4096"),
    "huge digits": (_spans(law=f"fixed({'9' * 5000})"), "finite"),
    "head weight": (_spans(head="head span_boundary weight 1e300"), "at most 1000000"),
    "contrastive inf": (
        SIMCSE.format(name="sim", pooling="first", similarity="cosine").replace(
            "temperature=0.05", "temperature=1e400"
        ),
        "must be finite",
    ),
    "contrastive tiny": (
        SIMCSE.format(name="sim", pooling="first", similarity="cosine").replace(
            "temperature=0.05", "temperature=1e-300"
        ),
        "between 0.001 and 1000",
    ),
    "alpha": (
        BUDGET.format(max=20).replace("select exact", "select exact alpha 1e300"),
        "at most 10",
    ),
    "copies": (BUDGET.format(max=20) + "  masks static(copies=100000000000)\n", "at most 65536"),
    "mean span": (
        "objective t\n  select random_spans density 15%, mean 1e300\n"
        "  replace per span: sentinel 100%\n  predict spans as sentinels\n"
        "  output encoder_decoder\n  head seq2seq\n",
        "at most 1048576",
    ),
    "window rate": (XLNET.format(layout="dense").replace("rate 1/6", "rate 1e-300"), "1e-06"),
    "deep nesting": (_spans(head="head mlm(x=" + "[" * 2000 + "]" * 2000 + ")"), "nested"),
    "head range": (_spans(head="head span_boundary(max_span=1..3)"), "not the range 1..3"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_SPECS))
def test_hostile_parameters_are_refused_fast_with_a_located_error(case: str) -> None:
    text, message = HOSTILE_SPECS[case]
    start = time.perf_counter()
    with pytest.raises(SpecError) as caught:
        objspec.compile_spec(text, "hostile.objspec")
    assert time.perf_counter() - start < 1.0
    assert caught.value.first.loc is not None, str(caught.value)
    assert message in str(caught.value)
    assert "heads.params" not in str(caught.value)


AT_THE_LIMITS = [
    _spans("poisson(lambda=10000) clipped 1..12", ", max 1048576"),
    _spans("fixed(1048576)"),
    _spans("normal(mean=1048576, std=1048576) clipped 1..6"),
    _spans(head="head span_boundary(max_span=4096, position_dim=64) weight 1000000"),
    SIMCSE.format(name="sim", pooling="mean", similarity="dot").replace(
        "temperature=0.05", "temperature=0.001"
    ),
]


@pytest.mark.parametrize("text", AT_THE_LIMITS, ids=range(len(AT_THE_LIMITS)))
def test_what_compiles_at_the_limits_builds_and_runs(text: str) -> None:
    compiled = objspec.compile_spec(text)
    collator = compiled.Collator(objspec.bundled_vocab(), seed=0)
    examples = bundled.encode_examples(bundled.load_tokenizer(), bundled.load_documents()[:1], 32)
    batch = collator(examples[:4])
    torch.manual_seed(0)
    heads = compiled.Heads(TinyEncoder(bundled.BUNDLED_VOCAB_SIZE, hidden_size=16, heads=2))
    loss = heads(batch)["loss"]
    assert torch.isfinite(loss)


# --- 5, 6. clear messages -----------------------------------------------------------------------


def test_invalid_utf8_is_located_by_line_and_column(tmp_path: Path) -> None:
    spec = tmp_path / "bad.objspec"
    spec.write_bytes(b"objective x\n  # caf\xe9\n")
    with pytest.raises(SpecError) as caught:
        objspec.parse_file(spec)
    assert str(caught.value).startswith(f"{spec}:2:8: error: the spec is not valid UTF-8")


def test_a_byte_order_mark_is_accepted_and_not_hashed(tmp_path: Path) -> None:
    text = (ROOT / "specs" / "bert_mlm.objspec").read_text(encoding="utf-8")
    spec = tmp_path / "bom.objspec"
    spec.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert objspec.compile_file(spec).source == objspec.compile_spec(text).source
    assert objspec.spec_sha256("\ufeff" + text) == objspec.spec_sha256(text)


def test_members_differing_in_case_get_distinct_constants() -> None:
    compiled = objspec.compile_spec(FIELDS["member"].spec("A"))
    module = compiled.module
    assert module.A_NOISE_DENSITY == 0.15 and module.A_NOISE_DENSITY_1 == 0.5
    assert callable(compiled.Collator.denoise_A) and callable(compiled.Collator.denoise_a)


@pytest.mark.parametrize("name", ["torch", "os", "objspec", "compiler", "numpy"])
def test_an_objective_named_like_a_module_is_refused(name: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec(FIELDS["objective"].spec(name))
    assert f"the module {name!r}" in str(caught.value)
    assert caught.value.first.loc is not None

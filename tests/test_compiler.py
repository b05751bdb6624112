"""Lowering and code generation: goldens, determinism, injection safety, readability."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from compiler import compile_objective, load
from compiler.codegen import checked_identifier, class_prefix
from compiler.lower import lower
from compiler.plan import cumulative_thresholds
from objspec import compile_spec, parse_spec
from objspec.errors import CodegenError
from tests.regen_golden import GOLDEN, ROOT, SPECS, golden_source

SPEC_FILES = sorted(SPECS.glob("*.objspec"))


@pytest.mark.parametrize("spec", SPEC_FILES, ids=lambda p: p.stem)
def test_compiled_module_matches_golden(spec: Path) -> None:
    golden = GOLDEN / f"{spec.stem}.py"
    assert golden.exists(), "run `make golden` and review the new file"
    assert golden_source(spec) == golden.read_text(encoding="utf-8"), (
        "compiled output changed; if intended, run `make golden` and review the diff"
    )


@pytest.mark.parametrize("spec", SPEC_FILES, ids=lambda p: p.stem)
def test_output_is_deterministic_and_imports_only_torch_and_runtime(spec: Path) -> None:
    first = golden_source(spec)
    assert first == golden_source(spec)
    tree = ast.parse(first)
    imported = {
        alias.name if isinstance(node, ast.Import) else node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported == {"torch", "objspec"}
    froms = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert all(n.module == "objspec" and [a.name for a in n.names] == ["runtime"] for n in froms)


@pytest.mark.parametrize("spec", SPEC_FILES, ids=lambda p: p.stem)
def test_no_python_loop_in_generated_collators(spec: Path) -> None:
    tree = ast.parse(golden_source(spec))
    loops = [n for n in ast.walk(tree) if isinstance(n, ast.For | ast.While | ast.comprehension)]
    assert loops == []


def test_spec_source_round_trips_and_header_has_hash() -> None:
    text = (ROOT / "specs" / "spanbert.objspec").read_text()
    compiled = compile_spec(text)
    assert text == compiled.module.SPEC_SOURCE
    assert compiled.module.SPEC_SHA256 in compiled.source.split('"""')[1]


HOSTILE = '''# """ ; import os; os.system("echo pwned") \\
# \'\'\' \\n __import__("os")
objective evil_name
  select   bernoulli 15%
  replace  per token: mask 80%, random 10%, keep 10%
  predict  original at selected
  head     mlm
'''


def test_hostile_spec_text_reaches_source_only_as_repr() -> None:
    compiled = compile_spec(HOSTILE)
    tree = ast.parse(compiled.source)
    calls = [
        n.func.attr if isinstance(n.func, ast.Attribute) else getattr(n.func, "id", "")
        for n in ast.walk(tree)
        if isinstance(n, ast.Call)
    ]
    assert "system" not in calls and "__import__" not in calls
    assert compiled.module.SPEC_SOURCE == HOSTILE
    # the text appears nowhere outside string literals
    code_only = ast.unparse(
        ast.Module(
            [
                s
                for s in tree.body
                if not (isinstance(s, ast.Assign) and s.targets[0].id == "SPEC_SOURCE")
            ],  # type: ignore[attr-defined]
            [],
        )
    )
    assert "pwned" not in code_only


def test_identifiers_are_checked() -> None:
    assert class_prefix("bert_mlm") == "BertMlm"
    assert class_prefix("_1") == "Spec1"
    for bad in ("import", "a-b", "x\nimport os", "1x", ""):
        with pytest.raises(CodegenError):
            checked_identifier(bad)


def test_lowering_resolves_constants() -> None:
    plan = lower(parse_spec((SPECS / "spanbert.objspec").read_text()))
    spans = plan.steps[2]
    assert spans.values == tuple(range(1, 11))  # type: ignore[attr-defined]
    assert abs(spans.mean - 3.797) < 1e-3  # type: ignore[attr-defined]
    assert spans.cdf[-1] == 2**32  # type: ignore[attr-defined]
    assert plan.needs == ("mask", "random")
    assert plan.outputs[-2:] == ("span_start", "span_end")
    assert [h.kind for h in plan.heads] == ["mlm", "span_boundary"]


def test_cumulative_thresholds() -> None:
    assert cumulative_thresholds((0.8, 0.1, 0.1)) == (3435973837, 3865470566, 2**32)
    assert cumulative_thresholds((1.0,)) == (2**32,)


def test_zero_share_actions_are_dropped() -> None:
    text = HOSTILE.replace("mask 80%, random 10%, keep 10%", "mask 90%, random 0%, keep 10%")
    plan = lower(parse_spec(text))
    assert plan.needs == ("mask",)
    generated = compile_objective(parse_spec(text))
    assert "pool=" not in generated.source and "STREAM_RANDOM_TOKEN" not in generated.source
    assert load(generated).EvilNameCollator.needs == ("mask",)


def test_output_form_can_be_chosen_at_compile_time() -> None:
    from objspec import SpecError, compile_file, parse_file
    from objspec.checks import applicable, run_check

    spec = SPEC_FILES[0].parent / "t5_span.objspec"
    objective = parse_file(spec).with_output("decoder_only")
    compiled = compile_file(spec, output="decoder_only")
    assert compiled.Collator.outputs == ("input_ids", "attention_mask", "labels", "prefix_mask")
    for check in applicable(objective):
        if not check.statistical:
            assert run_check(check, objective, compiled, max_examples=10).passed, check.name
    with pytest.raises(SpecError, match="with output 'encoder': .* sequence-to-sequence") as info:
        compile_file(spec, output="encoder")
    assert info.value.diagnostics[0].loc == objective.loc  # the override broke it, not a line
    with pytest.raises(SpecError, match="unknown output form"):
        compile_file(spec, output="decoder")

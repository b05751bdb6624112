"""The checks are right in every batch form: each bundled spec passes them compiled in every
output form it accepts (``encoder``, ``encoder_decoder``, ``decoder_only``), and each check
fixed for a form still fails on a collator broken on purpose.

The statistical checks of a spec's own form run in tests/test_properties.py already; here they
run only for the forms the spec is compiled to by override.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import torch

from objspec import SpecError, compile_file, compile_spec, parse_file, parse_spec
from objspec.checks import CHECKS, Check, run_check, run_checks
from objspec.ir import OUTPUTS, Spec
from objspec.runtime import IGNORE_INDEX

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.objspec"))
EXAMPLES = 5  # Hypothesis examples per check: the forms multiply the bundled specs' checks


def accepted_forms(path: Path) -> list[str]:
    """The output forms a spec compiles to: the others raise a SpecError."""
    forms = []
    for form in OUTPUTS:
        try:
            parse_file(path).with_output(form)
        except SpecError:
            continue
        forms.append(form)
    return forms


FORMS = [(path.stem, form) for path in SPECS for form in accepted_forms(path)]


@cache
def compiled_in(spec: str, form: str) -> tuple[Spec, Any]:
    path = ROOT / "specs" / f"{spec}.objspec"
    return parse_file(path).with_output(form), compile_file(path, output=form)


def failures(objective: Spec, compiled: Any, statistical: bool = True) -> list[str]:
    results = run_checks(objective, compiled, max_examples=EXAMPLES, statistical=statistical)
    return [f"{r.name}: {r.detail}" for r in results if not r.passed]


def check_named(name: str) -> Check:
    return next(c for c in CHECKS if c.name == name)


def test_every_form_is_accepted_by_some_bundled_spec() -> None:
    assert {form for _, form in FORMS} == set(OUTPUTS)
    assert {spec for spec, _ in FORMS} == {path.stem for path in SPECS}


def test_a_form_a_spec_does_not_accept_is_a_spec_error() -> None:
    with pytest.raises(SpecError):
        compile_file(ROOT / "specs" / "bert_mlm.objspec", output="decoder_only")


@pytest.mark.parametrize(("spec", "form"), FORMS, ids=[f"{s}-{f}" for s, f in FORMS])
def test_bundled_spec_passes_its_checks_in_every_form(spec: str, form: str) -> None:
    objective, compiled = compiled_in(spec, form)
    own_form = parse_file(ROOT / "specs" / f"{spec}.objspec").output.kind == form
    assert failures(objective, compiled, statistical=not own_form) == []


# --- objectives written here ---------------------------------------------------------------

CAUSAL_LM = """\
objective causal_lm
  select   fragment
  budget   100% of tokens
  replace  per token: delete 100%
  predict  original at selected
  output   {form}
  head     seq2seq
"""

FRAGMENT_SENTINEL = """\
objective fragment_sentinel
  select   fragment length ~ uniform on 1..5
  replace  per span: sentinel 100%
  predict  spans as sentinels
  output   {form}
  head     seq2seq
"""

FRAGMENT_LAW = """\
objective fragment_law
  select   fragment length ~ poisson(lambda=3) truncated 1..8
  replace  per token: mask 80%, random 10%, keep 10%
  predict  original at selected
  output   {form}
  head     seq2seq
"""


@cache
def written(text: str, form: str) -> tuple[Spec, Any]:
    source = text.format(form=form)
    return parse_spec(source), compile_spec(source)


@pytest.mark.parametrize("form", ["encoder_decoder", "decoder_only"])
def test_a_causal_lm_draws_nothing_and_passes_dynamic(form: str) -> None:
    objective, compiled = written(CAUSAL_LM, form)
    assert "dynamic" in [c.name for c in run_checks(objective, compiled, max_examples=1)]
    assert failures(objective, compiled) == []


@pytest.mark.parametrize(
    ("text", "form"),
    [
        (FRAGMENT_SENTINEL, "decoder_only"),
        (FRAGMENT_LAW, "encoder_decoder"),
        (FRAGMENT_LAW, "decoder_only"),
    ],
)
def test_fragments_drawn_by_a_law_pass_their_checks(text: str, form: str) -> None:
    objective, compiled = written(text, form)
    names = [r.name for r in run_checks(objective, compiled, max_examples=1)]
    assert "fragment_lengths" in names
    assert failures(objective, compiled) == []


def test_fragment_lengths_reads_sentinel_targets_in_encoder_decoder() -> None:
    objective, compiled = written(FRAGMENT_SENTINEL, "encoder_decoder")
    for name in ("fragment_lengths", "reconstruct"):
        result = run_check(check_named(name), objective, compiled, EXAMPLES)
        assert result.passed, (name, result.detail)


def test_fragment_sentinel_decoder_inputs_are_the_target_shifted_right() -> None:
    objective, compiled = written(FRAGMENT_SENTINEL, "encoder_decoder")
    result = run_check(check_named("decoder_inputs"), objective, compiled, EXAMPLES)
    assert result.passed, result.detail


# --- the fixed checks still fail on a broken collator --------------------------------------

Damage = Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]]


class Broken:
    """A compiled objective whose collator damages its batches, or ignores the epoch."""

    def __init__(self, compiled: Any, damage: Damage | None = None, static: bool = False) -> None:
        base = compiled.Collator

        class Collator(base):  # type: ignore[misc, valid-type]
            def set_epoch(self, epoch: int) -> None:
                super().set_epoch(0 if static else epoch)

            def __call__(self, examples: Any) -> dict[str, torch.Tensor]:
                out = super().__call__(examples)
                return damage(out) if damage is not None else out

        self.Collator = Collator


def fails(check: str, objective: Spec, broken: Broken) -> bool:
    return not run_check(check_named(check), objective, broken, max_examples=10).passed


@pytest.mark.parametrize(
    ("spec", "form"),
    [
        ("roberta", "encoder"),
        ("bart_text_infilling", "decoder_only"),
        ("t5_span", "encoder_decoder"),
    ],
)
def test_a_collator_that_ignores_the_epoch_fails_dynamic(spec: str, form: str) -> None:
    objective, compiled = compiled_in(spec, form)
    assert fails("dynamic", objective, Broken(compiled, static=True))


def test_a_deterministic_collator_that_ignores_the_epoch_passes_dynamic() -> None:
    objective, compiled = written(CAUSAL_LM, "decoder_only")
    assert not fails("dynamic", objective, Broken(compiled, static=True))


def change_the_last_label(out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Each row's last target token becomes another id (the packed row keeps it)."""
    labelled = out["labels"] != IGNORE_INDEX
    last = labelled & ~torch.cat([labelled[:, 1:], torch.zeros_like(labelled[:, :1])], dim=1)
    out["labels"] = torch.where(last, out["labels"] + 1, out["labels"])
    return out


def shrink_the_prefix(out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The prefix loses its last token, which is not labelled either."""
    prefix = out["prefix_mask"].bool()
    last = prefix & ~torch.cat([prefix[:, 1:], torch.zeros_like(prefix[:, :1])], dim=1)
    out["prefix_mask"] = (prefix & ~last).long()
    return out


def unshifted_decoder_inputs(out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out["decoder_input_ids"] = out["labels"].clamp(min=0)
    return out


def drop_the_first_target(out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Each row's first target token loses its label."""
    labelled = out["labels"] != IGNORE_INDEX
    first = labelled & ~torch.cat([torch.zeros_like(labelled[:, :1]), labelled[:, :-1]], dim=1)
    out["labels"] = out["labels"].masked_fill(first, IGNORE_INDEX)
    return out


def drop_a_span_token(out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The token after each row's first target (the sentinel) loses its label."""
    labelled = out["labels"] != IGNORE_INDEX
    second = labelled & (labelled.long().cumsum(dim=1) == 2)
    out["labels"] = out["labels"].masked_fill(second, IGNORE_INDEX)
    return out


@pytest.mark.parametrize(
    ("spec", "form", "check", "damage"),
    [
        ("bart_token_masking", "decoder_only", "document_target", change_the_last_label),
        ("bart", "decoder_only", "document_target", change_the_last_label),
        ("t5_span", "decoder_only", "packed", shrink_the_prefix),
        ("mass", "decoder_only", "packed", drop_the_first_target),
        ("t5_span", "encoder_decoder", "decoder_inputs", unshifted_decoder_inputs),
        ("bart_text_infilling", "encoder_decoder", "decoder_inputs", drop_the_first_target),
    ],
)
def test_a_broken_bundled_collator_fails_its_form_check(
    spec: str, form: str, check: str, damage: Damage
) -> None:
    objective, compiled = compiled_in(spec, form)
    assert fails(check, objective, Broken(compiled, damage))


@pytest.mark.parametrize(
    ("text", "form", "damage"),
    [
        (FRAGMENT_SENTINEL, "decoder_only", drop_a_span_token),
        (FRAGMENT_SENTINEL, "encoder_decoder", drop_a_span_token),
        (FRAGMENT_LAW, "decoder_only", drop_the_first_target),
    ],
)
def test_a_broken_fragment_fails_fragment_lengths(text: str, form: str, damage: Damage) -> None:
    objective, compiled = written(text, form)
    assert fails("fragment_lengths", objective, Broken(compiled, damage))


# --- objspec check writes nothing into the current directory -------------------------------


def test_objspec_check_leaves_the_current_directory_empty(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "HYPOTHESIS_STORAGE_DIRECTORY"}
    spec = ROOT / "specs" / "bart_token_masking.objspec"
    command = [sys.executable, "-m", "objspec.cli", "check", str(spec), "--examples", "2"]
    done = subprocess.run(
        [*command, "--output", "decoder_only"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "document_target" in done.stdout and "packed" in done.stdout
    assert list(tmp_path.iterdir()) == []

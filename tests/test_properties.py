"""Hypothesis property tests of the compiled corruptions (the checks `objspec check` runs).

Drawn over batch sizes, ragged lengths, padding, vocabulary sizes, seeds and epochs (the
``cases`` strategy), and over spec parameters (rates, rounding, laws, mixes, units).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from objspec import compile_file, compile_spec, parse_file, parse_spec
from objspec.checks import (
    CHECKS,
    COMPOSITION_CHECKS,
    MIXTURE_CHECKS,
    Case,
    CheckFailure,
    applicable,
    big_case,
    cases,
    member_compiled,
    run_check,
)
from objspec.ir import Composition, Mixture

SPECS = sorted((Path(__file__).resolve().parent.parent / "specs").glob("*.objspec"))
BUNDLED = {p.stem: (parse_file(p), compile_file(p)) for p in SPECS}


@pytest.mark.parametrize(
    ("spec", "check"),
    [(name, c) for name, (obj, _) in BUNDLED.items() for c in applicable(obj)],
    ids=lambda x: x if isinstance(x, str) else x.name,
)
def test_bundled_spec_keeps_its_promises(spec: str, check: Any) -> None:
    objective, compiled = BUNDLED[spec]
    result = run_check(check, objective, compiled, max_examples=25)
    assert result.passed, result.detail


PARTS = [
    (name, part)
    for name, (obj, _) in BUNDLED.items()
    if isinstance(obj, Mixture | Composition)
    for part in (obj.members if isinstance(obj, Mixture) else obj.tasks)
]


@pytest.mark.parametrize(("spec", "part"), PARTS, ids=lambda x: x if isinstance(x, str) else x.name)
def test_members_and_tasks_keep_their_promises(spec: str, part: Any) -> None:
    """Each member of a bundled mixture and each task of a composition, compiled alone, passes
    its own checks (T5 counts and reconstruction for UL2's span denoisers, the prefix split for
    its S-denoiser, the pair checks for NSP / SOP, the budget and mix for the masked LMs)."""
    whole, _ = BUNDLED[spec]
    compiled = member_compiled(whole, part)
    for check in applicable(part.objective):
        result = run_check(check, part.objective, compiled, max_examples=15)
        assert result.passed, (check.name, result.detail)


# --- spec parameters ---------------------------------------------------------------------------


def _keeps_its_promises(text: str, case: Case) -> None:
    """Every non-statistical check of a drawn spec, on a drawn batch."""
    objective = parse_spec(text)
    compiled = compile_spec(text)
    for check in applicable(objective):
        if not check.statistical:
            check.run(objective, compiled, case)


@st.composite
def mixes(draw: st.DrawFn) -> str:
    """A replacement mix in whole percent that sums to 100."""
    mask = draw(st.integers(0, 100))
    random = draw(st.integers(0, 100 - mask))
    return f"mask {mask}%, random {random}%, keep {100 - mask - random}%"


@st.composite
def selections(draw: st.DrawFn) -> tuple[str, bool]:
    """(select + budget statements, whether it places spans)."""
    kind = draw(st.sampled_from(["bernoulli", "exact", "spans"]))
    rate = draw(st.integers(1, 100))
    rounding = draw(st.sampled_from(["round", "ceil", "floor", "stochastic"]))
    if kind == "bernoulli":
        return f"select bernoulli {rate}%", False
    basis = draw(st.sampled_from(["tokens", "units"]))
    budget = f"budget {rate}% of {basis}, {rounding}"
    if kind == "exact":
        floor = draw(st.one_of(st.none(), st.integers(1, 5)))
        cap = draw(st.one_of(st.none(), st.integers(floor or 0, 30)))
        budget += f", min {floor}" if floor is not None else ""
        return "select exact\n  " + budget + (f", max {cap}" if cap is not None else ""), False
    law = draw(
        st.sampled_from(
            [
                "geometric(p=0.2) truncated 1..10",
                "geometric(0.5) clipped 1..4",
                "poisson(lambda=3) truncated 1..8",
                "uniform on 1..5",
                "inverse on 1..3",
                "fixed(2)",
                "normal(mean=3, std=1) clipped 1..6",
            ]
        )
    )
    return f"select spans length ~ {law}\n  {budget}", True


@st.composite
def specs(draw: st.DrawFn) -> str:
    selection, spans = draw(selections())
    unit = draw(st.sampled_from(["token", "word"]))
    per = draw(st.sampled_from(["token", "span"])) if spans else "token"
    exclude = draw(st.sampled_from(["special", "special, first", "special, first, last"]))
    masks = draw(st.sampled_from(["dynamic", "static", "static(copies=3)"]))
    return (
        "objective drawn\n"
        f"  unit {unit}\n"
        f"  exclude {exclude}\n"
        f"  {selection}\n"
        f"  replace per {per}: {draw(mixes())}\n"
        "  predict original at selected\n"
        f"  masks {masks}\n"
        "  head mlm\n"
    )


@settings(max_examples=30)
@given(text=specs(), case=cases(max_batch=4, max_length=32))
def test_any_valid_spec_keeps_its_promises(text: str, case: Case) -> None:
    _keeps_its_promises(text, case)


@settings(max_examples=8)
@given(text=specs())
def test_any_valid_spec_meets_its_rates(text: str) -> None:
    objective = parse_spec(text)
    compiled = compile_spec(text)
    for check in applicable(objective):
        if check.statistical:
            check.run(objective, compiled, big_case())


@st.composite
def t5_specs(draw: st.DrawFn) -> str:
    density = draw(st.integers(1, 99))
    mean = draw(st.sampled_from(["1", "1.5", "2", "3", "8", "64"]))
    roll = draw(st.sampled_from(["", ", random_roll"]))
    output = draw(st.sampled_from(["encoder_decoder", "decoder_only"]))
    return (
        "objective drawn\n"
        f"  select random_spans density {density}%, mean {mean}{roll}\n"
        "  replace per span: sentinel 100%\n"
        "  predict spans as sentinels\n"
        f"  output {output}\n"
        "  head seq2seq\n"
    )


@settings(max_examples=30)
@given(text=t5_specs(), case=cases(max_batch=4, max_length=40))
def test_any_t5_spec_keeps_its_promises(text: str, case: Case) -> None:
    """High densities (spans outnumbering non-noise tokens, transformers#22246), means of 1,
    rolls and both output forms: the rows always interleave back and the counts hold."""
    _keeps_its_promises(text, case)


@st.composite
def bart_specs(draw: st.DrawFn) -> str:
    """Text infilling with drawn Poisson rates, budgets, units and fairseq's three
    replace_length settings (zero-length spans insert a token in each)."""
    lam = draw(st.sampled_from(["0.5", "1", "3", "3.5"]))
    rate = draw(st.integers(1, 60))
    basis = draw(st.sampled_from(["tokens", "words"]))
    unit = draw(st.sampled_from(["token", "word"]))
    mask = draw(st.sampled_from([100, 90, 50]))
    replace = draw(
        st.sampled_from(
            [
                f"replace per span, collapse: mask {mask}%, random {100 - mask}%",  # length 1
                f"replace per span: mask {mask}%, random {100 - mask}%",  # length -1
                "replace per span: delete 100%",  # replace_length 0
            ]
        )
    )
    return (
        "objective drawn\n"
        f"  unit {unit}\n"
        f"  select spans length ~ poisson(lambda={lam})\n"
        f"  budget {rate}% of {basis}, ceil\n"
        f"  {replace}\n"
        "  predict original at all\n"
        "  output encoder_decoder\n"
        "  head seq2seq\n"
    )


@settings(max_examples=25)
@given(text=bart_specs(), case=cases(max_batch=4, max_length=32))
def test_any_infilling_spec_keeps_its_promises(text: str, case: Case) -> None:
    _keeps_its_promises(text, case)


# --- the checks themselves can fail ------------------------------------------------------------


class _Broken:
    """A compiled objective whose collator breaks one promise on purpose."""

    def __init__(self, compiled: Any, damage: Any) -> None:
        base = compiled.Collator

        class Collator(base):  # type: ignore[misc, valid-type]
            def __call__(self, examples: Any) -> dict[str, torch.Tensor]:
                return damage(super().__call__(examples))

        self.Collator = Collator


def _label_specials(out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out["labels"][:, 0] = 2  # a label on [CLS]
    return out


def _drop_a_label(out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    target = (out["labels"] != -100).nonzero()
    if len(target):
        out["labels"][tuple(target[0])] = -100
        out["input_ids"][tuple(target[0])] = 4
    return out


def _drop_all_labels(out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out["input_ids"] = torch.where(out["labels"] != -100, out["labels"], out["input_ids"])
    out["labels"][:] = -100
    return out


def _always_mask(out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    target = out["labels"] != -100
    out["input_ids"][target] = 4
    return out


def _swap_sentinels(out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    ids = out["input_ids"]
    top = int(ids.max())
    out["input_ids"] = torch.where(ids == top, top - 1, torch.where(ids == top - 1, top, ids))
    return out


def _lose_a_noise_token(out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    labels = out["labels"]
    labels[:, 1:] = torch.cat([labels[:, 2:], labels[:, :1] * 0 - 100], dim=1)
    return out


def _drop_the_last_target(out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out["labels"][:, -1] = -100  # the widest rows lose one target
    return out


def _swap_first_two_inputs(out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out["input_ids"][:, [0, 1]] = out["input_ids"][:, [1, 0]]  # [CLS] moves: order broken
    return out


def _unshuffle_everything(out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    shuffled = out["shuffled_mask"].bool()
    out["input_ids"] = torch.where(shuffled, out["labels"], out["input_ids"])
    out["labels"][shuffled] = -100
    out["shuffled_mask"][:] = 0  # no trigram shuffled: the count is off wherever one was due
    return out


def _select_the_common_half(out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    ids = out["input_ids"]
    common = ids >= ids.max() // 2 + 4
    out["labels"] = torch.where(common, ids, torch.full_like(ids, -100))
    return out


def _positions_never_restart(out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    width = out["position_ids"].shape[1]
    out["position_ids"] = torch.arange(width).expand_as(out["position_ids"]) * out["attention_mask"]
    return out


def _open_the_first_mask(out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out["self_attention_mask"][0] = 1  # row 0 attends everywhere, padding included
    return out


def _flip_the_pair_labels(out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out["sentence_order_label"] = 1 - out["sentence_order_label"]
    return out


def _label_everything_next(out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out["next_sentence_label"] = torch.zeros_like(out["next_sentence_label"])
    return out


def _let_targets_see_themselves(out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out["perm_mask"].diagonal(dim1=1, dim2=2).zero_()
    return out


def _tie_two_targets(out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Two targets of one row get the same rank: neither comes first."""
    order = out["perm_order"]
    out["perm_order"] = torch.where(order == 1, torch.zeros_like(order), order)
    return out


def _list_the_targets_backwards(out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out["target_positions"] = out["target_positions"].flip(1)
    return out


def _reverse_the_inputs(out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    width = out["attention_mask"].sum(dim=1)
    pos = torch.arange(out["input_ids"].shape[1]).unsqueeze(0)
    back = (width.unsqueeze(1) - 1 - pos).clamp(min=0)
    out["input_ids"] = torch.where(pos < width.unsqueeze(1), out["input_ids"].gather(1, back), 0)
    return out


def _shift_decoder_inputs(out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out["decoder_input_ids"] = out["labels"].clamp(min=0)  # the target itself, not shifted
    return out


def _reverse_the_views(out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out["view_input_ids"] = out["view_input_ids"].flip(1)
    return out


def _shorten_every_fragment(out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    labelled = out["labels"] != -100
    first = labelled & ~torch.cat([torch.zeros_like(labelled[:, :1]), labelled[:, :-1]], dim=1)
    out["labels"] = out["labels"].masked_fill(first, -100)
    return out


@pytest.mark.parametrize(
    ("spec", "check", "damage"),
    [
        ("simcse", "views", _reverse_the_views),
        ("infoword", "views", _reverse_the_views),
        ("infoword", "fragment_lengths", _shorten_every_fragment),
        ("bert_mlm", "untouched", _label_specials),
        ("bert_mlm", "labels", _drop_a_label),
        ("wwm", "budget", _drop_all_labels),
        ("roberta", "mix", _always_mask),
        ("spanbert", "span_support", _drop_a_label),
        ("t5_span", "reconstruct", _swap_sentinels),
        ("t5_span", "t5_counts", _lose_a_noise_token),
        ("mass", "labels", _shift_decoder_inputs),
        ("mass", "budget", _drop_the_last_target),
        ("bart_token_deletion", "deletion", _swap_first_two_inputs),
        ("bart_token_masking", "document_target", _drop_the_last_target),
        ("bart_token_masking", "untouched", _swap_first_two_inputs),
        ("bart_text_infilling", "infilling", _swap_first_two_inputs),
        ("bart", "infilling", _swap_first_two_inputs),
        ("structbert_word", "shuffle", _unshuffle_everything),
        ("xlnet", "factorization", _let_targets_see_themselves),
        ("xlnet_sparse", "factorization", _tie_two_targets),
        ("xlnet", "factorization", _list_the_targets_backwards),
        ("xlm_mlm", "frequency", _select_the_common_half),
        ("sop", "pairs", _flip_the_pair_labels),
        ("unilm", "unilm", _open_the_first_mask),
        ("xlm_tlm", "translation", _positions_never_restart),
        ("unilm", "segments", _drop_a_label),
        ("nsp", "pair_rates", _label_everything_next),
        ("bart_sentence_permutation", "permutation", _reverse_the_inputs),
        ("bart_document_rotation", "rotation", _reverse_the_inputs),
    ],
)
def test_a_broken_collator_fails_its_check(spec: str, check: str, damage: Any) -> None:
    objective, compiled = BUNDLED[spec]
    chosen = next(c for c in CHECKS if c.name == check)
    result = run_check(chosen, objective, _Broken(compiled, damage), max_examples=25)
    assert not result.passed


def _all_first_mode(out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out["input_ids"][:, 0] = out["input_ids"][0, 0]  # every row claims row 0's mode
    return out


@pytest.mark.parametrize(
    ("check", "damage"),
    [("members", _swap_first_two_inputs), ("mixture_rates", _all_first_mode)],
)
def test_a_broken_mixture_fails_its_check(check: str, damage: Any) -> None:
    objective, compiled = BUNDLED["ul2"]
    chosen = next(c for c in MIXTURE_CHECKS if c.name == check)
    result = run_check(chosen, objective, _Broken(compiled, damage), max_examples=25)
    assert not result.passed, result


def test_a_broken_composition_fails_its_check() -> None:
    objective, compiled = BUNDLED["bert"]
    chosen = next(c for c in COMPOSITION_CHECKS if c.name == "composed")
    result = run_check(chosen, objective, _Broken(compiled, _drop_a_label), max_examples=25)
    assert not result.passed, result


def test_a_batch_dependent_collator_fails_batch_invariance() -> None:
    objective, compiled = BUNDLED["bert_mlm"]

    def depend_on_batch(out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if out["input_ids"].shape[0] > 1:
            return _always_mask(out)
        return out

    chosen = next(c for c in CHECKS if c.name == "batch_invariance")
    result = run_check(chosen, objective, _Broken(compiled, depend_on_batch), max_examples=25)
    assert not result.passed


def test_check_failure_is_an_assertion_error() -> None:
    assert issubclass(CheckFailure, AssertionError)

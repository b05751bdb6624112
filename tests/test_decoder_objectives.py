"""Decoder-only objectives in the language: ``attention causal | prefix``, ``predict
sequence``, ``transform fim``; the bundled causal_lm, prefix_lm and fim specs.

The properties are objspec's own checks (objspec/checks.py: 'sequence', 'fim', 'fim_rates',
'split', 'packed'), run on the compiled collators and, to show they bite, on broken ones.
The three specs train with the tiny model through ``objspec pretrain``'s loop and with a tiny
GPT-2 through ``rt.HuggingFaceCausalLM``.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest
import torch

from objspec import SpecError, bundled, compile_spec
from objspec import runtime as rt
from objspec.checks import CHECKS, applicable, big_case, run_check
from objspec.ir import FIM_TOKENS
from objspec.parser import parse_file, parse_spec
from objspec.runtime import IGNORE_INDEX, Vocab
from tests.spec_tools import broken, compiled, spec_error

SPECS = Path(__file__).resolve().parent.parent / "specs"
DECODER_SPECS = ("causal_lm", "prefix_lm", "fim")
BY_NAME = {c.name: c for c in CHECKS}

CAUSAL = """\
objective causal_lm
  input     single
  exclude   special
  select    none
  predict   sequence
  attention causal
  output    decoder_only
  loss      cross_entropy
  head      seq2seq
"""


pytestmark = pytest.mark.usefixtures("one_thread")


# --- the language ------------------------------------------------------------------------------


def test_causal_and_prefix_attention_parse() -> None:
    assert parse_spec(CAUSAL).attention.kind == "causal"
    prefix = parse_file(SPECS / "prefix_lm.objspec")
    assert prefix.attention.kind == "prefix"
    assert "prefix_mask" in compiled("prefix_lm").Collator.outputs
    # a causal batch is Hugging Face's: nothing a GPT2LMHeadModel(**batch) does not take
    assert compiled("causal_lm").Collator.outputs == ("input_ids", "attention_mask", "labels")


@pytest.mark.parametrize(
    ("edit", "line", "message"),
    [
        # the copy-task trap: the input is the target itself
        (
            lambda s: s.replace("predict   sequence", "predict   original at all").replace(
                "attention causal", "attention prefix"
            ),
            5,
            "copy task",
        ),
        (lambda s: s.replace("  output    decoder_only\n", ""), 6, "decoder-only form"),
        (lambda s: s.replace("attention causal", "attention prefix"), 6, "none may see"),
        (
            lambda s: s.replace(
                "select    none", "select    bernoulli 15%\n  replace per token: mask 100%"
            ),
            6,
            "'predict sequence' trains on the row itself",
        ),
        (
            lambda s: s.replace("predict   sequence", "predict   original at selected").replace(
                "select    none",
                "select    suffix 25%\n  replace per token: delete 100%\n  transform fim 50%",
            ),
            6,
            "'transform fim' rearranges",
        ),
        (
            lambda s: s.replace(
                "select    none", 'select    none\n  transform fim 50%, tokens ["a"]'
            ),
            5,
            "three quoted strings",
        ),
        (
            lambda s: s.replace(
                "select    none", 'select    none\n  transform fim 50%, tokens ["a", "b", "a"]'
            ),
            5,
            "must differ",
        ),
        (lambda s: s.replace("attention causal", "attention right_to_left"), 6, "not supported"),
    ],
)
def test_decoder_faults_are_located(edit: Any, line: int, message: str) -> None:
    text = edit(CAUSAL)
    err = spec_error(text)
    assert message in str(err), str(err)
    assert any(d.loc is not None and d.loc.line == line for d in err.diagnostics), str(err)


def test_the_copy_trap_through_an_output_override() -> None:
    text = CAUSAL.replace("predict   sequence", "predict   original at all").replace(
        "  attention causal\n", ""
    )
    with pytest.raises(SpecError, match="copy task"):
        compile_spec(text)
    encoder_decoder = text.replace("output    decoder_only", "output    encoder_decoder")
    with pytest.raises(SpecError, match="copy task"):
        compile_spec(encoder_decoder, output="decoder_only")


def test_moved_spans_only_with_causal_attention() -> None:
    """'predict spans as sentinels' in the causal decoder form: the moved spans (after their
    sentinels) are the only targets, the input before them is causal and unlabelled (the
    'packed' check reads that boundary off the labels)."""
    text = (
        (SPECS / "t5_span.objspec")
        .read_text()
        .replace("output   encoder_decoder", "output   decoder_only\n  attention causal")
    )
    c = compile_spec(text)
    assert "prefix_mask" not in c.Collator.outputs
    spec = parse_spec(text)
    for name in ("packed", "reconstruct"):
        assert run_check(BY_NAME[name], spec, c, 15).passed, name
    # predict sequence with sentinels: every token, CM3-style
    every = text.replace("predict  spans as sentinels", "predict  sequence")
    spec = parse_spec(every)
    assert run_check(BY_NAME["sequence"], spec, compile_spec(every), 15).passed


# --- the runtime kernels -----------------------------------------------------------------------


def fim_case(order: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The FIM kernel on [CLS] 10..19 [SEP], rate 1, SPM share 0 or 1."""
    ids = torch.tensor([[2, *range(10, 20), 3]])
    valid = torch.ones_like(ids, dtype=torch.bool)
    keys = rt.Keys(7, 0, torch.tensor([5]))
    return rt.fill_in_middle(
        keys,
        (26, 27, 28),
        ids,
        valid,
        (ids >= 10),
        1.0,
        1.0 if order == "spm" else 0.0,
        torch.tensor([100, 101, 102]),
        fill=0,
    )


@pytest.mark.parametrize("order", ["psm", "spm"])
def test_fill_in_middle_layouts(order: str) -> None:
    out, valid = fim_case(order)
    row = out[0][valid[0]].tolist()
    assert len(row) == 15 and row[0] == 2 and row[-1] == 3
    pre, mid, suf = (row.index(t) for t in (100, 101, 102))
    if order == "psm":
        assert pre == 1 < suf < mid
        prefix, suffix, middle = row[2:suf], row[suf + 1 : mid], row[mid + 1 : -1]
        assert prefix + middle + suffix == list(range(10, 20))
    else:
        assert (pre, suf) == (1, 2) and suf < mid
        suffix, front = row[3:mid], row[mid + 1 : -1]
        assert front + suffix == list(range(10, 20))


def test_sequence_outputs_append_the_end_token_once() -> None:
    ids = torch.tensor([[2, 7, 8, 3], [9, 8, 0, 0], [0, 0, 0, 0]])
    valid = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [0, 0, 0, 0]], dtype=torch.bool)
    out = rt.sequence_outputs(ids, valid, 0, end_id=3)
    assert out["input_ids"].tolist() == [[2, 7, 8, 3], [9, 8, 3, 0], [0, 0, 0, 0]]
    assert out["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 1, 0], [0, 0, 0, 0]]
    assert out["labels"].tolist() == [[2, 7, 8, 3], [9, 8, 3, -100], [-100] * 4]
    assert "prefix_mask" not in out


# --- the properties, and that they catch broken collators ---------------------------


@pytest.mark.parametrize("name", DECODER_SPECS)
def test_objspec_check_passes(name: str) -> None:
    spec = parse_file(SPECS / f"{name}.objspec")
    names = {c.name for c in applicable(spec)}
    assert {"packed", "batch_invariance", "dynamic"} <= names
    assert {"causal_lm": {"sequence"}, "prefix_lm": {"split"}, "fim": {"fim", "fim_rates"}}[
        name
    ] <= names
    for check in applicable(spec):
        result = run_check(check, spec, compiled(name), 15)
        assert result.passed, (check.name, result.detail)


def shift_labels(out: dict[str, torch.Tensor], collator: Any) -> None:
    """Labels shifted in the collator (the model shifts too: a double shift)."""
    labels = out["labels"]
    labels[:, :-1] = labels[:, 1:].clone()
    labels[:, -1] = IGNORE_INDEX


def drop_end(out: dict[str, torch.Tensor], collator: Any) -> None:
    """No end-of-text target: each row's last token left out."""
    valid = out["attention_mask"].bool()
    last = valid.long().sum(dim=1) - 1
    rows = torch.arange(valid.shape[0])[last >= 0]
    out["attention_mask"][rows, last[last >= 0]] = 0
    out["labels"][rows, last[last >= 0]] = IGNORE_INDEX
    out["input_ids"][rows, last[last >= 0]] = collator.pad_id


def swap_sentinels(out: dict[str, torch.Tensor], collator: Any) -> None:
    """<fim_middle> and <fim_suffix> swapped (a wrong layout)."""
    ids = out["input_ids"]
    mid, suf = (collator.vocab.id_of(t) for t in FIM_TOKENS[1:])
    at_mid, at_suf = ids == mid, ids == suf
    ids[at_mid], ids[at_suf] = suf, mid
    out["labels"] = torch.where(out["labels"] == IGNORE_INDEX, out["labels"], ids)


def lose_a_token(out: dict[str, torch.Tensor], collator: Any) -> None:
    """One document token after <fim_middle> replaced by another: a piece changed."""
    ids = out["input_ids"]
    mid = collator.vocab.id_of(FIM_TOKENS[1])
    after = torch.cat([torch.zeros_like(ids[:, :1]), ids[:, :-1]], dim=1) == mid
    after &= ids != collator.vocab.require("sep")
    ids[after] = ids[after] + 1
    out["labels"] = torch.where(out["labels"] == IGNORE_INDEX, out["labels"], ids)


def open_the_prefix(out: dict[str, torch.Tensor], collator: Any) -> None:
    """prefix_mask over the whole row (the targets attended bidirectionally)."""
    out["prefix_mask"] = out["attention_mask"].clone()


def cut_the_target(out: dict[str, torch.Tensor], collator: Any) -> None:
    """The target's last token gone (input + target no longer the example)."""
    drop_end(out, collator)


@pytest.mark.parametrize(
    ("name", "damage", "check"),
    [
        ("causal_lm", shift_labels, "sequence"),
        ("causal_lm", drop_end, "sequence"),
        ("fim", swap_sentinels, "fim"),
        ("fim", lose_a_token, "fim"),
        ("fim", drop_end, "sequence"),
        ("prefix_lm", open_the_prefix, "packed"),
        ("prefix_lm", cut_the_target, "split"),
    ],
)
def test_the_checks_catch_broken_collators(name: str, damage: Any, check: str) -> None:
    spec = parse_file(SPECS / f"{name}.objspec")
    result = run_check(BY_NAME[check], spec, broken(name, damage), 30)
    assert not result.passed, f"{check} passed a collator with {damage.__name__}"


@pytest.mark.parametrize("edit", [("fim 50%", "fim 65%"), ("spm 50%", "spm 70%")])
def test_fim_rates_catch_a_wrong_rate(edit: tuple[str, str]) -> None:
    text = (SPECS / "fim.objspec").read_text()
    wrong = compile_spec(text.replace(*edit))
    result = run_check(BY_NAME["fim_rates"], parse_spec(text), wrong, 1)
    assert not result.passed


def test_fim_keeps_each_example_alone_and_on_left_padding() -> None:
    """Counter-based draws: the same rearrangement alone, in a batch, padded on the left."""
    case = big_case(rows=12, length=20, size=200)
    collator = compiled("fim").Collator(case.vocab, seed=3, epoch=0)
    together = collator(case.examples)
    for row in (0, 5, 11):
        alone = collator([case.examples[row]])
        n = int(alone["attention_mask"].sum())
        assert torch.equal(together["input_ids"][row, :n], alone["input_ids"][0, :n])
    left = compiled("fim").Collator(case.vocab, seed=3, epoch=0, padding_side="left")(case.examples)
    for row in range(12):
        mine = together["input_ids"][row][together["attention_mask"][row].bool()]
        theirs = left["input_ids"][row][left["attention_mask"][row].bool()]
        assert torch.equal(mine, theirs)


# --- training ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", DECODER_SPECS)
def test_trains_through_the_pretrain_loop(name: str, tmp_path: Path) -> None:
    """``objspec pretrain``'s loop (the tiny model, the bundled corpus; FIM's sentinels added
    to the bundled tokenizer): 30 steps lose well over a nat (measured in the report)."""
    from tests.test_e2e import train

    losses = train(SPECS / f"{name}.objspec", tmp_path, steps=30)
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < first - 1.0, f"loss {first:.3f} -> {last:.3f}"


@cache
def bundled_rows() -> tuple[Vocab, list[dict[str, Any]]]:
    tokenizer = bundled.with_special_tokens(bundled.load_tokenizer(), FIM_TOKENS)
    examples = bundled.encode_examples(tokenizer, bundled.load_documents()[:6], 32)[:16]
    return Vocab.from_tokenizer(tokenizer), [dict(e) for e in examples]


@pytest.mark.parametrize("name", DECODER_SPECS)
def test_trains_a_tiny_gpt2(name: str) -> None:
    """The compiled heads around a two-layer GPT-2 (rt.HuggingFaceCausalLM): 40 Adam steps on
    16 rows lose over a nat; and the causal batch feeds GPT2LMHeadModel as is, its own shifted
    loss finite."""
    transformers = pytest.importorskip("transformers")
    vocab, examples = bundled_rows()
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        vocab_size=vocab.size, n_embd=32, n_layer=2, n_head=2, n_positions=64
    )
    model = transformers.GPT2LMHeadModel(config)
    heads = compiled(name).Heads(rt.HuggingFaceCausalLM(model.transformer))
    batch = compiled(name).Collator(vocab, seed=0)(examples)
    optimizer = torch.optim.Adam(heads.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        optimizer.zero_grad()
        loss = heads(batch)["loss"]
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0] - 1.0, (losses[0], losses[-1])
    if name == "prefix_lm":
        return  # GPT2LMHeadModel's own mask is causal throughout: no prefix to compare
    model.eval()
    heads.eval()
    with torch.no_grad():
        hf = model(**batch).loss  # Hugging Face's shift, on the batch as the collator gave it
    assert torch.isfinite(hf) and float(hf) > 0.0

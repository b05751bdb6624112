"""Specs that draw a rate per example (masked diffusion), weigh their loss, keep a prompt
untouched, replace with similar tokens or draw random tokens from a run-time table, and decide
once per unit: the language, the compiled collators and heads, and the checks that must catch
a collator that breaks each promise.

About 25 s on the 2-core machine (two short training runs included).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

import objspec
from compiler import plan as lower
from objspec import bundled
from objspec.checks import run_checks
from objspec.runtime import IGNORE_INDEX, Keys, TinyEncoder, Vocab
from objspec.runtime import rng as runtime_rng
from objspec.runtime.batch import BatchError
from objspec.runtime.rates import uniform_rates
from objspec.runtime.tables import TableError
from tests.spec_tools import SPECS, broken, compiled, spec_error

LLADA_SFT = """\
objective llada_sft
  input    single
  exclude  special, prompt
  select   bernoulli rate ~ uniform(0.001, 1)
  replace  per token: mask 100%
  predict  original at selected
  loss     cross_entropy, weight inverse_rate, over examples
  head     mlm
"""

EXACT_WORDS = """\
objective exact_words
  input    single
  unit     word
  exclude  special
  select   exact
  budget   40% of units, round
  replace  per span: mask 50%, random 50% from pool
  predict  original at selected
  loss     cross_entropy
  head     mlm
"""


def spec(text: str, **swaps: str) -> str:
    for old, new in swaps.items():
        text = text.replace(old.replace("_", " "), new)
    return text


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    return bundled.load_tokenizer()


@pytest.fixture(scope="module")
def examples(tokenizer: Any) -> list[dict[str, Any]]:
    rows = bundled.encode_examples(tokenizer, bundled.load_documents()[:16], 48)
    return [dict(e) for e in rows[:12]]


def prompted(examples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each example with its first 10 tokens marked as the prompt."""
    return [
        {**e, "prompt_mask": [int(i < 10) for i in range(len(e["input_ids"]))]} for e in examples
    ]


# --- the language ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("rate ~ uniform(0.001, 1)", "15%", "needs a rate drawn per example"),
        ("uniform(0.001, 1)", "uniform(0, 1)", "must stay above 0"),
        ("uniform(0.001, 1)", "uniform(0.5, 0.2)", "needs low < high"),
        ("uniform(0.001, 1)", "poisson(3)", "uniform(low, high)"),
        ("uniform(0.001, 1)", "uniform(0.001)", "exactly its two bounds"),
        ("uniform(0.001, 1)", "uniform(0.001, 2)", "not a rate"),
        ("over examples", "over rows", "unknown loss over"),
        ("weight inverse_rate", "weight rate", "unknown loss weight"),
        ("mask 100%", "mask 100% from unigram", "takes no source"),
        ("exclude  special, prompt", "exclude  special, promt", "unknown exclusion"),
    ],
)
def test_located_errors(old: str, new: str, message: str) -> None:
    text = LLADA_SFT.replace(old, new)
    error = spec_error(text)
    diag = next((d for d in error.diagnostics if message in d.message), None)
    assert diag is not None and diag.loc is not None, str(error)
    at = "loss" if message.startswith("needs a rate") else new  # the line that asks for it
    changed = next(i for i, line in enumerate(text.splitlines(), 1) if at in line)
    assert diag.loc.line == changed, str(error)


def test_a_weighted_loss_needs_the_masked_lm_head_on_an_encoder_batch() -> None:
    text = LLADA_SFT.replace("  head     mlm\n", "  output   encoder_decoder\n  head     seq2seq\n")
    assert "masked-LM head" in str(spec_error(text))


def test_random_tokens_from_a_source_need_random_tokens() -> None:
    text = EXACT_WORDS.replace("mask 50%, random 50% from pool", "mask 100%")
    assert objspec.parse_spec(text).replace.random_from == "vocabulary"
    error = spec_error(text.replace("mask 100%", "mask 100%, random 0% from pool"))
    assert "draws none" in str(error)


def test_similar_tokens_cannot_collapse_spans() -> None:
    text = (Path(__file__).parent.parent / "specs" / "bart_text_infilling.objspec").read_text()
    text = text.replace("mask 90%, random 10%", "similar 90%, random 10%")
    assert "similar" in str(spec_error(text))


def test_every_stream_has_a_key() -> None:
    assert max(lower.STREAMS.values()) < runtime_rng.STREAMS


# --- masked diffusion -----------------------------------------------------------------------


def test_mdlm_rates_weights_and_loss(tokenizer: Any, examples: list[dict[str, Any]]) -> None:
    """Each row is masked at its own rate (its label weights are 1 / rate, the same in any
    batch); the loss is the weighted cross-entropy over the batch's real tokens, times 0.999."""
    collator = compiled("mdlm").Collator(tokenizer, seed=4, epoch=0)
    batch = collator(examples)
    alone = collator(examples[3:4])
    labelled = batch["labels"] != IGNORE_INDEX
    assert bool((batch["input_ids"][labelled] == collator.mask_id).all())  # 100% [MASK]
    width = alone["labels"].shape[1]
    assert torch.equal(alone["label_weights"][0], batch["label_weights"][3, :width])
    keys = Keys(4, 0, objspec.runtime.read_batch(examples, 0).index)
    rates = uniform_rates(keys, lower.STREAMS["rate"], 0.000999, 0.999)
    expected = torch.where(labelled, (1 / rates).float().unsqueeze(1), 0.0)
    assert torch.equal(batch["label_weights"], expected)
    heads = compiled("mdlm").Heads(TinyEncoder(tokenizer.get_vocab_size(), hidden_size=16))
    with torch.no_grad():
        hidden = objspec.runtime.encode(heads.model, batch)
        logits = heads.mlm.logits(hidden)
        ce = torch.nn.functional.cross_entropy(
            logits.transpose(1, 2), batch["labels"], reduction="none"
        )
        manual = 0.999 * (ce * batch["label_weights"]).sum() / batch["attention_mask"].sum()
        assert torch.allclose(heads(batch)["loss"], manual, rtol=1e-5)


def test_the_prompt_is_never_masked_and_weighs_per_example(
    tokenizer: Any, examples: list[dict[str, Any]]
) -> None:
    module = objspec.compile_spec(LLADA_SFT)
    collator = module.Collator(tokenizer, seed=1, epoch=2)
    batch = collator(prompted(examples))
    assert "prompt_mask" not in batch  # read, not passed through
    labelled = batch["labels"] != IGNORE_INDEX
    assert not bool(labelled[:, :10].any())
    assert bool(labelled[:, 10:].any())
    answer = batch["attention_mask"].sum(dim=1) - 10 - 1  # the answer's tokens, [SEP] aside
    hits = labelled.sum(dim=1).double()
    some = hits > 0  # a row at a low rate may select nothing
    weights = batch["label_weights"].double().max(dim=1).values[some]
    rates = 1 / (weights * answer[some])
    assert bool(((rates > 0.001 - 1e-9) & (rates < 1)).all())
    bound = 6 * torch.sqrt(0.25 / answer[some])
    assert bool(((hits[some] / answer[some] - rates).abs() < bound).all())
    with pytest.raises(BatchError, match="prompt_mask"):
        collator(examples)
    bad = prompted(examples)
    bad[0]["prompt_mask"][3] = 2
    with pytest.raises(BatchError, match="only 0 and 1"):
        collator(bad)


def test_masked_diffusion_trains(tmp_path: Path) -> None:
    """``objspec pretrain``'s loop: the weighted loss falls (measured: 6.40 -> 5.40 over 30
    steps; a head that ignored the labels would stay near the start)."""
    from tests.test_e2e import train

    losses = train(Path(__file__).parent.parent / "specs" / "mdlm.objspec", tmp_path, steps=30)
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < first - 0.5, f"loss {first:.3f} -> {last:.3f}"


# --- run-time tables ------------------------------------------------------------------------


def test_macbert_replaces_with_similar_tokens(tokenizer: Any, examples: list[dict[str, Any]]):
    similar = bundled.similar_table(tokenizer)
    collator = compiled("macbert").Collator(tokenizer, seed=0, tables={"similar": similar})
    batch = objspec.runtime.read_batch(examples, 0)
    out = collator(examples)
    labelled = out["labels"] != IGNORE_INDEX
    old, new = batch.input_ids[labelled], out["input_ids"][labelled]
    rows = torch.as_tensor(similar)[old]
    listed = rows[:, 0] >= 0
    is_similar = (rows == new.unsqueeze(1)).any(dim=1)
    # 80% similar where a token lists some: the large majority of those are replaced by one
    assert float(is_similar[listed].double().mean()) > 0.6
    assert not bool((new == collator.mask_id).any())  # MacBERT never writes [MASK]
    with pytest.raises(TableError, match="similar"):
        compiled("macbert").Collator(tokenizer)


def test_exact_units_decide_once_per_word(tokenizer: Any, examples: list[dict[str, Any]]):
    """'select exact' with 'replace per span': every piece of a selected word shares its
    action, and adjacent selected words decide independently (both actions occur next to
    each other); random tokens come from the pool only."""
    pool = torch.arange(100, 110)
    collator = objspec.compile_spec(EXACT_WORDS).Collator(tokenizer, seed=0, tables={"pool": pool})
    batch = objspec.runtime.read_batch(examples, 0)
    out = collator(examples)
    masked = out["input_ids"] == collator.mask_id
    labelled = out["labels"] != IGNORE_INDEX
    random = labelled & ~masked
    assert bool(torch.isin(out["input_ids"][random], pool).all())
    starts = objspec.runtime.word_unit_starts(batch, Vocab.from_tokenizer(tokenizer))
    word = starts.long().cumsum(dim=1)
    same_word = (word[:, 1:] == word[:, :-1]) & labelled[:, 1:] & labelled[:, :-1]
    assert bool((masked[:, 1:] == masked[:, :-1])[same_word].all())
    next_word = ~(word[:, 1:] == word[:, :-1]) & labelled[:, 1:] & labelled[:, :-1]
    assert bool((masked[:, 1:] != masked[:, :-1])[next_word].any())


# --- the checks catch what breaks each promise ------------------------------------------------


def _failed(name: str, module: Any) -> set[str]:
    objective = objspec.parse_file(SPECS / f"{name}.objspec")
    return {r.name for r in run_checks(objective, module, max_examples=5) if not r.passed}


def _scale_weights(out: dict[str, torch.Tensor], collator: Any) -> None:
    out["label_weights"][1] *= 1.5  # one row weighed as if its rate were two thirds of it


def _uniform_rate(out: dict[str, torch.Tensor], collator: Any) -> None:
    """Every row masked at the law's mean: a fixed rate in disguise."""
    keep = torch.rand(out["labels"].shape, generator=torch.Generator().manual_seed(0)) < 0.5
    out["labels"] = torch.where(keep, out["labels"], IGNORE_INDEX)


def _random_not_similar(out: dict[str, torch.Tensor], collator: Any) -> None:
    labelled = out["labels"] != IGNORE_INDEX
    changed = labelled & (out["input_ids"] != out["labels"])
    out["input_ids"][changed] = collator.random_pool(torch.device("cpu"))[0]


@pytest.mark.parametrize(
    ("name", "damage", "check"),
    [
        ("mdlm", _scale_weights, "rate"),
        ("mdlm", _uniform_rate, "rate"),
        ("macbert", _random_not_similar, "mix"),
    ],
)
def test_a_broken_collator_fails_its_check(name: str, damage: Any, check: str) -> None:
    assert check not in _failed(name, compiled(name))
    assert check in _failed(name, broken(name, damage))


# --- encoder mixtures and declared units ----------------------------------------------------

MLM_MIX = """\
objective mlm_mix
  input    single
  unit     word
  exclude  special
  loss     cross_entropy
  head     mlm
  mixture per example:
    masked 70%:
      select   bernoulli 15%
      replace  per token: mask 100%
      predict  original at selected
    spans 30%:
      select   spans length ~ geometric(p=0.2) truncated 1..10
      budget   40% of tokens, ceil
      replace  per span: random 100%
      predict  original at selected
"""


def test_an_encoder_mixture_takes_each_row_from_one_member(
    tokenizer: Any, examples: list[dict[str, Any]]
) -> None:
    module = objspec.compile_spec(MLM_MIX)
    out = module.Collator(tokenizer, seed=2)(examples)
    assert set(out) == {"input_ids", "attention_mask", "labels"}
    labelled = out["labels"] != IGNORE_INDEX
    masked = (out["input_ids"] == Vocab.from_tokenizer(tokenizer).mask_id) & labelled
    # a row is all [MASK] (the first member) or has none (the second, random tokens)
    per_row = masked.sum(dim=1)
    assert bool(((per_row == 0) | (per_row == labelled.sum(dim=1))).all())
    assert bool((per_row > 0).any()) and bool((per_row == 0).any())


def test_an_encoder_mixture_is_checked_member_by_member() -> None:
    spec_ = objspec.parse_spec(MLM_MIX)
    module = objspec.compile_spec(MLM_MIX)
    results = {r.name: r for r in run_checks(spec_, module, max_examples=5)}
    assert all(r.passed for r in results.values()), [r for r in results.values() if not r.passed]
    assert "mixture_rates" in results and "masked:rate" in results and "spans:budget" in results

    class OneMember(module.Collator):  # type: ignore[misc, name-defined]
        """Every row from the first member: the rates are wrong, each row still a member's."""

        def corrupt(self, batch: Any, keys: Any) -> dict[str, torch.Tensor]:
            input_ids, labels = self.denoise_masked(batch, keys)
            return {"input_ids": input_ids, "attention_mask": batch.valid.long(), "labels": labels}

    one = SimpleNamespace(Collator=OneMember)
    failed = {r.name for r in run_checks(spec_, one, max_examples=5) if not r.passed}
    assert "mixture_rates" in failed and "members" not in failed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            MLM_MIX.replace("masked 70%:", 'masked 70%, mode "[NLU]":').replace(
                "spans 30%:", 'spans 30%, mode "[NLG]":'
            ),
            "no mode token",
        ),
        (
            MLM_MIX.replace("mask 100%\n", "mask 100%\n      transform shuffle trigrams 5%\n"),
            "one shape",
        ),
    ],
)
def test_encoder_mixture_errors(text: str, message: str) -> None:
    assert message in str(spec_error(text))


ERNIE_UNITS = """\
objective ernie_units
  input    single
  unit     entity_ids
  exclude  special
  select   bernoulli 40%
  replace  per span: mask 50%, keep 50%
  predict  original at selected
  loss     cross_entropy
  head     mlm
"""


def test_units_from_a_declared_field(tokenizer: Any, examples: list[dict[str, Any]]) -> None:
    """Runs of equal ids in the field are selected whole and decided once; -1 tokens alone."""
    module = objspec.compile_spec(ERNIE_UNITS)
    entities = [
        {**e, "entity_ids": [i // 4 if i % 8 < 4 else -1 for i in range(len(e["input_ids"]))]}
        for e in examples
    ]
    out = module.Collator(tokenizer, seed=0)(entities)
    assert "entity_ids" not in out  # read, not passed through
    labelled = out["labels"] != IGNORE_INDEX
    ids = torch.tensor([e["entity_ids"] for e in entities][0])
    row = labelled[0, : ids.numel()]
    for unit in ids.unique().tolist():
        if unit >= 0 and unit * 4 > 0 and (unit * 4 + 3) < ids.numel() - 1:
            members = row[ids == unit]
            assert bool(members.all()) or not bool(members.any())
    with pytest.raises(BatchError, match="entity_ids"):
        module.Collator(tokenizer, seed=0)(examples)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("entity_ids", "word_ids", "write 'unit word'"),
        ("entity_ids", "input_ids", "reads or writes itself"),
        ("entity_ids", "entities", "unknown unit"),
    ],
)
def test_unit_field_errors(old: str, new: str, message: str) -> None:
    assert message in str(spec_error(ERNIE_UNITS.replace(old, new)))


def test_sentence_units_need_sentence_ids(tokenizer: Any, examples: list[dict[str, Any]]) -> None:
    text = ERNIE_UNITS.replace("entity_ids", "sentence")
    out = objspec.compile_spec(text).Collator(tokenizer, seed=0)(examples)
    batch = objspec.runtime.read_batch(examples, 0)
    labelled = out["labels"] != IGNORE_INDEX
    sentences = batch.sentence_ids
    for row in range(labelled.shape[0]):
        for sentence in sentences[row].unique().tolist():
            if sentence >= 0:
                inside = labelled[row][sentences[row] == sentence]
                assert bool(inside.all()) or not bool(inside.any())
    bare = [{"input_ids": e["input_ids"]} for e in examples]
    with pytest.raises(BatchError, match="sentence_ids"):
        objspec.compile_spec(text).Collator(tokenizer, seed=0)(bare)

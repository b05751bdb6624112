"""Compositions of several tasks of any kinds (MLM + SOP + contrastive, two masked LMs): each
task corrupts the rows with draws of its own, its outputs a batch of their own under its name,
laid out (padded, left-padded) as a batch; the heads run the model once per task and add the
losses with their weights; the composed check catches a collator that breaks any of it.

About 15 s on the 2-core machine.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

import objspec
from compiler.lower import task_salt
from objspec import bundled
from objspec.checks import run_checks
from objspec.checks.composed import COMPOSITION_CHECKS
from objspec.checks.run import CHECKS, run_check
from objspec.runtime import IGNORE_INDEX, TinyEncoder, task_batch
from tests.spec_tools import spec_error

MLM_SOP_CONTRASTIVE = """\
objective mlm_sop_simcse
  input    single
  exclude  special
  task mlm weight 1.0:
    select   exact
    budget   15% of tokens, round
    replace  per token: mask 80%, random 10%, keep 10%
    predict  original at selected
    head     mlm
  task sop weight 1.0:
    pair     next 50%, swapped 50%
    select   none
    predict  label
    head     sentence_classification
  task simcse weight 0.5:
    select   none
    predict  views
    views    dropout
    head     contrastive(temperature=0.05)
"""

TWO_MLMS = """\
objective two_mlms
  input    single
  exclude  special
  task a weight 1.0:
    select   bernoulli 30%
    replace  per token: mask 100%
    predict  original at selected
    head     mlm
  task b weight 0.25:
    select   bernoulli 30%
    replace  per token: mask 100%
    predict  original at selected
    head     mlm
"""


MLM_BLOCK = """\
    select   bernoulli 30%
    replace  per token: mask 100%
    predict  original at selected
    head     mlm
"""
T5_BLOCK = """\
    select   random_spans density 15%, mean 3
    replace  per span: sentinel 100%
    predict  spans as sentinels
    output   encoder_decoder
    head     seq2seq
"""
NSP_TASK = """\
  task nsp weight 1.0:
    pair     next 50%, random 50%
    select   none
    predict  label
    head     sentence_classification
"""
OTHER_VIEWS = """\
  task other weight 0.5:
    select   none
    predict  views
    views    dropout
    head     contrastive(temperature=0.1)
"""


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    return bundled.load_tokenizer()


@pytest.fixture(scope="module")
def examples(tokenizer: Any) -> list[dict[str, Any]]:
    rows = bundled.encode_examples(tokenizer, bundled.load_documents()[:24], 40)
    return [dict(e) for e in rows[:16]]


def compiled(text: str) -> Any:
    return objspec.compile_spec(text)


# --- the layout -----------------------------------------------------------------------------


def test_each_task_has_its_own_batch_under_its_name(tokenizer: Any, examples: Any) -> None:
    module = compiled(MLM_SOP_CONTRASTIVE)
    out = module.Collator(tokenizer, seed=3)(examples)
    own = {"input_ids", "attention_mask", "token_type_ids", "sentence_order_label"}
    assert own <= set(out)
    assert {"mlm.input_ids", "mlm.labels", "mlm.attention_mask"} <= set(out)
    assert {"simcse.view_input_ids", "simcse.view_attention_mask"} <= set(out)
    assert set(out) == set(module.Collator.outputs)
    mlm = task_batch(out, "mlm")
    # the masked LM corrupts the pair rows (the batch's own input_ids) and predicts them
    changed = mlm["input_ids"] != out["input_ids"]
    labelled = mlm["labels"] != IGNORE_INDEX
    assert bool(changed.any()) and bool((labelled | ~changed).all())
    assert torch.equal(mlm["labels"][labelled], out["input_ids"][labelled])
    assert torch.equal(task_batch(out, "simcse")["view_input_ids"], out["input_ids"])


def test_two_tasks_draw_independently_and_by_name(tokenizer: Any, examples: Any) -> None:
    out = compiled(TWO_MLMS).Collator(tokenizer, seed=0)(examples * 8)
    a, b = out["a.labels"] != IGNORE_INDEX, out["b.labels"] != IGNORE_INDEX
    candidates = int((out["a.attention_mask"].bool() & (out["input_ids"] > 4)).sum())
    both = int((a & b).sum())
    # independent Bernoulli(0.3) selections: about 9% of candidates in both (n ~ 4000:
    # sd ~ 18); identical draws would put 30% in both
    assert abs(both - 0.09 * candidates) < 6 * (candidates * 0.09 * 0.91) ** 0.5
    swapped = TWO_MLMS.replace("task a weight 1.0", "task z weight 1.0")
    renamed = compiled(swapped.replace("task b", "task a").replace("task z", "task b"))
    again = renamed.Collator(tokenizer, seed=0)(examples * 8)
    assert torch.equal(again["a.labels"], out["a.labels"])  # a task's draws follow its name
    assert task_salt("a") != task_salt("b")


@pytest.mark.parametrize("side", ["right", "left"])
def test_each_task_is_padded_as_a_batch(tokenizer: Any, examples: Any, side: str) -> None:
    module = compiled(MLM_SOP_CONTRASTIVE)
    plain = module.Collator(tokenizer, seed=1)(examples)
    padded = module.Collator(tokenizer, seed=1, pad_to_multiple_of=64, padding_side=side)(examples)
    for key in ("mlm.input_ids", "mlm.labels", "simcse.view_input_ids", "token_type_ids"):
        assert padded[key].shape[1] == 64
    for task in ("mlm", "simcse"):
        was, now = task_batch(plain, task), task_batch(padded, task)
        keep, valid = was["attention_mask"].bool(), now["attention_mask"].bool()
        assert torch.equal(now["input_ids"][valid], was["input_ids"][keep])
        assert bool((now["input_ids"][~valid] == tokenizer.token_to_id("[PAD]")).all())
    labels = task_batch(padded, "mlm")["labels"]
    valid = padded["mlm.attention_mask"].bool()
    assert bool((labels[~valid] == IGNORE_INDEX).all())  # a padded label is never a token
    assert torch.equal(labels[valid], plain["mlm.labels"][plain["mlm.attention_mask"].bool()])


def test_a_composition_of_tasks_refuses_packing(tokenizer: Any) -> None:
    with pytest.raises(ValueError, match="cannot be packed yet"):
        compiled(TWO_MLMS).Collator(tokenizer, pack=64)


def test_an_empty_batch_has_every_task_key(tokenizer: Any) -> None:
    module = compiled(MLM_SOP_CONTRASTIVE)
    out = module.Collator(tokenizer)([])
    assert set(out) == set(module.Collator.outputs)


# --- the heads ------------------------------------------------------------------------------


def test_heads_run_the_model_per_task_and_add_the_weighted_losses(
    tokenizer: Any, examples: Any
) -> None:
    module = compiled(MLM_SOP_CONTRASTIVE)
    batch = module.Collator(tokenizer, seed=2)(examples)
    torch.manual_seed(0)
    model = TinyEncoder(tokenizer.get_vocab_size(), hidden_size=16, layers=1, heads=2)
    heads = module.Heads(model).eval()
    losses = heads(batch)
    names = {"mlm.mlm", "sentence_classification", "simcse.contrastive", "loss"}
    assert set(losses) == names
    total = losses["mlm.mlm"] + losses["sentence_classification"]
    total = total + 0.5 * losses["simcse.contrastive"]
    assert torch.allclose(losses["loss"], total)
    # the masked LM's loss is the head on the model run on the task's own (masked) rows
    states = model(batch["mlm.input_ids"], batch["mlm.attention_mask"], **_types(batch))
    assert torch.allclose(losses["mlm.mlm"], heads.mlm(states, batch["mlm.labels"]))


def test_tasks_with_one_head_kind_share_its_module(tokenizer: Any, examples: Any) -> None:
    module = compiled(TWO_MLMS)
    batch = module.Collator(tokenizer, seed=2)(examples)
    model = TinyEncoder(tokenizer.get_vocab_size(), hidden_size=16, layers=1, heads=2)
    heads = module.Heads(model).eval()
    losses = heads(batch)
    assert torch.allclose(losses["loss"], losses["a.mlm"] + 0.25 * losses["b.mlm"])
    losses["b.mlm"].backward()  # b's loss reaches the shared head and the model
    assert heads.mlm.transform[0].weight.grad is not None
    assert model.embeddings.weight.grad is not None


def _types(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {"token_type_ids": batch["token_type_ids"]}


# --- the checks -----------------------------------------------------------------------------


def test_a_composition_of_tasks_passes_its_checks() -> None:
    spec = objspec.parse_spec(MLM_SOP_CONTRASTIVE)
    results = run_checks(spec, compiled(MLM_SOP_CONTRASTIVE), max_examples=10)
    failed = [r for r in results if not r.passed]
    assert not failed, failed
    names = {r.name for r in results}
    assert {"composed", "pair_labels", "mlm:labels", "simcse:views"} <= names


class _SharedDraws:
    """A broken composition: task b's batch drawn with task a's keys (b repeats a's draws)."""

    def __init__(self, module: Any) -> None:
        base = module.Collator

        class Collator(base):  # type: ignore[misc, valid-type]
            def corrupt(self, batch: Any, keys: Any) -> dict[str, torch.Tensor]:
                out = super().corrupt(batch, keys)
                out["b.input_ids"] = out["a.input_ids"]
                out["b.labels"] = out["a.labels"]
                return out

        self.Collator = Collator


def test_the_composed_check_catches_tasks_that_share_draws() -> None:
    spec = objspec.parse_spec(TWO_MLMS)
    chosen = next(c for c in COMPOSITION_CHECKS if c.name == "composed")
    assert run_check(chosen, spec, compiled(TWO_MLMS), max_examples=10).passed
    result = run_check(chosen, spec, _SharedDraws(compiled(TWO_MLMS)), max_examples=10)
    assert not result.passed and "task 'b'" in result.detail


# --- the language ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            MLM_SOP_CONTRASTIVE.replace("task simcse weight 0.5:", "task sop weight 0.5:"),
            "two tasks share a name",
        ),
        (
            MLM_SOP_CONTRASTIVE + NSP_TASK,
            "at most one pair task",
        ),
        (TWO_MLMS.replace(MLM_BLOCK, T5_BLOCK, 1), "encoder-form objectives"),
        (MLM_SOP_CONTRASTIVE + OTHER_VIEWS, "both train head 'contrastive'"),
    ],
    ids=["same-name", "two-pairs", "seq2seq-task", "head-params"],
)
def test_a_composition_that_cannot_be_built_is_a_located_error(text: str, message: str) -> None:
    error = spec_error(text)
    assert message in str(error)
    assert error.diagnostics[0].loc is not None


# --- where users run it ---------------------------------------------------------------------


def test_objspec_trainer_trains_a_composition_of_tasks_in_workers(tmp_path: Any) -> None:
    pytest.importorskip("transformers")
    from tests.test_pipelines import equal_rows, objspec_trainer

    trainer = objspec_trainer(
        tmp_path,
        "simcse_mlm",
        equal_rows(8),
        dataloader_num_workers=2,
        dataloader_persistent_workers=True,
    )
    trainer.train()
    logs = [h for h in trainer.state.log_history if "loss" in h]
    assert logs and all("loss_mlm.mlm" in h and "loss_contrastive.contrastive" in h for h in logs)
    assert any("eval_loss" in h for h in trainer.state.log_history)


# --- what a review found ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "layout",
    [{"padding_side": "left"}, {"pad_to_multiple_of": 64}, {"max_length": 12}],
    ids=["left", "multiple", "cut"],
)
def test_a_passed_through_field_with_a_dot_is_laid_out_as_the_batch(
    tokenizer: Any, examples: Any, layout: dict[str, Any]
) -> None:
    """A dataset column named 'src.tags' is the batch's own field, not a task's batch."""
    tagged = [
        {
            **e,
            "tags": list(range(len(e["input_ids"]))),
            "src.tags": list(range(len(e["input_ids"]))),
        }
        for e in examples
    ]
    out = objspec.load("bert_mlm").Collator(tokenizer, seed=1, **layout)(tagged)
    assert torch.equal(out["src.tags"], out["tags"])


def test_identical_loss_statements_in_two_tasks_agree() -> None:
    text = TWO_MLMS.replace("    head     mlm\n", "    loss     cross_entropy\n    head     mlm\n")
    assert objspec.parse_spec(text).namespaced


def test_electras_masked_lm_is_its_task_alone() -> None:
    electra = """\
  task electra weight 1.0:
    select   exact
    budget   15% of tokens, round, min 1
    replace  per token: mask 85%, keep 15%
    predict  original at selected
    head     mlm
    head     replaced_token_detection(generator_size=0.25, temperature=1.0) weight 50.0
"""
    error = spec_error(TWO_MLMS.replace("  task b weight 0.25:\n" + MLM_BLOCK, electra))
    assert "ELECTRA's generator" in str(error)


def test_static_masks_of_several_tasks_pass_the_epochs_check() -> None:
    text = MLM_SOP_CONTRASTIVE.replace(
        "  exclude  special\n", "  exclude  special\n  masks    static(copies=4)\n", 1
    )
    spec = objspec.parse_spec(text)
    chosen = next(c for c in CHECKS if c.name == "epochs")
    result = run_check(chosen, spec, compiled(text), max_examples=5)
    assert result.passed, result.detail

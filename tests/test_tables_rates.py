"""Run-time tables (similar tokens, unigram and restricted random pools) and per-example rates
with their loss weights (masked diffusion): the runtime kernels, directly.

The compiled specs that use them are tested in tests/test_language_tables.py; here each kernel's
promise is checked on its own, with fixed seeds and stated tolerances.
"""

from __future__ import annotations

import pytest
import torch

from objspec import runtime as rt
from objspec.runtime.consumers import ConsumerError, hf_inputs
from objspec.runtime.rates import (
    bernoulli_select_rates,
    label_weights,
    loss_total,
    uniform_rates,
)
from objspec.runtime.rng import Keys
from objspec.runtime.tables import TableError, pool_table, similar_table, unigram_cdf

SIZE = 12
SPECIALS = (("[PAD]", 0), ("[MASK]", 1), ("[CLS]", 2), ("[SEP]", 3))


@pytest.fixture
def vocab() -> rt.Vocab:
    return rt.Vocab(size=SIZE, pad_id=0, mask_id=1, cls_id=2, sep_id=3, special_tokens=SPECIALS)


def _table(rows: dict[int, list[int]], k: int = 3) -> torch.Tensor:
    table = torch.full((SIZE, k), -1, dtype=torch.int64)
    for token, similar in rows.items():
        table[token, : len(similar)] = torch.tensor(similar)
    return table


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (torch.zeros(SIZE, 2), "integer table"),
        (torch.full((SIZE - 1, 2), -1), "one row per id"),
        (_table({5: [SIZE]}), "outside"),
        (_table({5: [-1, 6]}), "ids first"),
        (_table({5: [1]}), "special"),
        (_table({5: [5]}), "itself"),
    ],
)
def test_a_bad_similar_table_is_refused(vocab: rt.Vocab, table: torch.Tensor, message: str):
    with pytest.raises(TableError, match=message):
        similar_table(table, vocab)


@pytest.mark.parametrize(
    ("pool", "message"),
    [([], "non-empty"), ([4, SIZE], "outside"), ([4, 1], "special"), ([4, 4], "twice")],
)
def test_a_bad_pool_is_refused(vocab: rt.Vocab, pool: list[int], message: str):
    with pytest.raises(TableError, match=message):
        pool_table(torch.tensor(pool, dtype=torch.int64), vocab)


def _replaced(vocab: rt.Vocab, actions, cdf, **tables) -> tuple[torch.Tensor, torch.Tensor]:
    """(original, replaced) of 4000 rows of 8 tokens, every ordinary token selected."""
    ids = torch.randint(4, SIZE, (4000, 8), generator=torch.Generator().manual_seed(0))
    keys = Keys(seed=3, epoch=0, index=torch.arange(4000))
    out = rt.replace_selected(
        keys,
        6,
        ids,
        torch.ones_like(ids, dtype=torch.bool),
        actions,
        cdf,
        pool=vocab.random_pool(),
        random_stream=7,
        **tables,
    )
    return ids, out


def test_similar_replaces_with_a_listed_token_uniformly_else_a_random_one(vocab: rt.Vocab):
    table = similar_table(_table({5: [6, 7], 8: [9]}), vocab)
    ids, out = _replaced(vocab, ("similar",), (1 << 32,), similar=table)
    fives = out[ids == 5]
    assert set(fives.tolist()) == {6, 7}
    assert abs((fives == 6).float().mean().item() - 0.5) < 0.03  # about 3,000 draws
    assert bool((out[ids == 8] == 9).all())
    others = out[(ids != 5) & (ids != 8)]  # no similar token listed: a random ordinary token
    assert bool(((others >= 4) & (others < SIZE)).all())
    assert len(set(others.tolist())) == SIZE - 4


def test_unigram_random_tokens_follow_the_counts(vocab: rt.Vocab):
    counts = torch.zeros(SIZE)
    counts[4], counts[5], counts[0] = 3.0, 1.0, 1000.0  # the pad's count is never drawn
    ids, out = _replaced(vocab, ("random",), (1 << 32,), unigram=unigram_cdf(counts, vocab))
    assert set(out.flatten().tolist()) == {4, 5}
    assert abs((out == 4).float().mean().item() - 0.75) < 0.01  # 32,000 draws


def test_a_pool_is_what_random_tokens_come_from(vocab: rt.Vocab):
    ids = torch.randint(4, SIZE, (500, 8), generator=torch.Generator().manual_seed(1))
    out = rt.replace_selected(
        Keys(0, 0, torch.arange(500)),
        6,
        ids,
        torch.ones_like(ids, dtype=torch.bool),
        ("random",),
        (1 << 32,),
        pool=pool_table(torch.tensor([9, 10]), vocab),
        random_stream=7,
    )
    assert set(out.flatten().tolist()) == {9, 10}


def test_per_example_rates_do_not_depend_on_the_batch():
    index = torch.arange(100, 164)
    alone = uniform_rates(Keys(5, 2, index[7:8]), 9, 0.001, 1.0)
    together = uniform_rates(Keys(5, 2, index), 9, 0.001, 1.0)
    assert together[7] == alone[0]
    assert float(together.min()) >= 0.001 and float(together.max()) < 1.0
    assert uniform_rates(Keys(5, 3, index), 9, 0.001, 1.0).ne(together).any()  # a new epoch


def test_each_row_is_selected_at_its_own_rate():
    rows, width = 200, 4000
    keys = Keys(0, 0, torch.arange(rows))
    rates = uniform_rates(keys, 9, 0.05, 0.95)
    chosen = bernoulli_select_rates(keys, 1, torch.ones(rows, width, dtype=torch.bool), rates)
    observed = chosen.double().mean(dim=1)
    bound = 4.5 * torch.sqrt(rates * (1 - rates) / width)  # 4.5 sigma, 200 rows
    assert bool(((observed - rates).abs() < bound).all())


def test_label_weights_and_totals():
    labels = torch.tensor([[5, -100, 6, -100], [-100, -100, -100, -100]])
    candidates = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]], dtype=torch.bool)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])
    rates = torch.tensor([0.5, 0.25], dtype=torch.float64)
    expected = torch.tensor([[2.0, 0, 2.0, 0], [0, 0, 0, 0]])
    assert torch.equal(label_weights(labels, candidates, rates, "tokens"), expected)
    assert torch.equal(label_weights(labels, candidates, rates, "examples"), expected / 3)
    assert torch.equal(label_weights(labels, candidates, None, "selected"), expected / 2)
    assert loss_total(labels, mask, "selected") == 2
    assert loss_total(labels, mask, "tokens") == 7
    assert loss_total(labels, mask, "examples") == 2
    with pytest.raises(ValueError, match="unknown loss average"):
        label_weights(labels, candidates, None, "rows")


def test_the_weighted_loss_is_the_weighted_sum_over_the_total():
    torch.manual_seed(0)
    embeddings = torch.nn.Embedding(SIZE, 8)
    head = rt.MLMHead(8, embeddings)
    hidden = torch.randn(2, 4, 8)
    labels = torch.tensor([[5, -100, 6, -100], [-100, 7, -100, -100]])
    weights = torch.tensor([[2.0, 0, 2.0, 0], [0, 4.0, 0, 0]])
    loss, logits = head.weighted_loss_and_logits(hidden, labels, weights, torch.tensor(7.0))
    per_token = torch.nn.functional.cross_entropy(logits, torch.tensor([5, 6, 7]), reduction="none")
    assert torch.allclose(loss, (per_token * torch.tensor([2.0, 2.0, 4.0])).sum() / 7)
    nothing = torch.full_like(labels, -100)
    assert head.weighted_loss_and_logits(hidden, nothing, weights, torch.tensor(1.0))[0] == 0


def test_a_weighted_batch_is_refused_by_a_model_that_would_ignore_the_weights():
    class Model(torch.nn.Module):
        def forward(self, input_ids=None, attention_mask=None, labels=None):  # noqa: D102
            return input_ids

    batch = {"input_ids": torch.zeros(1, 2), "labels": torch.zeros(1, 2), "label_weights": None}
    with pytest.raises(ConsumerError, match="unweighted"):
        hf_inputs(Model(), batch)

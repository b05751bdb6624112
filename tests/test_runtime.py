"""Unit tests of the runtime kernels: RNG, batch reading, units, selection, spans, replacement."""

from __future__ import annotations

import math
import shutil
from typing import Any

import pytest
import torch

from objspec.checks import synthetic_vocab
from objspec.distributions import build_law
from objspec.runtime import (
    Keys,
    Vocab,
    VocabError,
    budget_counts,
    candidate_mask,
    read_batch,
    take_in_random_order,
    word_unit_starts,
)
from objspec.runtime.rng import U32, hash32, mul32, stream_key
from objspec.runtime.selection import start_position, unit_lengths
from objspec.runtime.spans import place_spans, sample_lengths


def chi_square(observed: list[int], expected: list[float]) -> float:
    return sum((o - e) ** 2 / e for o, e in zip(observed, expected, strict=True) if e > 0)


# Upper 1e-6 quantiles of chi-square (df -> value), from the Wilson-Hilferty approximation
# rounded up; a correct sampler with a fixed seed sits far below these.
def chi2_bound(df: int) -> float:
    z = 4.9  # one-sided 1e-6 normal quantile is 4.75; rounded up
    return df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


# --- RNG -------------------------------------------------------------------------------------


def test_mul32_matches_exact_modular_product() -> None:
    xs = torch.tensor([0, 1, 2**31, 2**32 - 1, 123456789, 987654321])
    for c in (0x7FEB352D, 0x846CA68B, 0x9E3779B9, 1, 2**32 - 1):
        expected = torch.tensor([(int(x) * c) % U32 for x in xs])
        assert torch.equal(mul32(xs, c), expected)
        assert [mul32(int(x), c) for x in xs] == expected.tolist()


def test_hash32_same_on_ints_and_tensors_and_in_range() -> None:
    xs = list(range(0, 2**32, 2**32 // 997))
    t = hash32(torch.tensor(xs))
    assert t.tolist() == [hash32(x) for x in xs]
    assert int(t.min()) >= 0 and int(t.max()) < U32


def test_draws_are_uniform() -> None:
    keys = Keys(seed=7, epoch=0, index=torch.arange(256))
    u = keys.draw(1, torch.arange(512))  # 131072 draws
    counts = torch.bincount((u >> 28).flatten(), minlength=16).tolist()
    expected = [u.numel() / 16] * 16
    assert chi_square(counts, expected) < chi2_bound(15)
    # the low bits too (a weak mixer fails here first)
    low = torch.bincount((u & 15).flatten(), minlength=16).tolist()
    assert chi_square(low, expected) < chi2_bound(15)


def test_draws_depend_on_every_key_part() -> None:
    base = Keys(1, 0, torch.tensor([5])).draw(1, torch.arange(64))
    assert not torch.equal(base, Keys(2, 0, torch.tensor([5])).draw(1, torch.arange(64)))
    assert not torch.equal(base, Keys(1, 1, torch.tensor([5])).draw(1, torch.arange(64)))
    assert not torch.equal(base, Keys(1, 0, torch.tensor([6])).draw(1, torch.arange(64)))
    assert not torch.equal(base, Keys(1, 0, torch.tensor([5])).draw(2, torch.arange(64)))
    # large indices (beyond 32 bits) are distinguished too
    hi = Keys(1, 0, torch.tensor([5 + 2**32])).draw(1, torch.arange(64))
    assert not torch.equal(base, hi)
    assert stream_key(1, 0, 1) != stream_key(1, 0, 2)


def test_draws_do_not_depend_on_the_batch() -> None:
    index = torch.tensor([3, 99, 12345])
    together = Keys(0, 4, index).draw(6, torch.arange(10))
    for row, i in enumerate(index):
        alone = Keys(0, 4, i.reshape(1)).draw(6, torch.arange(10))
        assert torch.equal(alone[0], together[row])


def test_per_row_counters_match_shared_counters() -> None:
    keys = Keys(0, 0, torch.tensor([1, 2]))
    shared = keys.draw(3, torch.arange(8))
    per_row = keys.draw(3, torch.arange(8).expand(2, 8))
    assert torch.equal(shared, per_row)


# --- batches ---------------------------------------------------------------------------------


def test_list_and_padded_inputs_read_the_same() -> None:
    examples = [{"input_ids": [2, 10, 11, 3], "index": 0}, {"input_ids": [2, 12, 3], "index": 1}]
    a = read_batch(examples, pad_id=0)
    b = read_batch(
        {
            "input_ids": torch.tensor([[2, 10, 11, 3], [2, 12, 3, 0]]),
            "attention_mask": torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]]),
            "index": torch.tensor([0, 1]),
        },
        pad_id=0,
    )
    assert torch.equal(a.input_ids, b.input_ids)
    assert torch.equal(a.valid, b.valid)
    assert torch.equal(a.index, b.index)


def test_literal_pad_id_in_text_is_kept_when_attention_mask_is_given() -> None:
    # transformers PR #15443: a pad id inside the text must not be taken for padding
    batch = read_batch(
        {"input_ids": torch.tensor([[2, 0, 9, 3]]), "attention_mask": torch.ones(1, 4)}, pad_id=0
    )
    assert bool(batch.valid.all())
    listed = read_batch([{"input_ids": [2, 0, 9, 3]}], pad_id=0)
    assert bool(listed.valid.all())


def test_tensor_and_numpy_rows_are_accepted() -> None:
    import numpy as np

    rows = [torch.tensor([2, 5, 3]), torch.tensor([2, 6, 7, 3])]
    a = read_batch([{"input_ids": r} for r in rows], pad_id=0)
    b = read_batch([{"input_ids": np.asarray(r)} for r in rows], pad_id=0)
    assert torch.equal(a.input_ids, b.input_ids)
    assert a.input_ids.tolist() == [[2, 5, 3, 0], [2, 6, 7, 3]]


def test_content_index_is_batch_invariant() -> None:
    rows = [{"input_ids": [2, 7, 8, 3]}, {"input_ids": [2, 9, 3]}]
    together = read_batch(rows, pad_id=0).index
    assert together[1] == read_batch(rows[1:], pad_id=0).index[0]
    assert together[0] != together[1]


@pytest.mark.parametrize(
    "bad",
    [[{"ids": [1]}], "text", [{"input_ids": [1, 2], "word_ids": [0]}]],
)
def test_bad_batches_raise_batch_error(bad: object) -> None:
    from objspec.runtime import BatchError

    with pytest.raises(BatchError):
        read_batch(bad, pad_id=0)  # type: ignore[arg-type]


# --- units -----------------------------------------------------------------------------------


def test_word_starts_from_table_and_from_word_ids_agree() -> None:
    vocab = synthetic_vocab(30)  # ids divisible by 3 (>= 8) continue a word
    ids = [2, 8, 9, 10, 12, 13, 3]
    table = read_batch([{"input_ids": ids}], pad_id=0)
    starts = word_unit_starts(table, vocab)[0].tolist()
    assert starts == [True, True, False, True, False, True, True]
    word_ids = [-1, 0, 0, 1, 1, 2, -1]
    given = read_batch([{"input_ids": ids, "word_ids": word_ids}], pad_id=0)
    assert word_unit_starts(given, vocab)[0].tolist() == starts


def test_unit_lengths_and_start_positions() -> None:
    starts = torch.tensor([[True, True, False, False, True, False]])
    valid = torch.tensor([[True, True, True, True, True, False]])
    assert unit_lengths(starts, valid).tolist() == [[1, 3, 0, 0, 1, 0]]
    assert start_position(starts).tolist() == [[0, 1, 1, 1, 4, 4]]


# --- selection -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rounding", "n", "expected"),
    [
        ("round", 20, 3),  # 3.0
        ("round", 10, 2),  # 1.5 -> 2 (half to even)
        ("round", 30, 4),  # 4.5 -> 4 (half to even, as Python's round)
        ("ceil", 20, 3),  # 15% of 20 is exactly 3, not 4 (float error guarded)
        ("ceil", 21, 4),
        ("floor", 13, 1),
    ],
)
def test_budget_rounding(rounding: str, n: int, expected: int) -> None:
    got = budget_counts(torch.tensor([n]), 0.15, rounding)
    assert int(got[0]) == expected


def test_round_is_exact_half_to_even() -> None:
    # 0.35 * 90 is 31.499999... in float64; the rational 31.5 rounds to even, 32
    assert int(budget_counts(torch.tensor([90]), 0.35, "round")[0]) == 32
    assert int(budget_counts(torch.tensor([150]), 0.07, "round")[0]) == 10  # 10.5 -> 10


def test_budget_clamps() -> None:
    n = torch.tensor([0, 3, 200])
    got = budget_counts(n, 0.15, "round", minimum=1, maximum=20)
    assert got.tolist() == [0, 1, 20]  # never more than the row has


def test_stochastic_rounding_is_floor_plus_uniform() -> None:
    n = torch.full((20000,), 10)
    u = Keys(0, 0, torch.arange(20000)).draw(2, torch.zeros(1, dtype=torch.int64))[:, 0]
    k = budget_counts(n, 0.15, "stochastic", u=u)
    assert set(k.tolist()) == {1, 2}
    frac = float((k == 2).float().mean())
    assert abs(frac - 0.5) < 6 * math.sqrt(0.25 / 20000)


def test_exact_k_selects_exactly_k_candidates() -> None:
    keys = Keys(0, 0, torch.arange(4))
    cand = torch.rand(4, 50, generator=torch.Generator().manual_seed(0)) < 0.7
    k = torch.tensor([0, 5, 17, 50])
    taken = take_in_random_order(keys, 1, cand, torch.ones(4, 50, dtype=torch.int64), k)
    assert (taken & ~cand).sum() == 0
    assert taken.sum(dim=1).tolist() == torch.minimum(k, cand.sum(dim=1)).tolist()


def test_exact_k_is_uniform_over_positions() -> None:
    keys = Keys(3, 0, torch.arange(4000))
    cand = torch.ones(4000, 10, dtype=torch.bool)
    taken = take_in_random_order(
        keys, 1, cand, torch.ones(4000, 10, dtype=torch.int64), torch.full((4000,), 3)
    )
    per_position = taken.sum(dim=0).tolist()
    assert chi_square(per_position, [1200.0] * 10) < chi2_bound(9)


# --- spans -----------------------------------------------------------------------------------

SPANBERT = build_law("geometric", (), {"p": 0.2}, "truncated", 1, 10)


def test_sample_lengths_match_the_table() -> None:
    u = Keys(11, 0, torch.arange(1000)).draw(3, torch.arange(100))
    values = torch.tensor(SPANBERT.values)
    cdf = torch.tensor(SPANBERT.cdf_u32())
    lengths = sample_lengths(u, values, cdf)
    observed = [int((lengths == v).sum()) for v in SPANBERT.values]
    expected = [p * lengths.numel() for p in SPANBERT.probs]
    assert chi_square(observed, expected) < chi2_bound(len(observed) - 1)


def _spans(rows: int, length: int, budget: int, seed: int = 0):  # type: ignore[no-untyped-def]
    keys = Keys(seed, 0, torch.arange(rows))
    ones = torch.ones(rows, length, dtype=torch.bool)
    return place_spans(
        keys,
        (3, 4, 5),
        ones,
        ones,
        ones,
        torch.full((rows,), budget),
        torch.tensor(SPANBERT.values),
        torch.tensor(SPANBERT.cdf_u32()),
    )


def test_spans_meet_the_budget_exactly_and_do_not_overlap() -> None:
    spans = _spans(64, 200, 30)
    assert spans.selected.sum(dim=1).tolist() == [30] * 64
    # span ids increase left to right and each span is one contiguous run
    sid = spans.span_id
    starts = spans.selected & (torch.arange(200) == spans.span_start)
    assert torch.equal(starts.sum(dim=1), sid.max(dim=1).values + 1)


def test_spans_are_kept_apart_when_there_is_room() -> None:
    spans = _spans(64, 400, 40)
    sel = spans.selected
    # a selected token followed by a selected token of another span would mean touching spans
    touching = sel[:, :-1] & sel[:, 1:] & (spans.span_id[:, :-1] != spans.span_id[:, 1:])
    assert not bool(touching.any())


def test_placed_span_lengths_follow_the_law() -> None:
    # long rows, small budget: only the last-drawn span per row is cut, so the histogram of all
    # placed spans is close to the table (total variation under 0.03 for ~9000 spans)
    spans = _spans(400, 2000, 90)
    sizes = torch.zeros(400, 2001, dtype=torch.int64)
    sizes.scatter_add_(
        1, torch.where(spans.selected, spans.span_start, 2000), spans.selected.long()
    )
    lengths = sizes[:, :2000][sizes[:, :2000] > 0]
    hist = torch.bincount(lengths, minlength=11)[1:11].double() / lengths.numel()
    tv = 0.5 * sum(abs(float(h) - p) for h, p in zip(hist, SPANBERT.probs, strict=True))
    assert tv < 0.03


def test_spans_in_tiny_and_empty_rows() -> None:
    spans = _spans(8, 3, 1)
    assert spans.selected.sum(dim=1).tolist() == [1] * 8
    none = _spans(2, 5, 0)
    assert not bool(none.selected.any())


# --- vocab -----------------------------------------------------------------------------------


def test_vocab_from_bundled_tokenizers_tokenizer() -> None:
    from objspec.bundled import load_tokenizer

    vocab = Vocab.from_tokenizer(load_tokenizer())
    assert (vocab.pad_id, vocab.unk_id, vocab.cls_id, vocab.sep_id, vocab.mask_id) == (
        0,
        1,
        2,
        3,
        4,
    )
    assert vocab.sentinel_ids[0] == vocab.size - 1
    assert vocab.word_start is not None
    pool = vocab.random_pool()
    assert not bool(vocab.special_table()[pool].any())


def test_vocab_from_hf_tokenizer() -> None:
    pytest.importorskip("transformers")
    from objspec.bundled import load_hf_tokenizer

    vocab = Vocab.from_tokenizer(load_hf_tokenizer())
    assert vocab.mask_id == 4 and vocab.pad_id == 0
    assert len(vocab.sentinel_ids) == 100


def test_vocab_errors() -> None:
    with pytest.raises(VocabError):
        Vocab(size=10, mask_id=10)
    no_mask = Vocab(size=10, pad_id=0)
    with pytest.raises(VocabError, match="mask"):
        no_mask.require("mask")
    with pytest.raises(VocabError, match="word-start"):
        no_mask.word_start_table()
    with pytest.raises(VocabError, match="non-special"):
        Vocab(size=2, pad_id=0, mask_id=1).random_pool()


def test_draws_at_positions_match_the_grid() -> None:
    keys = Keys(5, 2, torch.tensor([10, 2**40 + 3, 7]))
    dense = keys.draw(6, 32)
    rows = torch.tensor([0, 1, 2, 1])
    cols = torch.tensor([0, 31, 5, 17])
    assert torch.equal(keys.draw_at_positions(6, rows, cols, 32), dense[rows, cols])
    assert torch.equal(keys.draw(6, torch.arange(32)), dense)
    starts = torch.tensor([[3, 3, 31], [0, 7, 7], [5, 5, 5]])
    assert torch.equal(keys.draw(6, starts, below_length=32), keys.draw(6, starts))


def test_numpy_rows_with_none_or_nan_read_as_fill() -> None:
    """Per-token fields given as numpy arrays: None (object arrays) and NaN read as -1."""
    import numpy as np

    from objspec.runtime import read_batch

    examples = [
        {"input_ids": [1, 2, 3], "word_ids": np.array([None, 0, None], dtype=object)},
        {"input_ids": [1, 4], "word_ids": np.array([np.nan, 0.0])},
    ]
    assert read_batch(examples, 0).word_ids.tolist() == [[-1, 0, -1], [-1, 0, -1]]


def test_example_keys_are_the_same_from_numpy_and_torch() -> None:
    """The CPU path derives the example keys with numpy: the same bits as the tensor path,
    negative and 64-bit indices included."""
    from objspec.runtime.rng import example_stream_keys, stream_keys

    index = torch.tensor([0, 1, 2**40 + 5, 12345678901, -7, 2**63 - 1])
    per_stream = torch.tensor(stream_keys(3, 9))
    assert torch.equal(Keys(3, 9, index)._keys, example_stream_keys(index, per_stream))


def test_a_left_padded_batch_is_read_left_aligned() -> None:
    """Columns count from each row's own first token: the first and last are the row's."""
    vocab = synthetic_vocab(30)
    right = read_batch({"input_ids": torch.tensor([[9, 10, 11, 0, 0]])}, pad_id=0)
    left = read_batch(
        {
            "input_ids": torch.tensor([[0, 0, 9, 10, 11]]),
            "attention_mask": torch.tensor([[0, 0, 1, 1, 1]]),
        },
        pad_id=0,
    )
    kwargs = {"exclude_special": False, "exclude_first": True, "exclude_last": True}
    assert candidate_mask(right, vocab, **kwargs).long().tolist() == [[0, 1, 0, 0, 0]]
    assert candidate_mask(left, vocab, **kwargs).long().tolist() == [[0, 1, 0, 0, 0]]
    assert torch.equal(left.input_ids, right.input_ids) and left.left_padded


def test_an_example_without_index_does_not_change_the_others_keys() -> None:
    rows = [{"input_ids": [2, 9, 10, 3], "index": 7}, {"input_ids": [2, 11, 3]}]
    batch = read_batch(rows, pad_id=0)
    alone = read_batch(rows[1:], pad_id=0)
    assert int(batch.index[0]) != int(alone.index[0])  # the index, mixed with the content
    assert int(batch.index[1]) == int(alone.index[0])  # the content hash, as alone


@pytest.mark.skipif(
    not (shutil.which("c++") or shutil.which("g++")), reason="torch.compile needs a C++ compiler"
)
def test_the_compiled_hash_gives_the_same_bits() -> None:
    """use_compiled_hash fuses the hash with torch.compile: the same draws, any shape."""
    from objspec.runtime import use_compiled_hash
    from objspec.runtime.rng import hash32

    x = torch.randint(-(2**40), 2**40, (64, 96), generator=torch.Generator().manual_seed(0))
    eager = hash32(x)
    keys = Keys(5, 1, torch.arange(7))
    draws = keys.draw(3, 33)
    use_compiled_hash(True)
    try:
        assert torch.equal(hash32(x), eager)
        assert torch.equal(hash32(x[:5, :3]), hash32(x[:5, :3].clone()))
        assert torch.equal(Keys(5, 1, torch.arange(7)).draw(3, 33), draws)
    finally:
        use_compiled_hash(False)


def _mlm_subclass() -> type:
    from pathlib import Path

    from objspec import compile_file

    spec = Path(__file__).resolve().parent.parent / "specs" / "bert_mlm.objspec"
    return compile_file(spec).Collator  # type: ignore[no-any-return]


class _MyCollator(_mlm_subclass()):  # type: ignore[misc]
    """A user's subclass of a generated collator: pickled by reference, as any class."""

    def corrupt(self, batch: Any, keys: Any) -> dict[str, torch.Tensor]:
        out = super().corrupt(batch, keys)
        out["input_ids"] = out["input_ids"].flip(1)
        return out


def test_a_subclass_of_a_generated_collator_pickles_as_itself() -> None:
    import pickle

    mine = _MyCollator(synthetic_vocab(64), seed=2)
    examples = [{"input_ids": list(range(10, 30)), "index": 0}]
    want = mine(examples)
    assert mine._consts  # filled by the call; the pickle leaves the device constants out
    copied = pickle.loads(pickle.dumps(mine))
    assert type(copied) is _MyCollator and not copied._consts
    assert torch.equal(copied(examples)["input_ids"], want["input_ids"])


def test_a_compiled_collator_pickles_and_runs_in_spawned_dataloader_workers() -> None:
    """Generated classes live in no importable module: the collator pickles by value (its
    generated source), so a DataLoader's spawned workers (macOS and Windows default) can run it,
    and give the batches the collator gives in this process."""
    import copy
    import pickle
    from pathlib import Path

    from objspec import bundled, compile_file

    spec = Path(__file__).resolve().parent.parent / "specs" / "spanbert.objspec"
    tokenizer = bundled.load_tokenizer()
    collator = compile_file(spec).Collator(Vocab.from_tokenizer(tokenizer), seed=4, epoch=1)
    examples = bundled.encode_examples(tokenizer, bundled.load_documents()[:3], 48)[:8]
    want = collator(examples)  # also fills the device-constant cache the pickle leaves out
    for copied in (pickle.loads(pickle.dumps(collator)), copy.deepcopy(collator)):
        assert type(copied) is type(collator) and copied.epoch == 1
        got = copied(examples)
        assert all(torch.equal(got[k], want[k]) for k in want)
    loader = torch.utils.data.DataLoader(
        examples, batch_size=4, collate_fn=collator, num_workers=1, multiprocessing_context="spawn"
    )
    batches = list(loader)
    for i, got in enumerate(batches):
        alone = collator(examples[4 * i : 4 * i + 4])
        assert all(torch.equal(got[k], alone[k]) for k in alone)


def test_the_runtime_never_imports_the_compiler() -> None:
    """The layers run one way (compiler -> objspec.runtime): no runtime module names the
    compiler, at the top or inside a function."""
    import ast
    from pathlib import Path

    runtime = Path(__file__).resolve().parent.parent / "objspec" / "runtime"
    for module in runtime.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            assert not any(n.split(".")[0] == "compiler" for n in names), module.name

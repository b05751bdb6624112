"""The rewrite runtime: the variable-length kernel, T5's segmentation and MASS's fragment.

Kernels are compared with plain per-row Python references on drawn inputs; the random parts
are tested for their exact counts and, with fixed seeds, for uniformity (chi-square bounds).
"""

from __future__ import annotations

import math
from collections import Counter
from itertools import combinations
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from objspec.checks import t5_counts
from objspec.runtime import (
    IGNORE_INDEX,
    Keys,
    decoder_only_outputs,
    fragment,
    random_segmentation,
    random_spans_noise,
    rewrite,
    run_start_position,
    run_starts,
    sentinels_at,
    shift_right,
    t5_noise_counts,
)

# chi-square critical values at p = 1e-6 (deterministic seeds; a correct kernel is far below)
CHI2_1E6 = {8: 42.7, 9: 44.8}


def _keys(rows: int, seed: int = 0) -> Keys:
    return Keys(seed, 0, torch.arange(rows))


def _chi2(observed: Counter[object], cells: list[object]) -> float:
    total = sum(observed[c] for c in cells)
    expected = total / len(cells)
    return sum((observed[c] - expected) ** 2 / expected for c in cells)


# --- the rewrite kernel -------------------------------------------------------------------------


@st.composite
def rewrites(draw: st.DrawFn) -> tuple[torch.Tensor, ...]:
    b = draw(st.integers(1, 4))
    length = draw(st.integers(1, 12))

    def grid(values: st.SearchStrategy[int]) -> torch.Tensor:
        flat = draw(st.lists(values, min_size=b * length, max_size=b * length))
        return torch.tensor(flat, dtype=torch.int64).reshape(b, length)

    tokens = grid(st.integers(0, 50))
    keep = grid(st.integers(0, 1)).bool()
    insert = grid(st.integers(0, 1)).bool()
    inserted = grid(st.integers(100, 150))
    return tokens, keep, insert, inserted


def _reference(tokens, keep, insert, inserted, append):  # type: ignore[no-untyped-def]
    rows = []
    for t, k, i, x in zip(tokens, keep, insert, inserted, strict=True):
        row = []
        for p in range(t.numel()):
            row += [int(x[p])] if i[p] else []
            row += [int(t[p])] if k[p] else []
        rows.append(row + ([append] if append is not None else []))
    return rows


@settings(max_examples=60, derandomize=True)
@given(case=rewrites(), append=st.one_of(st.none(), st.just(7)))
def test_rewrite_matches_a_per_row_reference(case: tuple[torch.Tensor, ...], append: int) -> None:
    tokens, keep, insert, inserted = case
    out, valid = rewrite(tokens, keep, insert=insert, inserted=inserted, fill=-5, append=append)
    expected = _reference(tokens, keep, insert, inserted, append)
    assert out.shape[1] == max(len(r) for r in expected)
    for row, want in zip(range(out.shape[0]), expected, strict=True):
        assert out[row][valid[row]].tolist() == want
        assert bool((out[row][~valid[row]] == -5).all())
        assert int(valid[row].sum()) == len(want)


def test_rewrite_width_cuts_long_rows_and_pads_short_ones() -> None:
    tokens = torch.tensor([[1, 2, 3, 4], [5, 6, 0, 0]])
    keep = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]]).bool()
    out, valid = rewrite(tokens, keep, fill=0, width=3)
    assert out.tolist() == [[1, 2, 3], [5, 6, 0]]
    assert valid.tolist() == [[True, True, True], [True, True, False]]
    out, valid = rewrite(tokens, keep, fill=0, width=6, append=9)
    assert out.tolist() == [[1, 2, 3, 4, 9, 0], [5, 6, 9, 0, 0, 0]]


def test_rewrite_of_an_all_padding_row_is_empty() -> None:
    out, valid = rewrite(torch.zeros(2, 3, dtype=torch.int64), torch.zeros(2, 3).bool(), fill=0)
    assert out.shape == (2, 0) and valid.shape == (2, 0)


def test_runs_and_shift_right() -> None:
    sel = torch.tensor([[0, 1, 1, 0, 1, 1, 1]]).bool()
    assert run_starts(sel).long().tolist() == [[0, 1, 0, 0, 1, 0, 0]]
    assert run_start_position(sel).tolist() == [[0, 1, 1, 0, 4, 4, 4]]
    sentinels = torch.tensor([99, 98])
    assert sentinels_at(run_starts(sel), sentinels).tolist() == [[0, 99, 0, 0, 98, 0, 0]]
    ids = torch.tensor([[5, 6, 7, 0]])
    valid = torch.tensor([[1, 1, 1, 0]]).bool()
    assert shift_right(ids, valid, 2, 0).tolist() == [[2, 5, 6, 0]]


def test_decoder_only_packs_prefix_then_targets() -> None:
    inputs = torch.tensor([[1, 2, 0], [3, 0, 0]])
    in_valid = inputs != 0
    targets = torch.tensor([[7, 8], [9, 0]])
    t_valid = targets != 0
    out = decoder_only_outputs(inputs, in_valid, targets, t_valid, fill=0)
    assert out["input_ids"].tolist() == [[1, 2, 7, 8], [3, 9, 0, 0]]
    assert out["prefix_mask"].tolist() == [[1, 1, 0, 0], [1, 0, 0, 0]]
    i = IGNORE_INDEX
    assert out["labels"].tolist() == [[i, i, 7, 8], [i, 9, i, i]]
    assert out["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]


# --- T5's random segmentation -------------------------------------------------------------------


def test_segmentation_is_a_positive_composition() -> None:
    rows = 500
    items = torch.randint(1, 40, (rows,), generator=torch.Generator().manual_seed(1))
    segments = (items // 3).clamp(min=1)
    lengths = random_segmentation(_keys(rows), 8, items, segments, 40)
    assert torch.equal(lengths.sum(dim=1), items)
    assert torch.equal((lengths > 0).sum(dim=1), segments)
    cols = torch.arange(40).unsqueeze(0)
    assert bool((lengths[cols >= segments.unsqueeze(1)] == 0).all())


def test_segmentation_draws_every_composition_equally_often() -> None:
    # 6 items in 3 parts: C(5, 2) = 10 compositions, each with probability 1/10
    rows = 20_000
    n = torch.full((rows,), 6)
    k = torch.full((rows,), 3)
    lengths = random_segmentation(_keys(rows, seed=7), 8, n, k, 6)[:, :3]
    seen = Counter(tuple(r) for r in lengths.tolist())
    cells: list[object] = [(a, b - a, 6 - b) for a, b in combinations(range(1, 6), 2)]
    assert set(seen) == set(cells)
    assert _chi2(seen, cells) < CHI2_1E6[9]


def test_t5_counts_follow_the_formulas() -> None:
    n = torch.arange(0, 600)
    for density in (0.15, 0.5, 0.01, 0.95):
        for mean in (1.0, 3.0, 8.0, 64.0):
            noise, spans = t5_noise_counts(n, density, mean, max_spans=100)
            want = [t5_counts(int(v), density, mean, 100) for v in n]
            assert list(zip(noise.tolist(), spans.tolist(), strict=True)) == want
    # the known figures: 512 tokens at 15% / mean 3 -> 77 noise tokens in 26 spans
    noise, spans = t5_noise_counts(torch.tensor([512]), 0.15, 3.0)
    assert (int(noise[0]), int(spans[0])) == (77, 26)


def _noise_rows(rows: int, length: int, roll: bool, seed: int = 3) -> torch.Tensor:
    cand = torch.ones(rows, length, dtype=torch.bool)
    return random_spans_noise(
        _keys(rows, seed), (8, 9), cand, 0.15, 3.0, roll_stream=10 if roll else None
    )


def test_unrolled_noise_starts_clean_and_ends_noisy() -> None:
    noise = _noise_rows(2000, 30, roll=False)
    assert not bool(noise[:, 0].any()) and bool(noise[:, -1].all())
    assert bool((noise.sum(dim=1) == round(30 * 0.15)).all())


def test_random_roll_spreads_the_noise_over_the_row() -> None:
    # t5#905: a short row unrolled is always noised at its end; rolled, every position is
    # noised equally often (4 noise tokens of 20: rate 0.2 at each position, 6-sigma bound)
    rows = 20_000
    noise = _noise_rows(rows, 20, roll=True)
    assert bool((noise.sum(dim=1) == 3).all())
    rate = noise.double().mean(dim=0)
    sd = math.sqrt(0.15 * 0.85 / rows)
    assert bool(((rate - 0.15).abs() < 6 * sd).all()), rate


def test_noise_skips_excluded_positions() -> None:
    cand = torch.ones(4, 12, dtype=torch.bool)
    cand[:, 0] = cand[:, -1] = cand[:, 5] = False
    noise = random_spans_noise(_keys(4), (8, 9), cand, 0.5, 2.0)
    assert not bool(noise[~cand].any())
    assert bool((noise.sum(dim=1) == round(9 * 0.5)).all())


# --- MASS's fragment ----------------------------------------------------------------------------


def test_fragment_is_one_run_of_its_size_at_a_uniform_start() -> None:
    rows, length, size = 12_000, 14, 4
    cand = torch.ones(rows, length, dtype=torch.bool)
    cand[:, 0] = cand[:, -1] = False  # [CLS] ... [SEP]
    sel = fragment(_keys(rows, 5), 5, cand, torch.full((rows,), size))
    assert bool((sel.sum(dim=1) == size).all())
    assert bool((run_starts(sel).sum(dim=1) == 1).all())
    assert not bool(sel[~cand].any())
    starts = Counter(int(p) for p in run_starts(sel).long().argmax(dim=1))
    cells: list[object] = list(range(1, 1 + 12 - size + 1))  # 9 possible starts
    assert set(starts) == set(cells)
    assert _chi2(starts, cells) < CHI2_1E6[8]


def test_fragment_larger_than_the_row_takes_the_row() -> None:
    cand = torch.tensor([[0, 1, 1, 0], [0, 0, 0, 0]]).bool()
    sel = fragment(_keys(2), 5, cand, torch.tensor([10, 3]))
    assert torch.equal(sel, cand)


# --- zero-length spans (BART's Poisson) ----------------------------------------------------------


def test_poisson_span_lengths_and_insertions_follow_the_table() -> None:
    """Span lengths (zero-length spans counted as insertions) against the lowered Poisson(3)
    table: every length's count within 6 sigma of its binomial expectation. Rows are long and
    the budget large, so the one span per row cut by the budget barely weighs."""
    from objspec.distributions import build_law
    from objspec.runtime import place_spans

    table = build_law("poisson", (3.0,))
    rows, length = 24, 4000
    valid = torch.ones(rows, length, dtype=torch.bool)
    spans = place_spans(
        _keys(rows, 11),
        (3, 4, 5),
        valid,
        valid,
        valid,
        torch.full((rows,), 1200),
        torch.tensor(table.values),
        torch.tensor(table.cdf_u32()),
        mean_length=table.mean,
    )
    assert bool((spans.selected.sum(dim=1) == 1200).all())
    ids = spans.span_id[spans.selected]
    rows_of = spans.selected.nonzero()[:, 0]
    sizes = Counter(zip(rows_of.tolist(), ids.tolist(), strict=True))
    counts = Counter(sizes.values())
    assert spans.insertions is not None
    counts[0] = int(spans.insertions.sum())
    total = sum(counts.values())
    for n in range(0, 9):
        p = table.prob_of(n)
        sd = math.sqrt(total * p * (1 - p))
        assert abs(counts[n] - total * p) < 6 * sd + 1, (n, counts[n], total * p)


# --- document transforms ------------------------------------------------------------------------


def test_sentence_orders_are_uniform_and_partial_rates_move_ceil_of_the_share() -> None:
    from objspec.runtime import sentence_order

    rows = 12_000
    n = torch.full((rows,), 3)
    order = sentence_order(_keys(rows, 21), 14, n, 1.0, 3)
    seen = Counter(tuple(r) for r in order.tolist())
    cells: list[object] = [(0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)]
    assert set(seen) == set(cells)
    assert _chi2(seen, cells) < 35.9  # 5 degrees of freedom, p = 1e-6
    # rate 40% of 5 sentences: ceil(2) move among their own slots, 3 stay
    order = sentence_order(_keys(2000, 22), 14, torch.full((2000,), 5), 0.4, 5)
    stay = (order == torch.arange(5)).sum(dim=1)
    assert bool((stay >= 3).all())
    assert bool((torch.sort(order, dim=1).values == torch.arange(5)).all())


def test_rotation_keeps_the_ends_and_starts_anywhere() -> None:
    from objspec.runtime import rotate

    rows, length = 9000, 11
    ids = torch.arange(length).repeat(rows, 1) + 10
    ids[:, 0], ids[:, -1] = 2, 3
    special = (ids == 2) | (ids == 3)
    valid = torch.ones_like(special)
    out = rotate(_keys(rows, 4), 15, ids, valid, special, 1.0)
    assert bool((out[:, 0] == 2).all()) and bool((out[:, -1] == 3).all())
    starts = Counter(out[:, 1].tolist())
    cells: list[object] = list(range(11, 20))
    assert set(starts) == set(cells)
    assert _chi2(starts, cells) < CHI2_1E6[8]
    inner = out[:, 1:-1] - 11
    assert bool((torch.remainder(inner[:, 1:] - inner[:, :-1], 9) == 1).all())  # a rotation
    never = rotate(_keys(rows, 4), 15, ids, valid, special, 0.0)
    assert torch.equal(never, ids)


def test_ngram_blocks_are_cut_from_each_run() -> None:
    from objspec.runtime import ngram_blocks

    eligible = torch.tensor([[0, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 0, 1, 1, 1]]).bool()
    starts = ngram_blocks(eligible, 3)
    assert starts.nonzero()[:, 1].tolist() == [1, 4, 12]


def test_shuffled_trigrams_take_every_order_equally_often() -> None:
    import itertools

    from objspec.runtime import shuffle_ngrams

    rows = 12_000
    ids = torch.tensor([[2, 10, 11, 12, 3]]).repeat(rows, 1)
    eligible = torch.tensor([[0, 1, 1, 1, 0]]).bool().repeat(rows, 1)
    orders = torch.tensor(list(itertools.permutations(range(3))))
    out, shuffled = shuffle_ngrams(
        _keys(rows, 9), (18, 19), ids, eligible, 3, torch.ones(rows, dtype=torch.long), orders
    )
    assert bool(shuffled[:, 1:4].all()) and not bool(shuffled[:, [0, 4]].any())
    seen = Counter(tuple(r) for r in out[:, 1:4].tolist())
    cells: list[object] = [tuple(10 + i for i in p) for p in itertools.permutations(range(3))]
    assert set(seen) == set(cells)
    assert _chi2(seen, cells) < 35.9  # 5 degrees of freedom, p = 1e-6


def test_t5_lengths_fill_the_inputs_exactly() -> None:
    """T5's random_spans_helper figures, and the compiled T5 collator meeting them: rows of
    568 tokens (then the end token) become inputs of exactly 512 and targets of 114."""
    from objspec import bundled_vocab, compile_file
    from objspec.runtime import t5_lengths

    assert t5_lengths(512, 0.15, 3.0) == (568, 114)
    tokens, targets = t5_lengths(256, 0.5, 8.0)
    assert tokens - round(tokens * 0.5) + round(round(tokens * 0.5) / 8) + 1 <= 256
    vocab = bundled_vocab()
    end = vocab.require("sep")
    g = torch.Generator().manual_seed(0)
    rows = [[*torch.randint(200, 1500, (568,), generator=g).tolist(), end] for _ in range(4)]
    spec = Path(__file__).resolve().parent.parent / "specs" / "t5_span.objspec"
    out = compile_file(spec).Collator(vocab)(
        [{"input_ids": r, "index": i} for i, r in enumerate(rows)]
    )
    assert out["attention_mask"].sum(dim=1).tolist() == [512] * 4
    assert out["decoder_attention_mask"].sum(dim=1).tolist() == [114] * 4


def test_t5_lengths_fit_and_are_the_longest_that_fit() -> None:
    from objspec.runtime import t5_lengths

    def corrupted(tokens: int, density: float, mean: float) -> tuple[int, int]:
        noise = round(tokens * density)
        spans = round(noise / mean)
        return tokens - noise + spans + 1, noise + spans + 1

    assert t5_lengths(512, 0.5, 3.0) == (766, 512)  # T5's nudge at 50%: targets of 512
    for length in range(2, 300, 7):
        for density in (0.05, 0.15, 0.3, 0.5):
            for mean in (1.0, 3.0, 8.0):
                tokens, targets = t5_lengths(length, density, mean)
                assert corrupted(tokens, density, mean)[0] <= length
                if density != 0.5:
                    assert corrupted(tokens + 1, density, mean)[0] > length
                    assert targets == corrupted(tokens, density, mean)[1]


def test_sentinels_never_run_out_when_specials_split_spans() -> None:
    cand = torch.zeros(1, 21, dtype=torch.bool)
    cand[0, 1::2] = True  # every other token excluded: each noise span splits at them
    noise = random_spans_noise(_keys(1), (3, 4), cand, 0.5, 3.0, max_spans=2)
    assert int(run_starts(noise).sum()) <= 2
    assert not bool(noise[~cand].any())


def test_packed_documents_permute_their_own_sentences() -> None:
    from objspec.runtime import Batch, permute_sentences

    ids = torch.tensor([[1, 10, 11, 20, 2, 30, 40, 2]])
    sid = torch.tensor([[-1, 0, 0, 1, -1, 0, 1, -1]])  # two documents, each counting from 0
    batch = Batch(ids, torch.ones_like(ids).bool(), torch.arange(1), None, None, sid)
    seen = set()
    for seed in range(40):
        out = permute_sentences(Keys(seed, 0, torch.arange(1)), 14, batch, 1.0).input_ids
        seen.add(tuple(out[0].tolist()))
    # each document's sentences move among that document's own positions, nothing else moves
    first = {(1, 10, 11, 20), (1, 20, 10, 11)}
    second = {(2, 30, 40, 2), (2, 40, 30, 2)}
    assert {(row[:4], row[4:]) for row in seen} == {(a, b) for a in first for b in second}


def test_max_lengths_are_respected() -> None:
    from objspec import bundled_vocab, compile_file

    specs = Path(__file__).resolve().parent.parent / "specs"
    vocab = bundled_vocab()
    rows = [{"input_ids": [2, *range(200, 200 + n), 3], "index": n} for n in (5, 40, 90)]
    for name in ("t5_span", "bart_text_infilling", "ul2", "bert_mlm"):
        collator = compile_file(specs / f"{name}.objspec").Collator(
            vocab, max_length=32, max_target_length=8
        )
        out = collator(rows)
        seq2seq = "decoder_attention_mask" in out
        for key, value in out.items():
            target = seq2seq and key in ("labels", "decoder_input_ids", "decoder_attention_mask")
            assert value.shape[1] <= (8 if target else 32), (name, key)
        full = compile_file(specs / f"{name}.objspec").Collator(vocab)(rows)
        assert torch.equal(out["input_ids"], full["input_ids"][:, : out["input_ids"].shape[1]])
    with pytest.raises(ValueError, match="max_length"):
        compile_file(specs / "t5_span.objspec").Collator(vocab, max_length=0)


def test_poisson_word_spans_cover_exactly_the_word_budget() -> None:
    """BART's budget: ceil(30% x words) whole words masked per row (zero-length spans aside)."""
    import math

    from objspec.distributions import build_law
    from objspec.runtime import place_spans

    table = build_law("poisson", (3.0,))
    g = torch.Generator().manual_seed(3)
    rows, length = 200, 120
    unit_start = torch.rand(rows, length, generator=g) < 0.6
    unit_start[:, 0] = True
    valid = torch.ones(rows, length, dtype=torch.bool)
    words = unit_start.sum(dim=1)
    budget = torch.tensor([math.ceil(0.3 * int(w)) for w in words])
    spans = place_spans(
        _keys(rows, 2),
        (3, 4, 5),
        unit_start,
        unit_start,
        valid,
        budget,
        torch.tensor(table.values),
        torch.tensor(table.cdf_u32()),
        budget_in_units=True,
        mean_length=table.mean,
    )
    assert torch.equal((spans.selected & unit_start).sum(dim=1), budget)
    # whole words: a selected token's word start is selected
    word_start_pos = torch.where(unit_start, torch.arange(length), 0).cummax(dim=1).values
    assert bool(spans.selected.gather(1, word_start_pos)[spans.selected].all())


def test_weighted_selection_draws_in_proportion_to_the_weights() -> None:
    """XLM's frequency weighting: one token per row out of four with weights 1, 2, 3, 4 is
    drawn with probability w / 10 (Efraimidis-Spirakis is exact for the first draw)."""
    from objspec.runtime import take_in_random_order

    rows = 20_000
    cand = torch.ones(rows, 4, dtype=torch.bool)
    weights = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64).expand(rows, 4)
    taken = take_in_random_order(
        _keys(rows, 12), 1, cand, cand.long(), torch.ones(rows, dtype=torch.long), weights
    )
    assert bool((taken.sum(dim=1) == 1).all())
    counts = taken.sum(dim=0).double()
    for i, w in enumerate((1, 2, 3, 4)):
        p = w / 10
        assert abs(float(counts[i]) - rows * p) < 6 * math.sqrt(rows * p * (1 - p))


def test_frequency_weighted_spec_needs_its_counts() -> None:
    from objspec import bundled_vocab, compile_file

    spec = Path(__file__).resolve().parent.parent / "specs" / "xlm_mlm.objspec"
    compiled = compile_file(spec)
    with pytest.raises(ValueError, match="token_counts"):
        compiled.Collator(bundled_vocab())
    with pytest.raises(ValueError, match="one per id"):
        compiled.Collator(bundled_vocab(), token_counts=[1, 2, 3])


# --- sentence pairs -----------------------------------------------------------------------------


def _bert_truncate(a: int, b: int, room: int) -> tuple[int, int]:
    """BERT's truncate_seq_pair, on lengths: pop from the longer (the second on ties)."""
    while a + b > room:
        if a > b:
            a -= 1
        else:
            b -= 1
    return a, b


def test_pair_truncation_follows_bert() -> None:
    from objspec.runtime import truncate_pair

    grid = [(a, b, room) for a in range(0, 14) for b in range(0, 14) for room in range(0, 20)]
    first = torch.tensor([g[0] for g in grid])
    second = torch.tensor([g[1] for g in grid])
    for room in range(0, 20):
        pick = torch.tensor([g[2] == room for g in grid])
        got_a, got_b = truncate_pair(first[pick], second[pick], room)
        want = [_bert_truncate(a, b, room) for a, b, r in grid if r == room]
        assert list(zip(got_a.tolist(), got_b.tolist(), strict=True)) == want, room


def test_pairs_fit_max_length_and_a_batch_of_one_has_no_random_partner() -> None:
    from objspec import bundled, bundled_vocab, compile_file

    specs = Path(__file__).resolve().parent.parent / "specs"
    examples = bundled.encode_examples(bundled.load_tokenizer(), bundled.load_documents(), 64)
    collator = compile_file(specs / "nsp.objspec").Collator(bundled_vocab(), max_length=20)
    out = collator(examples[:16])
    assert out["input_ids"].shape[1] <= 20
    assert bool((out["input_ids"][:, 0] == bundled_vocab().require("cls")).all())
    for i in range(16):
        alone = collator(examples[i : i + 1])
        assert int(alone["next_sentence_label"][0]) in (0, int(out["next_sentence_label"][i]))


def test_translation_pairs_read_from_padded_tensors_as_from_lists() -> None:
    from objspec import bundled_vocab, compile_file

    spec = Path(__file__).resolve().parent.parent / "specs" / "xlm_tlm.objspec"
    collator = compile_file(spec).Collator(bundled_vocab(), seed=3)
    listed = [
        {"input_ids": [100, 101, 102], "translation_ids": [200], "index": 0, "lang": 4},
        {"input_ids": [110], "translation_ids": [210, 211, 212], "index": 1, "lang": 4},
    ]
    padded = {
        "input_ids": torch.tensor([[100, 101, 102], [110, 0, 0]]),
        "attention_mask": torch.tensor([[1, 1, 1], [1, 0, 0]]),
        "translation_ids": torch.tensor([[200, 0, 0], [210, 211, 212]]),
        "translation_attention_mask": torch.tensor([[1, 0, 0], [1, 1, 1]]),
        "index": torch.tensor([0, 1]),
        "lang": torch.tensor([4, 4]),
    }
    a, b = collator(listed), collator(padded)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert a["langs"][0].tolist() == [4, 4, 4, 4, 4, 1, 1]
    with pytest.raises(ValueError, match="translation_ids"):
        collator([{"input_ids": [100, 101]}])


@pytest.mark.parametrize("spec", ["xlnet", "xlnet_sparse"])
def test_a_cut_permutation_batch_lists_only_the_targets_it_keeps(spec: str) -> None:
    """max_length cuts the rows; target_positions holds positions, so those past the cut go
    (-1), not the columns past it."""
    from objspec import bundled, bundled_vocab, compile_file

    path = Path(__file__).resolve().parent.parent / "specs" / f"{spec}.objspec"
    examples = bundled.encode_examples(bundled.load_tokenizer(), bundled.load_documents(), 64)
    compiled = compile_file(path)
    full = compiled.Collator(bundled_vocab(), seed=1)(examples[:8])
    cut = compiled.Collator(bundled_vocab(), seed=1, max_length=20)(examples[:8])
    assert cut["input_ids"].shape[1] == 20 and full["input_ids"].shape[1] > 20
    listed = cut["target_positions"]
    assert bool((listed < 20).all())
    kept = torch.where(full["target_positions"] < 20, full["target_positions"], -1)
    assert torch.equal(listed, kept)
    assert torch.equal((listed >= 0).sum(dim=1), (cut["labels"] != -100).sum(dim=1))


def test_span_lengths_are_drawn_until_every_budget_is_met() -> None:
    """A law that mostly draws zero-length spans (Poisson(0.05): P(0) = 95%) needs ~20 draws
    per covered unit. Told a mean of 1, the first round is far too short: the draws grow in
    rounds until each row's budget is met, and the result equals one long draw's."""
    from objspec.distributions import build_law
    from objspec.runtime.spans import draw_lengths

    table = build_law("poisson", (0.05,))
    values, cdf = torch.tensor(table.values), torch.tensor(table.cdf_u32())
    target = torch.tensor([0, 3, 40, 17])
    share = 1 - table.prob_of(0)
    lengths = draw_lengths(_keys(4, 5), 3, target, values, cdf, 1.0, share)
    assert lengths.shape[1] >= 8 * (2 * 40 + 4)  # three rounds at least
    assert bool((lengths.sum(dim=1) >= target).all())
    once = values[torch.searchsorted(cdf, _keys(4, 5).draw(3, lengths.shape[1]), right=True)]
    assert torch.equal(lengths, once)


def test_a_law_that_cannot_fill_a_budget_is_a_clear_error() -> None:
    """Lengths drawn from a law that is not the one described (told every length is non-zero,
    drawn with P(1) = 2**-32) give up with a clear error once far past what the law given
    could need."""
    from objspec.runtime.spans import draw_lengths

    values, cdf = torch.tensor([0, 1]), torch.tensor([2**32 - 1, 2**32])
    with pytest.raises(ValueError, match="draws length 0 more often than the 0%"):
        draw_lengths(_keys(2), 3, torch.tensor([5, 5]), values, cdf, 1.0, 1.0)
    with pytest.raises(ValueError, match="positive mean"):
        draw_lengths(_keys(2), 3, torch.tensor([5, 5]), values, cdf, 0.0, 1.0)


@pytest.mark.parametrize("law", ["fixed(0)", "poisson(lambda=0.001)"])
def test_a_span_law_of_nearly_only_zero_lengths_is_refused(law: str) -> None:
    from objspec.errors import SpecError
    from objspec.parser import parse_spec

    text = (
        f"objective a\n  unit word\n  select spans length ~ {law}\n  budget 30% of units\n"
        "  replace per span, collapse: mask 100%\n  predict original at all\n"
        "  output encoder_decoder\n  head seq2seq\n"
    )
    with pytest.raises(SpecError, match="draws length 0 with probability"):
        parse_spec(text)

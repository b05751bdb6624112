"""Hugging Face's own data-collator tests, ported to objspec's compiled collators.

The cases come from transformers' ``tests/trainer/test_data_collator.py`` (the PyTorch class
and the immutability class): ``_test_no_pad_and_pad`` / ``test_data_collator_for_language_modeling``
(dict features and raw id rows, ``pad_to_multiple_of``, a missing pad token),
``test_data_collator_for_whole_word_mask`` (lists and numpy rows), ``test_plm`` (shapes, the
odd-length refusal), ``test_nsp`` / ``test_sop`` (``token_type_ids``, ``next_sentence_label``,
``sentence_order_label`` passed through) and the ``*_collator_immutability`` cases. Each runs
the bundled spec that stands for the HF collator (``specs/bert_mlm.objspec`` for
DataCollatorForLanguageModeling with mlm=True, ``specs/wwm.objspec`` for
DataCollatorForWholeWordMask, ``specs/xlnet.objspec`` / ``specs/xlnet_sparse.objspec`` for
DataCollatorForPermutationLanguageModeling) through :func:`collate`, a small adapter, on HF's
inputs, and asserts what HF asserts. A few cases also run the installed HF collator on the same
inputs and compare the padded layout (padding side, ``pad_to_multiple_of`` widths).

Adaptations (not differences of behaviour):

- HF's tiny vocabulary is five special tokens, ``[UNK] [CLS] [SEP] [PAD] [MASK]``, and its rows
  are ``range(10)``: ids 5..9 lie outside it. We add seven ordinary tokens (ids 5..11, one of
  them a ``##`` continuation so whole words exist), keeping ids 0..4 as HF has them.
- HF's MLM assertion "every position that is not [MASK] has label -100" holds only for the
  draws of its seed (a kept or random-replaced token is not [MASK] yet has a label); we assert
  the invariant it stands for: labels exactly at selected tokens, the original id there, every
  unselected token unchanged.
- ``mlm=False`` (causal LM) parts of ``_test_no_pad_and_pad`` are not ported: this version of
  objspec has no causal-LM objective (labels = inputs).
- DataCollatorForWholeWordMask is gone from the installed transformers (5.x folded it into
  DataCollatorForLanguageModeling(whole_word_mask=True), which needs offset mappings), so the
  whole-word cases compare with HF's assertions only, not a live HF collator.

Differences (choices, each a test below marked ``# Difference (a choice): ...``):

1. Ids outside the vocabulary (HF's ``range(10)`` rows over a 5-token vocabulary), negative
   ids, and float or bool ids are refused with a BatchError (a ValueError) naming the example
   and position; HF pads and masks them silently (floats truncated by ``torch.tensor(...,
   dtype=long)``).
2. A vocabulary whose tokens are all special (HF's test vocabulary) is refused when an
   objective draws random replacements (bert_mlm, wwm): there is nothing to draw from. HF draws
   from the whole vocabulary, specials included.
3. The permutation LM accepts odd lengths (HF raises ValueError, transformers#7341): the
   factorization order never leaks whatever the length.
4. The permutation LM refuses a tokenizer without a mask token when the collator is built; HF
   raises on the first call. The MLM collators refuse it when built, as HF's does.
5. Outputs are a superset of HF's: ``attention_mask`` is always there (HF's raw-id-rows path
   returns none), and the permutation LM adds ``target_positions`` (the sparse layout writes
   ``perm_order`` instead of the two (B, L, L) tensors).
6. Masks are keyed by each example's content (and ``index`` when given), not by a global RNG
   stream: two identical rows of one batch (HF's ``no_pad_features``) get the same corruption
   in an epoch, and the same row gets the same corruption whatever batch, width or padding
   side it comes in. ``set_epoch`` changes them.
7. The permutation LM also takes ``pad_to_multiple_of`` (square outputs padded in both
   dimensions); HF's has no such option.
8. ``pad_to_multiple_of`` must be a positive int (HF does not check it).
9. The padding side is ``padding_side=`` when given, else the tokenizer's (as HF), else (a
   bare Vocab) the side an already padded dict came in; HF's collators only read the
   tokenizer.
"""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import objspec
from objspec import bundled
from objspec import runtime as rt
from objspec.runtime.batch import BatchError
from objspec.runtime.vocab import VocabError

transformers = pytest.importorskip("transformers")

SPECS = Path(__file__).resolve().parent.parent / "specs"
SEED = 42  # HF's set_seed(42)
IGNORE = -100
HF_SPECIALS = ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"]  # ids 0..4, as in HF's setUp
ORDINARY = ["the", "cat", "sat", "on", "mat", "##s", "dog"]  # ids 5..11 (our adaptation)
CONTINUATION = 10  # "##s"
UNK, CLS, SEP, PAD, MASK = range(5)

NO_PAD = [{"input_ids": list(range(10))}, {"input_ids": list(range(10))}]
PAD_FEATURES = [{"input_ids": list(range(5))}, {"input_ids": list(range(10))}]


@cache
def collator_class(spec: str) -> Any:
    return objspec.compile_file(SPECS / f"{spec}.objspec").Collator


def collate(spec: str, tokenizer: Any, features: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
    """The adapter: HF's ``collator(features)`` becomes the compiled spec's collator, built on
    the same tokenizer (seed 42, epoch 0 set, as a training loop would) and called once."""
    return make(spec, tokenizer, **kwargs)(features)


def make(spec: str, tokenizer: Any, **kwargs: Any) -> Any:
    collator = collator_class(spec)(tokenizer, seed=kwargs.pop("seed", SEED), **kwargs)
    collator.set_epoch(0)
    return collator


def write_vocab(path: Path, tokens: list[str]) -> str:
    path.write_text("".join(t + "\n" for t in tokens), encoding="utf-8")
    return str(path)


@pytest.fixture
def vocab_file(tmp_path: Path) -> str:
    return write_vocab(tmp_path / "vocab.txt", HF_SPECIALS + ORDINARY)


@pytest.fixture
def tokenizer(vocab_file: str) -> Any:
    return transformers.BertTokenizer(vocab_file)


@pytest.fixture
def left_tokenizer(vocab_file: str) -> Any:
    return transformers.BertTokenizer(vocab_file, padding_side="left")


def rows_of(features: Any) -> list[list[int]]:
    out = []
    for f in features:
        ids = f["input_ids"] if isinstance(f, dict) else f
        out.append([int(i) for i in (ids.tolist() if hasattr(ids, "tolist") else ids)])
    return out


def as_form(features: list[dict[str, Any]], form: str) -> list[Any]:
    """HF's input forms: dicts of lists, raw id rows, torch tensors, numpy arrays."""
    rows = rows_of(features)
    if form == "dicts":
        return [{"input_ids": r} for r in rows]
    if form == "lists":
        return rows
    if form == "torch":
        return [{"input_ids": torch.tensor(r)} for r in rows]
    return [{"input_ids": np.array(r)} for r in rows]


def expected_width(rows: list[list[int]], multiple: int | None) -> int:
    width = max(len(r) for r in rows)
    return width if multiple is None else -(-width // multiple) * multiple


def padded(rows: list[list[int]], width: int, side: str, fill: int) -> torch.Tensor:
    out = torch.full((len(rows), width), fill, dtype=torch.int64)
    for b, r in enumerate(rows):
        if side == "right":
            out[b, : len(r)] = torch.tensor(r)
        else:
            out[b, width - len(r) :] = torch.tensor(r)
    return out


def check_masked_lm(
    batch: dict[str, torch.Tensor],
    rows: list[list[int]],
    width: int,
    side: str = "right",
    specials: tuple[int, ...] = (UNK, CLS, SEP, PAD, MASK),
) -> torch.Tensor:
    """What HF asserts of an MLM batch, made exact: the shapes, the padding (pad id, mask 0,
    label -100), labels only at selected tokens and holding the original id there, every other
    token unchanged, specials never selected. Returns the (B, W) selected positions."""
    b = len(rows)
    assert batch["input_ids"].shape == (b, width)
    assert batch["labels"].shape == (b, width)
    assert batch["attention_mask"].shape == (b, width)
    assert batch["input_ids"].dtype == batch["labels"].dtype == torch.int64
    original = padded(rows, width, side, PAD)
    real = padded([[1] * len(r) for r in rows], width, side, 0).bool()
    assert torch.equal(batch["attention_mask"].bool(), real)
    selected = batch["labels"] != IGNORE
    assert not bool((selected & ~real).any())
    assert torch.equal(batch["labels"][selected], original[selected])
    assert torch.equal(batch["input_ids"][~selected], original[~selected])
    is_special = torch.isin(original, torch.tensor(specials))
    assert not bool((selected & is_special).any())
    # a selected token is [MASK], an ordinary (random) token, or itself
    changed = batch["input_ids"][selected]
    assert bool(((changed == MASK) | ~torch.isin(changed, torch.tensor(specials))).all())
    return selected


# --- DataCollatorForLanguageModeling (mlm=True): _test_no_pad_and_pad ------------------------


@pytest.mark.parametrize("form", ["dicts", "lists", "torch", "numpy"])
@pytest.mark.parametrize("multiple", [None, 8])
@pytest.mark.parametrize("features", [NO_PAD, PAD_FEATURES], ids=["no_pad", "pad"])
def test_language_modeling_no_pad_and_pad(
    tokenizer: Any, form: str, multiple: int | None, features: list[dict[str, Any]]
) -> None:
    # HF: test_data_collator_for_language_modeling (dicts and raw lists; "features can already
    # be tensors" from the whole-word case), widths 10 and, with pad_to_multiple_of=8, 16.
    given = as_form(features, form)
    batch = collate("bert_mlm", tokenizer, given, pad_to_multiple_of=multiple)
    rows = rows_of(features)
    assert expected_width(rows, multiple) == (10 if multiple is None else 16)
    check_masked_lm(batch, rows, expected_width(rows, multiple))
    # HF: masked_tokens = input_ids == mask_token_id; assertTrue(torch.any(masked_tokens))
    assert bool((batch["input_ids"] == tokenizer.mask_token_id).any())


def test_language_modeling_masks_selected_tokens(tokenizer: Any) -> None:
    # HF's any-[MASK] assertion is met by the [MASK] id already in range(10); on long rows of
    # ordinary tokens the 80/10/10 split shows itself: [MASK] at most selected tokens.
    g = torch.Generator().manual_seed(0)
    rows = [[CLS, *torch.randint(5, 12, (60,), generator=g).tolist(), SEP] for _ in range(8)]
    batch = collate("bert_mlm", tokenizer, rows)
    selected = check_masked_lm(batch, rows, 62)
    assert 0.08 < selected.float().mean().item() < 0.25
    masked = (batch["input_ids"] == MASK) & selected
    assert masked.sum() > 0.6 * selected.sum()


def test_language_modeling_missing_pad_token(tokenizer: Any) -> None:
    # HF: tokenizer._pad_token = None; collator(pad_features) raises ValueError.
    tokenizer.pad_token = None
    assert tokenizer.pad_token_id is None
    with pytest.raises(ValueError, match="pad token"):
        collate("bert_mlm", tokenizer, PAD_FEATURES)
    with pytest.raises(ValueError, match="pad token"):
        collate("bert_mlm", tokenizer, rows_of(PAD_FEATURES))
    # rows of one length need no padding (HF stacks them too)
    batch = collate("bert_mlm", tokenizer, NO_PAD)
    assert batch["input_ids"].shape == (2, 10)
    assert bool(batch["attention_mask"].bool().all())


def test_language_modeling_missing_pad_token_pad_to_multiple_of(tokenizer: Any) -> None:
    # HF: _torch_collate_batch pads (10 -> 16) and so raises without a pad token.
    tokenizer.pad_token = None
    with pytest.raises(ValueError, match="pad token"):
        collate("bert_mlm", tokenizer, NO_PAD, pad_to_multiple_of=8)


@pytest.mark.parametrize("spec", ["bert_mlm", "wwm"])
def test_masked_lm_missing_mask_token(tokenizer: Any, spec: str) -> None:
    # HF: DataCollatorForLanguageModeling(mlm=True) raises ValueError when built.
    tokenizer.mask_token = None
    with pytest.raises(ValueError, match="mask"):
        make(spec, tokenizer)


def test_language_modeling_special_tokens_mask(tokenizer: Any) -> None:
    # HF pops a given special_tokens_mask and masks nothing it marks; so do we.
    rows = [[CLS, *range(5, 12), *range(5, 12), SEP]] * 2
    features = [{"input_ids": r, "special_tokens_mask": [1] * len(r)} for r in rows]
    batch = collate("bert_mlm", tokenizer, features)
    assert "special_tokens_mask" not in batch
    assert bool((batch["labels"] == IGNORE).all())
    assert torch.equal(batch["input_ids"], torch.tensor(rows))


# --- NSP / SOP pass-through ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("label_key", "as_tensor"),
    [("next_sentence_label", False), ("sentence_order_label", True)],
    ids=["test_nsp", "test_sop"],
)
@pytest.mark.parametrize("multiple", [None, 8])
def test_pair_labels_pass_through(
    tokenizer: Any, label_key: str, as_tensor: bool, multiple: int | None
) -> None:
    # HF: test_nsp (lists) and test_sop (tensors): token_type_ids and the pair label pass
    # through; widths 5 and, with pad_to_multiple_of=8, 8.
    def seq(values: list[int]) -> Any:
        return torch.tensor(values) if as_tensor else values

    features = [
        {"input_ids": seq([0, 1, 2, 3, 4]), "token_type_ids": seq([0, 1, 2, 3, 4]), label_key: i}
        for i in range(2)
    ]
    batch = collate("bert_mlm", tokenizer, features, pad_to_multiple_of=multiple)
    width = 5 if multiple is None else 8
    assert batch["input_ids"].shape == (2, width)
    assert batch["token_type_ids"].shape == (2, width)
    assert batch["labels"].shape == (2, width)
    assert batch[label_key].shape == (2,)
    assert batch[label_key].tolist() == [0, 1]
    assert batch["token_type_ids"].tolist() == [[0, 1, 2, 3, 4] + [0] * (width - 5)] * 2


def test_pair_fields_follow_padding(tokenizer: Any, left_tokenizer: Any) -> None:
    # token_type_ids of rows of two lengths are padded with 0 on the tokenizer's side, as the
    # installed HF collator pads them.
    features = [
        {"input_ids": list(range(5)), "token_type_ids": [0] * 5, "next_sentence_label": 0},
        {"input_ids": list(range(10)), "token_type_ids": [1] * 10, "next_sentence_label": 1},
    ]
    for tok in (tokenizer, left_tokenizer):
        ours = collate("bert_mlm", tok, copy.deepcopy(features))
        theirs = transformers.DataCollatorForLanguageModeling(tok)(copy.deepcopy(features))
        assert torch.equal(ours["token_type_ids"], theirs["token_type_ids"])
        assert torch.equal(ours["attention_mask"], theirs["attention_mask"])
        assert torch.equal(ours["next_sentence_label"], theirs["next_sentence_label"])


# --- DataCollatorForWholeWordMask -------------------------------------------------------------


@pytest.mark.parametrize("form", ["dicts", "numpy", "lists"])
@pytest.mark.parametrize("multiple", [None, 8])
@pytest.mark.parametrize("features", [NO_PAD, PAD_FEATURES], ids=["no_pad", "pad"])
def test_whole_word_mask(
    tokenizer: Any, form: str, multiple: int | None, features: list[dict[str, Any]]
) -> None:
    # HF: test_data_collator_for_whole_word_mask: lists and "features can already be tensors"
    # (np.arange(10)) give (2, 10) input_ids and labels.
    batch = collate("wwm", tokenizer, as_form(features, form), pad_to_multiple_of=multiple)
    rows = rows_of(features)
    check_masked_lm(batch, rows, expected_width(rows, multiple))


def test_whole_word_mask_takes_whole_words(tokenizer: Any) -> None:
    # The pieces of a word ("##s" continues the word before it) are selected together, within
    # Google's budget min(20, max(1, round(15% of the row))).
    g = torch.Generator().manual_seed(1)
    rows = [[CLS, *torch.randint(5, 12, (n,), generator=g).tolist(), SEP] for n in (40, 31, 57)]
    for r in rows:
        r[1] = 5  # a row starts with a word, not a continuation
    total = 0
    for seed in range(4):
        batch = collate("wwm", tokenizer, rows, seed=seed)
        selected = check_masked_lm(batch, rows, 59)
        for b, r in enumerate(rows):
            picked = selected[b, : len(r)].tolist()
            for i, token in enumerate(r):
                if token == CONTINUATION:
                    assert picked[i] == picked[i - 1]
            assert sum(picked) <= min(20, max(1, round(0.15 * len(r))))
            total += sum(picked)
    assert total > 0


@pytest.mark.parametrize("side", ["right", "left"])
def test_whole_word_mask_fast_tokenizer_word_ids(side: str) -> None:
    # HF 5.x finds words from a fast tokenizer's offsets; ours from its word_ids, when the
    # examples carry them: the tokens of one word are selected together, on either side.
    tok = bundled.load_hf_tokenizer()
    texts = ["the quick brown fox jumps over the lazy dog again and again", "unbelievably so"]
    features = []
    for text in texts * 2:
        enc = tok(text, return_special_tokens_mask=True)
        features.append({**enc, "word_ids": enc.word_ids()})
    batch = collate("wwm", tok, features, seed=3, padding_side=side, pad_to_multiple_of=8)
    width = batch["input_ids"].shape[1]
    assert width % 8 == 0
    assert "word_ids" not in batch and "special_tokens_mask" not in batch
    selected = batch["labels"] != IGNORE
    assert bool(selected.any())
    for b, f in enumerate(features):
        n = len(f["input_ids"])
        start = width - n if side == "left" else 0
        picked = selected[b, start : start + n].tolist()
        words: dict[int, set[bool]] = {}
        for word, chosen in zip(f["word_ids"], picked, strict=True):
            if word is None:
                assert not chosen
            else:
                words.setdefault(word, set()).add(chosen)
        assert all(len(v) == 1 for v in words.values())


# --- DataCollatorForPermutationLanguageModeling -----------------------------------------------


@pytest.mark.parametrize("form", ["dicts", "lists", "torch"])
@pytest.mark.parametrize("features", [PAD_FEATURES, NO_PAD], ids=["pad", "no_pad"])
def test_plm(tokenizer: Any, form: str, features: list[dict[str, Any]]) -> None:
    # HF: test_plm: a dict with input_ids (2, 10), perm_mask and target_mapping (2, 10, 10),
    # labels (2, 10).
    batch = collate("xlnet", tokenizer, as_form(features, form))
    assert isinstance(batch, dict)
    assert batch["input_ids"].shape == (2, 10)
    assert batch["perm_mask"].shape == (2, 10, 10)
    assert batch["target_mapping"].shape == (2, 10, 10)
    assert batch["labels"].shape == (2, 10)
    # Difference (a choice): a superset of HF's keys (attention_mask, target_positions).
    assert {"attention_mask", "target_positions"} <= batch.keys()
    assert batch["perm_mask"].dtype == batch["target_mapping"].dtype == torch.float32


def check_permutation(batch: dict[str, torch.Tensor], rows: list[list[int]]) -> int:
    """HF's perm_mask / target_mapping semantics on the real tokens of each row: targets are
    [MASK] in the input with the original as label; target_mapping is the identity; a
    non-target sees every non-target and no target; targets see the non-targets and the targets
    before them in one random order, never themselves. Returns the number of targets."""
    width = batch["input_ids"].shape[1]
    assert torch.equal(batch["target_mapping"], torch.eye(width).expand(len(rows), width, width))
    count = 0
    for b, r in enumerate(rows):
        n = len(r)
        original = torch.tensor(r)
        labels = batch["labels"][b, :n]
        target = labels != IGNORE
        assert bool((batch["labels"][b, n:] == IGNORE).all())
        assert torch.equal(labels[target], original[target])
        assert bool((batch["input_ids"][b, :n][target] == MASK).all())
        assert torch.equal(batch["input_ids"][b, :n][~target], original[~target])
        assert not bool(torch.isin(original[target], torch.tensor([CLS, SEP, PAD])).any())
        blocked = batch["perm_mask"][b, :n, :n].bool()
        assert not bool(blocked[~target][:, ~target].any())
        assert bool(blocked[~target][:, target].all())
        assert not bool(blocked[target][:, ~target].any())
        among = blocked[target][:, target]
        assert bool(among.diagonal().all())
        sees = (~among).sum(dim=1).sort().values  # a total order: 0, 1, ..., P - 1 earlier
        assert sees.tolist() == list(range(int(target.sum())))
        positions = batch["target_positions"][b]
        assert positions[positions >= 0].tolist() == target.nonzero().flatten().tolist()
        count += int(target.sum())
    return count


def long_rows(lengths: tuple[int, ...], seed: int = 0) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    return [[CLS, *torch.randint(5, 12, (n,), generator=g).tolist(), SEP] for n in lengths]


def test_plm_permutation_semantics(tokenizer: Any) -> None:
    rows = long_rows((38, 23, 60))
    batch = collate("xlnet", tokenizer, rows)
    assert check_permutation(batch, rows) > 0


def test_plm_odd_length(tokenizer: Any) -> None:
    # HF: example = [np.random.randint(0, 5, [5])]; collator(example) raises ValueError (odd
    # sequence length).
    # Difference (a choice): our factorization order never leaks whatever the length (the
    # spec's comment, transformers#7341), so odd lengths are collated, not refused.
    example = [np.array([1, 5, 6, 7, 2])]
    batch = collate("xlnet", tokenizer, example)
    assert batch["input_ids"].shape == (1, 5)
    assert batch["perm_mask"].shape == (1, 5, 5)
    rows = long_rows((41, 26))
    batch = collate("xlnet", tokenizer, rows)
    assert batch["perm_mask"].shape == (2, 43, 43)
    assert check_permutation(batch, rows) > 0


def test_plm_missing_mask_token(tokenizer: Any) -> None:
    # HF raises ValueError on the first call when the tokenizer has no mask token.
    # Difference (a choice): we refuse it when the collator is built, before any data.
    tokenizer.mask_token = None
    with pytest.raises(ValueError, match="mask"):
        make("xlnet", tokenizer)


def test_plm_sparse_layout_matches_dense(tokenizer: Any) -> None:
    # Difference (a choice): specs/xlnet_sparse writes perm_order (B, L) instead of the two
    # (B, L, L) tensors; rt.xlnet_inputs rebuilds HF's perm_mask, the same as the dense spec's.
    rows = long_rows((38, 23, 60), seed=2)
    dense = collate("xlnet", tokenizer, rows)
    sparse = collate("xlnet_sparse", tokenizer, rows)
    assert sparse["perm_order"].shape == (3, 62)
    assert "perm_mask" not in sparse and "target_mapping" not in sparse
    for key in ("input_ids", "attention_mask", "labels", "target_positions"):
        assert torch.equal(sparse[key], dense[key])
    model_inputs = rt.xlnet_inputs(sparse)
    assert torch.equal(model_inputs["perm_mask"], dense["perm_mask"])
    p = sparse["target_positions"].shape[1]
    assert model_inputs["target_mapping"].shape == (3, p, 62)


def test_plm_pad_to_multiple_of(tokenizer: Any) -> None:
    # Difference (a choice): HF's PLM collator has no pad_to_multiple_of; ours pads the square
    # outputs in both dimensions, and the real tokens' permutation is unchanged.
    rows = long_rows((38, 23))
    batch = collate("xlnet", tokenizer, rows, pad_to_multiple_of=16)
    assert batch["input_ids"].shape == (2, 48)
    assert batch["perm_mask"].shape == (2, 48, 48)
    assert batch["target_mapping"].shape == (2, 48, 48)
    plain = collate("xlnet", tokenizer, rows)
    assert torch.equal(batch["perm_mask"][:, :40, :40], plain["perm_mask"])
    assert bool((batch["labels"][:, 40:] == IGNORE).all())
    assert bool((batch["input_ids"][:, 40:] == PAD).all())


# --- padding side, layout parity with the installed HF collators -------------------------------


def restored(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The uncorrupted rows: the label where there is one, else the input id."""
    return torch.where(batch["labels"] != IGNORE, batch["labels"], batch["input_ids"])


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("form", ["dicts", "lists", "torch"])
@pytest.mark.parametrize("multiple", [None, 8])
def test_language_modeling_layout_matches_hf(
    vocab_file: str, side: str, form: str, multiple: int | None
) -> None:
    # The installed DataCollatorForLanguageModeling on the same inputs: same width, same
    # padding side, same rows under the corruption.
    tok = transformers.BertTokenizer(vocab_file, padding_side=side)
    features = [{"input_ids": [CLS, 5, 6, 7, SEP]}, {"input_ids": [CLS, *range(5, 12), SEP]}]
    ours = collate("bert_mlm", tok, as_form(features, form), pad_to_multiple_of=multiple)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        hf = transformers.DataCollatorForLanguageModeling(tok, pad_to_multiple_of=multiple)
        theirs = hf(as_form(features, form))
    assert ours["input_ids"].shape == theirs["input_ids"].shape
    assert torch.equal(restored(ours), restored(theirs))
    rows = rows_of(features)
    check_masked_lm(ours, rows, expected_width(rows, multiple), side)
    if form == "lists":
        # Difference (a choice): HF's raw-id-rows path returns no attention_mask; ours does.
        assert "attention_mask" not in theirs
    else:
        assert torch.equal(ours["attention_mask"], theirs["attention_mask"])


@pytest.mark.parametrize("side", ["right", "left"])
def test_plm_layout_matches_hf(vocab_file: str, side: str) -> None:
    tok = transformers.BertTokenizer(vocab_file, padding_side=side)
    rows = long_rows((38, 23))
    ours = collate("xlnet", tok, rows)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        theirs = transformers.DataCollatorForPermutationLanguageModeling(tok)(rows)
    for key in ("input_ids", "perm_mask", "target_mapping", "labels"):
        assert ours[key].shape == theirs[key].shape
        assert ours[key].dtype == theirs[key].dtype
    assert torch.equal(restored(ours), restored(theirs))


@pytest.mark.parametrize("spec", ["bert_mlm", "wwm", "xlnet"])
def test_left_padding_same_corruption(tokenizer: Any, left_tokenizer: Any, spec: str) -> None:
    # Difference (a choice): a row's corruption does not depend on the padding side; left
    # padding rolls each row (and the square outputs in both dimensions).
    rows = long_rows((38, 23, 60), seed=3)
    right = collate(spec, tokenizer, rows)
    left = collate(spec, left_tokenizer, rows)
    width = right["input_ids"].shape[1]
    for b, r in enumerate(rows):
        n, pad = len(r), width - len(r)
        for key in ("input_ids", "labels", "attention_mask"):
            assert torch.equal(left[key][b, pad:], right[key][b, :n])
        assert bool((left["input_ids"][b, :pad] == PAD).all())
        assert bool((left["labels"][b, :pad] == IGNORE).all())
        assert not bool(left["attention_mask"][b, :pad].any())
        if spec == "xlnet":
            assert torch.equal(left["perm_mask"][b, pad:, pad:], right["perm_mask"][b, :n, :n])
            positions = left["target_positions"][b]
            shifted = right["target_positions"][b]
            assert torch.equal(positions, torch.where(shifted >= 0, shifted + pad, shifted))


def test_padding_side_argument(tokenizer: Any, left_tokenizer: Any) -> None:
    # Difference (a choice): padding_side= overrides the tokenizer's; without a tokenizer (a
    # bare Vocab) an already padded dict keeps the side it came in. HF reads
    # tokenizer.padding_side only.
    rows = rows_of(PAD_FEATURES)
    left = collate("bert_mlm", tokenizer, rows, padding_side="left")
    assert left["attention_mask"][0].tolist() == [0] * 5 + [1] * 5
    right = collate("bert_mlm", left_tokenizer, rows, padding_side="right")
    assert right["attention_mask"][0].tolist() == [1] * 5 + [0] * 5
    given = {
        "input_ids": torch.tensor([[PAD] * 5 + list(range(5)), list(range(10))]),
        "attention_mask": torch.tensor([[0] * 5 + [1] * 5, [1] * 10]),
    }
    # the tokenizer's side comes first; a bare Vocab has none, so the input's side is kept
    assert collate("bert_mlm", tokenizer, given)["attention_mask"][0, :5].tolist() == [1] * 5
    batch = collate("bert_mlm", rt.Vocab.from_tokenizer(tokenizer), given)
    assert torch.equal(batch["attention_mask"], given["attention_mask"])
    with pytest.raises(ValueError, match="padding_side"):
        make("bert_mlm", tokenizer, padding_side="center")


# --- DataCollatorImmutabilityTest -------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "kind"),
    [
        ("bert_mlm", "list"),
        ("bert_mlm", "torch"),
        ("wwm", "list"),
        ("wwm", "numpy"),
        ("xlnet", "list"),
        ("xlnet", "torch"),
    ],
)
@pytest.mark.parametrize("multiple", [None, 8])
@pytest.mark.parametrize("features", [NO_PAD, PAD_FEATURES], ids=["no_pad", "pad"])
def test_collator_immutability(
    tokenizer: Any, spec: str, kind: str, multiple: int | None, features: list[dict[str, Any]]
) -> None:
    # HF: test_language_modelling / whole_world_masking / permutation_language_modelling
    # _collator_immutability: the features are unchanged after collating.
    convert = {"list": list, "torch": torch.tensor, "numpy": np.array}[kind]
    given = [{"input_ids": convert(r)} for r in rows_of(features)]
    kept = copy.deepcopy(given)
    collate(spec, tokenizer, given, pad_to_multiple_of=multiple)
    for a, b in zip(given, kept, strict=True):
        assert type(a["input_ids"]) is type(b["input_ids"])
        assert list(a["input_ids"]) == list(b["input_ids"])


@pytest.mark.parametrize("as_tensor", [False, True], ids=["nsp", "sop"])
@pytest.mark.parametrize("multiple", [None, 8])
def test_pair_collator_immutability(tokenizer: Any, as_tensor: bool, multiple: int | None) -> None:
    # HF: test_next_sentence_prediction / sentence_order_prediction_collator_immutability.
    def seq(values: list[int]) -> Any:
        return torch.tensor(values) if as_tensor else values

    given = [
        {"input_ids": seq([0, 1, 2, 3, 4]), "token_type_ids": seq([0, 1, 2, 3, 4]), "label": i}
        for i in range(2)
    ]
    kept = copy.deepcopy(given)
    collate("bert_mlm", tokenizer, given, pad_to_multiple_of=multiple)
    for a, b in zip(given, kept, strict=True):
        assert a["label"] == b["label"]
        for key in ("input_ids", "token_type_ids"):
            assert list(a[key]) == list(b[key])


def test_padded_dict_immutability(tokenizer: Any) -> None:
    # An already padded dict of int64 tensors (our extra input form) is not written to.
    ids = torch.tensor([[CLS, *range(5, 12), *range(5, 12), SEP]] * 2)
    given = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    kept = {k: v.clone() for k, v in given.items()}
    for spec in ("bert_mlm", "wwm", "xlnet"):
        collate(spec, tokenizer, given)
        for key in given:
            assert torch.equal(given[key], kept[key])


# --- inputs HF passes silently, seeds ---------------------------------------------------------


def test_hf_vocabulary_ids_outside_refused(tmp_path: Path) -> None:
    # HF's exact setUp vocabulary (5 specials) with its range(10) rows.
    tok = transformers.BertTokenizer(write_vocab(tmp_path / "v.txt", HF_SPECIALS))
    # Difference (a choice): nothing to draw random replacements from; HF draws specials.
    for spec in ("bert_mlm", "wwm"):
        with pytest.raises(VocabError, match="non-special"):
            make(spec, tok)
    # Difference (a choice): ids 5..9 lie outside the vocabulary; HF collates them silently.
    with pytest.raises(BatchError, match="example 0 at position 5 is 5, outside"):
        collate("xlnet", tok, NO_PAD)


@pytest.mark.parametrize(
    "row",
    [[CLS, 5, -1, SEP], [CLS, 5, 12, SEP], [1.0, 5.0, 2.0], [True, False]],
    ids=["negative", "past_the_end", "float", "bool"],
)
@pytest.mark.parametrize("spec", ["bert_mlm", "wwm", "xlnet"])
def test_bad_ids_refused(tokenizer: Any, spec: str, row: list[Any]) -> None:
    # Difference (a choice): HF's torch.tensor(row, dtype=torch.long) takes these silently.
    with pytest.raises(BatchError):
        collate(spec, tokenizer, [row, row])
    with pytest.raises(BatchError):
        collate(spec, tokenizer, [{"input_ids": row}])


@pytest.mark.parametrize("multiple", [0, -8, 8.0, "8"])
def test_pad_to_multiple_of_checked(tokenizer: Any, multiple: Any) -> None:
    # Difference (a choice): HF does not check pad_to_multiple_of.
    with pytest.raises(ValueError, match="pad_to_multiple_of"):
        make("bert_mlm", tokenizer, pad_to_multiple_of=multiple)


def test_identical_rows_share_their_corruption(tokenizer: Any) -> None:
    # Difference (a choice): masks are keyed by each example's content, so HF's two identical
    # no_pad rows are corrupted alike within an epoch; an index tells equal rows apart.
    row = [CLS, *range(5, 12), *range(5, 12), *range(5, 12), SEP]
    batch = collate("bert_mlm", tokenizer, [row] * 8)
    assert all(torch.equal(batch["input_ids"][0], x) for x in batch["input_ids"])
    indexed = collate("bert_mlm", tokenizer, [{"input_ids": row, "index": i} for i in range(8)])
    assert len({tuple(x.tolist()) for x in indexed["labels"]}) > 1
    # the same row alone, or beside others, gets the same corruption
    alone = collate("bert_mlm", tokenizer, [row])
    assert torch.equal(alone["input_ids"][0], batch["input_ids"][0])


def test_seed_and_epoch(tokenizer: Any) -> None:
    # HF's newer with_seed cases: one seed, one batch; other seeds (and epochs) differ.
    rows = long_rows((60, 60, 60, 60), seed=4)
    first = collate("bert_mlm", tokenizer, rows, seed=7)
    again = collate("bert_mlm", tokenizer, rows, seed=7)
    other = collate("bert_mlm", tokenizer, rows, seed=8)
    assert torch.equal(first["input_ids"], again["input_ids"])
    assert torch.equal(first["labels"], again["labels"])
    assert not torch.equal(first["labels"], other["labels"])
    collator = make("bert_mlm", tokenizer, seed=7)
    collator.set_epoch(1)
    assert not torch.equal(collator(rows)["labels"], first["labels"])

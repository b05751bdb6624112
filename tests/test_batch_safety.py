"""No silent wrong batch: example keys, padding side and width, input validation, epochs.

Every bundled spec is run on the bundled rows three ways (right-padded list, left-padded
padded dict, padded dict of a larger width) and must give each example the same corruption;
each bad input must be a one-line BatchError naming the example; the epoch must reach
DataLoader workers, persistent ones included.
"""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import objspec
from objspec import bundled
from objspec.runtime import BatchError, read_batch
from objspec.runtime.layout import POSITION_VALUED, group_of

SPECS = sorted(Path("specs").glob("*.objspec"))
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    return bundled.load_tokenizer()


@pytest.fixture(scope="module")
def rows(tokenizer: Any) -> list[dict[str, Any]]:
    examples = bundled.encode_examples(tokenizer, bundled.load_documents()[:12], 40)
    return [dict(e) for e in examples[:7]]


def collator_for(path: Path, tokenizer: Any, **kwargs: Any) -> Any:
    compiled = objspec.compile_file(path)
    if compiled.Collator.modes:  # the tokens a spec names by text (FIM's sentinels)
        tokenizer = bundled.with_special_tokens(bundled.load_tokenizer(), compiled.Collator.modes)
    kwargs.update(bundled.run_time_inputs(tokenizer, compiled.Collator.needs))
    return compiled.Collator(tokenizer, seed=3, **kwargs)


def examples_for(path: Path, tokenizer: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if "tlm" in path.name:
        return bundled.parallel_examples(tokenizer, 40)[:7]
    return bundled.stand_in_fields(rows, objspec.compile_file(path).Collator.fields)


def padded(examples: list[dict[str, Any]], side: str, width: int, pad: int) -> dict[str, Any]:
    """The examples as one padded dict of tensors, ``side``-padded to ``width`` columns."""
    out: dict[str, Any] = {}
    fields = ("phrase_ids", "prompt_mask")  # the bundled specs' declared per-token fields
    for key in ("input_ids", "word_ids", "sentence_ids", "translation_ids", *fields):
        if key not in examples[0]:
            continue
        fill = pad if key.endswith("input_ids") or key == "translation_ids" else -1
        fill = 0 if key == "prompt_mask" else fill
        grid = torch.full((len(examples), width), fill, dtype=torch.int64)
        mask = torch.zeros((len(examples), width), dtype=torch.int64)
        for b, e in enumerate(examples):
            n = len(e[key])
            cols = slice(width - n, width) if side == "left" else slice(0, n)
            grid[b, cols] = torch.tensor(e[key])
            mask[b, cols] = 1
        out[key] = grid
        if key == "input_ids":
            out["attention_mask"] = mask
        if key == "translation_ids":
            out["translation_attention_mask"] = mask
    out["index"] = torch.tensor([e["index"] for e in examples])
    for key in ("lang", "translation_lang"):
        if key in examples[0]:
            out[key] = torch.tensor([e[key] for e in examples])
    return out


def right_aligned(out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Each row-shaped output cut to its group's longest row (the width a batch of these rows
    alone would have), so outputs of batches of different widths compare."""
    cut = dict(out)
    for key, value in out.items():
        prefix = group_of(key, out)
        if prefix is None:
            continue
        width = int(out[f"{prefix}attention_mask"].sum(dim=1).max())
        square = value.dim() == 3 and value.shape[1] == value.shape[2]
        cut[key] = value[:, :width, :width] if square else value[:, :width]
    return cut


def assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_corruption_is_the_same_at_any_padding_side_and_width(
    path: Path, tokenizer: Any, rows: list[dict[str, Any]]
) -> None:
    examples = examples_for(path, tokenizer, rows)
    pad = bundled.PAD_ID
    width = max(len(e["input_ids"]) for e in examples)
    listed = collator_for(path, tokenizer)(examples)
    for side in ("right", "left"):
        for extra in (0, 5):
            given = padded(examples, side, width + extra, pad)
            out = collator_for(path, tokenizer, padding_side="right")(given)
            assert_same(right_aligned(out), right_aligned(listed))


@pytest.mark.parametrize("name", ["bert_mlm", "spanbert", "t5_span", "xlnet", "unilm"])
def test_left_padded_output_is_the_right_padded_one_moved(
    name: str, tokenizer: Any, rows: list[dict[str, Any]]
) -> None:
    path = Path("specs") / f"{name}.objspec"
    right = collator_for(path, tokenizer, padding_side="right")(rows)
    left = collator_for(path, tokenizer, padding_side="left")(rows)
    for prefix in ("", "decoder_"):
        mask_key = f"{prefix}attention_mask"
        if mask_key not in right:
            continue
        for key in right:
            if group_of(key, right) != prefix or right[key].dim() != 2 or key in POSITION_VALUED:
                continue
            for b in range(len(rows)):
                n = int(right[mask_key][b].sum())
                width = right[key].shape[1]
                assert right[key][b, :n].tolist() == left[key][b, width - n :].tolist(), key
    if "span_start" in right:  # positions move with the row
        shift = right["attention_mask"].shape[1] - right["attention_mask"].sum(dim=1, keepdim=True)
        moved = torch.where(right["span_start"] >= 0, right["span_start"] + shift, -1)
        assert sorted(moved.flatten().tolist()) == sorted(left["span_start"].flatten().tolist())


def test_a_tokenizer_that_pads_left_gets_left_padded_batches(
    tokenizer: Any, rows: list[dict[str, Any]]
) -> None:
    from transformers import PreTrainedTokenizerFast

    hf = PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="[PAD]", mask_token="[MASK]")
    hf.padding_side = "left"
    out = collator_for(Path("specs/bert_mlm.objspec"), hf)(rows)
    assert out["attention_mask"][:, -1].all()
    assert not out["attention_mask"][:, 0].all()


# --- example keys ------------------------------------------------------------------------------


def test_colliding_indices_of_different_rows_get_different_masks(tokenizer: Any) -> None:
    """A streamed dataset whose shards restart their indices: two different rows of one
    length with the same index must not share a mask."""
    collator = collator_for(Path("specs/bert_mlm.objspec"), tokenizer)
    a = {"input_ids": [2] + list(range(100, 140)) + [3], "index": 5}
    b = {"input_ids": [2] + list(range(200, 240)) + [3], "index": 5}
    out = collator([a, b])
    assert not torch.equal(out["labels"][0] != -100, out["labels"][1] != -100)


def test_equal_rows_with_different_indices_get_different_masks(tokenizer: Any) -> None:
    collator = collator_for(Path("specs/bert_mlm.objspec"), tokenizer)
    row = [2] + list(range(100, 160)) + [3]
    out = collator([{"input_ids": row, "index": 0}, {"input_ids": row, "index": 1}])
    assert not torch.equal(out["labels"][0], out["labels"][1])


# --- input validation --------------------------------------------------------------------------


BAD_INPUTS = {
    "negative id": [{"input_ids": [2, -1, 3]}],
    "id past the vocabulary": [{"input_ids": [2, 10**6, 3]}],
    "float ids": [{"input_ids": [2.0, 5.5, 3.0]}],
    "bool ids": [{"input_ids": [True, False]}],
    "NaN in a numpy row": [{"input_ids": np.array([2.0, np.nan, 3.0])}],
    "None in a row": [{"input_ids": [2, None, 3]}],
    "float tensor": {"input_ids": torch.tensor([[2.0, 5.0, 3.0]])},
    "bool tensor": {"input_ids": torch.tensor([[True, False]])},
    "1-d tensor": {"input_ids": torch.tensor([2, 5, 3])},
    "mask not 0/1": {
        "input_ids": torch.tensor([[2, 5, 3]]),
        "attention_mask": torch.tensor([[1, 2, 1]]),
    },
    "mask with a hole": {
        "input_ids": torch.tensor([[2, 5, 3]]),
        "attention_mask": torch.tensor([[1, 0, 1]]),
    },
    "mask of another shape": {
        "input_ids": torch.tensor([[2, 5, 3]]),
        "attention_mask": torch.tensor([[1, 1]]),
    },
    "negative index": [{"input_ids": [2, 5, 3], "index": -4}],
    "float index": [{"input_ids": [2, 5, 3], "index": 1.5}],
    "index per row": {"input_ids": torch.tensor([[2, 5, 3]]), "index": torch.tensor([1, 2])},
    "2-d row": [{"input_ids": np.array([[2, 5, 3]])}],
    "a string": "some text",
    "word_ids of another length": [{"input_ids": [2, 5, 3], "word_ids": [0]}],
    "ragged padded ids": {"input_ids": [[2, 5, 3], [2, 5]]},
}


@pytest.mark.parametrize("bad", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_input_is_a_one_line_batch_error(bad: Any, tokenizer: Any) -> None:
    collator = collator_for(Path("specs/bart_token_deletion.objspec"), tokenizer)
    with pytest.raises(BatchError) as caught:
        collator(bad)
    assert "\n" not in str(caught.value)


def test_the_error_names_the_example_and_position(tokenizer: Any) -> None:
    collator = collator_for(Path("specs/bert_mlm.objspec"), tokenizer)
    with pytest.raises(BatchError, match="example 1 at position 2 is -101"):
        collator([{"input_ids": [2, 5, 3]}, {"input_ids": [2, 5, -101, 3]}])


def test_padding_columns_are_not_validated(tokenizer: Any) -> None:
    """A padded dict may hold anything under its padding (e.g. -100)."""
    collator = collator_for(Path("specs/bert_mlm.objspec"), tokenizer)
    out = collator(
        {
            "input_ids": torch.tensor([[2, 50, 3, -100]]),
            "attention_mask": torch.tensor([[1, 1, 1, 0]]),
        }
    )
    assert out["input_ids"][0, 3] == bundled.PAD_ID


def test_a_vocabulary_without_pad_refuses_rows_that_need_padding() -> None:
    from objspec.runtime import Vocab

    vocab = Vocab(size=50, mask_id=4, cls_id=2, sep_id=3)
    compiled = objspec.compile_file("specs/bert_mlm.objspec")
    collator = compiled.Collator(vocab, seed=0)
    same = collator([{"input_ids": [2, 10, 11, 3]}, {"input_ids": [2, 12, 13, 3]}])
    assert same["attention_mask"].all()
    with pytest.raises(BatchError, match="no pad token"):
        collator([{"input_ids": [2, 10, 11, 3]}, {"input_ids": [2, 12, 3]}])
    infilling = objspec.compile_file("specs/bart_text_infilling.objspec").Collator(
        Vocab(size=50, mask_id=4, cls_id=2, sep_id=3, eos_id=3), seed=0
    )
    rows = [
        {"input_ids": [2, *range(10 + i, 40 + i), 3], "word_ids": [-1, *range(30), -1]}
        for i in range(8)
    ]
    with pytest.raises(BatchError, match="no pad token"):  # rows of one length, spans not
        infilling(rows)


def test_seed_and_epoch_out_of_range_are_refused(tokenizer: Any) -> None:
    compiled = objspec.compile_file("specs/bert_mlm.objspec")
    with pytest.raises(ValueError, match="seed"):
        compiled.Collator(tokenizer, seed=2**64)
    collator = compiled.Collator(tokenizer)
    for bad in (-1, 2**32, 1.0, True):
        with pytest.raises(ValueError, match="epoch"):
            collator.set_epoch(bad)


# --- Hugging Face conventions ------------------------------------------------------------------


def test_features_the_spec_does_not_touch_pass_through(tokenizer: Any) -> None:
    collator = collator_for(Path("specs/bert_mlm.objspec"), tokenizer)
    examples = [
        {"input_ids": [2, 10, 11, 3], "token_type_ids": [0, 0, 1, 1], "next_sentence_label": 1},
        {"input_ids": [2, 12, 3], "token_type_ids": [0, 1, 1], "next_sentence_label": 0},
    ]
    out = collator(examples)
    assert out["token_type_ids"].tolist() == [[0, 0, 1, 1], [0, 1, 1, 0]]
    assert out["next_sentence_label"].tolist() == [1, 0]


def test_per_token_features_are_dropped_with_a_warning_when_tokens_move(tokenizer: Any) -> None:
    collator = collator_for(Path("specs/bart_token_deletion.objspec"), tokenizer)
    row = [2] + list(range(10, 60)) + [3]
    with pytest.warns(RuntimeWarning, match="token_type_ids left out"):
        out = collator([{"input_ids": row, "token_type_ids": [0] * len(row), "label": 1}])
    assert "token_type_ids" not in out and out["label"].tolist() == [1]


def test_pad_to_multiple_of_and_raw_rows(tokenizer: Any) -> None:
    collator = collator_for(Path("specs/spanbert.objspec"), tokenizer, pad_to_multiple_of=8)
    out = collator([[2] + list(range(10, 20)) + [3], torch.tensor([2, 30, 31, 3])])
    for key in ("input_ids", "attention_mask", "labels", "span_start", "span_end"):
        assert out[key].shape == (2, 16), key
    assert (out["labels"][:, 12:] == -100).all() and (out["span_start"][:, 12:] == -1).all()
    assert (out["input_ids"][:, 12:] == bundled.PAD_ID).all()


# --- epochs ------------------------------------------------------------------------------------


class Rows(torch.utils.data.Dataset):
    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.rows[i]


def epoch_masks(loader: DataLoader, collator: Any, epochs: int, tell: bool) -> list[torch.Tensor]:
    masks = []
    for epoch in range(epochs):
        if tell:
            collator.set_epoch(epoch)
        masks.append(torch.cat([(b["labels"] != -100).flatten() for b in loader]))
    return masks


@pytest.mark.parametrize(
    "workers,persistent,start",
    [(0, False, None), (2, False, None), (2, True, None), (1, True, "spawn")],
)
def test_set_epoch_reaches_dataloader_workers(
    workers: int, persistent: bool, start: str | None, tokenizer: Any, rows: list[dict[str, Any]]
) -> None:
    """Forked and spawned workers (spawn: macOS's and Windows' default), persistent or not."""
    collator = collator_for(Path("specs/bert_mlm.objspec"), tokenizer)
    loader = DataLoader(
        Rows(rows),
        batch_size=4,
        collate_fn=collator,
        num_workers=workers,
        persistent_workers=persistent,
        multiprocessing_context=start,
    )
    first, second, third = epoch_masks(loader, collator, 3, tell=True)
    assert not torch.equal(first, second) and not torch.equal(second, third)
    collator.set_epoch(1)  # resume at epoch 1: the same batches again
    assert torch.equal(torch.cat([(b["labels"] != -100).flatten() for b in loader]), second)


def test_a_collator_never_told_the_epoch_warns_on_the_second_pass(
    tokenizer: Any, rows: list[dict[str, Any]]
) -> None:
    collator = collator_for(Path("specs/bert_mlm.objspec"), tokenizer)
    loader = DataLoader(Rows(rows), batch_size=4, collate_fn=collator)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        list(loader)  # the first pass: nothing to say
    with pytest.warns(RuntimeWarning, match="set_epoch"):
        list(loader)


def test_a_pickled_collator_keeps_its_epoch(tokenizer: Any) -> None:
    collator = collator_for(Path("specs/bert_mlm.objspec"), tokenizer)
    collator.set_epoch(7)
    assert pickle.loads(pickle.dumps(collator)).epoch == 7


def test_read_batch_keeps_given_positions_of_a_right_padded_batch() -> None:
    batch = read_batch(
        {"input_ids": torch.tensor([[2, 5, 3, 0]]), "attention_mask": torch.tensor([[1, 1, 1, 0]])},
        0,
    )
    assert batch.input_ids.tolist() == [[2, 5, 3, 0]] and not batch.left_padded


def test_the_language_reference_states_the_watch_limit() -> None:
    from objspec.runtime.epochs import WATCH_LIMIT

    page = (Path(__file__).resolve().parent.parent / "docs" / "language.md").read_text()
    assert f"first {WATCH_LIMIT:,} examples" in page

"""Offline materialization: batches read back from Parquet are the live collator's, bit for bit.

Every bundled spec whose rows do not depend on their batch is materialized (batches of 7) and
read back in other batch compositions (3 and 16, shuffled), padded right and left, with and
without ``pad_to_multiple_of``: each batch must equal live collation of the same examples in
the same order (same keys, dtypes and values). The others are refused with one line.
"""

from __future__ import annotations

import json
import os
import random
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch

os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")

import objspec  # noqa: E402
from objspec import bundled  # noqa: E402
from objspec.cli import main  # noqa: E402
from objspec.cli.materializing import epochs  # noqa: E402
from objspec.materialize import (  # noqa: E402
    MaterializeError,
    load_epoch,
    materialize,
    read_manifest,
    refusal,
    unpad,
)

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

SPECS = sorted(p.stem for p in Path("specs").glob("*.objspec"))
# pair tasks whose 'random' partner is another row of the batch
BATCH_PARTNERS = ("bert", "nsp", "structbert", "structbert_sentence")
# outputs whose padded columns hold row-dependent values (ELECTRA's per-position sampling
# keys, XLNet's permutation and target maps), which unpadded rows cannot give back
PADDING_VALUES = ("electra", "xlnet")
REFUSED = BATCH_PARTNERS + PADDING_VALUES
ELIGIBLE = [s for s in SPECS if s not in REFUSED]
EXAMPLES = 24


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    return bundled.load_tokenizer()


@pytest.fixture(scope="module")
def rows(tokenizer: Any) -> list[dict[str, Any]]:
    examples = bundled.encode_examples(tokenizer, bundled.load_documents()[:12], 48)
    return [dict(e) for e in examples[:EXAMPLES]]


def setup(name: str, tokenizer: Any, rows: list[dict[str, Any]], **kwargs: Any) -> tuple:
    """(live collator, its tokenizer, the examples it reads) of bundled spec ``name``."""
    cls = objspec.load(name).Collator
    tok = (
        bundled.with_special_tokens(bundled.load_tokenizer(), cls.modes) if cls.modes else tokenizer
    )
    kwargs = {"seed": 5, **bundled.run_time_inputs(tok, cls.needs), **kwargs}
    if "tlm" in name:
        examples = bundled.parallel_examples(tok, 40)[:EXAMPLES]
    else:
        examples = bundled.stand_in_fields(rows, cls.fields)
    return cls(tok, **kwargs), tok, examples


def assert_same(live: dict[str, torch.Tensor], read: dict[str, torch.Tensor]) -> None:
    assert list(live) == list(read)
    for key in live:
        if not isinstance(live[key], torch.Tensor):  # a flat-packed batch's ints
            assert type(live[key]) is type(read[key]) and live[key] == read[key], key
            continue
        assert live[key].dtype == read[key].dtype, key
        assert torch.equal(live[key], read[key]), key


@pytest.mark.parametrize("name", ELIGIBLE)
def test_materialized_batches_are_the_live_ones(
    name: str, tokenizer: Any, rows: list[dict[str, Any]], tmp_path: Path
) -> None:
    collator, tok, examples = setup(name, tokenizer, rows)
    assert refusal(collator) is None
    materialize(collator, examples, tmp_path, [0, 3], batch_size=7)
    # per-key unpadding of one batch gives each row as it is collated alone
    cut = unpad(collator.with_epoch(0)(examples[:7]))
    if name not in ("ul2", "ul2_decoder", "xlnet_sparse"):  # their own widths: alone, always
        for row, example in zip(cut, examples[:7], strict=True):
            alone = collator.with_epoch(0)([example])
            assert_same({k: v[0] for k, v in alone.items()}, row)
    cases = [(0, "right", None, 3), (3, "left", None, 16), (3, "right", 8, 16), (0, "left", 8, 3)]
    for epoch, side, multiple, size in cases:
        live = setup(name, tokenizer, rows, padding_side=side, pad_to_multiple_of=multiple)[0]
        live = live.with_epoch(epoch)
        data, collate = load_epoch(tmp_path, epoch, live)
        order = list(range(len(examples)))
        random.Random(epoch * 31 + size).shuffle(order)
        for start in range(0, len(order), size):
            chunk = order[start : start + size]
            assert_same(live([examples[i] for i in chunk]), collate([data[i] for i in chunk]))


@pytest.mark.parametrize("name", REFUSED)
def test_batch_dependent_objectives_are_refused(
    name: str, tokenizer: Any, rows: list[dict[str, Any]], tmp_path: Path
) -> None:
    collator, _, examples = setup(name, tokenizer, rows)
    with pytest.raises(MaterializeError, match="^cannot materialize") as caught:
        materialize(collator, examples, tmp_path, [0], batch_size=7)
    assert "\n" not in str(caught.value)
    if name in BATCH_PARTNERS:
        assert "another row of the same batch" in (refusal(collator) or "")
    assert not list(tmp_path.iterdir())  # refused before anything is written


@pytest.mark.parametrize(
    ("name", "pack"), [("bert_mlm", 64), ("bert_mlm", "flat"), ("causal_lm", 96)]
)
def test_packed_batches_are_the_live_ones(
    name: str, pack: Any, tokenizer: Any, rows: list[dict[str, Any]], tmp_path: Path
) -> None:
    """Rows are written unpacked and packed when read, as the live collator packs."""
    collator, _, examples = setup(name, tokenizer, rows, pack=pack)
    materialize(collator, examples, tmp_path, [1], batch_size=7)
    for side, multiple in (("right", None), ("left", 8)):
        live = setup(name, tokenizer, rows, pack=pack, padding_side=side)[0].with_epoch(1)
        live.pad_to_multiple_of = multiple
        data, collate = load_epoch(tmp_path, 1, live)
        order = list(range(len(examples)))
        random.Random(2).shuffle(order)
        for start in range(0, len(order), 9):
            chunk = order[start : start + 9]
            assert_same(live([examples[i] for i in chunk]), collate([data[i] for i in chunk]))


@pytest.mark.parametrize("name", ["bert_mlm", "bart"])
def test_fields_the_spec_does_not_read_pass_through(
    name: str, tokenizer: Any, rows: list[dict[str, Any]], tmp_path: Path
) -> None:
    """Per-example and per-token fields pass through (or are dropped) as live."""
    collator, _, examples = setup(name, tokenizer, rows)
    examples = [
        {**e, "doc_label": i % 3, "token_type_ids": [i % 2] * len(e["input_ids"])}
        for i, e in enumerate(examples)
    ]
    materialize(collator, examples, tmp_path, [0], batch_size=7)
    live = collator.with_epoch(0)
    data, collate = load_epoch(tmp_path, 0, live)
    batch = live(examples[2:13])
    assert "doc_label" in batch and ("token_type_ids" in batch) == (name == "bert_mlm")
    assert_same(batch, collate([data[i] for i in range(2, 13)]))


def test_reading_with_another_collator_is_an_error(
    tokenizer: Any, rows: list[dict[str, Any]], tmp_path: Path
) -> None:
    collator, _, examples = setup("bert_mlm", tokenizer, rows)
    materialize(collator, examples, tmp_path, [1], batch_size=7)
    load_epoch(tmp_path, 1, collator)  # the writer's own collator reads it
    others = {
        "seed": setup("bert_mlm", tokenizer, rows, seed=6)[0],
        "spec": setup("roberta", tokenizer, rows)[0],
        "vocabulary": objspec.load("bert_mlm").Collator(
            bundled.with_special_tokens(bundled.load_tokenizer(), ["<new>"]), seed=5
        ),
    }
    for what, other in others.items():
        with pytest.raises(MaterializeError, match=f"another {what}"):
            load_epoch(tmp_path, 1, other)
    with pytest.raises(MaterializeError, match="no manifest.json"):
        load_epoch(tmp_path, 2, collator)
    manifest = read_manifest(tmp_path / "epoch-1")
    (tmp_path / "epoch-2").mkdir()
    (tmp_path / "epoch-2" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(MaterializeError, match="holds epoch 1, not 2"):
        load_epoch(tmp_path, 2, collator)


def test_num_proc_gives_the_same_parquet(
    tokenizer: Any, rows: list[dict[str, Any]], tmp_path: Path
) -> None:
    import datasets

    collator, _, examples = setup("t5_span", tokenizer, rows)
    given = datasets.Dataset.from_list(examples)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        materialize(collator, given, tmp_path / "one", [2], batch_size=5)
        materialize(collator, given, tmp_path / "two", [2], batch_size=5, num_proc=2)
    one, two = (read_manifest(tmp_path / n / "epoch-2") for n in ("one", "two"))
    assert one == two
    tables = [
        datasets.Dataset.from_parquet(str(tmp_path / n / "epoch-2" / one["shards"][0])).to_dict()
        for n in ("one", "two")
    ]
    assert tables[0] == tables[1]
    assert one["columns"][0]["name"] == "input_ids" and one["rows"] == len(examples)


def test_cli_materializes_and_refuses(
    tmp_path: Path, tokenizer: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code = main(["materialize", "bert_mlm", "--out", str(out), "--epochs", "0,2",
                 "--max-length", "32", "--seed", "4", "--batch-size", "8"])  # fmt: skip
    assert code == 0, capsys.readouterr()
    assert sorted(p.name for p in out.iterdir()) == ["epoch-0", "epoch-2"]
    examples = [dict(e) for e in bundled.encode_examples(tokenizer, bundled.load_documents(), 32)]
    live = objspec.load("bert_mlm").Collator(tokenizer, seed=4, epoch=2)
    data, collate = load_epoch(out, 2, live)
    assert len(data) == len(examples)
    assert_same(live(examples[5:14]), collate([data[i] for i in range(5, 14)]))
    capsys.readouterr()
    assert main(["materialize", "nsp", "--out", str(tmp_path / "nsp")]) == 2
    message = capsys.readouterr().err.strip()
    assert message.startswith("error: cannot materialize nsp") and "\n" not in message
    assert main(["materialize", "bert_mlm", "--out", str(out), "--epochs", "x"]) == 2
    assert epochs("3") == [0, 1, 2] and epochs("5,") == [5] and epochs("0,2") == [0, 2]


def test_the_docs_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = Path("docs/materialize.md").read_text()
    blocks = [b.split("```")[0] for b in text.split("```python\n")[1:]]
    assert blocks
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block, "docs/materialize.md", "exec"), {})

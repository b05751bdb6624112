"""objspec.data: documents to sentence-packed rows for Hugging Face fast tokenizers (BERT,
RoBERTa, T5 and GPT-2 layouts, all built offline), through datasets.map and into collators."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

import objspec
from objspec import bundled
from objspec.data import (
    COLUMNS,
    ROW_BITS,
    Row,
    encode_documents,
    prepare,
    prepare_dataset,
    row_index,
    split_sentences,
)

transformers = pytest.importorskip("transformers")
datasets = pytest.importorskip("datasets")
pytest.importorskip("sentencex")

ROOT = Path(__file__).resolve().parent.parent
BPE_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
LONG = " ".join(["Lanterns swung over the long quay while the tide came in slowly"] * 6) + "."


def _texts() -> list[str]:
    """The bundled corpus' documents as running text, and one with a sentence too long for
    any row below."""
    return [" ".join(document) for document in bundled.load_documents()[:6]] + [
        f"A short one. {LONG} Then a last one."
    ]


TEXTS = _texts()


def _bpe(post_processor: Any) -> Tokenizer:
    """A byte-level BPE (RoBERTa and GPT-2's kind) trained on the bundled corpus."""
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=BPE_SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    sentences = [sentence for document in bundled.load_documents() for sentence in document]
    tokenizer.train_from_iterator(sentences, trainer=trainer)
    tokenizer.post_processor = post_processor
    return tokenizer


def _wrap(tokenizer: Tokenizer, **specials: str) -> Any:
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="<pad>", unk_token="<unk>", **specials
    )


@pytest.fixture(scope="module")
def tokenizers() -> dict[str, Any]:
    """BERT ([CLS] x [SEP]), RoBERTa (<s> x </s>), T5 (x </s>) and GPT-2 (x) layouts."""
    roberta = _bpe(processors.RobertaProcessing(("</s>", 2), ("<s>", 0)))
    t5 = _bpe(processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 2)]))
    gpt2 = _bpe(processors.ByteLevel(trim_offsets=False))
    return {
        "bert": bundled.load_hf_tokenizer(),
        "roberta": _wrap(
            roberta,
            bos_token="<s>",
            eos_token="</s>",
            cls_token="<s>",
            sep_token="</s>",
            mask_token="<mask>",
        ),  # fmt: skip
        "t5": _wrap(t5, eos_token="</s>"),
        "gpt2": _wrap(gpt2, eos_token="</s>"),
    }


KINDS = ("bert", "roberta", "t5", "gpt2")


def _special_layout(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The ids the tokenizer puts before and after a sequence, from its own __call__."""
    encoded = tokenizer("probe", return_special_tokens_mask=True)
    ids, mask = encoded["input_ids"], encoded["special_tokens_mask"]
    first, last = mask.index(0), len(mask) - mask[::-1].index(0)
    return ids[:first], ids[last:]


def _by_sentence(row: Row) -> Iterator[tuple[list[int], list[int]]]:
    """(token ids, word ids) of each sentence of a row, in order."""
    count = max(row["sentence_ids"]) + 1
    for s in range(count):
        at = [t for t, sid in enumerate(row["sentence_ids"]) if sid == s]
        assert at == list(range(at[0], at[-1] + 1)), "a sentence's tokens are contiguous"
        yield [row["input_ids"][t] for t in at], [row["word_ids"][t] for t in at]


def _dense(words: list[int | None]) -> list[int]:
    """Word ids renumbered from 0 by first appearance (None: a word of its own)."""
    out: list[int] = []
    for t, w in enumerate(words):
        same = t > 0 and w is not None and w == words[t - 1]
        out.append(out[-1] if same else (out[-1] + 1 if out else 0))
    return out


# --------------------------------------------------------------------------------------------
# rows


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("max_length", [24, 96])
def test_rows_follow_the_tokenizer_and_the_splitter(
    tokenizers: dict[str, Any], kind: str, max_length: int
) -> None:
    tokenizer = tokenizers[kind]
    prefix, suffix = _special_layout(tokenizer)
    room = max_length - len(prefix) - len(suffix)
    rows = encode_documents(tokenizer, TEXTS, max_length=max_length)
    for d, text in enumerate(TEXTS):
        mine = [row for row in rows if row["index"] >> ROW_BITS == d]
        assert [row["index"] for row in mine] == [row_index(d, r) for r in range(len(mine))]
        expected = []  # each of the splitter's sentences, as the tokenizer alone encodes it
        for sentence in split_sentences(text):
            encoded = tokenizer(sentence, add_special_tokens=False)
            expected.append((encoded["input_ids"][:room], _dense(encoded.word_ids()[:room])))
        got = []
        for row in mine:
            ids, words, sentences = row["input_ids"], row["word_ids"], row["sentence_ids"]
            assert len(ids) == len(words) == len(sentences) <= max_length
            assert ids[: len(prefix)] == prefix and ids[len(ids) - len(suffix) :] == suffix
            inside = slice(len(prefix), len(ids) - len(suffix))
            assert words[: len(prefix)] == sentences[: len(prefix)] == [-1] * len(prefix)
            assert words[inside.stop :] == sentences[inside.stop :] == [-1] * len(suffix)
            assert -1 not in words[inside] and -1 not in sentences[inside]
            content = [w for w in words if w >= 0]  # words counted across the row, never shared
            assert content[0] == 0 and all(
                0 <= b - a <= 1 for a, b in zip(content, content[1:], strict=False)
            )
            for sentence_ids, word_ids in _by_sentence(row):
                got.append((sentence_ids, [w - word_ids[0] for w in word_ids]))
        assert got == expected
        for row, following in zip(
            mine, mine[1:], strict=False
        ):  # greedy: the next sentence did not fit
            used = len(row["input_ids"]) - len(prefix) - len(suffix)
            first = following["sentence_ids"].count(0)
            assert used + first > room


def test_a_one_sentence_row_is_what_the_tokenizer_gives(tokenizers: dict[str, Any]) -> None:
    for kind in KINDS:
        tokenizer = tokenizers[kind]
        [row] = encode_documents(tokenizer, ["The harbour froze."], max_length=32)
        encoded = tokenizer("The harbour froze.", return_special_tokens_mask=True)
        assert row["input_ids"] == encoded["input_ids"], kind
        specials = [int(w == -1) for w in row["word_ids"]]
        assert specials == encoded["special_tokens_mask"], kind


def test_a_long_sentence_gets_a_row_of_its_own_cut_to_fit(tokenizers: dict[str, Any]) -> None:
    tokenizer = tokenizers["bert"]
    rows = encode_documents(tokenizer, [TEXTS[-1]], max_length=20)
    assert [max(row["sentence_ids"]) + 1 for row in rows] == [1, 1, 1]
    assert len(rows[1]["input_ids"]) == 20
    assert rows[1]["input_ids"][1:-1] == tokenizer(LONG, add_special_tokens=False)["input_ids"][:18]


def test_documents_given_as_sentences_need_no_splitter(tokenizers: dict[str, Any]) -> None:
    tokenizer = tokenizers["roberta"]
    sentences = [split_sentences(text) for text in TEXTS]
    assert encode_documents(tokenizer, sentences, 64) == encode_documents(tokenizer, TEXTS, 64)
    assert encode_documents(tokenizer, [[], "", ["  "]]) == []


def test_a_raw_tokenizers_tokenizer_works_like_its_wrapper(tokenizers: dict[str, Any]) -> None:
    for kind in ("bert", "roberta"):
        wrapped = tokenizers[kind]
        raw = wrapped.backend_tokenizer
        raw.enable_truncation(8)  # a wrapper's call may leave these set: they are ignored
        raw.enable_padding(length=200)
        assert encode_documents(raw, TEXTS[:3], 40) == encode_documents(wrapped, TEXTS[:3], 40)
        raw.no_truncation()
        raw.no_padding()


def test_encode_examples_takes_any_fast_tokenizer(tokenizers: dict[str, Any]) -> None:
    """The bundled tokenizer's own path is unchanged, and its HF wrapper now gives exactly the
    same examples; a <s>/</s> tokenizer works too."""
    documents = bundled.load_documents()
    for max_length in (3, 17, 64):
        raw = bundled.encode_examples(bundled.load_tokenizer(), documents, max_length)
        assert bundled.encode_examples(tokenizers["bert"], documents, max_length) == raw
    examples = bundled.encode_examples(tokenizers["roberta"], documents[:2], 48)
    assert [e["index"] for e in examples] == list(range(len(examples)))
    assert {e["input_ids"][0] for e in examples} == {0}  # <s>


def test_bad_input_is_a_clear_error(tokenizers: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="leaves no room"):
        prepare(tokenizers["bert"], max_length=2)
    with pytest.raises(TypeError, match="fast tokenizer"):
        prepare(object())
    with pytest.raises(TypeError, match="a document must be"):
        encode_documents(tokenizers["bert"], [3])  # type: ignore[list-item]
    with pytest.raises(KeyError, match="'body'"):
        prepare(tokenizers["bert"], text_column="body")({"text": ["Hi."]})
    with pytest.raises(ValueError, match="document index"):
        row_index(2**43, 0)


def test_without_sentencex_the_module_imports_and_says_what_to_install(
    tokenizers: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    probe = "import sys; sys.modules['sentencex'] = None; import objspec.data"
    subprocess.run([sys.executable, "-c", probe], check=True, timeout=60)
    monkeypatch.setitem(sys.modules, "sentencex", None)
    with pytest.raises(ImportError, match=re.escape("pip install 'objspec[data]'")):
        prepare(tokenizers["bert"])
    assert encode_documents(tokenizers["bert"], [["Already split."]])  # needs no splitter


# --------------------------------------------------------------------------------------------
# datasets


def _rows_of(dataset: Any) -> list[dict[str, Any]]:
    return [dict(row) for row in dataset]


def test_datasets_map_and_streaming_give_the_plain_rows(tokenizers: dict[str, Any]) -> None:
    tokenizer = tokenizers["roberta"]
    plain = encode_documents(tokenizer, TEXTS, max_length=48)
    raw = datasets.Dataset.from_dict({"text": TEXTS, "url": [f"u{i}" for i in range(len(TEXTS))]})
    mapped = prepare_dataset(raw, tokenizer, max_length=48, num_proc=2, batch_size=2)
    assert mapped.column_names == list(COLUMNS)
    assert _rows_of(mapped) == plain
    streamed = prepare_dataset(raw.to_iterable_dataset(), tokenizer, max_length=48, batch_size=3)
    assert _rows_of(streamed) == plain
    by_hand = raw.map(  # the map function alone, as a user writes it
        prepare(tokenizer, max_length=48),
        batched=True,
        with_indices=True,
        remove_columns=raw.column_names,
    )
    assert _rows_of(by_hand) == plain


# --------------------------------------------------------------------------------------------
# end to end: prepared rows feed the collators of objectives that read sentences and words


def _loader(tokenizer: Any, spec: str, max_length: int = 64) -> tuple[list[dict], Any]:
    raw = datasets.Dataset.from_dict({"text": TEXTS[:6]})
    rows = prepare_dataset(raw, tokenizer, max_length=max_length).with_format("python")
    collator = objspec.compile_file(ROOT / "specs" / f"{spec}.objspec").Collator(tokenizer, seed=0)
    loader = torch.utils.data.DataLoader(rows, batch_size=8, collate_fn=collator)
    return list(rows), loader


def _content(ids: list[int], words: list[int]) -> list[int]:
    return [t for t, w in zip(ids, words, strict=True) if w >= 0]


def test_sentence_permutation_moves_whole_sentences(tokenizers: dict[str, Any]) -> None:
    tokenizer = tokenizers["roberta"]
    rows, loader = _loader(tokenizer, "bart_sentence_permutation")
    moved = 0
    for start, batch in zip(range(0, len(rows), 8), loader, strict=True):
        for b, row in enumerate(rows[start : start + 8]):
            width = len(row["input_ids"])
            shuffled = batch["input_ids"][b, :width].tolist()
            assert batch["labels"][b, :width].tolist() == row["input_ids"]  # the original row
            sentences = [ids for ids, _ in _by_sentence(row)]  # type: ignore[arg-type]
            content = _content(shuffled, row["word_ids"])
            assert shuffled[0] == row["input_ids"][0] and shuffled[width - 1] == 2  # <s> .. </s>
            order = _sentence_order(content, sentences)
            assert sorted(order) == list(range(len(sentences)))
            moved += order != sorted(order)
    assert moved > 0


def _sentence_order(content: list[int], sentences: list[list[int]]) -> list[int]:
    """Which original sentence each block of ``content`` is (content is their concatenation)."""
    order: list[int] = []
    while content:
        found = [
            s for s, ids in enumerate(sentences) if s not in order and content[: len(ids)] == ids
        ]
        assert found, "the shuffled row is not a concatenation of the row's sentences"
        order.append(found[0])
        content = content[len(sentences[found[0]]) :]
    return order


def test_nsp_splits_rows_at_sentence_boundaries(tokenizers: dict[str, Any]) -> None:
    tokenizer = tokenizers["bert"]
    cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    rows, loader = _loader(tokenizer, "nsp")
    boundaries = 0
    for start, batch in zip(range(0, len(rows), 8), loader, strict=True):
        for b, row in enumerate(rows[start : start + 8]):
            if batch["next_sentence_label"][b] != 0 or max(row["sentence_ids"]) == 0:
                continue  # a random B, or a one-sentence row split inside it
            width = len(row["input_ids"]) + 1  # one more [SEP] between A and B
            pair = batch["input_ids"][b, :width].tolist()
            types = batch["token_type_ids"][b, :width].tolist()
            cut = types.index(1)  # B starts here, right after A's [SEP]
            assert pair[0] == cls_id and pair[cut - 1] == sep_id and pair[-1] == sep_id
            a_and_b = pair[1 : cut - 1] + pair[cut:-1]
            assert a_and_b == row["input_ids"][1:-1]  # the row, split...
            assert (
                row["sentence_ids"][cut - 1] != row["sentence_ids"][cut - 2]
            )  # ...between sentences
            boundaries += 1
    assert boundaries > 0


def test_whole_word_masking_uses_the_prepared_word_ids(tokenizers: dict[str, Any]) -> None:
    tokenizer = tokenizers["roberta"]
    rows, loader = _loader(tokenizer, "wwm")
    whole = 0
    for start, batch in zip(range(0, len(rows), 8), loader, strict=True):
        for b, row in enumerate(rows[start : start + 8]):
            picked = batch["labels"][b, : len(row["word_ids"])].ne(-100).tolist()
            by_word: dict[int, set[bool]] = {}
            for word, chosen in zip(row["word_ids"], picked, strict=True):
                by_word.setdefault(word, set()).add(chosen)
            assert all(len(choices) == 1 for word, choices in by_word.items() if word >= 0)
            whole += sum(
                row["word_ids"].count(w) > 1 and True in c for w, c in by_word.items() if w >= 0
            )
    assert whole > 0  # some multi-token words were masked, all of a piece


# --------------------------------------------------------------------------------------------
# docs


def test_every_code_block_of_the_data_guide_runs(tmp_path: Path, monkeypatch: Any) -> None:
    text = (ROOT / "docs" / "data.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```(\w*)\n(.*?)```", text, flags=re.DOTALL)
    assert blocks and all(language == "python" for language, _ in blocks)
    monkeypatch.chdir(ROOT)
    namespace: dict[str, Any] = {}
    for _, code in blocks:
        exec(compile(code, str(ROOT / "docs" / "data.md"), "exec"), namespace)

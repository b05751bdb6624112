"""The bundled corpus and tokenizer (objspec/data), and packing sentences into examples."""

from __future__ import annotations

from pathlib import Path

import pytest
from tokenizers import Tokenizer

from objspec.bundled import (
    BUNDLED_VOCAB_SIZE,
    CORPUS_PATH,
    DATA_DIR,
    MODE_TOKENS,
    SENTINEL_COUNT,
    SENTINEL_TOKENS,
    SPECIAL_TOKENS,
    TOKENIZER_PATH,
    encode_examples,
    load_documents,
    load_hf_tokenizer,
    load_tokenizer,
    sentinel_id,
    train_tokenizer,
)


@pytest.fixture(scope="module")
def documents() -> list[list[str]]:
    return load_documents()


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return load_tokenizer()


@pytest.fixture(scope="module")
def sentence_ids(tokenizer: Tokenizer, documents: list[list[str]]) -> list[list[list[int]]]:
    """ids[d][s]: token ids of sentence s of document d, without specials."""
    return [
        [e.ids for e in tokenizer.encode_batch(doc, add_special_tokens=False)] for doc in documents
    ]


# ---------------------------------------------------------------------------------- corpus


def test_data_files_ship_in_the_package() -> None:
    assert DATA_DIR.name == "data" and DATA_DIR.parent.name == "objspec"
    assert CORPUS_PATH.is_file() and TOKENIZER_PATH.is_file()
    assert CORPUS_PATH.parent == DATA_DIR == TOKENIZER_PATH.parent


def test_corpus_size(documents: list[list[str]]) -> None:
    assert len(documents) >= 12
    assert sum(len(doc) for doc in documents) >= 360
    assert all(doc for doc in documents)
    assert all(s and s == s.strip() for doc in documents for s in doc)


def test_corpus_sentences_have_varied_lengths(documents: list[list[str]]) -> None:
    lengths = [len(s.split()) for doc in documents for s in doc]
    assert min(lengths) >= 4 and max(lengths) <= 40
    assert max(lengths) >= 20  # not all short


def test_load_documents_splits_on_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "c.txt"
    path.write_text("\n\nA b c.\n  D e f.  \n\n\n \nG h i.\n", encoding="utf-8")
    assert load_documents(path) == [["A b c.", "D e f."], ["G h i."]]


def test_load_documents_rejects_a_file_without_documents(tmp_path: Path) -> None:
    path = tmp_path / "empty.txt"
    path.write_text("\n   \n\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no documents"):
        load_documents(path)


# ------------------------------------------------------------------------------- tokenizer


def test_special_ids(tokenizer: Tokenizer) -> None:
    assert [tokenizer.token_to_id(t) for t in SPECIAL_TOKENS] == [0, 1, 2, 3, 4]
    assert SPECIAL_TOKENS == ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
    assert [tokenizer.token_to_id(t) for t in MODE_TOKENS] == [5, 6, 7]


def test_sentinels_sit_at_the_top_in_descending_order(tokenizer: Tokenizer) -> None:
    size = tokenizer.get_vocab_size()
    assert size == BUNDLED_VOCAB_SIZE
    assert len(SENTINEL_TOKENS) == SENTINEL_COUNT == 100
    assert tokenizer.token_to_id("<extra_id_0>") == size - 1
    ids = [tokenizer.token_to_id(t) for t in SENTINEL_TOKENS]
    assert ids == list(range(size - 1, size - 1 - SENTINEL_COUNT, -1))
    assert sentinel_id(tokenizer, 7) == size - 8


def test_all_specials_are_special(tokenizer: Tokenizer) -> None:
    specials = SPECIAL_TOKENS + MODE_TOKENS + SENTINEL_TOKENS
    text = " ".join(specials)
    encoding = tokenizer.encode(text, add_special_tokens=False)
    assert encoding.tokens == list(specials)  # none is split
    assert tokenizer.decode(encoding.ids, skip_special_tokens=True) == ""


def test_post_processor_templates(tokenizer: Tokenizer) -> None:
    single = tokenizer.encode("The harbour.")
    assert single.tokens == ["[CLS]", "the", "harbour", ".", "[SEP]"]
    pair = tokenizer.encode("The harbour.", "The quay.")
    assert pair.tokens == ["[CLS]", "the", "harbour", ".", "[SEP]", "the", "quay", ".", "[SEP]"]
    assert pair.type_ids == [0] * 5 + [1] * 4


def test_retraining_gives_the_same_layout_and_size(
    tokenizer: Tokenizer, documents: list[list[str]]
) -> None:
    # ids, and the few pieces whose counts tie, may differ between processes (the trainer's
    # hash-map order); the size, the special-token layout and the tokenization of frequent
    # words do not.
    retrained = train_tokenizer(documents)
    assert retrained.get_vocab_size() == tokenizer.get_vocab_size()
    for tok in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "<extra_id_0>", "<extra_id_99>"):
        assert retrained.token_to_id(tok) == tokenizer.token_to_id(tok)
    text = "The harbour town of Port Aldwick."
    assert retrained.encode(text).tokens == tokenizer.encode(text).tokens


def test_some_corpus_words_split_into_pieces(
    tokenizer: Tokenizer, documents: list[list[str]]
) -> None:
    split_words: set[str] = set()
    for doc in documents:
        for encoding in tokenizer.encode_batch(doc, add_special_tokens=False):
            by_word: dict[int, list[str]] = {}
            for token, word in zip(encoding.tokens, encoding.word_ids, strict=True):
                assert word is not None
                by_word.setdefault(word, []).append(token)
            for pieces in by_word.values():
                if len(pieces) >= 3:
                    assert not pieces[0].startswith("##")
                    assert all(p.startswith("##") for p in pieces[1:])
                    split_words.add("".join(p.removeprefix("##") for p in pieces))
    assert len(split_words) >= 50
    pieces = tokenizer.encode("hyperphagia", add_special_tokens=False).tokens
    assert len(pieces) > 1 and all(p.startswith("##") for p in pieces[1:])
    assert tokenizer.decode(tokenizer.encode("hyperphagia").ids) == "hyperphagia"


def test_ascii_text_has_no_unknown_tokens(tokenizer: Tokenizer) -> None:
    encoding = tokenizer.encode("Quixotic zebras! {jumped} over #42 ~ @home; why?")
    assert "[UNK]" not in encoding.tokens


def test_tiny_vocab_size_is_rejected(documents: list[list[str]]) -> None:
    with pytest.raises(ValueError, match="vocab_size"):
        train_tokenizer(documents, vocab_size=50)


# -------------------------------------------------------------------------------- examples


def _check_packing(
    examples: list[dict], sentence_ids: list[list[list[int]]], max_length: int
) -> None:
    """Rebuild the examples from the sentences: whole consecutive sentences of one document,
    packed greedily, or one over-long sentence truncated to fit; every sentence used once."""
    room = max_length - 2
    k = 0
    for doc in sentence_ids:
        s = 0
        while s < len(doc):
            content = examples[k]["input_ids"][1:-1]
            if len(doc[s]) > room:
                assert content == doc[s][:room]
                s += 1
            else:
                packed: list[int] = []
                while s < len(doc) and len(doc[s]) <= room - len(packed):
                    packed += doc[s]
                    s += 1
                assert content == packed  # greedy, and within one document
            k += 1
    assert k == len(examples)


@pytest.mark.parametrize("max_length", [3, 8, 16, 64, 128])
def test_encode_examples_packs_within_documents(
    tokenizer: Tokenizer,
    documents: list[list[str]],
    sentence_ids: list[list[list[int]]],
    max_length: int,
) -> None:
    examples = encode_examples(tokenizer, documents, max_length=max_length)
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    assert examples
    for i, example in enumerate(examples):
        assert set(example) == {"input_ids", "word_ids", "sentence_ids", "index"}
        ids, words = example["input_ids"], example["word_ids"]
        sentences = example["sentence_ids"]
        assert [s == -1 for s in sentences] == [t in (cls_id, sep_id) for t in ids]
        inner_sentences = sentences[1:-1]
        assert inner_sentences[0] == 0
        assert all(
            b - a in (0, 1) for a, b in zip(inner_sentences, inner_sentences[1:], strict=False)
        )
        # a new sentence starts a new word
        assert all(
            words[t] != words[t - 1]
            for t in range(2, len(ids) - 1)
            if sentences[t] != sentences[t - 1]
        )
        assert example["index"] == i
        assert 3 <= len(ids) <= max_length
        assert len(words) == len(ids)
        assert ids[0] == cls_id and ids[-1] == sep_id
        assert cls_id not in ids[1:-1] and sep_id not in ids[1:-1]
        special = [t in (cls_id, sep_id) for t in ids]
        assert [w == -1 for w in words] == special
        inner = words[1:-1]
        assert inner[0] == 0
        tokens = [tokenizer.id_to_token(t) for t in ids[1:-1]]
        for t in range(1, len(inner)):
            assert inner[t] - inner[t - 1] in (0, 1)
            # same id <=> a ## continuation of the same word: different words never share an id
            assert (inner[t] == inner[t - 1]) == tokens[t].startswith("##")
    _check_packing(examples, sentence_ids, max_length)


def test_encode_examples_packs_several_sentences(
    tokenizer: Tokenizer, documents: list[list[str]]
) -> None:
    examples = encode_examples(tokenizer, documents, max_length=128)
    n_sentences = sum(len(doc) for doc in documents)
    assert len(examples) < n_sentences / 2
    # word numbering goes on across packed sentences: as many ids as words
    text_words = sum(
        len(tokenizer.pre_tokenizer.pre_tokenize_str(tokenizer.normalizer.normalize_str(s)))
        for doc in documents
        for s in doc
    )
    assert sum(max(e["word_ids"]) + 1 for e in examples) == text_words


def test_encode_examples_rejects_tiny_max_length(
    tokenizer: Tokenizer, documents: list[list[str]]
) -> None:
    with pytest.raises(ValueError, match="max_length"):
        encode_examples(tokenizer, documents, max_length=2)


def test_encode_examples_is_deterministic(tokenizer: Tokenizer, documents: list[list[str]]) -> None:
    assert encode_examples(tokenizer, documents) == encode_examples(load_tokenizer(), documents)


# ------------------------------------------------------------------------------ transformers


def test_hf_wrapper(tokenizer: Tokenizer) -> None:
    pytest.importorskip("transformers")
    hf = load_hf_tokenizer()
    assert hf.pad_token_id == 0 and hf.unk_token_id == 1
    assert hf.cls_token_id == 2 and hf.sep_token_id == 3 and hf.mask_token_id == 4
    assert len(hf) == tokenizer.get_vocab_size()
    assert hf.convert_tokens_to_ids("<extra_id_0>") == len(hf) - 1
    assert set(MODE_TOKENS + SENTINEL_TOKENS) <= set(hf.all_special_tokens)
    text = "The harbour town of Port Aldwick grew up around a sheltered inlet."
    assert hf(text)["input_ids"] == tokenizer.encode(text).ids
    masked = hf("the [MASK] town <extra_id_0>")["input_ids"]
    assert 4 in masked and len(hf) - 1 in masked

"""The bundled default corpus and WordPiece tokenizer, shipped as package data.

``objspec/data/corpus.txt`` is a small original English corpus (one sentence per line, a blank
line between documents). ``objspec/data/tokenizer.json`` is a BERT-style WordPiece tokenizer
trained on it with :func:`train_tokenizer`; ``python -m objspec.bundled`` regenerates it.

Vocabulary layout (``V = tokenizer.get_vocab_size()``):

* ids ``0..4``: ``[PAD] [UNK] [CLS] [SEP] [MASK]`` (:data:`SPECIAL_TOKENS`);
* ids ``5..7``: the UL2 mode tokens ``[NLU] [NLG] [S2S]`` (:data:`MODE_TOKENS`);
* then the learned WordPiece vocabulary;
* the top :data:`SENTINEL_COUNT` ids: T5 sentinels, ``<extra_id_0>`` = ``V - 1``,
  ``<extra_id_1>`` = ``V - 2``, ..., ``<extra_id_99>`` = ``V - 100`` (as T5 does).

All of these are special tokens: they are never split and ``decode(skip_special_tokens=True)``
drops them.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np
from tokenizers import (
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
    trainers,
)

if TYPE_CHECKING:  # pragma: no cover - typing only
    from transformers import PreTrainedTokenizerFast

__all__ = [
    "ALL_SPECIAL_TOKENS",
    "BUNDLED_VOCAB_SIZE",
    "CLS_ID",
    "CORPUS_PATH",
    "DATA_DIR",
    "MASK_ID",
    "MODE_TOKENS",
    "PAD_ID",
    "SENTINEL_COUNT",
    "SENTINEL_TOKENS",
    "SEP_ID",
    "SPECIAL_TOKENS",
    "TOKENIZER_PATH",
    "UNK_ID",
    "Example",
    "encode_examples",
    "load_documents",
    "load_hf_tokenizer",
    "load_tokenizer",
    "sentinel_id",
    "sentinel_token",
    "train_tokenizer",
    "with_special_tokens",
    "write_tokenizer",
]

DATA_DIR: Path = Path(__file__).resolve().parent / "data"
"""The package's data folder (``objspec/data``)."""

CORPUS_PATH: Path = DATA_DIR / "corpus.txt"
TOKENIZER_PATH: Path = DATA_DIR / "tokenizer.json"

SPECIAL_TOKENS: tuple[str, ...] = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
"""BERT specials, with ids 0..4 in this order."""
PAD_ID, UNK_ID, CLS_ID, SEP_ID, MASK_ID = range(len(SPECIAL_TOKENS))

MODE_TOKENS: tuple[str, ...] = ("[NLU]", "[NLG]", "[S2S]")
"""UL2 mode (paradigm) tokens, ids 5..7, right after :data:`SPECIAL_TOKENS`."""

SENTINEL_COUNT: int = 100
SENTINEL_TOKENS: tuple[str, ...] = tuple(f"<extra_id_{i}>" for i in range(SENTINEL_COUNT))
"""T5 sentinels ``<extra_id_0>`` .. ``<extra_id_99>``, in name order (ids descend along it)."""

ALL_SPECIAL_TOKENS: tuple[str, ...] = SPECIAL_TOKENS + MODE_TOKENS + SENTINEL_TOKENS

BUNDLED_VOCAB_SIZE: int = 2000
"""Vocabulary size of the shipped tokenizer, sentinels included. The bundled corpus has about
2,000 distinct words: with a vocabulary much larger than that (e.g. 4000) every corpus word would
be a single token and nothing would be split into ``##`` pieces."""

_CONTINUATION_PREFIX = "##"
# Always in the vocabulary (after lower-casing), whether or not the corpus uses them, so that any
# printable ASCII text encodes without [UNK]; letters and digits also get their ## form.
_INITIAL_ALPHABET = frozenset(string.ascii_lowercase + string.digits + string.punctuation)


class Example(TypedDict):
    """One packed example, as produced by :func:`encode_examples`.

    ``input_ids`` and ``word_ids`` have the same length ``L <= max_length``; ``word_ids[t]`` is
    ``-1`` at ``[CLS]``/``[SEP]`` and otherwise the word index (from 0, within the example) of
    token ``t``; ``sentence_ids[t]`` is likewise ``-1`` or the sentence index (from 0).
    ``index`` is the example's position in the returned list.
    """

    input_ids: list[int]
    word_ids: list[int]
    sentence_ids: list[int]
    index: int


# --------------------------------------------------------------------------------------------
# corpus


def load_documents(path: Path | str | None = None) -> list[list[str]]:
    """Read a corpus file: one sentence per line, documents separated by blank lines.

    Args:
        path: a UTF-8 text file; ``None`` means the bundled corpus (:data:`CORPUS_PATH`).

    Returns:
        ``documents[d][s]``: the ``s``-th sentence (a ``str``, stripped) of document ``d``.
        Every document has at least one sentence; runs of blank lines count as one separator.

    Raises:
        ValueError: the file holds no sentence at all.
    """
    file = CORPUS_PATH if path is None else Path(path)
    documents: list[list[str]] = []
    current: list[str] = []
    for line in file.read_text(encoding="utf-8").splitlines():
        sentence = line.strip()
        if sentence:
            current.append(sentence)
        elif current:
            documents.append(current)
            current = []
    if current:
        documents.append(current)
    if not documents:
        raise ValueError(
            f"{file}: no documents found (expected one sentence per line, "
            "with a blank line between documents)"
        )
    return documents


# --------------------------------------------------------------------------------------------
# tokenizer


def sentinel_token(i: int) -> str:
    """The ``i``-th T5 sentinel, ``<extra_id_{i}>``, for ``0 <= i < SENTINEL_COUNT``."""
    if not 0 <= i < SENTINEL_COUNT:
        raise ValueError(f"sentinel index {i} out of range 0..{SENTINEL_COUNT - 1}")
    return SENTINEL_TOKENS[i]


def sentinel_id(tokenizer: Tokenizer, i: int) -> int:
    """The id of ``<extra_id_{i}>`` in ``tokenizer``: ``vocab_size - 1 - i``."""
    token_id = tokenizer.token_to_id(sentinel_token(i))
    if token_id is None:
        raise ValueError(f"tokenizer has no sentinel {sentinel_token(i)!r}")
    return token_id


def train_tokenizer(
    documents: Sequence[Sequence[str]], vocab_size: int = BUNDLED_VOCAB_SIZE
) -> Tokenizer:
    """Train a BERT-style WordPiece tokenizer on ``documents`` (as from :func:`load_documents`).

    Lower-casing :class:`~tokenizers.normalizers.BertNormalizer`, ``BertPreTokenizer``,
    :class:`~tokenizers.models.WordPiece` with the ``##`` continuation prefix,
    ``[CLS] $A [SEP]`` / ``[CLS] $A [SEP] $B:1 [SEP]:1`` post-processing and a WordPiece
    decoder; the special ids follow the layout in the module docstring.

    The vocabulary is learned by ``tokenizers.trainers.WordPieceTrainer``. That trainer walks
    hash maps, so a retrained vocabulary can differ from one process to the next in its ids and
    in the few pieces whose counts tie (not in quality); the shipped ``tokenizer.json`` is the
    reference artifact.

    Args:
        documents: ``documents[d][s]`` sentences; only their text is used.
        vocab_size: the target total vocabulary size, specials and sentinels included. A small
            corpus may give fewer tokens (learning stops once every word is a single token).
            The default, :data:`BUNDLED_VOCAB_SIZE`, reproduces the shipped tokenizer from the
            bundled corpus.

    Returns:
        A :class:`tokenizers.Tokenizer` with the special-token layout of this module.
    """
    reserved = len(SPECIAL_TOKENS) + len(MODE_TOKENS) + SENTINEL_COUNT
    if vocab_size <= reserved:
        raise ValueError(f"vocab_size must exceed the {reserved} reserved special tokens")
    normalizer = normalizers.BertNormalizer(lowercase=True)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer = Tokenizer(
        models.WordPiece(unk_token="[UNK]", continuing_subword_prefix=_CONTINUATION_PREFIX)
    )
    tokenizer.normalizer = normalizer
    tokenizer.pre_tokenizer = pre_tokenizer
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size - SENTINEL_COUNT,
        special_tokens=list(SPECIAL_TOKENS + MODE_TOKENS),
        initial_alphabet=sorted(_INITIAL_ALPHABET),
        continuing_subword_prefix=_CONTINUATION_PREFIX,
        show_progress=False,
    )
    sentences = [sentence for document in documents for sentence in document]
    tokenizer.train_from_iterator(sentences, trainer=trainer)
    tokenizer.add_special_tokens(list(SPECIAL_TOKENS + MODE_TOKENS))  # already ids 0..7
    # Added tokens go to the top of the vocabulary in insertion order: add <extra_id_99> first
    # so that <extra_id_0> ends up with the highest id.
    tokenizer.add_special_tokens(list(reversed(SENTINEL_TOKENS)))
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", CLS_ID), ("[SEP]", SEP_ID)],
    )
    tokenizer.decoder = decoders.WordPiece(prefix=_CONTINUATION_PREFIX)
    _check_layout(tokenizer)
    return tokenizer


def _check_layout(tokenizer: Tokenizer) -> None:
    """Raise ValueError unless the special ids follow the layout in the module docstring."""
    size = tokenizer.get_vocab_size()
    expected = {tok: i for i, tok in enumerate(SPECIAL_TOKENS + MODE_TOKENS)}
    expected.update({tok: size - 1 - i for i, tok in enumerate(SENTINEL_TOKENS)})
    wrong = {
        tok: tokenizer.token_to_id(tok)
        for tok, want in expected.items()
        if tokenizer.token_to_id(tok) != want
    }
    if wrong:
        raise ValueError(f"tokenizer special ids do not follow the objspec layout: {wrong}")


def write_tokenizer(
    path: Path | str | None = None, vocab_size: int = BUNDLED_VOCAB_SIZE
) -> Tokenizer:
    """Retrain from the bundled corpus and save to ``path`` (default :data:`TOKENIZER_PATH`)."""
    tokenizer = train_tokenizer(load_documents(), vocab_size=vocab_size)
    target = TOKENIZER_PATH if path is None else Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(target), pretty=True)
    return tokenizer


def load_tokenizer(path: Path | str | None = None) -> Tokenizer:
    """Load a tokenizer file; ``None`` means the shipped ``objspec/data/tokenizer.json``.

    Returns a fresh :class:`tokenizers.Tokenizer` on each call (callers may configure it).
    """
    file = TOKENIZER_PATH if path is None else Path(path)
    if not file.is_file():
        hint = " (regenerate it with `python -m objspec.bundled`)" if path is None else ""
        raise FileNotFoundError(f"tokenizer file not found: {file}{hint}")
    return Tokenizer.from_file(str(file))


def with_special_tokens(tokenizer: Tokenizer, texts: Sequence[str]) -> Tokenizer:
    """``tokenizer`` with each of ``texts`` it lacks added as a special token, above the
    sentinels (ids ``V``, ``V + 1``, ...): the tokens a spec names by text (FIM's
    ``<fim_prefix>``, ...; a collator's ``modes``). The same tokenizer is returned."""
    missing = [t for t in dict.fromkeys(texts) if tokenizer.token_to_id(t) is None]
    if missing:
        tokenizer.add_special_tokens(missing)
    return tokenizer


def load_hf_tokenizer(path: Path | str | None = None) -> PreTrainedTokenizerFast:
    """The same tokenizer wrapped as a :class:`transformers.PreTrainedTokenizerFast`.

    pad/unk/cls/sep/mask tokens are set (ids 0..4) and the additional special tokens are
    :data:`MODE_TOKENS` followed by :data:`SENTINEL_TOKENS`; no id changes.

    Raises:
        ImportError: ``transformers`` is not installed (``pip install objspec[hf]``).
    """
    try:
        from transformers import PreTrainedTokenizerFast
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "load_hf_tokenizer needs the optional 'transformers' dependency: "
            "pip install objspec[hf]"
        ) from exc
    base = load_tokenizer(path)
    return PreTrainedTokenizerFast(
        tokenizer_object=base,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        additional_special_tokens=list(MODE_TOKENS + SENTINEL_TOKENS),
    )


# --------------------------------------------------------------------------------------------
# examples


def encode_examples(
    tokenizer: Tokenizer | PreTrainedTokenizerFast,
    documents: Sequence[Sequence[str]],
    max_length: int = 64,
) -> list[Example]:
    """Tokenize ``documents`` and pack consecutive sentences into examples.

    Sentences of one document are packed greedily, in order, into ``[CLS] s_i s_i+1 ... [SEP]``
    while the total stays ``<= max_length``; a document's last example never takes sentences of
    the next one. A sentence longer than ``max_length - 2`` tokens gets an example of its own,
    truncated to fit. Sentences that tokenize to nothing are skipped.

    Args:
        tokenizer: a tokenizer with ``[CLS]`` and ``[SEP]`` (e.g. :func:`load_tokenizer`); it
            should have no truncation or padding configured. Any other fast tokenizer (a
            ``transformers.PreTrainedTokenizerFast``, or a ``tokenizers.Tokenizer`` without
            ``[CLS]``/``[SEP]``, e.g. ``<s>``/``</s>``) goes to
            :func:`objspec.data.encode_documents`, which adds its own special tokens (its
            post-processor's), with the same ``index`` (the position in the list).
        documents: ``documents[d][s]`` sentences.
        max_length: the most tokens per example, ``[CLS]`` and ``[SEP]`` included (``>= 3``).

    Returns:
        A list of :class:`Example` dicts ``{"input_ids", "word_ids", "sentence_ids", "index"}``
        (lists of ``int`` of equal length ``L``, ``3 <= L <= max_length``). ``word_ids`` are
        ``-1`` at the specials and otherwise count words from 0 across the packed sentences, so
        two different words never share an id and the sequence is non-decreasing;
        ``sentence_ids`` likewise number the packed sentences from 0.

    Raises:
        ValueError: ``max_length < 3`` (or, on the other path, no room beside the specials).
    """
    if not _has_cls_and_sep(tokenizer):
        return _encode_with_own_specials(tokenizer, documents, max_length)
    assert isinstance(tokenizer, Tokenizer)
    if max_length < 3:
        raise ValueError(f"max_length must be at least 3 ([CLS] token [SEP]), got {max_length}")
    cls_id = tokenizer.token_to_id("[CLS]")
    sep_id = tokenizer.token_to_id("[SEP]")
    if cls_id is None or sep_id is None:
        raise ValueError("tokenizer has no [CLS] or [SEP] token")
    room = max_length - 2
    examples: list[Example] = []

    def flush(ids: list[int], words: list[int], sentences: list[int]) -> None:
        examples.append(
            {
                "input_ids": [cls_id, *ids, sep_id],
                "word_ids": [-1, *words, -1],
                "sentence_ids": [-1, *sentences, -1],
                "index": len(examples),
            }
        )

    for document in documents:
        encodings = tokenizer.encode_batch(list(document), add_special_tokens=False)
        ids: list[int] = []
        words: list[int] = []
        sentences: list[int] = []
        for encoding in encodings:
            sent_ids = list(encoding.ids)[:room]
            if not sent_ids:
                continue
            raw_words = encoding.word_ids[: len(sent_ids)]
            if ids and len(ids) + len(sent_ids) > room:
                flush(ids, words, sentences)
                ids, words, sentences = [], [], []
            offset = words[-1] + 1 if words else 0
            # Word ids restart at 0 in each sentence; None (no word) does not occur without
            # specials, but is mapped onto the previous word to keep the sequence monotone.
            last = -1
            for w in raw_words:
                last = last if w is None else w
                words.append(offset + max(last, 0))
            sentences.extend([sentences[-1] + 1 if sentences else 0] * len(sent_ids))
            ids.extend(sent_ids)
        if ids:
            flush(ids, words, sentences)
    return examples


def _has_cls_and_sep(tokenizer: object) -> bool:
    """A raw ``tokenizers.Tokenizer`` with ``[CLS]`` and ``[SEP]``: the path that
    :func:`encode_examples` has always taken (its output is what the tests and docs pin)."""
    return isinstance(tokenizer, Tokenizer) and None not in (
        tokenizer.token_to_id("[CLS]"),
        tokenizer.token_to_id("[SEP]"),
    )


def _encode_with_own_specials(
    tokenizer: object, documents: Sequence[Sequence[str]], max_length: int
) -> list[Example]:
    from objspec.data import encode_documents

    rows = encode_documents(tokenizer, [list(document) for document in documents], max_length)
    return [{**row, "index": number} for number, row in enumerate(rows)]


def token_counts(tokenizer: Tokenizer | None = None) -> list[int]:
    """How often each id occurs in the bundled corpus (a count table for XLM's
    frequency-weighted selection), one entry per vocabulary id."""
    tokenizer = tokenizer if tokenizer is not None else load_tokenizer()
    sentences = [s for doc in load_documents() for s in doc]
    encodings = tokenizer.encode_batch(sentences, add_special_tokens=False)
    ids = np.fromiter(chain.from_iterable(e.ids for e in encodings), dtype=np.int64)
    return np.bincount(ids, minlength=tokenizer.get_vocab_size()).tolist()


SIMILAR_MIN_COUNT = 5  # rarer tokens get no similar tokens (their contexts say too little)
SIMILAR_MIN_COSINE = 0.3


def similar_table(tokenizer: Tokenizer | None = None, k: int = 4) -> np.ndarray:
    """A STAND-IN similar-token table for MacBERT-style replacement, (V, k) int64: row i lists
    up to ``k`` ids whose contexts in the bundled corpus resemble id i's (cosine of their left
    and right neighbour counts at least ``SIMILAR_MIN_COSINE``), most similar first, then -1.
    Specials and tokens seen fewer than ``SIMILAR_MIN_COUNT`` times list none (MacBERT falls
    back to a random token there). MacBERT itself uses word2vec synonyms (``Synonyms``)."""
    tokenizer = tokenizer if tokenizer is not None else load_tokenizer()
    size = tokenizer.get_vocab_size()
    sentences = [s for doc in load_documents() for s in doc]
    contexts = np.zeros((size, 2 * size), dtype=np.float32)
    for encoding in tokenizer.encode_batch(sentences, add_special_tokens=False):
        ids = np.asarray(encoding.ids, dtype=np.int64)
        np.add.at(contexts, (ids[1:], ids[:-1]), 1.0)  # left neighbour
        np.add.at(contexts, (ids[:-1], size + ids[1:]), 1.0)  # right neighbour
    counts = np.bincount(
        np.concatenate([np.asarray(e.ids) for e in tokenizer.encode_batch(sentences)]),
        minlength=size,
    )
    from objspec.runtime.vocab import Vocab  # the runtime's idea of a special token

    special = Vocab.from_tokenizer(tokenizer).special_table().numpy()
    usable = (counts >= SIMILAR_MIN_COUNT) & ~special
    norms = np.linalg.norm(contexts, axis=1, keepdims=True)
    unit = np.divide(contexts, norms, out=np.zeros_like(contexts), where=norms > 0)
    cosine = unit @ unit.T
    cosine[:, ~usable] = -1.0
    cosine[~usable, :] = -1.0
    np.fill_diagonal(cosine, -1.0)
    order = np.argsort(-cosine, axis=1, kind="stable")[:, :k]
    best = np.take_along_axis(cosine, order, axis=1)
    return np.where(best >= SIMILAR_MIN_COSINE, order, -1).astype(np.int64)


def run_time_inputs(tokenizer: Tokenizer, needs: Sequence[str]) -> dict[str, Any]:
    """The collator arguments a spec's run-time tables need (its Collator's ``needs``), built
    from the bundled corpus as stand-ins: ``token_counts`` (XLM's weighting, unigram random
    tokens), ``tables`` (the similar-token table; a pool of the 500 most frequent ordinary
    ids). Empty for a spec that reads none."""
    kwargs: dict[str, Any] = {}
    if "counts" in needs:
        kwargs["token_counts"] = token_counts(tokenizer)
    tables: dict[str, Any] = {}
    if "similar" in needs:
        tables["similar"] = similar_table(tokenizer)
    if "pool" in needs:
        from objspec.runtime.vocab import Vocab

        counts = np.asarray(token_counts(tokenizer), dtype=np.float64)
        counts[Vocab.from_tokenizer(tokenizer).special_table().numpy()] = -1.0
        tables["pool"] = np.argsort(-counts, kind="stable")[:POOL_SIZE]
    if tables:
        kwargs["tables"] = tables
    return kwargs


POOL_SIZE = 500


def stand_in_fields(
    examples: Sequence[Mapping[str, Any]], fields: Sequence[tuple[str, str]]
) -> list[dict[str, Any]]:
    """The examples with STAND-IN values for the per-token fields a spec declares (its
    Collator's ``fields``), for demos and tests: ``prompt_mask`` marks each row's first third;
    a unit field (``phrase_ids``, ``entity_ids``) makes every other pair of words one unit
    (from the example's ``word_ids``, else pairs of tokens), -1 elsewhere. Real data brings
    its own (an offline segmenter's phrases and entities, a chat template's prompt)."""
    names = [name for name, _ in fields]
    if not names:
        return [dict(e) for e in examples]
    out = []
    for example in examples:
        length = len(example["input_ids"])
        words = list(example.get("word_ids") or range(length))
        made = {
            name: _stand_in_prompt(length) if name == "prompt_mask" else _stand_in_units(words)
            for name in names
        }
        out.append({**example, **made})
    return out


def _stand_in_prompt(length: int) -> list[int]:
    return [1 if i < length // 3 else 0 for i in range(length)]


def _stand_in_units(word_ids: Sequence[int | None]) -> list[int]:
    """Words 0-1, 4-5, 8-9, ... as units (their pair's id), the others -1."""
    units = []
    for word in word_ids:
        pair = -1 if word is None or word < 0 else word // 2
        units.append(pair if pair >= 0 and pair % 2 == 0 else -1)
    return units


def parallel_examples(
    tokenizer: Tokenizer | None = None,
    max_length: int = 64,
    documents: Sequence[Sequence[str]] | None = None,
) -> list[dict]:
    """A STAND-IN parallel corpus for demos and tests of translation objectives (the bundled
    corpus is monolingual): each sentence paired with the next sentence of its document as its
    "translation", language ids 0 and 1, each side cut to ``max_length // 2`` tokens.
    ``documents`` defaults to the bundled corpus."""
    tokenizer = tokenizer if tokenizer is not None else load_tokenizer()
    side = max(max_length // 2, 1)
    out: list[dict] = []
    for document in documents if documents is not None else load_documents():
        encodings = tokenizer.encode_batch(list(document), add_special_tokens=False)
        for first, second in zip(encodings, encodings[1:], strict=False):
            out.append(
                {
                    "input_ids": list(first.ids)[:side],
                    "translation_ids": list(second.ids)[:side],
                    "lang": 0,
                    "translation_lang": 1,
                    "index": len(out),
                }
            )
    return out


if __name__ == "__main__":
    _tok = write_tokenizer()
    print(f"wrote {TOKENIZER_PATH} (vocab_size={_tok.get_vocab_size()})")

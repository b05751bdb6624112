"""Data preparation: raw documents to sentence-packed rows for any fast tokenizer.

The objectives that read sentences (BART's sentence permutation, NSP, SOP, StructBERT) need
per-token ``sentence_ids``, and whole-word masking wants ``word_ids``; no tokenizer call gives
the former. This module splits each document into sentences, tokenizes each sentence without
special tokens, packs consecutive sentences of one document into rows of at most
``max_length`` tokens and adds the tokenizer's own special tokens. It works with a
``transformers.PreTrainedTokenizerFast`` (BERT, RoBERTa, T5, GPT-2, ...) or a raw
``tokenizers.Tokenizer``, and as a ``datasets.map`` function (``batched=True``, ``num_proc``,
streaming). Guide: ``docs/data.md``.

Sentence splitting uses `sentencex <https://github.com/wikimedia/sentencex>`_ (Wikimedia's
rule-based segmenter: about 300 languages through language fallback chains, no model to
download, a compiled core), installed by the ``data`` extra: ``pip install 'objspec[data]'``.
This module imports without it; a document given as a list of sentences, or a ``split``
callable of your own, needs nothing more.

This folder also holds the bundled corpus and tokenizer (:mod:`objspec.bundled`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypedDict

from tokenizers import Encoding, Tokenizer

if TYPE_CHECKING:  # pragma: no cover - typing only
    from datasets import Dataset, IterableDataset

__all__ = [
    "COLUMNS",
    "ROW_BITS",
    "DocumentPacker",
    "Row",
    "SentenceSplitter",
    "Sentencex",
    "encode_documents",
    "prepare",
    "prepare_dataset",
    "row_index",
    "split_sentences",
]

COLUMNS: tuple[str, ...] = ("input_ids", "word_ids", "sentence_ids", "index")
"""The columns every prepared row has, in this order (nothing else is passed through)."""

ROW_BITS: int = 20
"""``index = (document_index << ROW_BITS) | row_number``: see :func:`row_index`."""

_MAX_DOCUMENT_INDEX = 2 ** (63 - ROW_BITS) - 1
_INSTALL_HINT = "pip install 'objspec[data]'  (or: pip install 'sentencex>=1.0')"

SentenceSplitter = Callable[[str], Sequence[str]]
"""A function from a document's text to its sentences."""

Document = str | Sequence[str]
"""A document: its text (split into sentences here) or its sentences, already split."""


class Row(TypedDict):
    """One prepared row.

    ``input_ids``, ``word_ids`` and ``sentence_ids`` have one entry per token. ``word_ids`` and
    ``sentence_ids`` are -1 at the special tokens the tokenizer adds and otherwise number the
    row's words and sentences from 0 (two words never share an id). ``index`` is the row's key
    (:func:`row_index`).
    """

    input_ids: list[int]
    word_ids: list[int]
    sentence_ids: list[int]
    index: int


# --------------------------------------------------------------------------------------------
# sentences


@dataclass(frozen=True)
class Sentencex:
    """The default sentence splitter: ``sentencex.segment(language, text)``, each sentence
    stripped, empty ones (paragraph breaks) dropped. ``language`` is an ISO 639 code; one
    sentencex does not know falls back to its default rules. Picklable (for ``num_proc``)."""

    language: str = "en"

    def __post_init__(self) -> None:
        _import_sentencex()  # fail at set-up, with the install hint, not inside datasets.map

    def __call__(self, text: str) -> list[str]:
        segment = _import_sentencex().segment
        return _clean(segment(self.language, text))


def _import_sentencex() -> Any:
    try:
        import sentencex
    except ImportError as exc:
        raise ImportError(
            "splitting documents into sentences needs the optional 'sentencex' package: "
            f"{_INSTALL_HINT}; or give each document as a list of sentences, or pass split="
        ) from exc
    return sentencex


def _clean(sentences: Sequence[str]) -> list[str]:
    stripped = (sentence.strip() for sentence in sentences)
    return [sentence for sentence in stripped if sentence]


def split_sentences(text: str, language: str = "en") -> list[str]:
    """``text``'s sentences, by sentencex (stripped, none empty)."""
    return Sentencex(language)(text)


def _sentences_of(document: Document, split: SentenceSplitter) -> list[str]:
    if isinstance(document, str):
        return _clean(split(document))
    if isinstance(document, Sequence) and all(isinstance(s, str) for s in document):
        return _clean(document)
    raise TypeError(
        f"a document must be a str or a list of sentences (str), got {type(document).__name__}"
    )


# --------------------------------------------------------------------------------------------
# tokenizer


def _backend_copy(tokenizer: Any) -> Tokenizer:
    """A private copy of the Rust tokenizer behind ``tokenizer``, with no truncation or padding
    (a Hugging Face call may leave them set on its backend)."""
    raw = isinstance(tokenizer, Tokenizer)
    backend = tokenizer if raw else getattr(tokenizer, "backend_tokenizer", None)
    if not isinstance(backend, Tokenizer):
        raise TypeError(
            "objspec.data needs a fast tokenizer (transformers.PreTrainedTokenizerFast or "
            f"tokenizers.Tokenizer) for its word ids, got {type(tokenizer).__name__}; "
            "load it with AutoTokenizer.from_pretrained(..., use_fast=True)"
        )
    copy = Tokenizer.from_str(backend.to_str())
    copy.no_truncation()
    copy.no_padding()
    return copy


def _special_count(backend: Tokenizer) -> int:
    """How many special tokens the tokenizer adds to one sequence ([CLS] x [SEP]: 2)."""
    return len(backend.encode("", add_special_tokens=True).ids)


# --------------------------------------------------------------------------------------------
# rows


def row_index(document_index: int, row_number: int) -> int:
    """A row's ``index``: ``(document_index << ROW_BITS) | (row_number mod 2**ROW_BITS)``.

    Two rows of one document differ in ``row_number`` and rows of different documents in
    ``document_index``, so indices are unique within a dataset whose document indices are (a
    document of over a million rows reuses its numbers). ``index >> ROW_BITS`` is the document.
    Where indices do collide (streamed shards that each count from 0), the collator's key still
    tells rows apart: it mixes the row's tokens into the index (docs/language.md, Randomness).
    """
    if not 0 <= document_index <= _MAX_DOCUMENT_INDEX:
        raise ValueError(f"document index {document_index} outside 0..{_MAX_DOCUMENT_INDEX}")
    return (document_index << ROW_BITS) | (row_number & ((1 << ROW_BITS) - 1))


def _dense_words(word_ids: Sequence[int | None], first: int) -> list[int]:
    """Renumber one sentence's word ids from ``first`` in order of appearance; a token with no
    word (None) becomes a word of its own."""
    out: list[int] = []
    previous: int | None = None
    for word in word_ids:
        if not out or word is None or word != previous:
            out.append(out[-1] + 1 if out else first)
        else:
            out.append(out[-1])
        previous = word
    return out


def _group_sentences(encodings: Sequence[Encoding], room: int) -> Iterator[list[Encoding]]:
    """Pack one document's sentences greedily, in order, into groups of at most ``room``
    tokens; a sentence longer than ``room`` is cut to it and gets a group of its own."""
    group: list[Encoding] = []
    used = 0
    for encoding in encodings:
        if len(encoding.ids) > room:
            encoding.truncate(room)
        if not encoding.ids:
            continue
        if group and used + len(encoding.ids) > room:
            yield group
            group, used = [], 0
        group.append(encoding)
        used += len(encoding.ids)
    if group:
        yield group


def _assemble_row(backend: Tokenizer, group: Sequence[Encoding], index: int) -> Row:
    """One row: the group's tokens with the tokenizer's own special tokens (its post-processor,
    as its ``__call__`` adds them), -1 word and sentence ids at those."""
    words: list[int] = []
    sentences: list[int] = []
    for number, encoding in enumerate(group):
        words += _dense_words(encoding.word_ids, words[-1] + 1 if words else 0)
        sentences += [number] * len(encoding.ids)
    content = [token for encoding in group for token in encoding.ids]
    merged = Encoding.merge(list(group), growing_offsets=True)
    full = backend.post_process(merged, None, add_special_tokens=True)
    is_content = [not special for special in full.special_tokens_mask]
    if [t for t, keep in zip(full.ids, is_content, strict=True) if keep] != content:
        raise ValueError("the tokenizer's post-processor changes the tokens of a sequence")
    return {
        "input_ids": list(full.ids),
        "word_ids": _spread(words, is_content),
        "sentence_ids": _spread(sentences, is_content),
        "index": index,
    }


def _spread(values: list[int], is_content: list[bool]) -> list[int]:
    """``values`` laid on the content positions, -1 on the special ones."""
    it = iter(values)
    return [next(it) if keep else -1 for keep in is_content]


@dataclass
class DocumentPacker:
    """Documents to rows: the batched ``datasets.map`` function :func:`prepare` returns.

    Called as ``packer(batch, indices)`` on a batch ``{text_column: [document, ...], ...}``
    it returns ``{"input_ids": [...], "word_ids": [...], "sentence_ids": [...], "index":
    [...]}`` with one entry per row (a document gives zero or more rows). ``indices`` are the
    documents' dataset indices (``with_indices=True``); without them the documents' positions
    in the batch stand in. Picklable, so ``num_proc`` works.
    """

    backend: Tokenizer
    max_length: int
    text_column: str
    split: SentenceSplitter
    room: int = field(init=False)  # the tokens a row holds beside the special tokens

    def __post_init__(self) -> None:
        specials = _special_count(self.backend)
        if self.max_length - specials < 1:
            raise ValueError(
                f"max_length {self.max_length} leaves no room beside the tokenizer's "
                f"{specials} special tokens (need at least {specials + 1})"
            )
        self.room = self.max_length - specials

    def rows(self, documents: Sequence[Document], numbers: Sequence[int]) -> list[Row]:
        """The rows of ``documents``, in order; ``numbers`` are their indices. All their
        sentences are tokenized in one (parallel) call."""
        sentences = [_sentences_of(document, self.split) for document in documents]
        flat = [sentence for document in sentences for sentence in document]
        encodings = self.backend.encode_batch(flat, add_special_tokens=False) if flat else []
        rows: list[Row] = []
        start = 0
        for document, number in zip(sentences, numbers, strict=True):
            groups = _group_sentences(encodings[start : start + len(document)], self.room)
            start += len(document)
            rows += [
                _assemble_row(self.backend, group, row_index(int(number), row))
                for row, group in enumerate(groups)
            ]
        return rows

    def __call__(
        self, batch: Mapping[str, Sequence[Any]], indices: Sequence[int] | None = None
    ) -> dict[str, list[Any]]:
        if self.text_column not in batch:
            raise KeyError(f"no column {self.text_column!r} (columns: {sorted(batch)})")
        documents = batch[self.text_column]
        numbers = range(len(documents)) if indices is None else indices
        rows = self.rows(documents, numbers)
        return {name: [row[name] for row in rows] for name in COLUMNS}  # type: ignore[literal-required]


# --------------------------------------------------------------------------------------------
# entry points


def prepare(
    tokenizer: Any,
    max_length: int = 128,
    text_column: str = "text",
    language: str = "en",
    split: SentenceSplitter | None = None,
) -> DocumentPacker:
    """The batched ``datasets.map`` function that turns documents into rows.

    Args:
        tokenizer: a ``transformers.PreTrainedTokenizerFast`` or a ``tokenizers.Tokenizer``.
            Its own special tokens are added to each row ([CLS] x [SEP], <s> x </s>, x </s> or
            none, as its post-processor says); its truncation and padding settings are ignored.
        max_length: the most tokens in a row, special tokens included.
        text_column: the column holding the documents: a str (split into sentences) or a list
            of sentences.
        language: the documents' language for sentencex (ISO 639 code).
        split: a sentence splitter of your own (``str -> list[str]``) instead of sentencex;
            it must be picklable for ``num_proc``.

    Use it as ``dataset.map(fn, batched=True, with_indices=True,
    remove_columns=dataset.column_names)`` (:func:`prepare_dataset` does exactly that).
    """
    return DocumentPacker(
        backend=_backend_copy(tokenizer),
        max_length=max_length,
        text_column=text_column,
        split=split if split is not None else Sentencex(language),
    )


def encode_documents(
    tokenizer: Any,
    documents: Sequence[Document],
    max_length: int = 128,
    language: str = "en",
    split: SentenceSplitter | None = None,
) -> list[Row]:
    """The rows of ``documents`` (texts or lists of sentences), in order; document ``d``'s rows
    have ``index`` :func:`row_index` ``(d, 0), (d, 1), ...``. The same rows as the map function
    of :func:`prepare` with ``with_indices=True``. Sentencex is needed only for documents given
    as text (and no ``split``)."""
    if split is None and any(isinstance(document, str) for document in documents):
        split = Sentencex(language)
    packer = prepare(tokenizer, max_length, split=split or _already_split)
    return packer.rows(documents, range(len(documents)))


def _already_split(text: str) -> list[str]:
    raise TypeError("a document given as text needs a sentence splitter")  # pragma: no cover


def prepare_dataset(
    dataset: Dataset | IterableDataset,
    tokenizer: Any,
    max_length: int = 128,
    text_column: str = "text",
    language: str = "en",
    split: SentenceSplitter | None = None,
    **map_kwargs: Any,
) -> Dataset | IterableDataset:
    """``dataset`` (a ``datasets.Dataset`` or a streamed ``IterableDataset``) mapped to rows
    with the columns :data:`COLUMNS` only. ``map_kwargs`` go to ``dataset.map`` (``num_proc``,
    ``batch_size``, ...; ``num_proc`` only for a ``Dataset``). A streamed dataset whose
    columns are unknown (``column_names`` None) must hold only ``text_column``."""
    fn = prepare(tokenizer, max_length, text_column, language, split)
    # A streamed dataset may not know its columns: then the text column is the one dropped.
    columns = dataset.column_names or [text_column]
    return dataset.map(fn, batched=True, with_indices=True, remove_columns=columns, **map_kwargs)

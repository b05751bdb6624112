"""Tokenizer facts a collator needs, never hard-coded ids."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

WORDPIECE_CONTINUATION = "##"
SENTENCEPIECE_START = "\u2581"  # '▁'
BYTE_BPE_START = "\u0120"  # 'Ġ'


class VocabError(ValueError):
    """A vocabulary that lacks what an objective needs (e.g. no mask token)."""


@dataclass(frozen=True)
class Vocab:
    """Ids of a tokenizer's special tokens, its size and (optionally) a word-start table.

    ``word_start[i]`` is True when token i begins a word (WordPiece: not ``##``-prefixed;
    SentencePiece / byte-level BPE: prefixed with the word marker). Special tokens always start.
    """

    size: int
    pad_id: int | None = None
    mask_id: int | None = None
    cls_id: int | None = None
    sep_id: int | None = None
    bos_id: int | None = None
    eos_id: int | None = None
    unk_id: int | None = None
    special_ids: tuple[int, ...] = ()
    sentinel_ids: tuple[int, ...] = ()
    special_tokens: tuple[tuple[str, int], ...] = ()  # (text, id) of special / added tokens
    word_start: tuple[bool, ...] | None = field(default=None, repr=False)
    _tables: dict[tuple[str, str], torch.Tensor] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without its cached device tables (rebuilt where they are used)."""
        return {**self.__dict__, "_tables": {}}

    def __post_init__(self) -> None:
        if self.size < 1:
            raise VocabError(f"vocabulary size must be positive, got {self.size}")
        named = [self.pad_id, self.mask_id, self.cls_id, self.sep_id, self.bos_id, self.eos_id]
        for i in [*named, self.unk_id, *self.special_ids, *self.sentinel_ids]:
            if i is not None and not 0 <= i < self.size:
                raise VocabError(f"token id {i} is outside the vocabulary of size {self.size}")
        if self.word_start is not None and len(self.word_start) != self.size:
            raise VocabError("word_start must have one entry per vocabulary id")
        specials = set(self.special_ids) | {i for i in named if i is not None}
        specials |= set(self.sentinel_ids)
        object.__setattr__(self, "special_ids", tuple(sorted(specials)))

    # --- tables the kernels gather from -------------------------------------------------------
    def _cached(self, name: str, device: torch.device | str | None, build: Any) -> torch.Tensor:
        key = (name, str(torch.device(device) if device is not None else "cpu"))
        if key not in self._tables:
            self._tables[key] = build().to(device)
        return self._tables[key]

    def special_table(self, device: torch.device | str | None = None) -> torch.Tensor:
        """(V,) bool: True at special ids (cached per device)."""

        def build() -> torch.Tensor:
            table = torch.zeros(self.size, dtype=torch.bool)
            if self.special_ids:
                table[list(self.special_ids)] = True
            return table

        return self._cached("special", device, build)

    def ordinary_table(self, device: torch.device | str | None = None) -> torch.Tensor:
        """(V,) bool: True at the ids that are not special (cached per device)."""
        return self._cached("ordinary", device, lambda: ~self.special_table())

    def word_start_table(self, device: torch.device | str | None = None) -> torch.Tensor:
        """(V,) bool word-start table; raises VocabError if the vocabulary has none."""
        if self.word_start is None:
            raise VocabError(
                "this objective selects whole words but the vocabulary has no word-start table "
                "and the batch has no word_ids; build the Vocab with Vocab.from_tokenizer or pass "
                "word_ids per example"
            )
        word_start = self.word_start
        return self._cached(
            "word_start",
            device,
            lambda: torch.tensor(word_start, dtype=torch.bool) | self.special_table(),
        )

    def random_pool(self, device: torch.device | str | None = None) -> torch.Tensor:
        """(N,) int64: the ids a random replacement draws from (every non-special id)."""
        pool = (~self.special_table()).nonzero().flatten()
        if pool.numel() == 0:
            raise VocabError("the vocabulary has no non-special token to draw random tokens from")
        return pool.to(device)

    def id_of(self, text: str) -> int:
        """The id of a special (added) token by its text, e.g. UL2's ``"[NLU]"``."""
        for token, i in self.special_tokens:
            if token == text:
                return i
        raise VocabError(
            f"the vocabulary has no special token {text!r}; add it to the tokenizer "
            "(tokenizer.add_special_tokens) before building the collator"
        )

    def require(self, what: str) -> int:
        """The id of ``what`` ('mask', 'pad', ...), or a VocabError saying it is missing."""
        value = getattr(self, f"{what}_id")
        if value is None:
            raise VocabError(f"this objective needs a {what} token but the vocabulary has none")
        return int(value)

    # --- construction ----------------------------------------------------------------------------
    @classmethod
    def from_tokenizer(cls, tokenizer: Any) -> Vocab:
        """Read a Hugging Face ``PreTrainedTokenizer(Fast)`` or a ``tokenizers.Tokenizer``."""
        if hasattr(tokenizer, "get_vocab") and hasattr(tokenizer, "all_special_ids"):
            return _from_transformers(tokenizer)
        if hasattr(tokenizer, "get_vocab") and hasattr(tokenizer, "token_to_id"):
            return _from_tokenizers(tokenizer)
        raise TypeError(
            f"cannot read a vocabulary from {type(tokenizer).__name__}; pass a Hugging Face "
            "tokenizer or a tokenizers.Tokenizer, or build Vocab(...) directly"
        )


def word_start_flags(tokens: Sequence[str]) -> tuple[bool, ...]:
    """Word starts by the tokenizer family's convention, detected from the vocabulary itself."""
    if any(t.startswith(WORDPIECE_CONTINUATION) for t in tokens):
        return tuple(not t.startswith(WORDPIECE_CONTINUATION) for t in tokens)
    for marker in (SENTENCEPIECE_START, BYTE_BPE_START):
        if sum(t.startswith(marker) for t in tokens) > len(tokens) // 10:
            return tuple(t.startswith(marker) or not t[:1].isalnum() for t in tokens)
    return tuple(True for _ in tokens)


def _tokens_by_id(vocab: dict[str, int], size: int) -> list[str]:
    tokens = [""] * size
    for tok, i in vocab.items():
        if 0 <= i < size:
            tokens[i] = tok
    return tokens


def _sentinels(vocab: dict[str, int]) -> tuple[int, ...]:
    found = []
    for tok, i in vocab.items():
        if tok.startswith("<extra_id_") and tok.endswith(">") and tok[10:-1].isdigit():
            found.append((int(tok[10:-1]), i))
    return tuple(i for _, i in sorted(found))


def _from_transformers(tok: Any) -> Vocab:
    vocab = tok.get_vocab()
    size = max(len(tok), max(vocab.values(), default=-1) + 1)
    return Vocab(
        size=size,
        pad_id=tok.pad_token_id,
        mask_id=tok.mask_token_id,
        cls_id=tok.cls_token_id,
        sep_id=tok.sep_token_id,
        bos_id=tok.bos_token_id,
        eos_id=tok.eos_token_id,
        unk_id=tok.unk_token_id,
        special_ids=tuple(tok.all_special_ids),
        sentinel_ids=_sentinels(vocab),
        special_tokens=tuple(zip(tok.all_special_tokens, tok.all_special_ids, strict=False)),
        word_start=word_start_flags(_tokens_by_id(vocab, size)),
    )


_NAMED = {
    "pad_id": ("[PAD]", "<pad>"),
    "mask_id": ("[MASK]", "<mask>"),
    "cls_id": ("[CLS]", "<cls>"),
    "sep_id": ("[SEP]", "<sep>"),
    "bos_id": ("<s>", "[BOS]"),
    "eos_id": ("</s>", "[EOS]"),
    "unk_id": ("[UNK]", "<unk>"),
}


def _from_tokenizers(tok: Any) -> Vocab:
    vocab: dict[str, int] = tok.get_vocab(with_added_tokens=True)
    size = max(vocab.values(), default=-1) + 1
    ids = {field: _first_id(vocab, names) for field, names in _NAMED.items()}
    added: dict[int, Any] = getattr(tok, "get_added_tokens_decoder", dict)()
    specials = tuple(i for i, t in added.items() if getattr(t, "special", False))
    return Vocab(
        size=size,
        special_ids=specials,
        sentinel_ids=_sentinels(vocab),
        special_tokens=tuple((str(t.content), i) for i, t in added.items()),
        word_start=word_start_flags(_tokens_by_id(vocab, size)),
        **ids,
    )


def _first_id(vocab: dict[str, int], names: Iterable[str]) -> int | None:
    return next((vocab[n] for n in names if n in vocab), None)

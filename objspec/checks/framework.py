"""What every check shares: the cases Hypothesis draws, the synthetic vocabulary and tables,
collating a case, and reading what a batch selected."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from hypothesis import strategies as st

from objspec import ir
from objspec.runtime import IGNORE_INDEX, Vocab, read_batch
from objspec.runtime.selection import (
    candidate_mask,
    id_unit_starts,
    sentence_unit_starts,
    word_unit_starts,
)

# Statistical checks fail only past this many standard deviations (a fixed seed makes them
# deterministic; the wide bound keeps a correct collator far from the edge for any seed).
Z_BOUND = 6.0

PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4
MODE_TOKENS = (("[NLU]", 5), ("[NLG]", 6), ("[S2S]", 7))  # UL2's paradigm tokens
# FIM's sentinels (prefix, middle, suffix) on the same special ids: a spec names them by text
FIM_TOKENS = tuple(zip(ir.FIM_TOKENS, (5, 6, 7), strict=True))
GLM_TOKENS = tuple(zip(ir.GLM_TOKENS, (5, 6), strict=True))  # GLM's [sop], [eop] likewise
FIRST_WORD = 8  # ids below are special


class CheckFailure(AssertionError):
    """A property the spec promises does not hold."""


@dataclass(frozen=True)
class Case:
    """One drawn test case: a vocabulary, examples, and the collator seed/epoch."""

    vocab: Vocab
    examples: list[dict[str, Any]]
    seed: int
    epoch: int


@dataclass(frozen=True)
class Check:
    name: str
    promise: str
    run: Callable[[Any, Any, Case], None]  # (objective or mixture, compiled, case)
    statistical: bool = False


@dataclass(frozen=True)
class CheckResult:
    name: str
    promise: str
    passed: bool
    detail: str = ""


# --- drawing cases -------------------------------------------------------------------------------


def sentinel_count(size: int) -> int:
    """How many T5 sentinels a synthetic vocabulary of ``size`` ids has (at its top)."""
    return max(1, min(16, (size - FIRST_WORD - 1) // 4))


def synthetic_vocab(size: int, word_start_every: int = 3) -> Vocab:
    """A vocabulary of ``size`` ids: 0..4 are [PAD] [UNK] [CLS] [SEP] [MASK], 5..7 UL2's mode
    tokens [NLU] [NLG] [S2S], the top
    :func:`sentinel_count` ids are sentinels (<extra_id_0> = size - 1, descending); every
    ``word_start_every``-th other id continues a word (like '##' pieces), the rest start one."""
    starts = tuple(i < FIRST_WORD or i % word_start_every != 0 for i in range(size))
    return Vocab(
        sentinel_ids=tuple(range(size - 1, size - 1 - sentinel_count(size), -1)),
        special_ids=tuple(i for _, i in MODE_TOKENS),
        special_tokens=MODE_TOKENS + FIM_TOKENS + GLM_TOKENS,
        size=size,
        pad_id=PAD,
        unk_id=UNK,
        cls_id=CLS,
        sep_id=SEP,
        mask_id=MASK,
        word_start=starts,
    )


@st.composite
def cases(draw: st.DrawFn, max_batch: int = 6, max_length: int = 48) -> Case:
    """Batches of [CLS] tokens [SEP] rows of ragged lengths (including empty and tiny rows)."""
    size = draw(st.integers(min_value=FIRST_WORD + 4, max_value=400))
    vocab = synthetic_vocab(size)
    n = draw(st.integers(min_value=1, max_value=max_batch))
    lengths = draw(st.lists(st.integers(0, max_length), min_size=n, max_size=n))
    first_index = draw(st.integers(0, 2**40))
    examples = []
    for row, length in enumerate(lengths):
        top = size - 1 - sentinel_count(size)
        body = draw(st.lists(st.integers(FIRST_WORD, top), min_size=length, max_size=length))
        other = draw(st.integers(0, max_length // 2))
        translation = draw(st.lists(st.integers(FIRST_WORD, top), min_size=other, max_size=other))
        cuts = sorted(draw(st.sets(st.integers(1, max(length - 1, 1)), max_size=2)))
        sentences = [sum(t >= c for c in cuts) for t in range(length)]
        examples.append(
            {
                "input_ids": [CLS, *body, SEP],
                "sentence_ids": [-1, *sentences, -1],
                "translation_ids": translation,
                "positive_ids": [CLS, *translation, SEP],
                "index": first_index + row,
            }
        )
    seed = draw(st.integers(0, 2**31 - 1))
    epoch = draw(st.integers(0, 1000))
    return Case(vocab, examples, seed, epoch)


def big_case(seed: int = 1234, rows: int = 64, length: int = 256, size: int = 1000) -> Case:
    """A large fixed case for the statistical checks (counts in the tens of thousands)."""
    g = torch.Generator().manual_seed(seed)
    body = torch.randint(FIRST_WORD, size - sentinel_count(size), (rows, length), generator=g)
    third = length // 3
    sentences = [-1, *(min(t // third, 2) for t in range(length)), -1]
    examples = [
        {
            "input_ids": [CLS, *row.tolist(), SEP],
            "sentence_ids": sentences,
            "translation_ids": row[: length // 2].flip(0).tolist(),
            "positive_ids": [CLS, *row[: length // 2].flip(0).tolist(), SEP],
            "index": i,
        }
        for i, row in enumerate(body)
    ]
    return Case(synthetic_vocab(size), examples, seed, 0)


# --- helpers -------------------------------------------------------------------------------------


def synthetic_counts(size: int) -> list[int]:
    """A count table for frequency-weighted objectives: id i seen i times (0 for specials)."""
    return [0 if i < FIRST_WORD else i for i in range(size)]


def synthetic_tables(vocab: Vocab, needs: tuple[str, ...]) -> dict[str, Any]:
    """Run-time tables for the needs of a spec: every ordinary id i similar to the next two
    ordinary ids, except every fifth id, which lists none (the fallback); a pool of the first
    100 ordinary ids."""
    ordinary = (~vocab.special_table()).nonzero().flatten()
    tables: dict[str, Any] = {}
    if "similar" in needs:
        similar = torch.full((vocab.size, 2), -1, dtype=torch.int64)
        for first in range(2):  # the next two ordinary ids, vectorized over ids
            following = ordinary.roll(-1 - first)
            similar[ordinary, first] = following
        similar[ordinary[::5]] = -1
        tables["similar"] = similar
    if "pool" in needs:
        tables["pool"] = ordinary[:100]
    return {"tables": tables} if tables else {}


def _collator(compiled: Any, case: Case, epoch: int | None = None) -> Any:
    """The compiled collator of ``case`` (its vocabulary, seed and epoch)."""
    needs = compiled.Collator.needs
    counts = synthetic_counts(case.vocab.size) if "counts" in needs else None
    tables = synthetic_tables(case.vocab, needs)
    collator = compiled.Collator(case.vocab, seed=case.seed, token_counts=counts, **tables)
    collator.set_epoch(case.epoch if epoch is None else epoch)
    return collator


def _collate(compiled: Any, case: Case, epoch: int | None = None) -> dict[str, torch.Tensor]:
    collator = _collator(compiled, case, epoch)
    return collator(with_fields(case.examples, collator.fields))  # type: ignore[no-any-return]


def with_fields(examples: list[dict[str, Any]], fields: tuple[tuple[str, str], ...]) -> list[Any]:
    """The examples with the stand-ins of :func:`objspec.bundled.stand_in_fields` for the
    per-token fields a spec declares (these rows have no word_ids: units are token pairs)."""
    from objspec.bundled import stand_in_fields

    return stand_in_fields(examples, fields) if fields else examples


def declared_fields(objective: ir.Objective) -> tuple[tuple[str, str], ...]:
    """The per-token fields ``objective`` reads (names only matter here)."""
    named = ["prompt_mask"] if "prompt" in objective.exclude else []
    named += [objective.unit.field] if objective.unit.field is not None else []
    return tuple((name, "") for name in named)


def unit_starts(objective: ir.Objective, case: Case) -> torch.Tensor:
    """(B, L) bool: the first token of each of the objective's units on the case's rows
    (every real token for token units)."""
    examples = with_fields(case.examples, declared_fields(objective))
    batch = read_batch(examples, case.vocab.pad_id or 0)
    kind = objective.unit.kind
    if kind == "word":
        return word_unit_starts(batch, case.vocab)
    if kind == "sentence":
        return sentence_unit_starts(batch, case.vocab)
    if kind == "field":
        assert objective.unit.field is not None
        ids = batch.extras[objective.unit.field]
        return id_unit_starts(batch, ids, case.vocab)
    return batch.valid


def _inputs(case: Case) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    batch = read_batch(case.examples, case.vocab.pad_id or 0)
    cand = candidate_mask(batch, case.vocab)
    return batch.input_ids, batch.valid, cand


def _fail(message: str) -> CheckFailure:
    return CheckFailure(message)


def _selected(objective: ir.Objective, out: dict[str, torch.Tensor]) -> torch.Tensor:
    """(B, L) bool: the selected positions in the original's coordinates. For encoder outputs
    they are the labelled positions; for a fragment predicted by a decoder (MASS), the decoder's
    labelled positions."""
    if not objective.output.seq2seq:
        labelled = out["labels"] != IGNORE_INDEX
        if "shuffled_mask" in out:  # StructBERT: the shuffled trigrams are not the selection
            labelled &= ~out["shuffled_mask"].bool()
        return labelled
    if objective.predict.target == "all":  # same-length input, every selected token masked
        original = out["labels"].clamp(min=0)
        return out["input_ids"] != original
    ids = out["input_ids"]
    valid = out["labels"] != IGNORE_INDEX
    rows = torch.arange(ids.shape[0]).unsqueeze(1).expand_as(valid)
    selected = torch.zeros_like(ids, dtype=torch.bool)
    selected[rows[valid], out["decoder_position_ids"][valid]] = True
    return selected


def _excluded(objective: ir.Objective, case: Case) -> torch.Tensor:
    batch = read_batch(case.examples, case.vocab.pad_id or 0)
    ex = set(objective.exclude)
    cand = candidate_mask(
        batch,
        case.vocab,
        exclude_special="special" in ex,
        exclude_first="first" in ex,
        exclude_last="last" in ex,
    )
    if "prompt" in ex:
        prompted = with_fields(case.examples, (("prompt_mask", ""),))
        cand &= read_batch(prompted, case.vocab.pad_id or 0).extras["prompt_mask"] == 0
    return ~cand

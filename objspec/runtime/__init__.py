"""The runtime that generated collators import (``from objspec import runtime as rt``).

Everything here is vectorized over the batch: no Python loop over examples or tokens.
"""

from objspec.runtime.batch import Batch, BatchError, content_index, read_batch
from objspec.runtime.collator import Collator
from objspec.runtime.heads import MLMHead, SpanBoundaryHead, TiedDecoder
from objspec.runtime.models import TinyEncoder
from objspec.runtime.replace import IGNORE_INDEX, labels_at, replace_selected
from objspec.runtime.rng import Keys, below, hash32, threshold
from objspec.runtime.selection import (
    bernoulli_select,
    budget_counts,
    candidate_mask,
    expand_units,
    start_position,
    take_in_random_order,
    token_unit_starts,
    unit_lengths,
    word_unit_starts,
)
from objspec.runtime.spans import Spans, place_spans
from objspec.runtime.vocab import Vocab, VocabError

__all__ = [
    "IGNORE_INDEX",
    "Batch",
    "BatchError",
    "Collator",
    "Keys",
    "MLMHead",
    "SpanBoundaryHead",
    "Spans",
    "TiedDecoder",
    "TinyEncoder",
    "Vocab",
    "VocabError",
    "below",
    "bernoulli_select",
    "budget_counts",
    "candidate_mask",
    "content_index",
    "expand_units",
    "hash32",
    "labels_at",
    "place_spans",
    "read_batch",
    "replace_selected",
    "start_position",
    "take_in_random_order",
    "threshold",
    "token_unit_starts",
    "unit_lengths",
    "word_unit_starts",
]

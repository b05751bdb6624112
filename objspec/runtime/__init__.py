"""The runtime that generated collators import (``from objspec import runtime as rt``).

Everything here is vectorized over the batch: no Python loop over examples or tokens.
"""

from objspec.runtime.attention import (
    factorization_order,
    permutation_masks,
    target_mapping_dense,
    window_spans,
)
from objspec.runtime.batch import Batch, BatchError, content_index, read_batch
from objspec.runtime.collator import Collator
from objspec.runtime.document import (
    move_within,
    ngram_blocks,
    permute_sentences,
    rotate,
    sentence_order,
    shuffle_ngrams,
)
from objspec.runtime.heads import MLMHead, Seq2SeqHead, SpanBoundaryHead, TiedDecoder
from objspec.runtime.models import TinyEncoder, TinySeq2Seq
from objspec.runtime.replace import DELETED, IGNORE_INDEX, labels_at, replace_selected
from objspec.runtime.rewrite import (
    choose_member,
    decoder_only_outputs,
    encoder_decoder_outputs,
    fragment,
    merge_members,
    merge_rows,
    positions_like,
    prepend,
    random_segmentation,
    random_spans_noise,
    rank_among,
    rewrite,
    run_start_position,
    run_starts,
    sentinels_at,
    shift_right,
    suffix,
    t5_lengths,
    t5_noise_counts,
)
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
    "DELETED",
    "IGNORE_INDEX",
    "Batch",
    "BatchError",
    "Collator",
    "Keys",
    "MLMHead",
    "Seq2SeqHead",
    "SpanBoundaryHead",
    "Spans",
    "TiedDecoder",
    "TinyEncoder",
    "TinySeq2Seq",
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
    "move_within",
    "ngram_blocks",
    "shuffle_ngrams",
    "permute_sentences",
    "rotate",
    "sentence_order",
    "choose_member",
    "decoder_only_outputs",
    "merge_members",
    "merge_rows",
    "prepend",
    "suffix",
    "t5_lengths",
    "factorization_order",
    "permutation_masks",
    "target_mapping_dense",
    "window_spans",
    "encoder_decoder_outputs",
    "fragment",
    "positions_like",
    "random_segmentation",
    "random_spans_noise",
    "rank_among",
    "rewrite",
    "run_start_position",
    "run_starts",
    "sentinels_at",
    "shift_right",
    "t5_noise_counts",
]

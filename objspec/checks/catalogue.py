"""The checks of one objective, each with the promise it verifies."""

from __future__ import annotations

from objspec.checks.framework import Check
from objspec.checks.pairs import (
    check_factorization,
    check_pair_labels,
    check_pair_rates,
    check_pairs,
    check_segments,
    check_translation,
    check_unilm,
    check_unilm_rates,
)
from objspec.checks.rewrites import (
    check_decoder_inputs,
    check_deletion,
    check_document_target,
    check_fragment_lengths,
    check_frequency,
    check_infilling,
    check_packed,
    check_permutation,
    check_rotation,
    check_shuffle,
    check_views,
)
from objspec.checks.selection import (
    check_batch_invariance,
    check_budget,
    check_epochs,
    check_epochs_change,
    check_labels,
    check_mix,
    check_rate,
    check_span_support,
    check_untouched,
    check_whole_words,
)
from objspec.checks.targets import check_reconstruct, check_t5_counts

CHECKS: tuple[Check, ...] = (
    Check(
        "labels",
        "labels are the original tokens, exactly at the changed/selected positions",
        check_labels,
    ),
    Check(
        "untouched",
        "special tokens, padding and excluded positions are never selected or changed",
        check_untouched,
    ),
    Check(
        "budget",
        "the number of selected tokens per row follows the budget's rounding",
        check_budget,
    ),
    Check(
        "whole_words",
        "units (words, sentences, runs of a unit field) are selected whole (one budget cut "
        "per row for spans)",
        check_whole_words,
    ),
    Check(
        "span_support",
        "spans are contiguous and no longer than the length law allows",
        check_span_support,
    ),
    Check(
        "batch_invariance",
        "an example is corrupted the same alone or in any batch",
        check_batch_invariance,
    ),
    Check(
        "epochs",
        "the same seed and epoch reproduce the corruption; static masks cycle",
        check_epochs,
    ),
    Check("dynamic", "dynamic masks change from one epoch to the next", check_epochs_change, True),
    Check(
        "rate",
        "the Bernoulli selection rate matches the spec (6-sigma binomial bound)",
        check_rate,
        True,
    ),
    Check("mix", "the replacement mix matches the spec (6-sigma binomial bound)", check_mix, True),
    Check(
        "document_target",
        "the target is the original row, and decoder inputs are it shifted right",
        check_document_target,
    ),
    Check(
        "deletion",
        "the input is the original with exactly the budget's tokens deleted, specials kept",
        check_deletion,
    ),
    Check(
        "infilling",
        "the input is the original with its spans collapsed, masked or deleted, and insertions",
        check_infilling,
    ),
    Check(
        "permutation",
        "the input is the row with its whole sentences reordered, specials in place",
        check_permutation,
    ),
    Check(
        "rotation",
        "the input is the row rotated between its end tokens",
        check_rotation,
    ),
    Check(
        "shuffle",
        "round(rate x unselected / 3) trigrams, each a reordering of its own tokens, labelled",
        check_shuffle,
    ),
    Check(
        "pairs",
        "each row is [CLS] A [SEP] B [SEP] of its document, by the relation its label says",
        check_pairs,
    ),
    Check(
        "pair_labels",
        "an example draws the same relation alone or in any batch",
        check_pair_labels,
    ),
    Check(
        "pair_rates",
        "the relations are drawn with the spec's shares (6-sigma binomial bound)",
        check_pair_rates,
        True,
    ),
    Check(
        "segments",
        "each row is [CLS] A [SEP] B [SEP] of its document with the budget's MLM targets",
        check_segments,
    ),
    Check(
        "translation",
        "rows are </s> x </s> y </s>, positions restart at y, langs per sentence, MLM budget",
        check_translation,
    ),
    Check(
        "unilm",
        "each row's self-attention mask is exactly its drawn type's; padding is never attended",
        check_unilm,
    ),
    Check(
        "unilm_rates",
        "the mask types are drawn with the spec's shares (6-sigma binomial bound)",
        check_unilm_rates,
        True,
    ),
    Check(
        "frequency",
        "frequency weighting selects rare tokens more often than common ones (6 sigma)",
        check_frequency,
        True,
    ),
    Check(
        "factorization",
        "the attention (perm_mask, or perm_order expanded) is a factorization order: targets"
        " see earlier targets only, never themselves; non-targets see no target;"
        " target_positions lists the targets in order",
        check_factorization,
    ),
    Check(
        "reconstruct",
        "inputs and targets interleave back to the original; sentinels distinct and in order",
        check_reconstruct,
    ),
    Check(
        "t5_counts",
        "noise tokens and spans per row equal T5's formulas (round half to even)",
        check_t5_counts,
    ),
)

CHECKS += (
    Check(
        "views",
        "contrastive views are the clean row, [CLS] + the selected tokens, or the positive",
        check_views,
    ),
    Check(
        "fragment_lengths",
        "fragment lengths follow the lowered law (6-sigma binomial bound per length)",
        check_fragment_lengths,
        True,
    ),
)

CHECKS += (
    Check(
        "packed",
        "a decoder_only row is its input (prefix_mask) then its target, labelled exactly there",
        check_packed,
    ),
    Check(
        "decoder_inputs",
        "decoder outputs have the labels' shape and mask; a sequence target is read shifted right",
        check_decoder_inputs,
    ),
)

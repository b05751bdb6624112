"""Spec-derived property checks of a compiled collator, run with Hypothesis.

Each :class:`Check` states one promise the spec makes (labels exactly at the selected positions,
specials and padding untouched, the budget's rounding, whole words, span lengths in the law's
support, the replacement mix, batch invariance, epoch keying) and tests it on batches drawn by
Hypothesis over batch sizes, row lengths, padding, vocabulary sizes and seeds. ``objspec check``
and the test suite run the same checks; Hypothesis runs derandomized, so results never flake.

One module per concern: ``framework`` (cases, collation, what was selected), ``selection``
(labels, budgets, units, rates, the mix), ``rewrites`` (views, fragments, documents, deletion,
infilling, transforms), ``pairs`` (sentence pairs, UniLM, translation, permutation),
``targets`` (T5's targets), ``catalogue`` (the checks above, each with its promise),
``decoder`` (causal LM, FIM, CM3, GLM), ``composed`` (mixtures and compositions) and ``run``
(which checks apply, running them).
"""

from __future__ import annotations

from objspec.checks.composed import (
    _MEMBERS as _MEMBERS,
)
from objspec.checks.composed import (
    COMPOSITION_CHECKS as COMPOSITION_CHECKS,
)
from objspec.checks.composed import (
    MIXTURE_CHECKS as MIXTURE_CHECKS,
)
from objspec.checks.composed import (
    _check_rates_by_member as _check_rates_by_member,
)
from objspec.checks.composed import (
    check_composed as check_composed,
)
from objspec.checks.composed import (
    check_mixture_members as check_mixture_members,
)
from objspec.checks.composed import (
    check_mixture_rates as check_mixture_rates,
)
from objspec.checks.composed import (
    member_compiled as member_compiled,
)
from objspec.checks.decoder import (
    SAME_LENGTH_CHECKS as SAME_LENGTH_CHECKS,
)
from objspec.checks.decoder import (
    BlankRow as BlankRow,
)
from objspec.checks.decoder import (
    _blank_rows as _blank_rows,
)
from objspec.checks.decoder import (
    _end_id as _end_id,
)
from objspec.checks.decoder import (
    _exclusions as _exclusions,
)
from objspec.checks.decoder import (
    _fim_ids as _fim_ids,
)
from objspec.checks.decoder import (
    _fim_layouts as _fim_layouts,
)
from objspec.checks.decoder import (
    _fim_pieces as _fim_pieces,
)
from objspec.checks.decoder import (
    _moved_spans as _moved_spans,
)
from objspec.checks.decoder import (
    _span_counts as _span_counts,
)
from objspec.checks.decoder import (
    _with_end as _with_end,
)
from objspec.checks.decoder import (
    check_blank_positions as check_blank_positions,
)
from objspec.checks.decoder import (
    check_blanks as check_blanks,
)
from objspec.checks.decoder import (
    check_block_order as check_block_order,
)
from objspec.checks.decoder import (
    check_fim as check_fim,
)
from objspec.checks.decoder import (
    check_fim_rates as check_fim_rates,
)
from objspec.checks.decoder import (
    check_moved_spans as check_moved_spans,
)
from objspec.checks.decoder import (
    check_sequence as check_sequence,
)
from objspec.checks.decoder import (
    check_span_counts as check_span_counts,
)
from objspec.checks.decoder import (
    check_split as check_split,
)
from objspec.checks.framework import (
    CLS as CLS,
)
from objspec.checks.framework import (
    FIM_TOKENS as FIM_TOKENS,
)
from objspec.checks.framework import (
    FIRST_WORD as FIRST_WORD,
)
from objspec.checks.framework import (
    GLM_TOKENS as GLM_TOKENS,
)
from objspec.checks.framework import (
    MASK as MASK,
)
from objspec.checks.framework import (
    MODE_TOKENS as MODE_TOKENS,
)
from objspec.checks.framework import (
    PAD as PAD,
)
from objspec.checks.framework import (
    SEP as SEP,
)
from objspec.checks.framework import (
    UNK as UNK,
)
from objspec.checks.framework import (
    Z_BOUND as Z_BOUND,
)
from objspec.checks.framework import (
    Case as Case,
)
from objspec.checks.framework import (
    Check as Check,
)
from objspec.checks.framework import (
    CheckFailure as CheckFailure,
)
from objspec.checks.framework import (
    CheckResult as CheckResult,
)
from objspec.checks.framework import (
    _collate as _collate,
)
from objspec.checks.framework import (
    _collator as _collator,
)
from objspec.checks.framework import (
    _excluded as _excluded,
)
from objspec.checks.framework import (
    _fail as _fail,
)
from objspec.checks.framework import (
    _inputs as _inputs,
)
from objspec.checks.framework import (
    _selected as _selected,
)
from objspec.checks.framework import (
    big_case as big_case,
)
from objspec.checks.framework import (
    cases as cases,
)
from objspec.checks.framework import (
    declared_fields as declared_fields,
)
from objspec.checks.framework import (
    sentinel_count as sentinel_count,
)
from objspec.checks.framework import (
    synthetic_counts as synthetic_counts,
)
from objspec.checks.framework import (
    synthetic_tables as synthetic_tables,
)
from objspec.checks.framework import (
    synthetic_vocab as synthetic_vocab,
)
from objspec.checks.framework import (
    unit_starts as unit_starts,
)
from objspec.checks.framework import (
    with_fields as with_fields,
)
from objspec.checks.pairs import (
    _members as _members,
)
from objspec.checks.pairs import (
    _occurs_from as _occurs_from,
)
from objspec.checks.pairs import (
    _unilm_mask as _unilm_mask,
)
from objspec.checks.pairs import (
    check_factorization as check_factorization,
)
from objspec.checks.pairs import (
    check_pair_labels as check_pair_labels,
)
from objspec.checks.pairs import (
    check_pair_rates as check_pair_rates,
)
from objspec.checks.pairs import (
    check_pairs as check_pairs,
)
from objspec.checks.pairs import (
    check_segments as check_segments,
)
from objspec.checks.pairs import (
    check_translation as check_translation,
)
from objspec.checks.pairs import (
    check_unilm as check_unilm,
)
from objspec.checks.pairs import (
    check_unilm_rates as check_unilm_rates,
)
from objspec.checks.rewrites import (
    _blocks_available as _blocks_available,
)
from objspec.checks.rewrites import (
    _fragment_size as _fragment_size,
)
from objspec.checks.rewrites import (
    _infills as _infills,
)
from objspec.checks.rewrites import (
    _sentence_orders as _sentence_orders,
)
from objspec.checks.rewrites import (
    _targets as _targets,
)
from objspec.checks.rewrites import (
    check_decoder_inputs as check_decoder_inputs,
)
from objspec.checks.rewrites import (
    check_deletion as check_deletion,
)
from objspec.checks.rewrites import (
    check_document_target as check_document_target,
)
from objspec.checks.rewrites import (
    check_fragment_lengths as check_fragment_lengths,
)
from objspec.checks.rewrites import (
    check_frequency as check_frequency,
)
from objspec.checks.rewrites import (
    check_infilling as check_infilling,
)
from objspec.checks.rewrites import (
    check_packed as check_packed,
)
from objspec.checks.rewrites import (
    check_permutation as check_permutation,
)
from objspec.checks.rewrites import (
    check_rotation as check_rotation,
)
from objspec.checks.rewrites import (
    check_shuffle as check_shuffle,
)
from objspec.checks.rewrites import (
    check_views as check_views,
)
from objspec.checks.run import (
    CHECKS as CHECKS,
)
from objspec.checks.run import (
    FORM_CHECKS as FORM_CHECKS,
)
from objspec.checks.run import (
    _hypothesis as _hypothesis,
)
from objspec.checks.run import (
    _storage_outside_cwd as _storage_outside_cwd,
)
from objspec.checks.run import (
    applicable as applicable,
)
from objspec.checks.run import (
    run_check as run_check,
)
from objspec.checks.run import (
    run_checks as run_checks,
)
from objspec.checks.selection import (
    KEY_OUTPUTS as KEY_OUTPUTS,
)
from objspec.checks.selection import (
    _binomial_ok as _binomial_ok,
)
from objspec.checks.selection import (
    _check_decoder_reads_previous as _check_decoder_reads_previous,
)
from objspec.checks.selection import (
    _check_rates_per_example as _check_rates_per_example,
)
from objspec.checks.selection import (
    _corruption as _corruption,
)
from objspec.checks.selection import (
    _decisions as _decisions,
)
from objspec.checks.selection import (
    _expected_budget as _expected_budget,
)
from objspec.checks.selection import (
    _longest_word as _longest_word,
)
from objspec.checks.selection import (
    _masks_in_place as _masks_in_place,
)
from objspec.checks.selection import (
    _mix_counts as _mix_counts,
)
from objspec.checks.selection import (
    _random_law as _random_law,
)
from objspec.checks.selection import (
    _same as _same,
)
from objspec.checks.selection import (
    check_batch_invariance as check_batch_invariance,
)
from objspec.checks.selection import (
    check_budget as check_budget,
)
from objspec.checks.selection import (
    check_epochs as check_epochs,
)
from objspec.checks.selection import (
    check_epochs_change as check_epochs_change,
)
from objspec.checks.selection import (
    check_labels as check_labels,
)
from objspec.checks.selection import (
    check_mix as check_mix,
)
from objspec.checks.selection import (
    check_rate as check_rate,
)
from objspec.checks.selection import (
    check_span_support as check_span_support,
)
from objspec.checks.selection import (
    check_untouched as check_untouched,
)
from objspec.checks.selection import (
    check_whole_words as check_whole_words,
)
from objspec.checks.targets import (
    _rows as _rows,
)
from objspec.checks.targets import (
    _split_target as _split_target,
)
from objspec.checks.targets import (
    check_reconstruct as check_reconstruct,
)
from objspec.checks.targets import (
    check_t5_counts as check_t5_counts,
)
from objspec.checks.targets import (
    t5_counts as t5_counts,
)

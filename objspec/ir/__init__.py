"""The objective IR: frozen Pydantic models, validated, every node with its source location.

:func:`build_objective` takes the parser's located dict form, reads each statement's clauses into
model fields (unknown words get a did-you-mean), validates the models and reports every fault as
a located :class:`~objspec.errors.SpecError`. All semantic checks live here, none in the parser.

One module per concept: ``base`` (limits, the base node), ``selection`` (inputs, units, laws,
budgets, selections), ``statements`` (replacement, predictions, transforms, pairs, attention,
output, loss, heads, views, packing, masks), ``objective`` (one objective and its cross-statement
rules), ``composed`` (mixtures and compositions), ``words`` (what each statement accepts),
``selection_reader`` and ``reader`` (clauses to fields: values, laws and selections; the other
statements) and ``build`` (the located dict form to a validated spec).
"""

from __future__ import annotations

from objspec.ir.base import (
    MAX_ALPHA as MAX_ALPHA,
)
from objspec.ir.base import (
    MAX_COPIES as MAX_COPIES,
)
from objspec.ir.base import (
    MAX_WEIGHT as MAX_WEIGHT,
)
from objspec.ir.base import (
    MIN_WINDOW_RATE as MIN_WINDOW_RATE,
)
from objspec.ir.base import (
    RATE_TOLERANCE as RATE_TOLERANCE,
)
from objspec.ir.base import (
    SHADOWED_MODULES as SHADOWED_MODULES,
)
from objspec.ir.base import (
    Identifier as Identifier,
)
from objspec.ir.base import (
    Node as Node,
)
from objspec.ir.base import (
    ObjectiveName as ObjectiveName,
)
from objspec.ir.base import (
    Rate as Rate,
)
from objspec.ir.base import (
    _dedup as _dedup,
)
from objspec.ir.base import (
    _fail as _fail,
)
from objspec.ir.base import (
    _identifier as _identifier,
)
from objspec.ir.base import (
    _not_a_module as _not_a_module,
)
from objspec.ir.base import (
    _pct as _pct,
)
from objspec.ir.base import (
    text_problem as text_problem,
)
from objspec.ir.build import (
    BOUND_WORDS as BOUND_WORDS,
)
from objspec.ir.build import (
    FIELD_NAMES as FIELD_NAMES,
)
from objspec.ir.build import (
    MEMBER_FORBIDS as MEMBER_FORBIDS,
)
from objspec.ir.build import (
    REQUIRED_USAGE as REQUIRED_USAGE,
)
from objspec.ir.build import (
    TASK_OWN as TASK_OWN,
)
from objspec.ir.build import (
    _build_composition as _build_composition,
)
from objspec.ir.build import (
    _build_mixture as _build_mixture,
)
from objspec.ir.build import (
    _diagnostic_from_pydantic as _diagnostic_from_pydantic,
)
from objspec.ir.build import (
    _limit as _limit,
)
from objspec.ir.build import (
    _read_statements as _read_statements,
)
from objspec.ir.build import (
    _sub_objective as _sub_objective,
)
from objspec.ir.build import (
    _validated as _validated,
)
from objspec.ir.build import (
    build_objective as build_objective,
)
from objspec.ir.composed import (
    Composition as Composition,
)
from objspec.ir.composed import (
    Member as Member,
)
from objspec.ir.composed import (
    Mixture as Mixture,
)
from objspec.ir.composed import (
    Spec as Spec,
)
from objspec.ir.composed import (
    Task as Task,
)
from objspec.ir.objective import (
    Objective as Objective,
)
from objspec.ir.reader import (
    BLANKS_USAGE as BLANKS_USAGE,
)
from objspec.ir.reader import (
    FIM_USAGE as FIM_USAGE,
)
from objspec.ir.reader import (
    HEAD_USAGE as HEAD_USAGE,
)
from objspec.ir.reader import (
    TRANSFORM_USAGE as TRANSFORM_USAGE,
)
from objspec.ir.reader import (
    TRANSFORMS as TRANSFORMS,
)
from objspec.ir.reader import (
    _head_value as _head_value,
)
from objspec.ir.reader import (
    _Reader as _Reader,
)
from objspec.ir.selection import (
    MAX_SPAN_COUNT as MAX_SPAN_COUNT,
)
from objspec.ir.selection import (
    MOST_ZERO_SPANS as MOST_ZERO_SPANS,
)
from objspec.ir.selection import (
    RESERVED_FIELDS as RESERVED_FIELDS,
)
from objspec.ir.selection import (
    RUN_SELECTIONS as RUN_SELECTIONS,
)
from objspec.ir.selection import (
    Bernoulli as Bernoulli,
)
from objspec.ir.selection import (
    Budget as Budget,
)
from objspec.ir.selection import (
    CountedSpans as CountedSpans,
)
from objspec.ir.selection import (
    Exact as Exact,
)
from objspec.ir.selection import (
    Fragment as Fragment,
)
from objspec.ir.selection import (
    InputSpec as InputSpec,
)
from objspec.ir.selection import (
    Law as Law,
)
from objspec.ir.selection import (
    NoSelection as NoSelection,
)
from objspec.ir.selection import (
    RandomSpans as RandomSpans,
)
from objspec.ir.selection import (
    RateLaw as RateLaw,
)
from objspec.ir.selection import (
    Selection as Selection,
)
from objspec.ir.selection import (
    Spans as Spans,
)
from objspec.ir.selection import (
    Suffix as Suffix,
)
from objspec.ir.selection import (
    Unit as Unit,
)
from objspec.ir.selection import (
    Windows as Windows,
)
from objspec.ir.selection import (
    _field_name as _field_name,
)
from objspec.ir.selection_reader import (
    SELECT_USAGE as SELECT_USAGE,
)
from objspec.ir.selection_reader import (
    _loc as _loc,
)
from objspec.ir.selection_reader import (
    _show as _show,
)
from objspec.ir.statements import (
    FIM_TOKENS as FIM_TOKENS,
)
from objspec.ir.statements import (
    GLM_TOKENS as GLM_TOKENS,
)
from objspec.ir.statements import (
    HEAD_PARAMS as HEAD_PARAMS,
)
from objspec.ir.statements import (
    LENGTH_CHANGING as LENGTH_CHANGING,
)
from objspec.ir.statements import (
    MODEL_HEADS as MODEL_HEADS,
)
from objspec.ir.statements import (
    Action as Action,
)
from objspec.ir.statements import (
    Attention as Attention,
)
from objspec.ir.statements import (
    Exclusion as Exclusion,
)
from objspec.ir.statements import (
    Head as Head,
)
from objspec.ir.statements import (
    HeadParam as HeadParam,
)
from objspec.ir.statements import (
    HeadValue as HeadValue,
)
from objspec.ir.statements import (
    Loss as Loss,
)
from objspec.ir.statements import (
    Masks as Masks,
)
from objspec.ir.statements import (
    Output as Output,
)
from objspec.ir.statements import (
    Pack as Pack,
)
from objspec.ir.statements import (
    Pair as Pair,
)
from objspec.ir.statements import (
    PairShare as PairShare,
)
from objspec.ir.statements import (
    Predict as Predict,
)
from objspec.ir.statements import (
    Replacement as Replacement,
)
from objspec.ir.statements import (
    Share as Share,
)
from objspec.ir.statements import (
    Transform as Transform,
)
from objspec.ir.statements import (
    Views as Views,
)
from objspec.ir.words import (
    ACTIONS as ACTIONS,
)
from objspec.ir.words import (
    ATTENTIONS as ATTENTIONS,
)
from objspec.ir.words import (
    BUDGET_BASES as BUDGET_BASES,
)
from objspec.ir.words import (
    BUDGET_FLAGS as BUDGET_FLAGS,
)
from objspec.ir.words import (
    BUDGET_OF as BUDGET_OF,
)
from objspec.ir.words import (
    BUDGET_OPTIONS as BUDGET_OPTIONS,
)
from objspec.ir.words import (
    EXCLUSIONS as EXCLUSIONS,
)
from objspec.ir.words import (
    KEEP_ALL as KEEP_ALL,
)
from objspec.ir.words import (
    LOSS_AVERAGES as LOSS_AVERAGES,
)
from objspec.ir.words import (
    LOSS_WEIGHTS as LOSS_WEIGHTS,
)
from objspec.ir.words import (
    LOSSES as LOSSES,
)
from objspec.ir.words import (
    MASKS as MASKS,
)
from objspec.ir.words import (
    OUTPUTS as OUTPUTS,
)
from objspec.ir.words import (
    PERMUTATION_LAYOUTS as PERMUTATION_LAYOUTS,
)
from objspec.ir.words import (
    PREDICTIONS as PREDICTIONS,
)
from objspec.ir.words import (
    RANDOM_SOURCES as RANDOM_SOURCES,
)
from objspec.ir.words import (
    REPLACE_MODES as REPLACE_MODES,
)
from objspec.ir.words import (
    RESERVED_ATTENTIONS as RESERVED_ATTENTIONS,
)
from objspec.ir.words import (
    RESERVED_STATEMENTS as RESERVED_STATEMENTS,
)
from objspec.ir.words import (
    SELECT_KINDS as SELECT_KINDS,
)
from objspec.ir.words import (
    UNITS as UNITS,
)
from objspec.ir.words import (
    VIEWS as VIEWS,
)
from objspec.names import UNILM_MASKS as UNILM_MASKS

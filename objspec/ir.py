"""The objective IR: frozen Pydantic models, validated, every node with its source location.

:func:`build_objective` takes the parser's located dict form, reads each statement's clauses into
model fields (unknown words get a did-you-mean), validates the models and reports every fault as
a located :class:`~objspec.errors.SpecError`. All semantic checks live here, none in the parser.
"""

from __future__ import annotations

import hashlib
import keyword
import math
import sys
import unicodedata
from collections.abc import Callable, Sequence
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from objspec import distributions
from objspec.distributions import MAX_LENGTH
from objspec.errors import Diagnostic, Loc, SpecError, did_you_mean
from objspec.names import PAIR_RELATIONS, UNILM_MASKS

RATE_TOLERANCE = 1e-9
# Limits that keep what compiles small and runnable: no count past MAX_LENGTH tokens, no weight
# that overflows a loss, no exponent that underflows every frequency weight to zero.
MAX_WEIGHT = 1e6
MAX_ALPHA = 10.0
MAX_COPIES = 65_536
MIN_WINDOW_RATE = 1e-6


def _identifier(name: str) -> str:
    if not name.isidentifier() or not name.isascii() or keyword.iskeyword(name):
        raise _fail(
            f"{name!r} is not a valid objective name",
            "use a Python identifier that is not a keyword, e.g. my_objective",
        )
    return name


Identifier = Annotated[str, AfterValidator(_identifier)]

# The modules an objective's name must not be: its compiled file, NAME.py, would shadow them.
SHADOWED_MODULES = frozenset(sys.stdlib_module_names) | {
    "objspec",
    "compiler",
    "torch",
    "numpy",
    "lark",
    "pydantic",
    "hypothesis",
    "tokenizers",
    "rich",
    "transformers",
    "accelerate",
    "lightning",
    "pytest",
}


def _not_a_module(name: str) -> str:
    if name in SHADOWED_MODULES:
        raise _fail(
            f"objective name {name!r} is the name of the module {name!r}: its compiled file "
            f"{name}.py would shadow it",
            f"rename it, e.g. {name}_objective",
        )
    return name


ObjectiveName = Annotated[str, AfterValidator(_identifier), AfterValidator(_not_a_module)]


def text_problem(text: str) -> str | None:
    """Why ``text`` (a quoted string of a spec) cannot be used, or None: a control character
    (C0, DEL, C1) or a Unicode line or paragraph separator, any of which could end a line."""
    for char in text:
        if unicodedata.category(char) in ("Cc", "Zl", "Zp"):
            return f"contains the control character U+{ord(char):04X}"
    return None


def _fail(message: str, hint: str | None = None, at: Any = None) -> PydanticCustomError:
    """A validation failure whose message and hint survive Pydantic's wrapping. ``at``, a node
    of the spec, locates it at that statement (when the spec wrote one) rather than at the
    objective: a rule that ties statements together names the one to change."""
    where = at if isinstance(at, Loc) else getattr(at, "loc", None)
    return PydanticCustomError(
        "objspec",
        message.replace("{", "{{").replace("}", "}}"),
        {"hint": hint, "at": where},
    )


def _pct(x: float) -> str:
    return f"{x * 100:g}%"


class Node(BaseModel):
    """Base of every IR node: frozen, no unknown fields, a source location."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    loc: Loc | None = Field(default=None, repr=False)


Rate = Annotated[float, Field(ge=0.0, le=1.0)]


class InputSpec(Node):
    """What one example is: a single sequence (a document, with ``sentence_ids`` for the
    document objectives), or ``parallel``: a sentence and its translation (XLM's TLM)."""

    kind: Literal["single", "parallel"] = "single"


# Batch keys a declared unit field must not be: the reader's own inputs and the outputs.
RESERVED_FIELDS = frozenset(
    {
        "input_ids",
        "word_ids",
        "sentence_ids",
        "token_type_ids",
        "position_ids",
        "translation_ids",
        "positive_ids",
        "view_input_ids",
        "decoder_input_ids",
        "document_ids",
        "block_position_ids",
    }
)


def _field_name(name: str) -> str:
    if not (name.isidentifier() and name.isascii() and name.endswith("_ids")):
        raise _fail(f"unit field {name!r} is not a per-token field name ending in '_ids'")
    if name in RESERVED_FIELDS:
        instead = {"word_ids": "unit word", "sentence_ids": "unit sentence"}.get(name)
        raise _fail(
            f"{name!r} is a batch key objspec reads or writes itself",
            f"write '{instead}'" if instead else "name the field e.g. entity_ids",
        )
    return name


class Unit(Node):
    """What is selected: tokens, whole words (all pieces of a word together), whole
    sentences (``sentence_ids``), or the runs of a declared per-token field (``entity_ids``:
    equal ids in a row are one unit, -1 a token of its own; ERNIE's phrases and entities)."""

    kind: Literal["token", "word", "sentence", "field"] = "token"
    field: Annotated[str, AfterValidator(_field_name)] | None = None

    @model_validator(mode="after")
    def _field_with_kind(self) -> Unit:
        if (self.kind == "field") != (self.field is not None):
            raise _fail("a unit field goes with the field kind")
        return self

    @property
    def describe(self) -> str:
        return self.field if self.field is not None else self.kind


class Law(Node):
    """A span-length law; ``table`` is its exact finite lowering."""

    name: str
    args: tuple[float, ...] = ()
    kwargs: tuple[tuple[str, float], ...] = ()
    bound: Literal["truncated", "clipped", "on"] | None = None
    low: int | None = None
    high: int | None = None

    @field_validator("name")
    @classmethod
    def _known_law(cls, name: str) -> str:
        if name not in distributions.LAW_NAMES:
            raise _fail(f"unknown law {name!r}", did_you_mean(name, distributions.LAW_NAMES))
        return name

    @model_validator(mode="after")
    def _buildable(self) -> Law:
        try:
            self.table  # noqa: B018 - building the table is the check
        except distributions.LawError as exc:
            raise _fail(str(exc), exc.hint) from None
        return self

    @cached_property
    def table(self) -> distributions.LengthTable:
        return distributions.build_law(
            self.name, self.args, dict(self.kwargs), self.bound, self.low, self.high
        )

    def describe(self) -> str:
        return distributions.describe_law(
            self.name, self.args, dict(self.kwargs), self.bound, self.low, self.high
        )


class Budget(Node):
    """How many tokens or units a row gets: ``rounding(rate x count)``, clamped to [min, max].

    The count is the row's candidate tokens (``tokens``), its candidate units (``units``), or
    every token of the row, specials and other excluded tokens included (``all_tokens``: Google
    BERT's ``len(tokens)``, which counts [CLS] and [SEP] though they are never masked); the
    budget then spends tokens."""

    rate: Rate
    of: Literal["tokens", "units", "all_tokens"] = "tokens"
    rounding: Literal["round", "ceil", "floor", "stochastic"] = "round"
    min: int = Field(default=0, ge=0, le=MAX_LENGTH)
    max: int | None = Field(default=None, ge=0, le=MAX_LENGTH)

    @model_validator(mode="after")
    def _ordered(self) -> Budget:
        if self.max is not None and self.max < self.min:
            raise _fail(f"budget max {self.max} is below its min {self.min}")
        return self


class RateLaw(Node):
    """A rate drawn once per example: uniform on [low, high) (masked diffusion's t)."""

    name: Literal["uniform"] = "uniform"
    low: Rate
    high: Rate

    @model_validator(mode="after")
    def _an_interval(self) -> RateLaw:
        if not self.low < self.high:
            raise _fail(f"rate law uniform({self.low:g}, {self.high:g}) needs low < high")
        return self

    def describe(self) -> str:
        return f"uniform({self.low:g}, {self.high:g})"


class Bernoulli(Node):
    """Each candidate unit independently with probability ``rate`` (HF's MLM collator), or with
    a probability drawn per example from ``rate_law`` (MDLM, LLaDA)."""

    kind: Literal["bernoulli"] = "bernoulli"
    rate: Rate | None = None
    rate_law: RateLaw | None = None

    @model_validator(mode="after")
    def _one_rate(self) -> Bernoulli:
        if (self.rate is None) == (self.rate_law is None):
            raise _fail(
                "'select bernoulli' takes a rate or a rate law, one of them",
                "e.g. 'select bernoulli 15%' or 'select bernoulli rate ~ uniform(0.001, 1)'",
            )
        return self


class Exact(Node):
    """Exactly ``budget`` units per row, without replacement: uniformly (Google BERT), or with
    ``alpha`` each token weighted by ``count^-alpha`` from a count table given at run time (XLM)."""

    kind: Literal["exact"] = "exact"
    budget: Budget
    alpha: float | None = Field(default=None, gt=0.0, le=MAX_ALPHA)


MOST_ZERO_SPANS = 0.99  # a span law drawing length 0 more often needs 100+ draws per unit


class Spans(Node):
    """Non-overlapping spans with lengths (in units) drawn from ``length``, up to ``budget``."""

    kind: Literal["spans"] = "spans"
    length: Law
    budget: Budget

    @model_validator(mode="after")
    def _some_positive_length(self) -> Spans:
        zero = self.length.table.prob_of(0)
        if zero > MOST_ZERO_SPANS:
            raise _fail(
                f"span length law {self.length.describe()} draws length 0 with probability "
                f"{zero:.4g}: at most {MOST_ZERO_SPANS:.0%}, or its spans would hardly cover "
                "anything",
                "BART's poisson(lambda=3) draws length 0 with probability 5%",
            )
        return self


MAX_SPAN_COUNT = 256  # InCoder's cap; each row draws twice as many span ends


class CountedSpans(Node):
    """A number of spans per row drawn from ``count`` (CM3, InCoder: Poisson(1), at least 1),
    each span's two ends uniform over the row's document (``ends uniform``: lengths relative to
    the document, not a law in tokens). Spans are at least one token long and one token apart,
    so each is its own run; a row holds at most ``(n + 1) // 2`` of them."""

    kind: Literal["counted_spans"] = "counted_spans"
    count: Law
    ends: Literal["uniform"] = "uniform"

    @model_validator(mode="after")
    def _at_least_one(self) -> CountedSpans:
        table = self.count.table
        if table.low < 1:
            raise _fail(
                f"span count law {self.count.describe()} draws 0 spans",
                "truncate it to at least one span, e.g. 'count ~ poisson(lambda=1) truncated "
                "1..16' (CM3, InCoder)",
            )
        if table.high > MAX_SPAN_COUNT:
            raise _fail(
                f"span count law {self.count.describe()} draws up to {table.high} spans: "
                f"at most {MAX_SPAN_COUNT}",
                f"bound it, e.g. 'truncated 1..{MAX_SPAN_COUNT}' (InCoder's cap)",
            )
        return self


class RandomSpans(Node):
    """T5's random segmentation: ``round(density x n)`` noise tokens in ``round(noise / mean)``
    spans, lengths a uniform random composition, alternating with non-noise spans."""

    kind: Literal["random_spans"] = "random_spans"
    density: float = Field(gt=0.0, lt=1.0)
    mean: float = Field(ge=1.0, le=MAX_LENGTH)
    random_roll: bool = False


class Fragment(Node):
    """One contiguous fragment per row, its start uniform: ``budget`` tokens (MASS), or a
    length drawn from ``length`` (InfoWord's n-gram), cut to the row's candidates."""

    kind: Literal["fragment"] = "fragment"
    budget: Budget | None = None
    length: Law | None = None

    @model_validator(mode="after")
    def _one_size(self) -> Fragment:
        if (self.budget is None) == (self.length is None):
            raise _fail(
                "'select fragment' takes a budget or a length law, not both",
                "e.g. 'budget 50% of tokens' (MASS) or 'select fragment length ~ LAW' (InfoWord)",
            )
        return self


class Suffix(Node):
    """A suffix of each row's candidates, ``round(1 + u x (n - 1))`` tokens with u uniform on
    [0, 2 x rate) (UL2's S-denoiser as llm-foundry draws it; mean about ``rate`` of the row),
    at least one token left before it."""

    kind: Literal["suffix"] = "suffix"
    rate: float = Field(gt=0.0, le=0.5)


class Windows(Node):
    """XLNet's permutation-LM targets as Hugging Face places them: consecutive windows of
    ``floor(n / rate)`` tokens, each holding one span of n ~ ``length`` at a uniform offset."""

    kind: Literal["windows"] = "windows"
    length: Law
    rate: float = Field(ge=MIN_WINDOW_RATE, le=1.0)

    @model_validator(mode="after")
    def _positive_lengths(self) -> Windows:
        if self.length.table.low < 1:
            raise _fail(f"window span law {self.length.describe()} allows length 0")
        return self


class NoSelection(Node):
    """Nothing is selected: the objective's noise is a document transform alone."""

    kind: Literal["none"] = "none"


Selection = Annotated[
    Bernoulli
    | Exact
    | Spans
    | CountedSpans
    | RandomSpans
    | Fragment
    | Suffix
    | Windows
    | NoSelection,
    Field(discriminator="kind"),
]
RUN_SELECTIONS = (
    Spans,
    CountedSpans,
    RandomSpans,
    Fragment,
    Suffix,
)  # selections made of contiguous spans

Action = Literal["mask", "random", "keep", "delete", "sentinel", "similar"]
LENGTH_CHANGING = ("delete", "sentinel")


class Share(Node):
    action: Action
    share: Rate


class Replacement(Node):
    """What happens to selected tokens: a mix of actions, drawn per token or once per span."""

    per: Literal["token", "span"]
    shares: tuple[Share, ...]
    collapse: bool = False  # each span becomes one token (BART's replace_length=1)
    # where random tokens (and a 'similar' action's fallback) come from: the non-special
    # vocabulary uniformly, by corpus frequency (the run-time token_counts), or a run-time pool
    random_from: Literal["vocabulary", "unigram", "pool"] = "vocabulary"

    @model_validator(mode="after")
    def _a_distribution(self) -> Replacement:
        seen: set[str] = set()
        for s in self.shares:
            if s.action in seen:
                raise _fail(f"action {s.action!r} appears twice in the replacement mix")
            seen.add(s.action)
        total = sum(s.share for s in self.shares)
        if abs(total - 1.0) > RATE_TOLERANCE:
            parts = " + ".join(_pct(s.share) for s in self.shares)
            raise _fail(
                f"replacement mix sums to {_pct(total)}, expected 100%",
                f"{parts} = {_pct(total)}; the shares of mask/random/keep must add up to 100%",
            )
        return self

    def share_of(self, action: str) -> float:
        return sum(s.share for s in self.shares if s.action == action)


# GLM's blank infilling: the token before each span in Part B and the one after it
# ([sop], [eop]), THUDM/GLM's spelling.
GLM_TOKENS = ("<|startofpiece|>", "<|endofpiece|>")


class Predict(Node):
    """The targets: the original token at every selected position (MLM; MASS's fragment), the
    whole original sequence (BART), the noise spans delimited by their sentinels (T5), or the
    spans as blanks (GLM: each span after ``tokens[0]`` and before ``tokens[1]``, in Part B,
    in a random order when ``shuffled``)."""

    target: Literal["selected", "all", "sentinels", "label", "views", "sequence", "blanks"] = (
        "selected"
    )
    shuffled: bool = False
    tokens: tuple[str, str] = GLM_TOKENS

    @model_validator(mode="after")
    def _blank_options(self) -> Predict:
        if self.target != "blanks" and (self.shuffled or self.tokens != GLM_TOKENS):
            raise _fail("'shuffled' and 'tokens' are options of 'predict spans as blanks'")
        for text in self.tokens:
            problem = text_problem(text) if text and text.strip() == text else None
            if not text or text.strip() != text:
                problem = "is empty or has surrounding spaces"
            if problem is not None:
                raise _fail(
                    f"blank token {text!r} {problem}",
                    'e.g. tokens ["<|startofpiece|>", "<|endofpiece|>"]',
                )
        if len(set(self.tokens)) != 2:
            raise _fail("the two blank tokens ([sop], [eop]) must differ")
        return self


# Fill-in-the-middle's sentinels (prefix, middle, suffix), StarCoder's spelling.
FIM_TOKENS = ("<fim_prefix>", "<fim_middle>", "<fim_suffix>")


class Transform(Node):
    """A document or word-order noise: permute ``rate`` of the sentences before the selection
    (BART); rotate the row to a random start, with probability ``rate``, after the replacement
    (BART); shuffle the tokens of ``rate`` of the row's trigrams, outside the selection, and
    predict them too (StructBERT's word objective); or fill-in-the-middle (``fim``): with
    probability ``rate`` a row's document is cut at two uniform points into prefix, middle and
    suffix and rearranged PSM, or SPM with probability ``spm``, around the sentinel ``tokens``
    (prefix, middle, suffix; special tokens looked up by text)."""

    kind: Literal["permute_sentences", "rotate", "shuffle_trigrams", "fim"]
    rate: float = Field(default=1.0, gt=0.0, le=1.0)
    spm: float = Field(default=0.0, ge=0.0, le=1.0)
    tokens: tuple[str, str, str] = FIM_TOKENS

    @model_validator(mode="after")
    def _fim_options(self) -> Transform:
        if self.kind != "fim" and (self.spm or self.tokens != FIM_TOKENS):
            raise _fail("'spm' and 'tokens' are options of 'transform fim'")
        for text in self.tokens:
            if not text or not text.isprintable() or text.strip() != text:
                raise _fail(
                    f"FIM token {text!r} is not printable text without surrounding spaces",
                    'e.g. tokens ["<fim_prefix>", "<fim_middle>", "<fim_suffix>"]',
                )
        if len(set(self.tokens)) != 3:
            raise _fail("the three FIM tokens must differ")
        return self


class PairShare(Node):
    relation: Literal["next", "swapped", "previous", "random"]
    share: Rate


class Pair(Node):
    """Sentence-pair construction: each row's document split into A and B at a sentence
    boundary, laid out ``[CLS] A [SEP] B [SEP]`` (``next``), ``[CLS] B [SEP] A [SEP]``
    (``swapped`` / ``previous``) or with another row's B (``random``). The label is the index
    of the relation in the mix, in the order written (BERT: next 0, random 1)."""

    shares: tuple[PairShare, ...]

    @model_validator(mode="after")
    def _a_distribution(self) -> Pair:
        names = [s.relation for s in self.shares]
        if len(set(names)) != len(names):
            raise _fail("a relation appears twice in the pair mix")
        if {"swapped", "previous"} <= set(names):
            raise _fail("'swapped' and 'previous' are the same relation", "keep one")
        total = sum(s.share for s in self.shares)
        if abs(total - 1.0) > RATE_TOLERANCE:
            raise _fail(f"pair mix sums to {_pct(total)}, expected 100%")
        if len(self.shares) < 2 and names != ["next"]:
            raise _fail(
                "a pair mix needs two relations, or 'next 100%' for segments alone",
                "e.g. 'pair next 50%, random 50%'",
            )
        return self

    @property
    def labelled(self) -> bool:
        """Whether a relation is drawn (and predicted); 'next 100%' only makes segments."""
        return len(self.shares) > 1

    @property
    def label_key(self) -> str:
        """The Hugging Face name of the label: NSP's, SOP's, or a 3-way sentence structure."""
        names = {s.relation for s in self.shares}
        if names == {"next", "random"}:
            return "next_sentence_label"
        if names <= {"next", "swapped", "previous"}:
            return "sentence_order_label"
        return "sentence_structure_label"


class Attention(Node):
    """Who attends to whom: everyone (``bidirectional``); in the decoder-only form ``causal``
    (each token sees itself and the tokens before it) or ``prefix`` (causal, and bidirectional
    within the row's input, ``prefix_mask``: the form's default); XLNet's ``permutation``: a random
    factorization order over the targets, written in ``layout`` ``dense`` (``perm_mask`` and
    ``target_mapping``, (B, L, L) each, Hugging Face's inputs) or ``sparse`` (the order itself,
    ``perm_order`` (B, L), expanded on the model's device); or ``unilm``: one of UniLM's
    self-attention masks per example, drawn with ``mix``."""

    kind: Literal["bidirectional", "permutation", "unilm", "causal", "prefix"] = "bidirectional"
    layout: Literal["dense", "sparse"] = "dense"
    mix: tuple[
        tuple[Literal["bidirectional", "left_to_right", "right_to_left", "seq2seq"], float], ...
    ] = ()

    @model_validator(mode="after")
    def _a_distribution(self) -> Attention:
        if self.layout != "dense" and self.kind != "permutation":
            raise _fail("a layout goes with permutation attention only")
        if self.kind != "unilm":
            return self
        total = sum(p for _, p in self.mix)
        if abs(total - 1.0) > RATE_TOLERANCE or any(p < 0 for _, p in self.mix):
            raise _fail(
                f"the attention mix sums to {_pct(total)}, expected 100%",
                "e.g. unilm(bidirectional=1/3, seq2seq=1/3, left_to_right=1/6, right_to_left=1/6)",
            )
        return self


class Output(Node):
    """The batch form: one sequence with same-length labels (``encoder``), encoder inputs and
    decoder targets (``encoder_decoder``), or both packed into one row (``decoder_only``)."""

    kind: Literal["encoder", "encoder_decoder", "decoder_only"] = "encoder"

    @property
    def seq2seq(self) -> bool:
        return self.kind != "encoder"


class Loss(Node):
    """The loss of the labels: cross-entropy, each label weighted by its example's inverse
    rate (``inverse_rate``: masked diffusion's 1/t) or not, averaged ``over`` the labelled
    positions (``selected``), the batch's real tokens (``tokens``: MDLM's denominator) or its
    examples, each example's sum divided by its candidate count (``examples``: LLaDA's
    fine-tuning, per answer length)."""

    name: Literal["cross_entropy"] = "cross_entropy"
    weight: Literal["none", "inverse_rate"] = "none"
    over: Literal["selected", "tokens", "examples"] = "selected"

    @property
    def weighted(self) -> bool:
        """True when the labels carry weights (``label_weights``) beyond a plain mean."""
        return self.weight != "none" or self.over != "selected"


class Head(Node):
    """A loss head and its weight in the total loss."""

    name: Literal[
        "mlm",
        "span_boundary",
        "seq2seq",
        "sentence_classification",
        "replaced_token_detection",
        "contrastive",
    ]
    params: tuple[tuple[str, HeadValue], ...] = ()
    weight: float = Field(default=1.0, gt=0.0, le=MAX_WEIGHT)

    @model_validator(mode="after")
    def _known_params(self) -> Head:
        allowed = HEAD_PARAMS[self.name]
        for key, value in self.params:
            if key not in allowed:
                raise _fail(
                    f"head {self.name!r} has no parameter {key!r}",
                    did_you_mean(key, allowed) if allowed else "it takes no parameters",
                )
            problem = allowed[key].problem(value)
            if problem:
                raise _fail(f"{self.name}({key}=...) {problem}, got {value!r}", at=self)
        return self

    def param(self, key: str) -> HeadValue:
        return dict(self.params).get(key, HEAD_PARAMS[self.name][key].default)

    @property
    def resolved(self) -> tuple[tuple[str, HeadValue], ...]:
        """Every parameter, the defaults filled in (stated in the generated code)."""
        return tuple((key, self.param(key)) for key in HEAD_PARAMS[self.name])


HeadValue = int | float | str


class HeadParam(BaseModel):
    """One head parameter: its default and what values it takes."""

    model_config = ConfigDict(frozen=True)
    default: HeadValue
    kind: Literal["count", "fraction", "positive", "flag", "choice"]
    choices: tuple[str, ...] = ()
    low: float = 0.0  # a count's or a positive number's least value (a fraction's is > 0)
    high: float = 1.0  # its greatest: the head's tables and arithmetic stay small and finite

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is not valid here, or None."""
        if isinstance(value, str):
            text = text_problem(value)
            if text is not None:
                return text
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if number and not math.isfinite(value):
            return "must be finite"
        if self.kind == "count" and not (isinstance(value, int) and value >= 1):
            return "must be a positive integer"
        if self.kind == "flag" and value not in (0, 1):
            return "must be 0 or 1"
        if self.kind == "fraction" and not (number and 0 < value <= 1):
            return "must be a fraction in (0, 1]"
        if self.kind == "positive" and not (number and value > 0):
            return "must be a positive number"
        if self.kind == "choice" and value not in self.choices:
            return "must be one of " + ", ".join(self.choices)
        if self.kind in ("count", "positive") and not self.low <= value <= self.high:
            return f"must be between {self.low:g} and {self.high:g}"
        return None


HEAD_PARAMS: dict[str, dict[str, HeadParam]] = {
    "mlm": {},
    "span_boundary": {
        "max_span": HeadParam(default=10, kind="count", low=1, high=4096),
        "position_dim": HeadParam(default=200, kind="count", low=1, high=4096),
    },
    "seq2seq": {},
    "sentence_classification": {},
    "replaced_token_detection": {
        "generator_size": HeadParam(default=0.25, kind="fraction"),
        "temperature": HeadParam(default=1.0, kind="positive", low=1e-3, high=1e3),
    },
    "contrastive": {
        "temperature": HeadParam(default=0.05, kind="positive", low=1e-3, high=1e3),
        "pooling": HeadParam(default="first", kind="choice", choices=("first", "mean")),
        "similarity": HeadParam(default="cosine", kind="choice", choices=("cosine", "dot")),
        "projection": HeadParam(default=1, kind="flag"),
    },
}
MODEL_HEADS = ("replaced_token_detection", "contrastive")  # heads that run the model again


class Views(Node):
    """The two sides of a contrastive head, per row: the clean row twice, encoded with
    different dropout (SimCSE); the clean row and its corruption; the corrupted row and its
    selected tokens as their own row (InfoWord's masked sentence and n-gram); or the row and
    the example's own ``positive_ids`` (supervised SimCSE's entailed sentence, CERT's
    back-translation)."""

    kind: Literal["dropout", "corrupted", "selected", "paired"]


class Pack(Node):
    """Documents packed into rows of ``size`` columns, or into one padding-free row
    (``flat``): the collator's default ``pack`` (runtime/packing.py)."""

    size: int | Literal["flat"]

    @field_validator("size")
    @classmethod
    def _a_width(cls, size: int | str) -> int | str:
        if isinstance(size, int) and not 1 <= size <= MAX_LENGTH:
            raise _fail(f"pack {size}: a row is 1 to {MAX_LENGTH} tokens")
        return size


class Masks(Node):
    """Dynamic: new masks every epoch (RoBERTa). Static: ``copies`` fixed masks cycled (BERT)."""

    kind: Literal["dynamic", "static"] = "dynamic"
    copies: int = Field(default=1, ge=1, le=MAX_COPIES)


Exclusion = Literal["special", "first", "last", "prompt"]


class Objective(Node):
    """One objective as the spec states it. The compiler sees only this."""

    name: ObjectiveName
    input: InputSpec = InputSpec()
    unit: Unit = Unit()
    exclude: tuple[Exclusion, ...] = ("special",)
    select: Selection
    replace: Replacement
    predict: Predict
    transforms: tuple[Transform, ...] = ()
    pair: Pair | None = None
    attention: Attention = Attention()
    output: Output = Output()
    loss: Loss = Loss()
    heads: tuple[Head, ...]
    masks: Masks = Masks()
    views: Views | None = None
    pack: Pack | None = None
    source: str = Field(default="", repr=False)
    path: str | None = Field(default=None, repr=False)

    @model_validator(mode="after")
    def _consistent(self) -> Objective:
        names = [h.name for h in self.heads]
        for i, h in enumerate(self.heads):
            if h.name in names[:i]:
                raise _fail(f"head {h.name!r} is declared twice", at=h)
        if "span_boundary" in names and not isinstance(self.select, Spans):
            raise _fail(
                "the span_boundary head needs spans",
                "use 'select spans length ~ LAW' with a 'budget' statement",
                at=self.select,
            )
        per_unit = isinstance(self.select, Exact | Bernoulli)  # one decision per unit
        if self.replace.per == "span" and not (isinstance(self.select, RUN_SELECTIONS) or per_unit):
            raise _fail(
                "'replace per span' needs spans or units to decide on",
                "use 'select spans ...', 'select random_spans ...', 'select exact' or "
                "'select bernoulli' (one decision per unit) or 'replace per token'",
                at=self.replace,
            )
        self._consistent_decoder()
        self._consistent_loss()
        self._consistent_tables()
        self._consistent_pack()
        self._consistent_rewrite(names)
        self._consistent_collapse()
        kinds = [t.kind for t in self.transforms]
        for i, t in enumerate(self.transforms):
            if t.kind in kinds[:i]:
                raise _fail("a transform is given twice", at=t)
        if self.attention.kind == "unilm":
            seq2seq = dict(self.attention.mix).get("seq2seq", 0.0) > 0
            if self.output.seq2seq or self.predict.target != "selected":
                raise _fail(
                    "UniLM's attention masks go with a masked LM of one sequence",
                    at=self.attention,
                )
            if seq2seq and (self.pair is None or self.pair.labelled):
                raise _fail(
                    "the seq2seq mask needs source and target segments",
                    "add 'pair next 100%' (segments A and B, as token_type_ids)",
                    at=self.attention,
                )
        if self.attention.kind == "permutation" and (
            self.output.seq2seq or self.predict.target != "selected"
        ):
            raise _fail(
                "permutation attention predicts the selected tokens of one sequence",
                "write 'predict original at selected' without an 'output' statement",
                at=self.attention,
            )
        self._consistent_pair(names)
        self._consistent_model_heads(names)
        if self.input.kind == "parallel" and (
            self.output.seq2seq or self.predict.target != "selected" or self.pair is not None
        ):
            raise _fail(
                "'input parallel' joins a sentence and its translation for a masked LM",
                "write 'predict original at selected' without 'pair' or 'output' (XLM's TLM)",
                at=self.input,
            )
        documents = [t for t in self.transforms if t.kind not in ("shuffle_trigrams", "fim")]
        if documents and self.predict.target != "all":
            raise _fail(
                "a document transform needs the original document as the target",
                "write 'predict original at all' with 'output encoder_decoder'",
                at=documents[0],
            )
        shuffles = [t for t in self.transforms if t.kind == "shuffle_trigrams"]
        if shuffles and (self.output.seq2seq or isinstance(self.select, NoSelection)):
            raise _fail(
                "'transform shuffle trigrams' goes with a masked-LM selection",
                "StructBERT: 'select exact' with a budget, 'predict original at selected'",
                at=shuffles[0],
            )
        return self

    def _head(self, name: str) -> Head | None:
        """The head of that name, if the objective declares it."""
        return next((h for h in self.heads if h.name == name), None)

    @property
    def inserts(self) -> bool:
        """Whether zero-length spans insert tokens (a span law with length 0, as BART's)."""
        return isinstance(self.select, Spans) and self.select.length.table.low < 1

    def _consistent_loss(self) -> None:
        """A weighted loss or another average: the masked-LM head of a same-length encoder
        batch, and a per-example rate where the weight is its inverse."""
        if not self.loss.weighted:
            return
        sel = self.select
        if self.loss.weight == "inverse_rate":
            if not isinstance(sel, Bernoulli) or sel.rate_law is None:
                raise _fail(
                    "'weight inverse_rate' needs a rate drawn per example",
                    "write 'select bernoulli rate ~ uniform(0.001, 1)'",
                    at=self.loss,
                )
            if sel.rate_law.low <= 0.0:
                raise _fail(
                    "'weight inverse_rate' divides by the rate: its law must stay above 0",
                    "e.g. 'rate ~ uniform(0.001, 1)' (MDLM's and LLaDA's eps)",
                    at=sel,
                )
        names = [h.name for h in self.heads]
        plain = self.output.kind == "encoder" and self.predict.target == "selected"
        if not plain or "mlm" not in names or "replaced_token_detection" in names:
            raise _fail(
                "a weighted loss or one averaged over tokens or examples is the masked-LM "
                "head's, on a same-length encoder batch",
                "use 'output encoder', 'predict original at selected' and 'head mlm'",
                at=self.loss,
            )

    def _consistent_pack(self) -> None:
        """Packing lays rows of one sequence end to end: not per-example, per-pair or
        square attention outputs, decoder targets or GLM's 2D positions."""
        if self.pack is None:
            return
        blocked = {
            "an encoder-decoder batch (its targets)": self.output.kind == "encoder_decoder",
            "sentence pairs": self.pair is not None,
            "contrastive views": self.views is not None,
            "permutation or UniLM attention": self.attention.kind in ("permutation", "unilm"),
            "GLM's 2D positions": self.predict.target == "blanks",
        }
        what = [name for name, hit in blocked.items() if hit]
        if what:
            raise _fail(
                f"this objective's batch cannot be packed: {what[0]}",
                "packing takes encoder and decoder-only rows of one sequence",
                at=self.pack,
            )

    def _consistent_tables(self) -> None:
        """Random tokens from a run-time source only where random tokens are drawn; similar
        tokens only where each selected token keeps its place."""
        actions = {s.action for s in self.replace.shares if s.share > 0}
        if self.replace.random_from != "vocabulary" and not actions & {"random", "similar"}:
            raise _fail(
                f"random tokens 'from {self.replace.random_from}', but the mix draws none",
                at=self.replace,
            )
        if "similar" in actions and (self.replace.collapse or self.inserts):
            raise _fail(
                "'similar' replaces each selected token with a similar one: it cannot collapse "
                "spans or insert tokens",
                "write 'replace per token: similar 80%, random 10%, keep 10%'",
                at=self.replace,
            )

    def _consistent_decoder(self) -> None:
        """The decoder-only form's attentions and targets: a causal LM, a prefix LM, FIM; and
        the copy-task trap refused."""
        attention = self.attention.kind
        decoder = self.output.kind == "decoder_only"
        fim = next((t for t in self.transforms if t.kind == "fim"), None)
        if attention in ("causal", "prefix") and not decoder:
            raise _fail(
                f"'attention {attention}' is an attention of the decoder-only form",
                "add 'output decoder_only'",
                at=self.attention,
            )
        if self.predict.target == "sequence":
            if not decoder:
                raise _fail(
                    "'predict sequence' trains a decoder on every token of its row",
                    "add 'output decoder_only' and 'attention causal'",
                    at=self.predict,
                )
            if attention != "causal":
                raise _fail(
                    "'predict sequence' trains every token, so none may see the tokens after it",
                    "write 'attention causal' (a bidirectional prefix would see its own targets)",
                    at=self.attention if self.attention.loc is not None else self.predict,
                )
            sentinels = self.replace.share_of("sentinel") > 0
            if not (isinstance(self.select, NoSelection) or sentinels):
                raise _fail(
                    "'predict sequence' trains on the row itself: it goes with 'select none' "
                    "(a causal LM, FIM) or spans moved to the row's end after sentinels",
                    "write 'select none', or 'replace per span: sentinel 100%' (CM3-style); "
                    "a prefix LM is 'select suffix RATE' with 'predict original at selected'",
                    at=self.predict,
                )
        if fim is not None:
            if not (isinstance(self.select, NoSelection) and self.predict.target == "sequence"):
                raise _fail(
                    "'transform fim' rearranges the document of a causal LM",
                    "write 'select none', 'predict sequence', 'attention causal' and "
                    "'output decoder_only'",
                    at=fim,
                )
            if len(self.transforms) > 1:
                raise _fail("'transform fim' is the row's one transform", at=fim)
        if self.predict.target == "blanks":
            self._consistent_blanks()
        copies = isinstance(self.select, NoSelection) and not self.transforms
        if decoder and copies and self.predict.target == "all":
            raise _fail(
                "with 'select none' the input is the original row: in the decoder-only form "
                "'predict original at all' would train a copy task (the text twice)",
                "write 'predict sequence' with 'attention causal' for a causal LM",
                at=self.predict,
            )

    def _consistent_blanks(self) -> None:
        """GLM's blank infilling: spans of a law from 1 up, each collapsed to one [MASK] in
        Part A and predicted in Part B by a prefix LM."""
        usage = (
            "GLM: 'select spans length ~ LAW' (from 1 up) with a budget, "
            "'replace per span, collapse: mask 100%', 'attention prefix', "
            "'output decoder_only'"
        )
        if self.output.kind != "decoder_only":
            raise _fail(
                "'predict spans as blanks' lays out Part A and Part B in one decoder-only row",
                "write 'output decoder_only'",
                at=self.output if self.output.loc is not None else self.predict,
            )
        if self.attention.kind == "causal":
            raise _fail(
                "GLM's Part A is attended bidirectionally: 'attention causal' would hide it",
                "write 'attention prefix' (Part A bidirectional, Part B causal)",
                at=self.attention,
            )
        if not isinstance(self.select, Spans) or self.inserts:
            raise _fail(
                "'predict spans as blanks' needs spans of at least one token",
                usage,
                at=self.select,
            )
        collapsed = self.replace.collapse and self.replace.share_of("mask") == 1.0
        if not collapsed:
            raise _fail(
                "each blank is one [MASK] in Part A",
                "write 'replace per span, collapse: mask 100%'",
                at=self.replace,
            )
        if self.transforms:
            raise _fail(
                "'predict spans as blanks' takes no transform", usage, at=self.transforms[0]
            )

    def _consistent_pair(self, heads: Sequence[str]) -> None:
        """A pair's label is predicted by the sentence classification head, alone (this
        version composes no masked LM with it)."""
        if self.pair is None:
            if self.predict.target == "label" or "sentence_classification" in heads:
                raise _fail(
                    "a sentence label needs a 'pair' statement",
                    "e.g. 'pair next 50%, random 50%'",
                    at=self._head("sentence_classification") or self.predict,
                )
            return
        if not self.pair.labelled:
            if self.predict.target != "selected" or "sentence_classification" in heads:
                raise _fail(
                    "'pair next 100%' makes segments with nothing to classify",
                    "use it with a masked LM (UniLM's seq2seq attention reads the segments)",
                    at=self.pair,
                )
            return
        if not isinstance(self.select, NoSelection) or self.predict.target != "label":
            raise _fail(
                "a pair objective selects nothing and predicts its label",
                "write 'select none' and 'predict label'; compose it with a masked LM in "
                "'task' blocks (see specs/bert.objspec)",
                at=self.pair,
            )
        if self.output.seq2seq or list(heads) != ["sentence_classification"]:
            other = next((h for h in self.heads if h.name != "sentence_classification"), None)
            raise _fail(
                "a pair's label is predicted by the sentence classification head",
                "write 'head sentence_classification' (and no 'output')",
                at=self.output if self.output.seq2seq else other or self.pair,
            )

    def _consistent_model_heads(self, heads: Sequence[str]) -> None:
        """ELECTRA's discriminator needs its generator's masked LM; a contrastive head needs
        views, and views a contrastive head; 'predict views' is a contrastive objective alone."""
        selects = not isinstance(self.select, NoSelection)
        plain = (
            not self.output.seq2seq
            and self.pair is None
            and self.attention.kind == "bidirectional"
            and self.input.kind == "single"
        )
        if "replaced_token_detection" in heads:
            rtd = self._head("replaced_token_detection")
            if "mlm" not in heads or not selects or self.predict.target != "selected":
                raise _fail(
                    "the replaced_token_detection head samples from a generator trained by "
                    "the masked LM of the selected tokens",
                    "add 'head mlm' (the generator's loss) and 'predict original at selected'",
                    at=rtd,
                )
            if not plain or self.views is not None or self.inserts:
                raise _fail(
                    "replaced token detection works on one sequence, token for token", at=rtd
                )
            if set(heads) != {"mlm", "replaced_token_detection"}:
                raise _fail(
                    "replaced token detection trains the generator's 'mlm' and the "
                    "discriminator alone",
                    "other heads would read the discriminator's states of the sampled row",
                    at=rtd,
                )
            if any(s.action in LENGTH_CHANGING for s in self.replace.shares):
                raise _fail("replaced token detection needs the row's length kept", at=rtd)
        if ("contrastive" in heads) != (self.views is not None):
            raise _fail(
                "a contrastive head and a 'views' statement go together",
                "e.g. 'views dropout' with 'head contrastive(temperature=0.05)'",
                at=self.views or self._head("contrastive"),
            )
        if self.views is None:
            if self.predict.target == "views":
                raise _fail(
                    "'predict views' needs a 'views' statement",
                    "e.g. 'views dropout'",
                    at=self.predict,
                )
            return
        if self.predict.target == "views" and set(heads) != {"contrastive"}:
            raise _fail(
                "'predict views' has no token targets: its one head is 'contrastive'",
                "select tokens and 'predict original at selected' for an MLM term",
                at=self.predict,
            )
        if not plain:
            raise _fail(
                "contrastive views are rows of one sequence with bidirectional attention",
                at=self.views,
            )
        if self.views.kind in ("corrupted", "selected") and not selects:
            raise _fail(
                f"'views {self.views.kind}' needs a selection to corrupt",
                "use 'views dropout' with 'select none', or select something",
                at=self.views,
            )
        if (self.predict.target == "views") != (not selects):
            raise _fail(
                "a contrastive objective without a selection predicts its views alone",
                "write 'select none' with 'predict views', or keep the selection with "
                "'predict original at selected' and 'head mlm'",
                at=self.predict,
            )
        if self.inserts or any(s.action in LENGTH_CHANGING for s in self.replace.shares):
            raise _fail(
                "contrastive views keep the row's length (no delete or sentinel)",
                at=self.replace,
            )

    def _consistent_collapse(self) -> None:
        """Zero-length spans insert a token: they need spans decided per span, in a
        sequence-to-sequence form (fairseq's replace_length 1, -1 or 0 with insertions)."""
        if self.inserts and (self.replace.per != "span" or not self.output.seq2seq):
            law = self.select.length.describe()  # type: ignore[union-attr]
            raise _fail(
                f"span length law {law} allows length 0",
                "a zero-length span inserts one token: write 'replace per span[, collapse]: ...' "
                "with 'output encoder_decoder' (BART), or truncate the law to 1..N",
                at=self.select,
            )
        if not self.replace.collapse:
            return
        if self.replace.per != "span" or not isinstance(self.select, Spans):
            raise _fail(
                "'collapse' turns each span into one token, so it needs 'select spans'",
                "write 'replace per span, collapse: mask 90%, random 10%'",
                at=self.replace,
            )
        if any(s.action not in ("mask", "random") for s in self.replace.shares if s.share > 0):
            raise _fail(
                "a collapsed span becomes a mask or a random token",
                "write 'replace per span, collapse: mask 90%, random 10%'",
                at=self.replace,
            )

    def _consistent_rewrite(self, heads: Sequence[str]) -> None:
        """Length-changing actions and sequence targets need an encoder-decoder batch form."""
        sentinel = self.replace.share_of("sentinel") > 0
        changes_length = self.replace.collapse or any(
            self.replace.share_of(a) > 0 for a in LENGTH_CHANGING
        )
        if sentinel and (self.replace.per != "span" or len(self.replace.shares) != 1):
            raise _fail(
                "a sentinel replaces a whole span, alone",
                "write 'replace per span: sentinel 100%'",
                at=self.replace,
            )
        if self.predict.target == "sentinels" and not sentinel:
            raise _fail(
                "'predict spans as sentinels' needs sentinels in the input",
                "write 'replace per span: sentinel 100%'",
                at=self.predict,
            )
        if not self.output.seq2seq:
            if changes_length or self.predict.target not in ("selected", "label", "views"):
                raise _fail(
                    "this objective changes the sequence, so it needs a sequence-to-sequence form",
                    "add 'output encoder_decoder' (or 'output decoder_only')",
                    at=self.replace if changes_length else self.predict,
                )
            if "seq2seq" in heads:
                raise _fail(
                    "the seq2seq head needs decoder targets",
                    "add 'output encoder_decoder'",
                    at=self._head("seq2seq"),
                )
        else:
            if "seq2seq" not in heads or len(heads) != 1:
                raise _fail(
                    f"'output {self.output.kind}' is trained by the seq2seq head alone",
                    "write 'head seq2seq'",
                    at=self.output,
                )
        counts_tokens = RandomSpans | Fragment | Suffix | Windows
        weighted = isinstance(self.select, Exact) and self.select.alpha is not None
        if (isinstance(self.select, counts_tokens) or weighted) and self.unit.kind != "token":
            raise _fail(
                f"'select {self.select.kind}' counts tokens",
                "remove 'unit word' (T5 and MASS have no word units)",
                at=self.unit,
            )

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.source.encode("utf-8")).hexdigest()

    def with_output(self, kind: str) -> Objective:
        """The same objective in another batch form (``encoder_decoder`` / ``decoder_only``),
        validated again: an objective that changes the sequence has no ``encoder`` form."""
        if kind not in OUTPUTS:
            raise SpecError(
                [
                    Diagnostic(
                        f"unknown output form {kind!r}", self.loc, did_you_mean(kind, OUTPUTS)
                    )
                ],
                source=self.source,
                path=self.path,
            )
        fields = dict(self)
        fields["output"] = Output(kind=kind, loc=self.output.loc)  # type: ignore[arg-type]
        try:
            return Objective.model_validate(fields)
        except ValidationError as exc:
            diags = [  # the override, not a statement, is what broke the rule
                Diagnostic(
                    f"with output {kind!r}: {e['msg']}", self.loc, (e.get("ctx") or {}).get("hint")
                )
                for e in exc.errors()
            ]
            raise SpecError(_dedup(diags), source=self.source, path=self.path) from None


class Member(Node):
    """One denoiser of a mixture: its rate, its mode token and its complete objective."""

    name: Identifier
    rate: float = Field(gt=0.0, le=1.0)
    mode: str | None = None
    mode_loc: Loc | None = Field(default=None, repr=False)
    objective: Objective

    @model_validator(mode="after")
    def _plain_mode(self) -> Member:
        problem = text_problem(self.mode) if self.mode is not None else None
        if problem is not None:
            raise _fail(
                f"mode token {self.mode!r} {problem}",
                'a mode token is printable text, e.g. mode "[NLU]"',
                at=self.mode_loc or self.loc,
            )
        return self


class Mixture(Node):
    """Several objectives, one chosen per example with the given rates (UL2's denoisers)."""

    name: ObjectiveName
    per: Literal["example"] = "example"
    members: tuple[Member, ...]
    source: str = Field(default="", repr=False)
    path: str | None = Field(default=None, repr=False)

    @model_validator(mode="after")
    def _a_distribution(self) -> Mixture:
        total = sum(m.rate for m in self.members)
        if abs(total - 1.0) > RATE_TOLERANCE:
            raise _fail(
                f"mixture rates sum to {_pct(total)}, expected 100%",
                " + ".join(f"{m.name} {_pct(m.rate)}" for m in self.members),
            )
        names = [m.name for m in self.members]
        if len(set(names)) != len(names):
            raise _fail("two mixture members share a name")
        modes = [m.mode is None for m in self.members]
        if any(modes) and not all(modes):
            raise _fail("either every member has a mode token or none has", "add 'mode \"[NLU]\"'")
        forms = {m.objective.output.kind for m in self.members}
        if len(forms) != 1:
            raise _fail(
                "a mixture's members are objectives of one output form",
                "put the 'output' statement above the mixture",
            )
        if forms == {"encoder"}:
            self._same_length_members()
            return self
        for m in self.members:
            fim = any(t.kind == "fim" for t in m.objective.transforms)
            if m.objective.predict.target in ("sequence", "blanks") or fim:
                raise _fail(
                    "a mixture's members are denoisers with an input and a target; "
                    "'predict sequence' and 'transform fim' are objectives of their own",
                    at=m.objective.predict if not fim else m.objective.transforms[0],
                )
        return self

    def _same_length_members(self) -> None:
        """An encoder mixture's members each rewrite tokens in place and predict the originals
        at the selected positions, trained by the one masked-LM head: e.g. several MLM rates,
        or token and span masking, in one encoder."""
        for m in self.members:
            o = m.objective
            if m.mode is not None:
                raise _fail(
                    "an encoder mixture keeps each row's length: no mode token",
                    "mode tokens start the input of a sequence-to-sequence member",
                    at=m,
                )
            shaped = o.pair is None and o.views is None and not o.transforms
            plain = o.attention.kind == "bidirectional" and o.predict.target == "selected"
            if not (shaped and plain and [h.name for h in o.heads] == ["mlm"]):
                raise _fail(
                    "an encoder mixture's members are masked LMs of one shape: a selection, "
                    "a replacement and 'predict original at selected', trained by 'head mlm' "
                    "alone (no pair, views, transform or other attention)",
                    at=m,
                )
            if o.loss.weighted:
                raise _fail("an encoder mixture's loss is a plain mean (no weights)", at=o.loss)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.source.encode("utf-8")).hexdigest()

    @property
    def output(self) -> Output:
        return self.members[0].objective.output

    @property
    def masks(self) -> Masks:
        return self.members[0].objective.masks

    def with_output(self, kind: str) -> Mixture:
        """The same mixture with every member in another batch form."""
        members = [
            m.model_copy(update={"objective": m.objective.with_output(kind)}) for m in self.members
        ]
        return self.model_copy(update={"members": tuple(members)})


class Task(Node):
    """One objective of a composition, with the weight its losses carry."""

    name: Identifier
    weight: float = Field(default=1.0, gt=0.0, le=MAX_WEIGHT)
    objective: Objective


class Composition(Node):
    """Objectives trained together on one batch (BERT = MLM + NSP, ALBERT = MLM + SOP): the
    pair task builds ``[CLS] A [SEP] B [SEP]`` rows, the masked-LM task corrupts them."""

    name: ObjectiveName
    tasks: tuple[Task, ...]
    source: str = Field(default="", repr=False)
    path: str | None = Field(default=None, repr=False)

    @model_validator(mode="after")
    def _pair_and_mlm(self) -> Composition:
        pairs = [t for t in self.tasks if t.objective.pair is not None]
        others = [t for t in self.tasks if t.objective.pair is None]
        if len(pairs) != 1 or len(others) != 1:
            raise _fail(
                "this version composes one pair task with one masked-LM task",
                "e.g. 'task mlm:' (select / budget / replace / predict / head mlm) and "
                "'task nsp:' (pair / select none / predict label / head sentence_classification)",
            )
        mlm = others[0].objective
        if mlm.output.seq2seq or mlm.predict.target != "selected" or mlm.transforms:
            raise _fail("the masked-LM task of a composition predicts the selected tokens")
        if mlm.views is not None or any(h.name in MODEL_HEADS for h in mlm.heads):
            raise _fail("this version composes heads that read one pass of the model")
        return self

    @property
    def pair_task(self) -> Task:
        return next(t for t in self.tasks if t.objective.pair is not None)

    @property
    def mlm_task(self) -> Task:
        return next(t for t in self.tasks if t.objective.pair is None)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.source.encode("utf-8")).hexdigest()

    @property
    def output(self) -> Output:
        return self.mlm_task.objective.output

    @property
    def masks(self) -> Masks:
        return self.mlm_task.objective.masks

    @property
    def pair(self) -> Pair | None:
        return self.pair_task.objective.pair

    def with_output(self, kind: str) -> Composition:
        """A composition has the one-sequence form only; any other is an error."""
        tasks = [
            t.model_copy(update={"objective": t.objective.with_output(kind)}) for t in self.tasks
        ]
        return self.model_copy(update={"tasks": tuple(tasks)})


Spec = Objective | Mixture | Composition


# ------------------------------------------------------------------------------------------
# Reading the parser's located dict form into model input.
# ------------------------------------------------------------------------------------------

# Statements the grammar knows, reserved for the families that later issues add.
RESERVED_STATEMENTS: dict[str, str] = {}

SELECT_KINDS = (
    "bernoulli",
    "exact",
    "spans",
    "random_spans",
    "fragment",
    "suffix",
    "windows",
    "none",
)
ATTENTIONS = ("bidirectional", "permutation", "unilm", "causal", "prefix")
PERMUTATION_LAYOUTS = ("dense", "sparse")
RESERVED_ATTENTIONS = ("right_to_left", "seq2seq")
KEEP_ALL = {"per": "token", "shares": [{"action": "keep", "share": 1.0}]}  # with 'select none'
BUDGET_FLAGS = ("round", "ceil", "floor", "stochastic")
BUDGET_OPTIONS = ("min", "max")
BUDGET_OF = ("tokens", "units", "words", "all tokens")
BUDGET_BASES = {"tokens": "tokens", "units": "units", "words": "units", "all tokens": "all_tokens"}
UNITS = ("token", "word", "sentence")
EXCLUSIONS = ("special", "padding", "first", "last", "prompt")
ACTIONS = ("mask", "random", "keep", "delete", "sentinel", "similar")
RANDOM_SOURCES = ("vocabulary", "unigram", "pool")
LOSS_WEIGHTS = ("none", "inverse_rate")
LOSS_AVERAGES = ("selected", "tokens", "examples")
REPLACE_MODES = ("token", "span")
LOSSES = ("cross_entropy",)
OUTPUTS = ("encoder", "encoder_decoder", "decoder_only")
PREDICTIONS: dict[tuple[str, str | None, str | None], str] = {
    ("label", None, None): "label",
    ("original", "at", "selected"): "selected",
    ("original", "at", "all"): "all",
    ("spans", "as", "sentinels"): "sentinels",
    ("views", None, None): "views",
    ("sequence", None, None): "sequence",
    ("spans", "as", "blanks"): "blanks",
}
MASKS = ("dynamic", "static")
VIEWS = ("dropout", "corrupted", "selected", "paired")


class _Reader:
    """Collects diagnostics while turning statements into model input dicts."""

    def __init__(self) -> None:
        self.diagnostics: list[Diagnostic] = []

    def error(self, message: str, loc: Loc | None, hint: str | None = None) -> None:
        self.diagnostics.append(Diagnostic(message, loc, hint))

    def choice(self, word: str, choices: tuple[str, ...], what: str, loc: Loc | None) -> bool:
        if word in choices:
            return True
        self.error(f"unknown {what} {word!r}", loc, did_you_mean(word, choices))
        return False

    def number(self, value: Any, what: str, loc: Loc | None) -> float | None:
        if isinstance(value, dict) and "fraction" in value:
            num, den = value["fraction"]
            if den == 0:
                self.error(f"{what}: division by zero", value["loc"])
                return None
            return num / den
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.error(f"{what} must be a number", _loc(value, loc))
            return None
        if not math.isfinite(value):
            self.error(f"{what} must be finite", loc)
            return None
        return float(value)

    def rate(self, value: Any, what: str, loc: Loc | None) -> float | None:
        x = self.number(value, what, loc)
        if x is not None and not 0.0 <= x <= 1.0:
            self.error(
                f"{what} {x:g} is not a rate between 0 and 1",
                _loc(value, loc),
                f"write a percentage ({x:g}%) or a fraction ({x / 100:g})" if x > 1 else None,
            )
            return None
        return x

    def integer(self, value: Any, what: str, loc: Loc | None) -> int | None:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        self.error(f"{what} must be a whole number, got {_show(value)}", _loc(value, loc))
        return None

    # --- calls ---------------------------------------------------------------------------
    def bare_call(self, call: dict[str, Any], what: str, choices: tuple[str, ...]) -> str | None:
        """A call that must be a plain name (``unit word``)."""
        if not self.choice(call["name"], choices, what, call["loc"]):
            return None
        if call["args"] or call["kwargs"]:
            self.error(f"{what} {call['name']!r} takes no arguments", call["loc"])
        return call["name"]

    def law(self, law: dict[str, Any]) -> dict[str, Any] | None:
        if law["name"] not in distributions.LAW_NAMES:
            self.error(
                f"unknown law {law['name']!r}",
                law["loc"],
                did_you_mean(law["name"], distributions.LAW_NAMES),
            )
            return None
        args = [self.number(a, f"{law['name']} argument", law["loc"]) for a in law["args"]]
        kwargs = [
            (
                kw["keyword"],
                self.number(kw["value"], f"{law['name']}({kw['keyword']}=...)", kw["loc"]),
            )
            for kw in law["kwargs"]
        ]
        keys = [k for k, _ in kwargs]
        for k in set(keys):
            if keys.count(k) > 1:
                self.error(f"parameter {k!r} given twice", law["loc"])
        if None in args or any(v is None for _, v in kwargs):
            return None
        low = high = None
        if law["range"] is not None:
            low = self.integer(law["range"][0], "range start", law["loc"])
            high = self.integer(law["range"][1], "range end", law["loc"])
            if low is None or high is None:
                return None
        return {
            "name": law["name"],
            "args": tuple(args),
            "kwargs": tuple(kwargs),
            "bound": law["bound"],
            "low": low,
            "high": high,
            "loc": law["loc"],
        }

    # --- statements ----------------------------------------------------------------------
    def budget(self, st: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"loc": st["loc"]}
        for clause in st["clauses"]:
            if "amount" in clause:
                if "rate" in out:
                    self.error("the budget gives two rates", clause["loc"])
                out["rate"] = self.rate(clause["amount"], "budget", clause["loc"])
                if clause["of"] is not None:
                    out["of"] = self.budget_basis(clause["of"], clause["of_loc"])
            elif "flag" in clause:
                if self.choice(clause["flag"], BUDGET_FLAGS, "rounding", clause["loc"]):
                    out["rounding"] = clause["flag"]
            elif "option" in clause and "value" in clause:
                if self.choice(clause["option"], BUDGET_OPTIONS, "budget option", clause["loc"]):
                    out[clause["option"]] = self.integer(
                        clause["value"], clause["option"], clause["loc"]
                    )
            else:
                self.error(
                    "a budget has no length law",
                    clause["loc"],
                    "put 'length ~ LAW' on the select line",
                )
        if "rate" not in out:
            self.error("the budget needs a rate, like '15% of tokens'", st["loc"])
        return out

    def budget_basis(self, of: str, loc: Loc | None) -> str | None:
        """``tokens`` / ``units`` / ``words`` / ``all tokens`` -> the IR's basis name."""
        basis = BUDGET_BASES.get(of)
        if basis is not None:
            return basis
        first, _, rest = of.partition(" ")
        if first == "all" and rest:
            self.error(
                f"'all' counts tokens, not {rest}: write 'of all tokens'",
                loc,
                "'all tokens' is every token of the row, [CLS] and [SEP] included "
                "(Google BERT's len(tokens)); 'units' counts candidate units",
            )
        else:
            self.error(f"unknown budget basis {of!r}", loc, did_you_mean(of, BUDGET_OF))
        return None

    def select(self, st: dict[str, Any], budget: dict[str, Any] | None) -> dict[str, Any] | None:
        kind = st["kind"]
        if not self.choice(kind, SELECT_KINDS, "selection", st["loc"]):
            return None
        out: dict[str, Any] = {"kind": kind, "loc": st["loc"]}
        for clause in st["clauses"]:
            word = (
                clause.get("option")
                or clause.get("flag")
                or ("rate" if "amount" in clause else None)
            )
            if word in out:
                self.error(f"'{word}' is given twice", clause["loc"], SELECT_USAGE[kind])
                continue
            if kind in ("bernoulli", "suffix") and "amount" in clause and clause["of"] is None:
                out["rate"] = self.rate(clause["amount"], "selection rate", clause["loc"])
            elif kind == "bernoulli" and clause.get("option") == "rate" and "law" in clause:
                out["rate_law"] = self.rate_law(clause["law"])
            elif kind == "exact" and clause.get("option") == "alpha" and "value" in clause:
                out["alpha"] = self.number(clause["value"], "alpha", clause["loc"])
            elif kind == "windows" and clause.get("option") == "rate" and "value" in clause:
                out["rate"] = self.rate(clause["value"], "window rate", clause["loc"])
            elif (
                kind in ("spans", "windows", "fragment")
                and clause.get("option") == "length"
                and "law" in clause
            ):
                out["length"] = self.law(clause["law"])
            elif kind == "spans" and clause.get("option") == "count" and "law" in clause:
                out["count"] = self.law(clause["law"])
            elif kind == "spans" and clause.get("option") == "ends" and "value" in clause:
                out["ends"] = self.span_ends(clause)
            elif kind == "random_spans" and clause.get("option") == "density":
                out["density"] = self.rate(clause["value"], "noise density", clause["loc"])
            elif kind == "random_spans" and clause.get("option") == "mean":
                out["mean"] = self.number(clause["value"], "mean span length", clause["loc"])
            elif kind == "random_spans" and clause.get("flag") == "random_roll":
                out["random_roll"] = True
            else:
                self.error(
                    f"unexpected clause for 'select {kind}'", clause["loc"], SELECT_USAGE[kind]
                )
        if kind == "windows":
            for key in ("length", "rate"):
                if key not in out:
                    self.error(f"'select windows' needs its {key}", st["loc"], SELECT_USAGE[kind])
            if budget is not None:
                self.error("'select windows' takes no budget", budget["loc"])
        elif kind in ("none", "suffix"):
            if kind == "suffix" and "rate" not in out:
                self.error("'select suffix' needs a rate", st["loc"], SELECT_USAGE[kind])
            if budget is not None:
                self.error(f"'select {kind}' takes no budget", budget["loc"])
        elif kind == "random_spans":
            for key in ("density", "mean"):
                if key not in out:
                    self.error(
                        f"'select random_spans' needs its {key}", st["loc"], SELECT_USAGE[kind]
                    )
            if budget is not None:
                self.error(
                    "'select random_spans' takes no budget",
                    budget["loc"],
                    "the noise density is on the select line",
                )
        elif kind == "bernoulli":
            if "rate" not in out and "rate_law" not in out:
                self.error("'select bernoulli' needs a rate", st["loc"], SELECT_USAGE[kind])
            if budget is not None:
                self.error(
                    "'select bernoulli' takes no budget",
                    budget["loc"],
                    "the rate is on the select line",
                )
        elif kind == "fragment" and "length" in out:
            if budget is not None:
                self.error(
                    "'select fragment length ~ LAW' takes no budget",
                    budget["loc"],
                    "its length law sizes the fragment",
                )
        elif kind == "spans" and ("count" in out or "ends" in out):
            self.counted_spans(out, st, budget)
        else:
            if kind == "spans" and "length" not in out:
                self.error("'select spans' needs a length law", st["loc"], SELECT_USAGE[kind])
            if budget is None:
                self.error(
                    f"'select {kind}' needs a 'budget' statement",
                    st["loc"],
                    "e.g. 'budget 15% of tokens, round'",
                )
            out["budget"] = budget
        return out

    def span_ends(self, clause: dict[str, Any]) -> str | None:
        """``ends uniform``: the one way spans of a drawn count are placed."""
        value = clause["value"]
        word = value.get("word") if isinstance(value, dict) else None
        if word != "uniform":
            self.error(
                f"unknown span ends {_show(value)}",
                _loc(value, clause["loc"]),
                "write 'ends uniform': each span's two ends uniform over the document",
            )
            return None
        return "uniform"

    def counted_spans(
        self, out: dict[str, Any], st: dict[str, Any], budget: dict[str, Any] | None
    ) -> None:
        """``select spans count ~ LAW, ends uniform`` (CM3): no length law, no budget."""
        out["kind"] = "counted_spans"
        usage = "e.g. 'select spans count ~ poisson(lambda=1) truncated 1..16, ends uniform'"
        for key in ("count", "ends"):
            if key not in out:
                self.error(f"spans of a drawn count need their {key}", st["loc"], usage)
        if "length" in out:
            self.error(
                "spans of a drawn count take no length law: their ends are uniform over the "
                "document",
                st["loc"],
                usage,
            )
            del out["length"]
        if budget is not None:
            self.error(
                "spans of a drawn count take no budget",
                budget["loc"],
                "the count law says how many spans; their ends say how long",
            )

    def replace(self, st: dict[str, Any]) -> dict[str, Any] | None:
        modes = st["modes"]
        per = modes[0]
        self.choice(per, REPLACE_MODES, "replacement granularity", st["loc"])
        for extra in modes[1:]:
            if extra != "collapse":
                self.error(
                    f"unknown replacement option {extra!r}",
                    st["loc"],
                    "the one option is 'collapse': 'replace per span, collapse: mask 100%'",
                )
        shares = []
        sources = []
        for sh in st["shares"]:
            if not self.choice(sh["action"], ACTIONS, "action", sh["loc"]):
                continue
            if sh.get("source") is not None:
                sources.append(self.random_source(sh))
            shares.append(
                {
                    "action": sh["action"],
                    "share": self.rate(sh["share"], sh["action"], sh["loc"]),
                    "loc": sh["loc"],
                }
            )
        out = {"per": per, "shares": shares, "collapse": "collapse" in modes, "loc": st["loc"]}
        if sources and None not in sources:
            out["random_from"] = sources[0]
        return out

    def random_source(self, share: dict[str, Any]) -> str | None:
        """``random 10% from unigram``: where random tokens come from (the one action that
        names a source)."""
        if share["action"] != "random":
            self.error(
                f"'{share['action']}' takes no source",
                share["loc"],
                "only random tokens come from somewhere: 'random 10% from unigram' or "
                "'... from pool' (a 'similar' action's fallback draws from the same place)",
            )
            return None
        if not self.choice(share["source"], RANDOM_SOURCES, "random-token source", share["loc"]):
            return None
        return str(share["source"])

    def rate_law(self, law: dict[str, Any]) -> dict[str, Any] | None:
        """``rate ~ uniform(0.001, 1)`` (or ``uniform(low=..., high=...)``): a rate per example."""
        usage = "e.g. 'select bernoulli rate ~ uniform(0.001, 1)'"
        if law["name"] != "uniform" or law["bound"] is not None or law["range"] is not None:
            self.error("a rate per example is drawn from 'uniform(low, high)'", law["loc"], usage)
            return None
        named = {kw["keyword"]: kw["value"] for kw in law["kwargs"]}
        values = [*law["args"], *(named.pop(k) for k in ("low", "high") if k in named)]
        if named or len(values) != 2:
            self.error("uniform(low, high) takes exactly its two bounds", law["loc"], usage)
            return None
        low, high = (self.rate(v, "rate bound", law["loc"]) for v in values)
        if low is None or high is None:
            return None
        return {"low": low, "high": high, "loc": law["loc"]}

    def pack(self, st: dict[str, Any]) -> dict[str, Any] | None:
        """``pack 512`` or ``pack flat``."""
        size = st["size"]
        if size == "flat" or (isinstance(size, int) and not isinstance(size, bool)):
            return {"size": size, "loc": st["loc"]}
        self.error(
            f"pack takes a row width or 'flat', got {_show(size)}",
            st["loc"],
            "e.g. 'pack 512' or 'pack flat'",
        )
        return None

    def unit(self, st: dict[str, Any]) -> dict[str, Any] | None:
        """``unit token|word|sentence``, or ``unit NAME_ids``: a declared per-token field."""
        call = st["call"]
        name = call["name"]
        if name.endswith("_ids") and name not in ("word_ids", "sentence_ids"):
            if call["args"] or call["kwargs"]:
                self.error(f"unit {name!r} takes no arguments", call["loc"])
            return {"kind": "field", "field": name, "loc": st["loc"]}
        if name in ("word_ids", "sentence_ids"):
            self.error(
                f"{name!r} is read by 'unit {name[: -len('_ids')]}'",
                call["loc"],
                f"write 'unit {name[: -len('_ids')]}'",
            )
            return None
        return {"kind": self.bare_call(call, "unit", UNITS), "loc": st["loc"]}

    def loss(self, st: dict[str, Any]) -> dict[str, Any] | None:
        """``loss cross_entropy[, weight inverse_rate][, over tokens]``."""
        out: dict[str, Any] = {
            "name": self.bare_call(st["call"], "loss", LOSSES),
            "loc": st["loc"],
        }
        usage = "e.g. 'loss cross_entropy, weight inverse_rate, over tokens'"
        choices = {"weight": LOSS_WEIGHTS, "over": LOSS_AVERAGES}
        for clause in st["clauses"]:
            option = clause.get("option")
            value = clause.get("value")
            if option not in choices or not isinstance(value, dict) or "word" not in value:
                self.error("unexpected clause for 'loss'", clause["loc"], usage)
            elif option in out:
                self.error(f"'{option}' is given twice", clause["loc"], usage)
            elif self.choice(value["word"], choices[option], f"loss {option}", value["loc"]):
                out[option] = value["word"]
        return out

    def transform(self, st: dict[str, Any]) -> dict[str, Any] | None:
        """``transform permute sentences [RATE]``, ``transform rotate [document] [RATE]`` or
        ``transform shuffle trigrams RATE``."""
        verb = st["kind"]
        if verb == "fim":
            return self.fim(st)
        if not self.choice(verb, (*TRANSFORMS, "fim"), "transform", st["loc"]):
            return None
        obj = TRANSFORMS[verb]
        out: dict[str, Any] = {"kind": verb if verb == "rotate" else f"{verb}_{obj}"}
        named = verb == "rotate"  # 'document' is optional after rotate
        for clause in st["clauses"]:
            word = clause.get("flag", clause.get("option"))
            if word == obj:
                named = True
            if "amount" in clause and clause["of"] is None:
                out["rate"] = self.rate(clause["amount"], f"{verb} rate", clause["loc"])
            elif word == obj and "value" in clause:
                out["rate"] = self.rate(clause["value"], f"{verb} rate", clause["loc"])
            elif word != obj:
                self.error(
                    f"unexpected clause for 'transform {verb}'", clause["loc"], TRANSFORM_USAGE
                )
        if not named:
            self.error(f"'transform {verb}' needs what it permutes", st["loc"], TRANSFORM_USAGE)
        out["loc"] = st["loc"]
        return out

    def fim(self, st: dict[str, Any]) -> dict[str, Any]:
        """``transform fim RATE[, spm RATE][, tokens ["<pre>", "<mid>", "<suf>"]]``."""
        out: dict[str, Any] = {"kind": "fim", "loc": st["loc"]}
        for clause in st["clauses"]:
            word = clause.get("flag", clause.get("option"))
            if "amount" in clause and clause["of"] is None and "rate" not in out:
                out["rate"] = self.rate(clause["amount"], "FIM rate", clause["loc"])
            elif word == "spm" and "value" in clause and "spm" not in out:
                out["spm"] = self.rate(clause["value"], "SPM share", clause["loc"])
            elif word == "tokens" and "tokens" not in out:
                texts = clause.get("value")
                if not (
                    isinstance(texts, list)
                    and len(texts) == 3
                    and all(isinstance(t, str) for t in texts)
                ):
                    self.error("'tokens' takes three quoted strings", clause["loc"], FIM_USAGE)
                    continue
                out["tokens"] = tuple(texts)
            else:
                self.error("unexpected clause for 'transform fim'", clause["loc"], FIM_USAGE)
        return out

    def pair(self, st: dict[str, Any]) -> dict[str, Any]:
        shares = []
        for sh in st["shares"]:
            if self.choice(sh["action"], PAIR_RELATIONS, "pair relation", sh["loc"]):
                share = self.rate(sh["share"], sh["action"], sh["loc"])
                shares.append({"relation": sh["action"], "share": share, "loc": sh["loc"]})
        return {"shares": shares, "loc": st["loc"]}

    def attention(self, st: dict[str, Any]) -> dict[str, Any]:
        name = st["call"]["name"]
        if name in RESERVED_ATTENTIONS:
            self.error(
                f"'attention {name}' is not supported by this version of objspec",
                st["loc"],
                "reserved; this version has " + ", ".join(ATTENTIONS),
            )
            return {"loc": st["loc"]}
        call = st["call"]
        if call["name"] == "unilm":
            mix = []
            for kw in call["kwargs"]:
                if self.choice(kw["keyword"], UNILM_MASKS, "UniLM mask", kw["loc"]):
                    mix.append((kw["keyword"], self.rate(kw["value"], kw["keyword"], kw["loc"])))
            if call["args"] or not mix:
                self.error(
                    "unilm takes its mix by keyword",
                    call["loc"],
                    "unilm(bidirectional=1/3, seq2seq=1/3, left_to_right=1/6, right_to_left=1/6)",
                )
            return {"kind": "unilm", "mix": tuple(mix), "loc": st["loc"]}
        if call["name"] == "permutation" and (call["args"] or call["kwargs"]):
            return self.permutation(call, st["loc"])
        return {"kind": self.bare_call(call, "attention", ATTENTIONS), "loc": st["loc"]}

    def permutation(self, call: dict[str, Any], loc: Loc | None) -> dict[str, Any]:
        """``attention permutation(layout=dense|sparse)``."""
        out: dict[str, Any] = {"kind": "permutation", "loc": loc}
        kwargs = call["kwargs"]
        if call["args"] or len(kwargs) != 1 or kwargs[0]["keyword"] != "layout":
            self.error(
                "permutation takes one keyword, layout",
                call["loc"],
                "attention permutation(layout=sparse) or permutation(layout=dense)",
            )
            return out
        layout = _head_value(kwargs[0]["value"])
        if isinstance(layout, str) and self.choice(
            layout, PERMUTATION_LAYOUTS, "permutation layout", kwargs[0]["loc"]
        ):
            out["layout"] = layout
        elif not isinstance(layout, str):
            self.error(
                "layout is a word: dense or sparse", _loc(kwargs[0]["value"], kwargs[0]["loc"])
            )
        return out

    def head(self, st: dict[str, Any]) -> dict[str, Any]:
        call = st["call"]
        name = call["name"]
        if name not in HEAD_PARAMS:
            self.error(
                f"unknown head {name!r}", call["loc"], did_you_mean(name, tuple(HEAD_PARAMS))
            )
        if call["args"]:
            self.error(
                f"head {name!r} takes keyword arguments only",
                call["loc"],
                f"e.g. {HEAD_USAGE.get(name, name)}",
            )
        params = tuple(
            (kw["keyword"], self.head_value(kw["value"], f"{name}({kw['keyword']}=...)", kw["loc"]))
            for kw in call["kwargs"]
        )
        weight = (
            1.0 if st["weight"] is None else self.number(st["weight"], "head weight", st["loc"])
        )
        return {"name": name, "params": params, "weight": weight, "loc": st["loc"]}

    def head_value(self, value: Any, what: str, loc: Loc | None) -> Any:
        """A head parameter: a number (a fraction computed), a word, or a quoted string."""
        if isinstance(value, dict) and "fraction" in value:
            return self.number(value, what, loc)
        if isinstance(value, dict) and "range" in value or isinstance(value, list):
            shown = "a list" if isinstance(value, list) else f"the range {_show(value)}"
            self.error(
                f"{what} takes a number or a word, not {shown}",
                _loc(value, loc),
                "e.g. head span_boundary(max_span=10, position_dim=200)",
            )
            return None
        return _head_value(value)

    def predict(self, st: dict[str, Any]) -> dict[str, Any]:
        target = PREDICTIONS.get((st["what"], st["prep"], st["where"]))
        if target is None:
            forms = ", ".join(f"'predict {' '.join(w for w in k if w)}'" for k in PREDICTIONS)
            self.error("unknown prediction target", st["loc"], f"valid: {forms}")
            return {"loc": st["loc"]}
        out: dict[str, Any] = {"target": target, "loc": st["loc"]}
        for clause in st.get("clauses") or ():
            word = clause.get("flag", clause.get("option"))
            if target != "blanks":
                self.error(f"'predict {st['what']}' takes no options", clause["loc"], BLANKS_USAGE)
            elif word == "shuffled" and "flag" in clause and "shuffled" not in out:
                out["shuffled"] = True
            elif word == "tokens" and "value" in clause and "tokens" not in out:
                texts = clause["value"]
                if not (
                    isinstance(texts, list)
                    and len(texts) == 2
                    and all(isinstance(t, str) for t in texts)
                ):
                    self.error("'tokens' takes two quoted strings", clause["loc"], BLANKS_USAGE)
                    continue
                out["tokens"] = tuple(texts)
            else:
                self.error(
                    "unexpected clause for 'predict spans as blanks'", clause["loc"], BLANKS_USAGE
                )
        return out

    def masks(self, st: dict[str, Any]) -> dict[str, Any]:
        call = st["call"]
        out: dict[str, Any] = {"loc": st["loc"]}
        if not self.choice(call["name"], MASKS, "masking schedule", call["loc"]):
            return out
        out["kind"] = call["name"]
        if call["args"]:
            self.error(
                "masks takes keyword arguments", call["loc"], "e.g. 'masks static(copies=10)'"
            )
        for kw in call["kwargs"]:
            if call["name"] == "static" and kw["keyword"] == "copies":
                out["copies"] = self.integer(kw["value"], "copies", kw["loc"])
            else:
                self.error(
                    f"unknown parameter {kw['keyword']!r}",
                    kw["loc"],
                    "only 'masks static(copies=N)' takes one",
                )
        return out

    def exclude(self, st: dict[str, Any]) -> tuple[str, ...]:
        words = []
        for n in st["names"]:
            if self.choice(n["word"], EXCLUSIONS, "exclusion", n["loc"]) and n["word"] != "padding":
                words.append(n["word"])
        return tuple(dict.fromkeys(words))


TRANSFORMS = {"permute": "sentences", "rotate": "document", "shuffle": "trigrams"}
TRANSFORM_USAGE = (
    "e.g. 'transform permute sentences 100%', 'transform rotate document 50%' or "
    "'transform shuffle trigrams 5%'"
)
BLANKS_USAGE = (
    "e.g. 'predict spans as blanks, shuffled' (optionally with "
    'tokens ["<|startofpiece|>", "<|endofpiece|>"])'
)
FIM_USAGE = (
    "e.g. 'transform fim 50%, spm 50%' (optionally with "
    'tokens ["<fim_prefix>", "<fim_middle>", "<fim_suffix>"])'
)

SELECT_USAGE = {
    "bernoulli": "e.g. 'select bernoulli 15%'",
    "exact": "e.g. 'select exact' (or 'select exact alpha 0.5', XLM) with 'budget 15% of tokens'",
    "spans": "e.g. 'select spans length ~ geometric(p=0.2) truncated 1..10' with a 'budget', "
    "or 'select spans count ~ poisson(lambda=1) truncated 1..16, ends uniform' (CM3)",
    "random_spans": "e.g. 'select random_spans density 15%, mean 3' (add 'random_roll' to roll)",
    "fragment": "e.g. 'select fragment' with 'budget 50% of tokens, round' (MASS), or "
    "'select fragment length ~ normal(mu=5, sigma=1) clipped 1..10' (InfoWord)",
    "none": "'select none' (a transform is the only noise)",
    "suffix": "e.g. 'select suffix 25%' (UL2's S-denoiser: a prefix-LM split)",
    "windows": "e.g. 'select windows length ~ uniform on 1..5, rate 1/6' (XLNet, as HF)",
}
HEAD_USAGE = {"span_boundary": "head span_boundary(max_span=10, position_dim=200)"}


def _head_value(value: Any) -> Any:
    """A head parameter as written: a number, or a bare word (``pooling=first``) as its text."""
    return value["word"] if isinstance(value, dict) and "word" in value else value


def _loc(value: Any, default: Loc | None) -> Loc | None:
    return value["loc"] if isinstance(value, dict) and "loc" in value else default


def _show(value: Any) -> str:
    if isinstance(value, dict):
        if "word" in value:
            return repr(value["word"])
        if "range" in value:
            return f"{value['range'][0]}..{value['range'][1]}"
        if "fraction" in value:
            return f"{value['fraction'][0]}/{value['fraction'][1]}"
    return repr(value)


def _read_statements(tree: dict[str, Any], reader: _Reader) -> dict[str, Any]:
    """Fold the statement list into Objective fields, reporting duplicates and reserved ones."""
    by_kind: dict[str, dict[str, Any]] = {}
    heads: list[dict[str, Any]] = []
    transforms: list[dict[str, Any] | None] = []
    for st in tree["statements"]:
        kind = st["statement"]
        if kind in RESERVED_STATEMENTS:
            reader.error(
                f"'{kind}' is not supported by this version of objspec",
                st["loc"],
                f"reserved for {RESERVED_STATEMENTS[kind]}",
            )
        elif kind == "head":
            heads.append(reader.head(st))
        elif kind == "transform":
            transforms.append(reader.transform(st))
        elif kind == "pair":
            if "pair" in by_kind:
                reader.error("duplicate 'pair' statement", st["loc"])
            by_kind["pair"] = st
        elif kind in by_kind:
            reader.error(
                f"duplicate '{kind}' statement",
                st["loc"],
                f"first given on line {by_kind[kind]['loc'].line}",
            )
        else:
            by_kind[kind] = st

    fields: dict[str, Any] = {"name": tree["name"], "loc": tree["loc"], "heads": heads}
    fields["transforms"] = [t for t in transforms if t is not None]
    readers: dict[str, Callable[[dict[str, Any]], Any]] = {
        "input": lambda st: {
            "kind": reader.bare_call(st["call"], "input", ("single", "parallel")),
            "loc": st["loc"],
        },
        "unit": reader.unit,
        "exclude": reader.exclude,
        "replace": reader.replace,
        "predict": reader.predict,
        "loss": reader.loss,
        "masks": reader.masks,
        "pack": reader.pack,
        "output": lambda st: {
            "kind": reader.bare_call(st["call"], "output form", OUTPUTS),
            "loc": st["loc"],
        },
        "attention": reader.attention,
        "pair": reader.pair,
        "views": lambda st: {
            "kind": reader.bare_call(st["call"], "views", VIEWS),
            "loc": st["loc"],
        },
    }
    for kind, read in readers.items():
        if kind in by_kind:
            fields[kind] = read(by_kind[kind])
    budget = reader.budget(by_kind["budget"]) if "budget" in by_kind else None
    if "select" in by_kind:
        fields["select"] = reader.select(by_kind["select"], budget)
    elif budget is not None:
        reader.error("a 'budget' without a 'select' statement", budget["loc"])
    selects_nothing = "select" in by_kind and by_kind["select"]["kind"] == "none"
    if selects_nothing:
        if "replace" in by_kind:
            reader.error(
                "'select none' leaves nothing to replace",
                by_kind["replace"]["loc"],
                "remove the 'replace' statement",
            )
        fields["replace"] = dict(KEEP_ALL, loc=by_kind["select"]["loc"])
    for required in ("select", "replace", "predict"):
        if required not in by_kind and not (required == "replace" and selects_nothing):
            reader.error(
                f"the objective has no '{required}' statement",
                tree["name_loc"],
                REQUIRED_USAGE[required],
            )
    if not heads and not reader.diagnostics:
        reader.error("the objective has no 'head' statement", tree["name_loc"], "e.g. 'head mlm'")
    return fields


REQUIRED_USAGE = {
    "select": "e.g. 'select bernoulli 15%'",
    "replace": "e.g. 'replace per token: mask 80%, random 10%, keep 10%'",
    "predict": "e.g. 'predict original at selected'",
}


def build_objective(tree: dict[str, Any], source: str = "", path: str | None = None) -> Spec:
    """Validate the parser's dict form into an :class:`Objective` (or a :class:`Mixture` of
    them). Raises SpecError."""
    mixtures = [st for st in tree["statements"] if st["statement"] == "mixture"]
    if mixtures:
        return _build_mixture(tree, mixtures, source, path)
    tasks = [st for st in tree["statements"] if st["statement"] == "task"]
    if tasks:
        return _build_composition(tree, tasks, source, path)
    reader = _Reader()
    fields = _read_statements(tree, reader)
    if reader.diagnostics:
        raise SpecError(reader.diagnostics, source=source, path=path)
    fields["source"] = source
    fields["path"] = path
    return _validated(Objective, fields, source, path)


def _validated(model: Any, fields: dict[str, Any], source: str, path: str | None) -> Any:
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        diags = [_diagnostic_from_pydantic(err, fields) for err in exc.errors()]
        raise SpecError(_dedup(diags), source=source, path=path) from None


TASK_OWN = ("select", "budget", "replace", "predict", "transform", "pair", "head", "output")
MEMBER_FORBIDS = ("head", "output", "loss", "masks", "input", "mixture", "task", "pack")


def _build_mixture(
    tree: dict[str, Any], mixtures: list[dict[str, Any]], source: str, path: str | None
) -> Mixture:
    """Each member is an objective: the statements above the mixture, then its own (which
    replace those of the same kind)."""
    reader = _Reader()
    if len(mixtures) > 1:
        reader.error("an objective has one mixture", mixtures[1]["loc"])
    mixture = mixtures[0]
    if mixture["per"] != "example":
        reader.error(
            f"a mixture is chosen per example, not per {mixture['per']!r}",
            mixture["loc"],
            "write 'mixture per example:'",
        )
    shared = [st for st in tree["statements"] if st["statement"] != "mixture"]
    for st in shared:
        if st["statement"] in ("select", "budget", "replace", "predict", "transform"):
            reader.error(
                f"'{st['statement']}' belongs inside each mixture member",
                st["loc"],
                "the statements above a mixture are shared: input, unit, exclude, output, "
                "loss, head, masks",
            )
    members: list[dict[str, Any]] = []
    for m in mixture["members"]:
        for st in m["body"]:
            if st["statement"] in MEMBER_FORBIDS:
                reader.error(
                    f"'{st['statement']}' is shared by the whole mixture",
                    st["loc"],
                    "give it once, above 'mixture'",
                )
        mode = mode_loc = None
        for clause in m["clauses"]:
            if clause.get("option") == "mode" and isinstance(clause.get("value"), str):
                mode, mode_loc = clause["value"], clause["loc"]
            else:
                reader.error(
                    "unexpected clause for a mixture member",
                    clause["loc"],
                    "e.g. 'r_short 1/7, mode \"[NLU]\":'",
                )
        fields = _sub_objective(tree, shared, m["name"], m["body"], reader)
        fields["source"], fields["path"] = source, path
        loc = _loc(m["rate"], mixture["loc"])
        rate = reader.rate(m["rate"], f"the rate of {m['name']!r}", loc)
        members.append(
            {
                "name": m["name"],
                "rate": rate,
                "mode": mode,
                "mode_loc": mode_loc,
                "objective": fields,
                "loc": loc,
            }
        )
    if reader.diagnostics:
        raise SpecError(_dedup(reader.diagnostics), source=source, path=path)
    built = [
        dict(m, objective=_validated(Objective, m["objective"], source, path)) for m in members
    ]
    fields = {
        "name": tree["name"],
        "members": built,
        "source": source,
        "path": path,
        "loc": mixture["loc"],
    }
    return _validated(Mixture, fields, source, path)


def _sub_objective(
    tree: dict[str, Any],
    shared: list[dict[str, Any]],
    name: str,
    body: list[dict[str, Any]],
    reader: _Reader,
) -> dict[str, Any]:
    """The fields of a member or task: the shared statements, then its own (which replace
    those of the same kind; heads add up)."""
    own = {st["statement"] for st in body}
    inherited = [st for st in shared if st["statement"] not in own or st["statement"] == "head"]
    sub = {**tree, "name": f"{tree['name']}_{name}", "statements": inherited + body}
    sub_reader = _Reader()
    fields = _read_statements(sub, sub_reader)
    reader.diagnostics += sub_reader.diagnostics
    return fields


def _build_composition(
    tree: dict[str, Any], tasks: list[dict[str, Any]], source: str, path: str | None
) -> Composition:
    """Each task is an objective (the shared statements, then its own); the pair task builds
    the rows the masked-LM task then corrupts, and their losses add with the task weights."""
    reader = _Reader()
    shared = [st for st in tree["statements"] if st["statement"] != "task"]
    for st in shared:
        if st["statement"] in TASK_OWN:
            reader.error(
                f"'{st['statement']}' belongs inside each task",
                st["loc"],
                "the statements above the tasks are shared: input, unit, exclude, masks",
            )
    built = []
    for t in tasks:
        fields = _sub_objective(tree, shared, t["name"], t["body"], reader)
        fields["source"], fields["path"] = source, path
        weight = 1.0 if t["weight"] is None else reader.number(t["weight"], "task weight", t["loc"])
        built.append({"name": t["name"], "weight": weight, "objective": fields, "loc": t["loc"]})
    if reader.diagnostics:
        raise SpecError(_dedup(reader.diagnostics), source=source, path=path)
    for t in built:
        t["objective"] = _validated(Objective, t["objective"], source, path)
    fields = {
        "name": tree["name"],
        "tasks": built,
        "source": source,
        "path": path,
        "loc": tree["loc"],
    }
    return _validated(Composition, fields, source, path)


def _dedup(diags: list[Diagnostic]) -> list[Diagnostic]:
    return list(dict.fromkeys(diags))


def _diagnostic_from_pydantic(err: Any, fields: dict[str, Any]) -> Diagnostic:
    """Map one Pydantic error to a Diagnostic located at the deepest input node with a ``loc``."""
    node: Any = fields
    loc = fields.get("loc")
    for key in err["loc"]:
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            continue  # a union tag such as 'spans' is in the error path, not in the input
        if isinstance(node, dict) and isinstance(node.get("loc"), Loc):
            loc = node["loc"]
    ctx = err.get("ctx") or {}
    loc = ctx.get("at") or loc
    hint = ctx.get("hint")
    message = err["msg"]
    if err["type"] != "objspec":
        field = ".".join(str(k) for k in err["loc"] if not isinstance(k, int))
        last_two = ".".join(field.split(".")[-2:])
        what = FIELD_NAMES.get(field) or FIELD_NAMES.get(last_two, field)
        bound = BOUND_WORDS.get(err["type"])
        if bound is not None:
            limit = next(ctx[k] for k in ("gt", "ge", "lt", "le") if k in ctx)
            message = f"{what} must be {bound} {_limit(limit)}, got {_show(err['input'])}"
        elif err["type"] in ("int_type", "int_parsing", "int_from_float"):
            message = f"{what} must be a whole number, got {_show(err['input'])}"
        else:
            message = f"{what}: {message}" if field else message
    return Diagnostic(message, loc, hint)


def _limit(value: float) -> str:
    """A bound as a person writes it: 1048576, not 1.04858e+06."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


BOUND_WORDS = {
    "greater_than": "greater than",
    "greater_than_equal": "at least",
    "less_than": "less than",
    "less_than_equal": "at most",
}
FIELD_NAMES = {
    "select.random_spans.density": "the noise density",
    "select.random_spans.mean": "the mean span length",
    "select.suffix.rate": "the suffix rate",
    "heads.weight": "a head weight",
    "heads.params": "a head parameter",
    "masks.copies": "the number of static mask copies",
    "transforms.rate": "a transform rate",
    "members.rate": "a member rate",
    "tasks.weight": "a task weight",
    "budget.min": "the budget's min",
    "budget.max": "the budget's max",
    "exact.alpha": "alpha",
    "windows.rate": "the window rate",
}

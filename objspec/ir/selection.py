"""What a spec selects: its input, units, length laws, budgets and the kinds of selection."""

from __future__ import annotations

from functools import cached_property
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from objspec import distributions
from objspec.distributions import MAX_LENGTH
from objspec.errors import did_you_mean
from objspec.ir.base import MAX_ALPHA, MIN_WINDOW_RATE, Node, Rate, _fail


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

"""What happens to the selection and around it: replacement, predictions, transforms, pairs,
attention, the batch form, loss, heads, contrastive views, packing and masks."""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from objspec.distributions import MAX_LENGTH
from objspec.errors import did_you_mean
from objspec.ir.base import (
    MAX_COPIES,
    MAX_WEIGHT,
    RATE_TOLERANCE,
    Node,
    Rate,
    _fail,
    _pct,
    text_problem,
)

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

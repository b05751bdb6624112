"""The plan: what lowering makes and codegen reads. An ordered tuple of runtime steps with
every constant resolved (length laws as integer CDF tables, rates as 32-bit thresholds,
replacement mixes as cumulative tables), the heads, and the batch's keys. Plain frozen
dataclasses, no torch; each step carries its canonical spec text for the generated comments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import accumulate

from objspec.distributions import U32

# One RNG stream per kind of decision. The numbers are part of the compiled semantics: the same
# decision keeps its stream in every spec, and adding a step never shifts another step's draws.
STREAMS = {
    "select": 1,
    "budget": 2,
    "span_length": 3,
    "span_order": 4,
    "span_place": 5,
    "replace": 6,
    "random_token": 7,
    "noise_lengths": 8,
    "nonnoise_lengths": 9,
    "roll": 10,
    "insert_place": 11,
    "insert_token": 12,
    "insert_random_token": 13,
    "sentence_order": 14,
    "rotate": 15,
    "mixture": 16,
    "suffix": 17,
    "shuffle_place": 18,
    "shuffle_order": 19,
    "window_length": 20,
    "window_offset": 21,
    "factorization": 22,
    "pair": 23,
    "attention_mode": 24,
    "sample": 25,
    "fim": 26,
    "fim_order": 27,
    "fim_cut": 28,
    "span_count": 29,
    "span_ends": 30,
    "block_order": 31,
    "rate": 32,
}


def threshold(p: float) -> int:
    """``u < threshold(p)`` holds with probability p for a uniform 32-bit u."""
    return round(p * U32)


def cumulative_thresholds(shares: tuple[float, ...]) -> tuple[int, ...]:
    """Integer CDF of a finite distribution; the last entry is exactly 2**32."""
    cdf = [threshold(min(c, 1.0)) for c in accumulate(shares)]
    cdf[-1] = U32
    return tuple(cdf)


@dataclass(frozen=True)
class Step:
    """A runtime step; ``text`` is the canonical spec statement it implements."""

    text: str


@dataclass(frozen=True)
class Candidates(Step):
    exclude_special: bool
    exclude_first: bool
    exclude_last: bool
    exclude_prompt: bool = False  # the per-token field prompt_mask marks what is never touched


@dataclass(frozen=True)
class Units(Step):
    kind: str  # 'token' | 'word' | 'sentence' | 'field'
    field: str | None = None  # the per-token field whose runs are the units (kind 'field')


@dataclass(frozen=True)
class BudgetPlan:
    rate: float
    basis: str  # 'tokens' | 'units' | 'all_tokens' (every token of the row, specials included)
    rounding: str
    minimum: int
    maximum: int | None


@dataclass(frozen=True)
class SelectBernoulli(Step):
    rate: float
    rate_range: tuple[float, float] | None = None  # a rate per example, uniform on [low, high)


@dataclass(frozen=True)
class SelectExact(Step):
    budget: BudgetPlan
    alpha: float | None = None  # weights count^-alpha from the run-time count table (XLM)


@dataclass(frozen=True)
class SelectSpans(Step):
    budget: BudgetPlan
    law: str
    mean: float
    values: tuple[int, ...]
    cdf: tuple[int, ...]
    nonzero_share: float = 1.0  # the law's chance of a length of 1 or more


@dataclass(frozen=True)
class SelectCountedSpans(Step):
    """CM3: a span count per row from the law's table, the spans' ends uniform."""

    law: str
    mean: float
    values: tuple[int, ...]
    cdf: tuple[int, ...]


@dataclass(frozen=True)
class SelectRandomSpans(Step):
    density: float
    mean: float
    random_roll: bool


@dataclass(frozen=True)
class SelectFragment(Step):
    """One fragment per row: ``budget`` tokens (MASS), or a length from the law's table."""

    budget: BudgetPlan | None
    law: str | None = None
    mean: float = 0.0
    values: tuple[int, ...] = ()
    cdf: tuple[int, ...] = ()


@dataclass(frozen=True)
class SelectSuffix(Step):
    rate: float


@dataclass(frozen=True)
class SelectWindows(Step):
    law: str
    mean: float
    values: tuple[int, ...]
    cdf: tuple[int, ...]
    rate: float


@dataclass(frozen=True)
class PermutationAttention(Step):
    """XLNet: a random factorization order over the targets -> perm_mask and target_mapping
    (``dense``), or the order itself as perm_order (``sparse``)."""

    layout: str


@dataclass(frozen=True)
class JoinTranslation(Step):
    """Before everything: XLM's TLM row, a sentence and its translation joined."""


@dataclass(frozen=True)
class UnilmAttention(Step):
    """UniLM: one self-attention mask per example, drawn from ``masks`` with ``cdf``."""

    masks: tuple[str, ...]
    indices: tuple[int, ...]  # each mask's attention_mode value (ir.UNILM_MASKS order)
    cdf: tuple[int, ...]


@dataclass(frozen=True)
class BuildPairs(Step):
    """Before everything: each row becomes ``[CLS] A [SEP] B [SEP]`` by a drawn relation."""

    relations: tuple[str, ...]
    cdf: tuple[int, ...]
    label_key: str


@dataclass(frozen=True)
class SelectNone(Step):
    """Nothing selected, nothing replaced: the input is the (transformed) row itself."""


@dataclass(frozen=True)
class Replace(Step):
    per: str  # 'token' | 'span'
    actions: tuple[str, ...]
    cdf: tuple[int, ...]
    collapse: bool = False
    # zero-length spans insert tokens as fairseq's add_insertion_noise: ceil(n x insert_random)
    # of a row's n are random, the others mask; None when the law draws no length 0
    insert_random: float | None = None
    random_from: str = "vocabulary"  # 'vocabulary' | 'unigram' (token_counts) | 'pool' (a table)


@dataclass(frozen=True)
class PermuteSentences(Step):
    """Before the selection: permute ``rate`` of each row's sentences (BART)."""

    rate: float


@dataclass(frozen=True)
class Rotate(Step):
    """After the replacement: rotate each row to a random start with probability ``rate``."""

    rate: float


@dataclass(frozen=True)
class ShuffleNgrams(Step):
    """After the replacement: shuffle inside ``round(block_rate x n)`` blocks of ``n`` unselected
    tokens, every order of a block equally likely; the shuffled tokens are predicted too."""

    n: int
    block_rate: float
    permutations: tuple[tuple[int, ...], ...]


@dataclass(frozen=True)
class Sentinels(Step):
    """Each selected span becomes one unique sentinel (T5's noise_span_to_unique_sentinel)."""


@dataclass(frozen=True)
class Labels(Step):
    """Same-length MLM labels: the original token at selected positions."""


@dataclass(frozen=True)
class LossWeights(Step):
    """Each label's weight in the loss (``label_weights``): the example's inverse rate when
    ``weighted``; divided by its candidate count when the loss is averaged ``over`` examples."""

    weighted: bool
    over: str  # 'selected' | 'tokens' | 'examples'


@dataclass(frozen=True)
class Views(Step):
    """The second side of a contrastive pair: the clean row ('dropout', 'corrupted') or the
    selected tokens as their own row, after [CLS] ('selected')."""

    kind: str


@dataclass(frozen=True)
class SampleKeys(Step):
    """Per-position counter keys for the training step's sampling (ELECTRA's generator)."""


@dataclass(frozen=True)
class Targets(Step):
    """Decoder targets: 'selected' (in order, positions kept), 'all' or 'sentinels'."""

    target: str


@dataclass(frozen=True)
class FillInMiddle(Step):
    """FIM: with probability ``rate`` a row's document is cut at two uniform points and laid
    out PSM, or SPM with probability ``spm``, around the sentinels ``tokens`` (by text)."""

    rate: float
    spm: float
    tokens: tuple[str, str, str]


@dataclass(frozen=True)
class BlankInfilling(Step):
    """GLM: Part A (each span one [MASK]) then Part B (each span after ``tokens[0]``, in a
    random order when ``shuffled``, then ``tokens[1]``), with 2D positions; the whole batch."""

    shuffled: bool
    tokens: tuple[str, str]


@dataclass(frozen=True)
class Output(Step):
    kind: str  # 'encoder_decoder' | 'decoder_only'
    attention: str = "prefix"  # decoder_only: 'prefix' (prefix_mask) or 'causal' (none)
    sequence: bool = False  # decoder_only: every token a label, the end token appended


@dataclass(frozen=True)
class HeadPlan:
    kind: str
    weight: float
    params: tuple[tuple[str, int | float | str], ...] = ()


@dataclass(frozen=True)
class MemberPlan:
    """A mixture member: its name, rate, mode token and the plan of its corruption."""

    name: str
    rate: float
    mode: str | None
    plan: Plan


@dataclass(frozen=True)
class TaskPlan:
    """A row task of a composition whose row tasks each have a batch of their own: its name,
    the salt its keys are mixed with (so its draws are its own), and the plan of its
    corruption, its heads' weights already scaled by the task's."""

    name: str
    salt: int
    plan: Plan


@dataclass(frozen=True)
class Plan:
    """Everything codegen needs, and nothing it would have to compute. A mixture's plan has
    no steps of its own: its ``members`` each have theirs, chosen per example by
    ``mixture_cdf``. A composition of several row tasks has the pair task's steps (if any)
    and its heads; each of its ``tasks`` has its own plan."""

    name: str
    source: str
    sha256: str
    steps: tuple[Step, ...]
    heads: tuple[HeadPlan, ...]
    mask_copies: int | None
    needs: tuple[str, ...]
    outputs: tuple[str, ...]
    streams: dict[str, int] = field(default_factory=dict)
    members: tuple[MemberPlan, ...] = ()
    tasks: tuple[TaskPlan, ...] = ()  # several row tasks: ``steps`` build the rows they read
    mixture_cdf: tuple[int, ...] = ()
    output: str = "encoder"
    attention: str = "prefix"  # the decoder-only form's: 'prefix' or 'causal'
    tokens: tuple[str, ...] = ()  # special tokens the collator looks up by text (FIM's)
    fields: tuple[tuple[str, str], ...] = ()  # per-token input fields read: (name, purpose)
    loss_over: str = "selected"  # what the MLM loss is averaged over (see LossWeights)
    pack: int | str | None = None  # the spec's 'pack': the collator's default packing


MEMBER_OUTPUTS = ("input_ids", "attention_mask", "labels")  # no decoder keys: the mixture adds them

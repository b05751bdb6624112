"""The words each statement accepts, which the reader checks against (with did-you-mean)."""

from __future__ import annotations

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

"""The reader: each statement's located clauses into model fields, each fault a located
diagnostic."""

from __future__ import annotations

import math
from typing import Any

from objspec import distributions
from objspec.errors import Diagnostic, Loc, did_you_mean
from objspec.ir.statements import HEAD_PARAMS
from objspec.ir.words import (
    ACTIONS,
    ATTENTIONS,
    BUDGET_BASES,
    BUDGET_FLAGS,
    BUDGET_OF,
    BUDGET_OPTIONS,
    EXCLUSIONS,
    LOSS_AVERAGES,
    LOSS_WEIGHTS,
    LOSSES,
    MASKS,
    PERMUTATION_LAYOUTS,
    PREDICTIONS,
    RANDOM_SOURCES,
    REPLACE_MODES,
    RESERVED_ATTENTIONS,
    SELECT_KINDS,
    UNITS,
)
from objspec.names import PAIR_RELATIONS, UNILM_MASKS


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

"""The reader's first half: the diagnostics it collects, the values clauses hold (numbers,
rates, whole numbers, bare calls, laws) and the selection statements (``unit``, ``budget``,
``select`` and its per-example rate law), as :mod:`objspec.ir.selection` models them. The
other statements are read by :class:`objspec.ir.reader._Reader`, which extends this one."""

from __future__ import annotations

import math
from typing import Any

from objspec import distributions
from objspec.errors import Diagnostic, Loc, did_you_mean
from objspec.ir.words import (
    BUDGET_BASES,
    BUDGET_FLAGS,
    BUDGET_OF,
    BUDGET_OPTIONS,
    SELECT_KINDS,
    UNITS,
)


class _SelectionReader:
    """Collects diagnostics while reading values, laws and the selection statements into
    model input dicts."""

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

    # --- selection statements ------------------------------------------------------------
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

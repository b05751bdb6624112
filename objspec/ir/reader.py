"""The reader: each statement's located clauses into model fields, each fault a located
diagnostic. The values, laws and selection statements are read by
:class:`objspec.ir.selection_reader._SelectionReader`; this module reads the rest (replacement,
packing, loss, transforms, pairs, attention, heads, predictions, masks, exclusions), as
:mod:`objspec.ir.statements` models them."""

from __future__ import annotations

from typing import Any

from objspec.errors import Loc, did_you_mean
from objspec.ir.selection_reader import SELECT_USAGE as SELECT_USAGE
from objspec.ir.selection_reader import _loc, _SelectionReader, _show
from objspec.ir.statements import HEAD_PARAMS
from objspec.ir.words import (
    ACTIONS,
    ATTENTIONS,
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
)
from objspec.names import PAIR_RELATIONS, UNILM_MASKS


class _Reader(_SelectionReader):
    """Collects diagnostics while turning statements into model input dicts."""

    # --- statements ----------------------------------------------------------------------
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

HEAD_USAGE = {"span_boundary": "head span_boundary(max_span=10, position_dim=200)"}


def _head_value(value: Any) -> Any:
    """A head parameter as written: a number, or a bare word (``pooling=first``) as its text."""
    return value["word"] if isinstance(value, dict) and "word" in value else value

"""One objective as the spec states it, and the rules that tie its statements together."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from pydantic import Field, ValidationError, model_validator

from objspec.errors import Diagnostic, SpecError, did_you_mean
from objspec.ir.base import Node, ObjectiveName, _dedup, _fail
from objspec.ir.selection import (
    RUN_SELECTIONS,
    Bernoulli,
    Exact,
    Fragment,
    InputSpec,
    NoSelection,
    RandomSpans,
    Selection,
    Spans,
    Suffix,
    Unit,
    Windows,
)
from objspec.ir.statements import (
    LENGTH_CHANGING,
    Attention,
    Exclusion,
    Head,
    Loss,
    Masks,
    Output,
    Pack,
    Pair,
    Predict,
    Replacement,
    Transform,
    Views,
)
from objspec.ir.words import OUTPUTS


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
        """Packing lays documents end to end (both sides of an encoder-decoder batch): not
        per-pair or square attention outputs, contrastive views or GLM's 2D positions."""
        if self.pack is None:
            return
        blocked = {
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

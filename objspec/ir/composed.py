"""Objectives made of objectives: mixtures drawn per example (UL2, ERNIE) and compositions of
tasks whose losses add (BERT = MLM + NSP)."""

from __future__ import annotations

import hashlib
from typing import Literal

from pydantic import Field, model_validator

from objspec.errors import Loc
from objspec.ir.base import (
    MAX_WEIGHT,
    RATE_TOLERANCE,
    Identifier,
    Node,
    ObjectiveName,
    _fail,
    _pct,
    text_problem,
)
from objspec.ir.objective import Objective
from objspec.ir.statements import MODEL_HEADS, Masks, Output, Pair


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

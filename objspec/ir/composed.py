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
from objspec.ir.statements import Masks, Output, Pair


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
    """Objectives trained together on one batch, their losses added with the task weights.

    At most one pair task builds ``[CLS] A [SEP] B [SEP]`` rows first (BERT's NSP, ALBERT's
    SOP); every other task is a row task: an encoder-form objective that corrupts those rows
    (or the examples' own) with its own draws. With one row task the batch is that task's
    (BERT = MLM + NSP); with several, each row task's outputs are its own batch, under its
    name (``mlm.input_ids``), and the model runs once per task (SimCSE with its auxiliary
    masked LM: contrastive + MLM)."""

    name: ObjectiveName
    tasks: tuple[Task, ...]
    source: str = Field(default="", repr=False)
    path: str | None = Field(default=None, repr=False)

    @model_validator(mode="after")
    def _composable(self) -> Composition:
        names = [t.name for t in self.tasks]
        if len(set(names)) != len(names):
            raise _fail("two tasks share a name", "each task's outputs and losses carry its name")
        pairs = [t for t in self.tasks if t.objective.pair is not None]
        if len(pairs) > 1:
            raise _fail(
                "a composition has at most one pair task: it builds the rows every task reads",
                at=pairs[1],
            )
        if pairs and not pairs[0].objective.pair.labelled:  # type: ignore[union-attr]
            raise _fail("a composition's pair task predicts the pair's label", at=pairs[0])
        if not self.row_tasks:
            raise _fail("a composition needs a task that is not a pair task", "e.g. 'task mlm:'")
        if len(self.tasks) < 2:
            raise _fail("a composition has two tasks or more", "a single task is an objective")
        for task in self.row_tasks:
            self._row_task(task)
        self._shared_heads()
        return self

    @staticmethod
    def _row_task(task: Task) -> None:
        """A row task keeps the row's layout: an encoder-form objective of its own."""
        o = task.objective
        if o.output.seq2seq:
            raise _fail(
                f"task {task.name!r}: a composition's tasks are encoder-form objectives "
                "(one model, one input layout)",
                "a sequence-to-sequence objective is a spec of its own, or a mixture member",
                at=task,
            )
        if o.pair is not None or o.predict.target == "label":
            raise _fail(f"task {task.name!r}: only the pair task predicts a label", at=task)

    def _shared_heads(self) -> None:
        """One model has one head of a kind, shared by the tasks that train it: so their
        parameters and loss statements agree. ELECTRA's masked LM is its generator's (a
        smaller model): no other task trains a masked-LM head beside it."""
        seen: dict[str, Task] = {}
        electra = [
            t
            for t in self.tasks
            if any(h.name == "replaced_token_detection" for h in t.objective.heads)
        ]
        for task in self.tasks:
            for head in task.objective.heads:
                first = seen.setdefault(head.name, task)
                if first is task:
                    continue
                if electra and head.name in ("mlm", "replaced_token_detection"):
                    raise _fail(
                        f"tasks {first.name!r} and {task.name!r} both train head {head.name!r}, "
                        f"but task {electra[0].name!r}'s masked LM is ELECTRA's generator",
                        "one task trains ELECTRA's generator and discriminator; the other "
                        "tasks train other heads",
                        at=task,
                    )
                other = next(h for h in first.objective.heads if h.name == head.name)
                if other.params != head.params or _loss(first) != _loss(task):
                    raise _fail(
                        f"tasks {first.name!r} and {task.name!r} both train head "
                        f"{head.name!r}, with different parameters or loss statements",
                        "the model has one head of a kind, shared by the tasks: give them the "
                        "same parameters",
                        at=task,
                    )

    @property
    def pair_task(self) -> Task | None:
        """The task that builds the pair rows, if any."""
        return next((t for t in self.tasks if t.objective.pair is not None), None)

    @property
    def row_tasks(self) -> tuple[Task, ...]:
        """The tasks that corrupt the rows, in the spec's order."""
        return tuple(t for t in self.tasks if t.objective.pair is None)

    @property
    def namespaced(self) -> bool:
        """True when each row task's outputs are under its name (several row tasks)."""
        return len(self.row_tasks) > 1

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.source.encode("utf-8")).hexdigest()

    @property
    def output(self) -> Output:
        return self.row_tasks[0].objective.output

    @property
    def masks(self) -> Masks:
        return self.row_tasks[0].objective.masks

    @property
    def pair(self) -> Pair | None:
        task = self.pair_task
        return task.objective.pair if task is not None else None

    def with_output(self, kind: str) -> Composition:
        """A composition has the one-sequence form only; any other is an error."""
        tasks = [
            t.model_copy(update={"objective": t.objective.with_output(kind)}) for t in self.tasks
        ]
        return self.model_copy(update={"tasks": tuple(tasks)})


def _loss(task: Task) -> tuple[str, str, str]:
    """A task's loss statement, as what it computes (not where it is written)."""
    loss = task.objective.loss
    return (loss.name, loss.weight, loss.over)


Spec = Objective | Mixture | Composition

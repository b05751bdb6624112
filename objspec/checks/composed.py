"""Checks of mixtures and compositions: each row its member's corruption, the members' rates,
the composed batch."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch

from objspec import ir
from objspec.checks.framework import Case, Check, _collate, _collator, _fail, big_case
from objspec.checks.selection import _binomial_ok
from objspec.checks.targets import _rows
from objspec.runtime import read_batch
from objspec.runtime.rng import Keys

_MEMBERS: dict[tuple[str, str, str], Any] = {}


def member_compiled(mixture: ir.Mixture | ir.Composition, member: ir.Member | ir.Task) -> Any:
    """A mixture member (or a composition's task) compiled as an objective of its own, in the
    batch form the member has (one source compiles to several forms)."""
    from compiler import compile_objective, load
    from objspec import CompiledObjective

    key = (mixture.sha256, member.name, member.objective.output.kind)
    if key not in _MEMBERS:
        generated = compile_objective(member.objective)
        _MEMBERS[key] = CompiledObjective(generated.name, generated.source, load(generated))
    return _MEMBERS[key]


def check_mixture_members(mixture: ir.Mixture, compiled: Any, case: Case) -> None:
    out = _collate(compiled, case)
    alone = [_rows(_collate(member_compiled(mixture, m), case)) for m in mixture.members]
    modes = [case.vocab.id_of(m.mode) if m.mode else None for m in mixture.members]
    for row, (inputs, target) in enumerate(_rows(out)):
        candidates = [
            rows[row]
            for rows, mode in zip(alone, modes, strict=True)
            if mode is None or (inputs and inputs[0] == mode)
        ]
        body = inputs[1:] if modes[0] is not None else inputs
        if (body, target) not in candidates:
            raise _fail(f"row {row} is not its mode's member's corruption of the example")


def check_mixture_rates(mixture: ir.Mixture, compiled: Any, case: Case) -> None:
    if mixture.members[0].mode is None:
        _check_rates_by_member(mixture, compiled)
        return
    big = big_case()
    first = _collate(compiled, big)["input_ids"][:, 0]
    n = int(first.numel())
    rates: dict[str, float] = {}
    for m in mixture.members:
        assert m.mode is not None
        rates[m.mode] = rates.get(m.mode, 0.0) + m.rate
    for mode, p in rates.items():
        ok, detail = _binomial_ok(int((first == big.vocab.id_of(mode)).sum()), n, p)
        if not ok:
            raise _fail(f"share of mode {mode}: {detail}")


def _check_rates_by_member(mixture: ir.Mixture, compiled: Any) -> None:
    """Without mode tokens, each row is told by the one member whose own corruption it is
    (rows that several members would corrupt alike are left out; at most 10% may be): each
    member's share of the told rows within the binomial bound."""
    big = big_case(rows=1024, length=24)
    rows = _rows(_collate(compiled, big))
    alone = [_rows(_collate(member_compiled(mixture, m), big)) for m in mixture.members]
    told = [
        [i for i, member_rows in enumerate(alone) if member_rows[r] == row]
        for r, row in enumerate(rows)
    ]
    unique = [t[0] for t in told if len(t) == 1]
    if len(unique) < 0.9 * len(rows):
        return  # the members corrupt too much alike to tell them apart by their rows
    for i, m in enumerate(mixture.members):
        ok, detail = _binomial_ok(unique.count(i), len(unique), m.rate)
        if not ok:
            raise _fail(f"share of member {m.name}: {detail}")


def check_composed(composition: ir.Composition, compiled: Any, case: Case) -> None:
    """The composed batch is the pair task's rows (or the examples), corrupted by each row task
    alone, keyed by the original examples' keys (salted by the task's name when the tasks
    each have their own batch, so that no two tasks share a draw)."""
    from compiler.lower import task_salt

    out = _collate(compiled, case)
    examples_keys = read_batch(case.examples, case.vocab.pad_id or 0).index
    rows = read_batch(case.examples, case.vocab.pad_id or 0)
    pair_task = composition.pair_task
    if pair_task is not None:
        pairs = _collate(member_compiled(composition, pair_task), case)
        key = pair_task.objective.pair.label_key  # type: ignore[union-attr]
        for name in ("token_type_ids", key):
            if not torch.equal(out[name], pairs[name]):
                raise _fail(f"{name} is not the pair task's")
        built = [
            {"input_ids": ids[mask.bool()].tolist()}
            for ids, mask in zip(pairs["input_ids"], pairs["attention_mask"], strict=True)
        ]
        rows = replace(read_batch(built, case.vocab.pad_id or 0), index=examples_keys)
    for task in composition.row_tasks:
        alone = _collator(member_compiled(composition, task), case)
        keys = Keys(case.seed, alone.mask_epoch(), examples_keys)
        if composition.namespaced:
            keys = keys.salted(task_salt(task.name))
        want = alone.corrupt(rows, keys)
        prefix = f"{task.name}." if composition.namespaced else ""
        for name, value in want.items():
            if not torch.equal(out[prefix + name], value):
                raise _fail(
                    f"{prefix + name} is not the rows corrupted by task {task.name!r} alone"
                )


COMPOSITION_CHECKS: tuple[Check, ...] = (
    Check(
        "composed",
        "the batch is the pair task's rows (or the examples), corrupted by each task as it "
        "is alone, with draws of its own",
        check_composed,
    ),
)

MIXTURE_CHECKS: tuple[Check, ...] = (
    Check(
        "members",
        "each row is its member's own corruption of the example, after its mode token",
        check_mixture_members,
    ),
    Check(
        "mixture_rates",
        "members are drawn with their rates (6-sigma binomial bound per mode token, or per "
        "member among the rows only one member would make)",
        check_mixture_rates,
        True,
    ),
)

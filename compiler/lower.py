"""IR -> plan: a spec's objective, mixture or composition lowered to the plan codegen reads.

One objective's steps are :mod:`compiler.steps`; this module puts objectives together: a
mixture's members, each with its own plan, and a composition's tasks.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any

from compiler.plan import (
    MEMBER_OUTPUTS,
    STREAMS,
    BuildPairs,
    HeadPlan,
    MemberPlan,
    Plan,
    TaskPlan,
    cumulative_thresholds,
)
from compiler.steps import lower_objective, outputs
from objspec import ir


def lower(spec: ir.Spec) -> Plan:
    """Lower a validated objective (or mixture of objectives) to its plan."""
    if isinstance(spec, ir.Mixture):
        return _lower_mixture(spec)
    if isinstance(spec, ir.Composition):
        return _lower_composition(spec)
    return lower_objective(spec)


def _lower_composition(composition: ir.Composition) -> Plan:
    """The pair task's construction (if any), then the row tasks on its rows, every head's
    weight scaled by its task's. One row task: its steps follow the construction in one plan
    (BERT). Several: each has its own plan, drawn with its own salted keys, its outputs under
    its name beside the rows they read."""
    pair = composition.pair_task
    pair_plan = lower_objective(pair.objective) if pair is not None else None
    build = tuple(s for s in pair_plan.steps if isinstance(s, BuildPairs)) if pair_plan else ()
    pair_heads = _weighted(pair_plan.heads, pair.weight) if pair and pair_plan else ()
    pair_outputs = pair_plan.outputs[2:] if pair_plan else ()  # token_type_ids, the label
    rows = []
    for task in composition.row_tasks:
        plan = lower_objective(task.objective)
        rows.append((task, replace(plan, heads=_weighted(plan.heads, task.weight))))
    plans = [plan for _, plan in rows] + ([pair_plan] if pair_plan else [])
    streams = {name: n for plan in plans for name, n in plan.streams.items()}
    common: dict[str, Any] = {
        "name": composition.name,
        "source": composition.source,
        "sha256": composition.sha256,
        "needs": tuple(dict.fromkeys(n for plan in plans for n in plan.needs)),
        "streams": dict(sorted(streams.items(), key=lambda kv: kv[1])),
    }
    if not composition.namespaced:
        ((_, row),) = rows
        return replace(
            row,
            steps=build + row.steps,
            heads=row.heads + pair_heads,
            outputs=row.outputs + pair_outputs,
            **common,
        )
    tasks = tuple(TaskPlan(task.name, task_salt(task.name), plan) for task, plan in rows)
    keys = tuple(f"{t.name}.{key}" for t in tasks for key in t.plan.outputs)
    plan = Plan(
        name=composition.name,
        source=composition.source,
        sha256=composition.sha256,
        steps=build,
        heads=pair_heads,
        mask_copies=rows[0][1].mask_copies,
        needs=(),
        outputs=("input_ids", "attention_mask") + pair_outputs + keys,
        tasks=tasks,
        fields=tuple(dict.fromkeys(f for plan in plans for f in plan.fields)),
    )
    return replace(plan, **common)


def _weighted(heads: tuple[HeadPlan, ...], weight: float) -> tuple[HeadPlan, ...]:
    """The heads of a task, their weights scaled by the task's."""
    return tuple(replace(h, weight=h.weight * weight) for h in heads)


def task_salt(name: str) -> int:
    """The 32-bit salt a task's keys are mixed with: from its name, so that reordering the
    tasks changes no task's draws."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:4], "little")


def _lower_mixture(mixture: ir.Mixture) -> Plan:
    members = []
    for m in mixture.members:
        plan = lower_objective(m.objective)
        plan = replace(plan, name=m.name, outputs=MEMBER_OUTPUTS)
        members.append(MemberPlan(m.name, m.rate, m.mode, plan))
    first = members[0].plan
    streams = {"mixture": STREAMS["mixture"]}
    for member in members:
        streams.update(member.plan.streams)
    needs = tuple(dict.fromkeys(n for member in members for n in member.plan.needs))
    fields = tuple(dict.fromkeys(f for member in members for f in member.plan.fields))
    return Plan(
        name=mixture.name,
        source=mixture.source,
        sha256=mixture.sha256,
        steps=(),
        heads=first.heads,
        mask_copies=first.mask_copies,
        needs=needs,
        outputs=(
            MEMBER_OUTPUTS
            if mixture.output.kind == "encoder"
            else outputs(mixture.members[0].objective, mixture=True)
        ),
        streams=dict(sorted(streams.items(), key=lambda kv: kv[1])),
        members=tuple(members),
        mixture_cdf=cumulative_thresholds(tuple(m.rate for m in members)),
        output=mixture.output.kind,
        attention=first.attention,
        fields=fields,
        pack=first.pack,
    )

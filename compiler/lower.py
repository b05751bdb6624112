"""IR -> plan: a spec's objective, mixture or composition lowered to the plan codegen reads.

One objective's steps are :mod:`compiler.steps`; this module puts objectives together: a
mixture's members, each with its own plan, and a composition's tasks.
"""

from __future__ import annotations

from dataclasses import replace

from compiler.plan import (
    MEMBER_OUTPUTS,
    STREAMS,
    BuildPairs,
    MemberPlan,
    Plan,
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
    """The pair task's construction, then the masked-LM task's steps on its rows; heads of
    both, their weights scaled by the task weights."""
    pair, mlm = composition.pair_task, composition.mlm_task
    pair_plan, mlm_plan = lower_objective(pair.objective), lower_objective(mlm.objective)
    build = tuple(s for s in pair_plan.steps if isinstance(s, BuildPairs))
    heads = tuple(
        replace(h, weight=h.weight * task.weight)
        for task, plan in ((mlm, mlm_plan), (pair, pair_plan))
        for h in plan.heads
    )
    streams = {**mlm_plan.streams, **pair_plan.streams}
    return replace(
        mlm_plan,
        name=composition.name,
        source=composition.source,
        sha256=composition.sha256,
        steps=build + mlm_plan.steps,
        heads=heads,
        needs=tuple(dict.fromkeys(mlm_plan.needs + pair_plan.needs)),
        outputs=mlm_plan.outputs + pair_plan.outputs[2:],
        streams=dict(sorted(streams.items(), key=lambda kv: kv[1])),
    )


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

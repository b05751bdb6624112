"""One objective -> its plan: the steps in the order the collator runs them.

Lowering is where the math lives: length laws become integer CDF tables, rates become 32-bit
thresholds, replacement mixes become cumulative tables. It needs no torch, so it is
unit-testable on its own. Each step's text is rebuilt from validated values, never copied from
the source.
"""

from __future__ import annotations

import itertools

from compiler.plan import (
    STREAMS,
    BlankInfilling,
    BudgetPlan,
    BuildPairs,
    Candidates,
    FillInMiddle,
    HeadPlan,
    JoinTranslation,
    Labels,
    LossWeights,
    Output,
    PermutationAttention,
    PermuteSentences,
    Plan,
    Replace,
    Rotate,
    SampleKeys,
    SelectBernoulli,
    SelectCountedSpans,
    SelectExact,
    SelectFragment,
    SelectNone,
    SelectRandomSpans,
    SelectSpans,
    SelectSuffix,
    SelectWindows,
    Sentinels,
    ShuffleNgrams,
    Step,
    Targets,
    UnilmAttention,
    Units,
    Views,
    cumulative_thresholds,
)
from objspec import ir

JOIN_TEXT = "input parallel: </s> sentence </s> translation </s>, positions restart"


def _pct(x: float) -> str:
    return f"{x * 100:g}%"


def lower_objective(objective: ir.Objective) -> Plan:
    """Lower a validated objective to its plan."""
    transforms = {t.kind: t.rate for t in objective.transforms}
    steps: list[Step] = []
    if objective.pair is not None:
        steps.append(_pairs(objective.pair))
    if objective.input.kind == "parallel":
        steps.append(JoinTranslation(JOIN_TEXT))
    if "permute_sentences" in transforms:
        rate = transforms["permute_sentences"]
        steps.append(PermuteSentences(f"transform permute sentences {_pct(rate)}", rate))
    steps.append(_candidates(objective))
    counts_tokens = (
        ir.RandomSpans | ir.CountedSpans | ir.Fragment | ir.Suffix | ir.Windows | ir.NoSelection
    )
    if not isinstance(objective.select, counts_tokens):
        unit = objective.unit
        steps.append(Units(f"unit {unit.describe}", unit.kind, unit.field))
    steps.append(_selection(objective.select))
    fim = next((t for t in objective.transforms if t.kind == "fim"), None)
    if fim is not None:
        steps.append(_fill_in_middle(fim))
    blanks = objective.predict.target == "blanks"
    if blanks:
        steps.append(_blank_infilling(objective.predict))
    if isinstance(objective.select, ir.NoSelection) or blanks:
        pass
    elif objective.replace.share_of("sentinel") > 0:
        steps.append(Sentinels("replace per span: sentinel 100%"))
    else:
        steps.append(_replacement(objective.replace, objective.inserts))
    if "shuffle_trigrams" in transforms:
        rate = transforms["shuffle_trigrams"]
        steps.append(
            ShuffleNgrams(
                f"transform shuffle trigrams {_pct(rate)}",
                3,
                rate / 3,
                tuple(itertools.permutations(range(3))),
            )
        )
    if "rotate" in transforms:
        rate = transforms["rotate"]
        steps.append(Rotate(f"transform rotate document {_pct(rate)}", rate))
    output = objective.output.kind
    if objective.predict.target in ("label", "views", "blanks"):
        pass  # the pair's label, drawn with the pair; a contrastive objective's views
    elif output == "encoder":
        steps.append(Labels("predict original at selected"))
        if objective.loss.weighted:
            steps.append(_loss_weights(objective.loss))
        if objective.attention.kind == "permutation":
            layout = objective.attention.layout
            text = "attention permutation" + ("(layout=sparse)" if layout == "sparse" else "")
            steps.append(PermutationAttention(text, layout))
        if objective.attention.kind == "unilm":
            mix = ", ".join(f"{k}={_pct(p)}" for k, p in objective.attention.mix)
            steps.append(
                UnilmAttention(
                    f"attention unilm({mix})",
                    tuple(k for k, _ in objective.attention.mix),
                    tuple(ir.UNILM_MASKS.index(k) for k, _ in objective.attention.mix),
                    cumulative_thresholds(tuple(p for _, p in objective.attention.mix)),
                )
            )
    else:
        steps.append(Targets(PREDICT_TEXT[objective.predict.target], objective.predict.target))
        attention = _decoder_attention(objective)
        text = f"output {output}" + ("; attention causal" if attention == "causal" else "")
        sequence = objective.predict.target == "sequence"
        steps.append(Output(text, output, attention, sequence))
    if objective.views is not None:
        steps.append(Views(f"views {objective.views.kind}", objective.views.kind))
    if any(h.name == "replaced_token_detection" for h in objective.heads):
        steps.append(SampleKeys("sample keys: the generator samples in the training step"))
    keys = outputs(objective)
    needs = _replacement_needs(objective.replace)
    if objective.inserts and "mask" not in needs:
        needs = ("mask", *needs)  # an insertion that is not random is a mask
    if objective.predict.target in ("sentinels", "sequence"):
        needs += ("end",)
    if isinstance(objective.select, ir.Exact) and objective.select.alpha is not None:
        needs += ("counts",)
    if objective.pair is not None:
        needs += ("cls", "sep")
    if objective.input.kind == "parallel":
        needs += ("end",)
    if objective.views is not None and objective.views.kind == "selected":
        needs += ("cls",)
    used = _streams_used(steps)
    fields = _declared_fields(objective)
    return Plan(
        name=objective.name,
        source=objective.source,
        sha256=objective.sha256,
        steps=tuple(steps),
        heads=tuple(
            HeadPlan(
                h.name,
                h.weight,
                _classes(objective) if h.name == "sentence_classification" else _head_params(h),
            )
            for h in objective.heads
        ),
        mask_copies=objective.masks.copies if objective.masks.kind == "static" else None,
        needs=tuple(dict.fromkeys(needs)),
        outputs=keys,
        streams={name: STREAMS[name] for name in used},
        output=output,
        attention=_decoder_attention(objective),
        tokens=fim.tokens if fim is not None else objective.predict.tokens if blanks else (),
        fields=fields,
        loss_over=objective.loss.over,
        pack=objective.pack.size if objective.pack is not None else None,
    )


def _declared_fields(objective: ir.Objective) -> tuple[tuple[str, str], ...]:
    """The per-token input fields the collator reads, each with what it is for."""
    fields = []
    if "prompt" in objective.exclude:
        fields.append(("prompt_mask", "the prompt, never touched"))
    if objective.unit.field is not None:
        fields.append((objective.unit.field, "the units: a run of equal ids, -1 a token alone"))
    return tuple(fields)


def _loss_weights(loss: ir.Loss) -> LossWeights:
    parts = ["loss cross_entropy"]
    parts += [f"weight {loss.weight}"] if loss.weight != "none" else []
    parts += [f"over {loss.over}"] if loss.over != "selected" else []
    return LossWeights(", ".join(parts), loss.weight == "inverse_rate", loss.over)


def _decoder_attention(objective: ir.Objective) -> str:
    """The decoder-only form's attention: 'causal', or 'prefix' (its default)."""
    return "causal" if objective.attention.kind == "causal" else "prefix"


def _fill_in_middle(fim: ir.Transform) -> FillInMiddle:
    tokens = " ".join(repr(t) for t in fim.tokens)  # spec text: only as a repr
    text = f"transform fim {_pct(fim.rate)}, spm {_pct(fim.spm)}: {tokens}"
    return FillInMiddle(text, fim.rate, fim.spm, fim.tokens)


def _blank_infilling(predict: ir.Predict) -> BlankInfilling:
    tokens = " ".join(repr(t) for t in predict.tokens)  # spec text: only as a repr
    order = ", shuffled" if predict.shuffled else ""
    text = f"predict spans as blanks{order}: {tokens}; output decoder_only, 2D positions"
    return BlankInfilling(text, predict.shuffled, predict.tokens)


PREDICT_TEXT = {
    "selected": "predict original at selected",
    "all": "predict original at all",
    "sentinels": "predict spans as sentinels",
    "sequence": "predict sequence",
}


def outputs(objective: ir.Objective, mixture: bool = False) -> tuple[str, ...]:
    """The batch's keys, in order, for the objective's output form."""
    kind = objective.output.kind
    if objective.pair is not None and objective.pair.labelled:
        return ("input_ids", "attention_mask", "token_type_ids", objective.pair.label_key)
    if objective.predict.target == "views":
        return ("input_ids", "attention_mask", "view_input_ids", "view_attention_mask")
    if kind == "encoder":
        spans = isinstance(objective.select, ir.Spans)
        views = objective.views is not None
        rtd = any(h.name == "replaced_token_detection" for h in objective.heads)
        shuffles = any(t.kind == "shuffle_trigrams" for t in objective.transforms)
        permutes = objective.attention.kind == "permutation"
        sparse = objective.attention.layout == "sparse"
        orders = ("perm_order",) if sparse else ("perm_mask", "target_mapping")
        unilm = objective.attention.kind == "unilm"
        return (
            ("input_ids", "attention_mask", "labels")
            + (("span_start", "span_end") if spans else ())
            + (("shuffled_mask",) if shuffles else ())
            + (orders + ("target_positions",) if permutes else ())
            + (("token_type_ids",) if objective.pair is not None else ())
            + (("self_attention_mask", "attention_mode") if unilm else ())
            + (("position_ids", "langs") if objective.input.kind == "parallel" else ())
            + (("view_input_ids", "view_attention_mask") if views else ())
            + (("sample_keys",) if rtd else ())
            + (("label_weights",) if objective.loss.weighted else ())
        )
    if kind == "decoder_only":
        if objective.predict.target == "blanks":
            blank = ("position_ids", "block_position_ids")
            return ("input_ids", "attention_mask", "labels", "prefix_mask", *blank)
        if _decoder_attention(objective) == "causal":
            return ("input_ids", "attention_mask", "labels")
        return ("input_ids", "attention_mask", "labels", "prefix_mask")
    keys: tuple[str, ...] = ("input_ids", "attention_mask", "labels", "decoder_input_ids")
    keys += ("decoder_attention_mask",)
    mass = isinstance(objective.select, ir.Fragment) and objective.predict.target == "selected"
    if mass and not mixture:  # MASS's decoder reads each target's predecessor at its position
        keys += ("decoder_position_ids",)
    return keys


def _pairs(pair: ir.Pair) -> BuildPairs:
    mix = ", ".join(f"{s.relation} {_pct(s.share)}" for s in pair.shares)
    return BuildPairs(
        f"pair {mix}",
        tuple(s.relation for s in pair.shares),
        cumulative_thresholds(tuple(s.share for s in pair.shares)),
        pair.label_key,
    )


def _candidates(objective: ir.Objective) -> Candidates:
    ex = set(objective.exclude)
    words = ", ".join(w for w in ("special", "first", "last", "prompt") if w in ex) or "nothing"
    return Candidates(
        f"exclude {words} (and padding)",
        "special" in ex,
        "first" in ex,
        "last" in ex,
        "prompt" in ex,
    )


def _budget(b: ir.Budget) -> BudgetPlan:
    return BudgetPlan(b.rate, b.of, b.rounding, b.min, b.max)


def _budget_text(b: ir.Budget) -> str:
    parts = [f"budget {_pct(b.rate)} of {b.of.replace('_', ' ')}", b.rounding]
    if b.min:
        parts.append(f"min {b.min}")
    if b.max is not None:
        parts.append(f"max {b.max}")
    return ", ".join(parts)


def _selection(
    sel: ir.Bernoulli
    | ir.Exact
    | ir.Spans
    | ir.CountedSpans
    | ir.RandomSpans
    | ir.Fragment
    | ir.Suffix
    | ir.Windows
    | ir.NoSelection,
) -> Step:
    if isinstance(sel, ir.NoSelection):
        return SelectNone("select none")
    if isinstance(sel, ir.Suffix):
        return SelectSuffix(f"select suffix {_pct(sel.rate)}", sel.rate)
    if isinstance(sel, ir.Windows):
        law = sel.length.describe()
        return SelectWindows(
            f"select windows length ~ {law}, rate {sel.rate:.6g}",
            law,
            sel.length.table.mean,
            sel.length.table.values,
            sel.length.table.cdf_u32(),
            sel.rate,
        )
    if isinstance(sel, ir.Bernoulli):
        if sel.rate_law is not None:
            drawn = sel.rate_law
            text = f"select bernoulli rate ~ {drawn.describe()}, drawn per example"
            return SelectBernoulli(text, (drawn.low + drawn.high) / 2, (drawn.low, drawn.high))
        assert sel.rate is not None  # the IR holds a rate or a rate law
        return SelectBernoulli(f"select bernoulli {_pct(sel.rate)}", sel.rate)
    if isinstance(sel, ir.Exact):
        alpha = f" alpha {sel.alpha:g}" if sel.alpha is not None else ""
        return SelectExact(
            f"select exact{alpha}; {_budget_text(sel.budget)}", _budget(sel.budget), sel.alpha
        )
    if isinstance(sel, ir.Fragment):
        return _fragment(sel)
    if isinstance(sel, ir.CountedSpans):
        law = sel.count.describe()
        return SelectCountedSpans(
            f"select spans count ~ {law}, ends {sel.ends}",
            law,
            sel.count.table.mean,
            sel.count.table.values,
            sel.count.table.cdf_u32(),
        )
    if isinstance(sel, ir.RandomSpans):
        roll = ", random_roll" if sel.random_roll else ""
        return SelectRandomSpans(
            f"select random_spans density {_pct(sel.density)}, mean {sel.mean:g}{roll}",
            sel.density,
            sel.mean,
            sel.random_roll,
        )
    table = sel.length.table
    law = sel.length.describe()
    return SelectSpans(
        f"select spans length ~ {law}; {_budget_text(sel.budget)}",
        _budget(sel.budget),
        law,
        table.mean,
        table.values,
        table.cdf_u32(),
        1.0 - table.prob_of(0),
    )


def _fragment(sel: ir.Fragment) -> SelectFragment:
    if sel.budget is not None:
        return SelectFragment(f"select fragment; {_budget_text(sel.budget)}", _budget(sel.budget))
    assert sel.length is not None  # the IR holds exactly one of them
    table = sel.length.table
    law = sel.length.describe()
    return SelectFragment(
        f"select fragment length ~ {law}", None, law, table.mean, table.values, table.cdf_u32()
    )


def _replacement(rep: ir.Replacement, inserts: bool = False) -> Replace:
    shares = tuple(s for s in rep.shares if s.share > 0)
    source = f" from {rep.random_from}" if rep.random_from != "vocabulary" else ""
    mix = ", ".join(
        f"{s.action} {_pct(s.share)}{source if s.action == 'random' else ''}" for s in shares
    )
    collapse = ", collapse" if rep.collapse else ""
    return Replace(
        f"replace per {rep.per}{collapse}: {mix}",
        rep.per,
        tuple(s.action for s in shares),
        cumulative_thresholds(tuple(s.share for s in shares)),
        rep.collapse,
        rep.share_of("random") if inserts else None,
        rep.random_from,
    )


def _replacement_needs(rep: ir.Replacement) -> tuple[str, ...]:
    """What the replacement mix writes and reads: special tokens, random tokens and the
    run-time tables they come from ('counts' for unigram, 'pool', 'similar')."""
    needs = tuple(a for a in ("mask", "random", "sentinel") if rep.share_of(a) > 0)
    if rep.share_of("similar") > 0:
        needs += ("random", "similar") if "random" not in needs else ("similar",)
    if "random" in needs and rep.random_from != "vocabulary":
        needs += ("counts",) if rep.random_from == "unigram" else ("pool",)
    return needs


def _head_params(head: ir.Head) -> tuple[tuple[str, ir.HeadValue], ...]:
    return tuple(sorted(head.resolved))


def _classes(objective: ir.Objective) -> tuple[tuple[str, int], ...]:
    return (("classes", len(objective.pair.shares)),) if objective.pair is not None else ()


def _streams_used(steps: list[Step]) -> list[str]:
    used: list[str] = []
    for step in steps:
        if isinstance(step, SelectBernoulli | SelectExact):
            used.append("select")
        if isinstance(step, SelectBernoulli) and step.rate_range is not None:
            used.append("rate")
        budgeted = SelectExact | SelectSpans | SelectFragment
        if (
            isinstance(step, budgeted)
            and step.budget is not None
            and step.budget.rounding == "stochastic"
        ):
            used.append("budget")
        if isinstance(step, SelectSpans):
            used += ["span_length", "span_order", "span_place"]
        if isinstance(step, SelectFragment):
            used += ["span_place"] + (["span_length"] if step.law is not None else [])
        if isinstance(step, SampleKeys):
            used.append("sample")
        if isinstance(step, SelectSuffix):
            used.append("suffix")
        if isinstance(step, BuildPairs):
            used.append("pair")
        if isinstance(step, UnilmAttention):
            used.append("attention_mode")
        if isinstance(step, SelectWindows):
            used += ["window_length", "window_offset"]
        if isinstance(step, PermutationAttention):
            used.append("factorization")
        if isinstance(step, ShuffleNgrams):
            used += ["shuffle_place", "shuffle_order"]
        if isinstance(step, PermuteSentences):
            used.append("sentence_order")
        if isinstance(step, Rotate):
            used.append("rotate")
        if isinstance(step, FillInMiddle):
            used += ["fim", "fim_order", "fim_cut"]
        if isinstance(step, SelectCountedSpans):
            used += ["span_count", "span_ends"]
        if isinstance(step, BlankInfilling) and step.shuffled:
            used.append("block_order")
        if isinstance(step, SelectRandomSpans):
            used += ["noise_lengths", "nonnoise_lengths"] + (["roll"] if step.random_roll else [])
        if isinstance(step, Replace):
            used.append("replace")
            if "random" in step.actions or "similar" in step.actions:
                used.append("random_token")
            if step.insert_random is not None:
                used.append("insert_place")
                used += ["insert_random_token"] if step.insert_random > 0 else []
    return used

"""Which checks a spec's promises call for, and running them with Hypothesis."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hypothesis import HealthCheck, Phase, configuration, given, settings

from objspec import ir
from objspec.checks.catalogue import CHECKS as SAME_FORM_CHECKS
from objspec.checks.composed import COMPOSITION_CHECKS, MIXTURE_CHECKS, member_compiled
from objspec.checks.decoder import DECODER_CHECKS, SAME_LENGTH_CHECKS
from objspec.checks.framework import Case, Check, CheckFailure, CheckResult, big_case, cases
from objspec.checks.rewrites import _fragment_size

# The checks of one batch form's own layout.
CHECKS = (*SAME_FORM_CHECKS, *DECODER_CHECKS)  # every check of one objective

FORM_CHECKS: dict[str, tuple[str, ...]] = {
    "encoder": (),
    "encoder_decoder": ("decoder_inputs",),
    "decoder_only": ("packed",),
}


def applicable(objective: ir.Spec) -> tuple[Check, ...]:
    """The checks whose promise the spec makes (a mixture's own; see :func:`run_checks` for
    its members')."""
    form = FORM_CHECKS[objective.output.kind]
    if isinstance(objective, ir.Mixture):
        generic = ("batch_invariance", "epochs", "dynamic", *form)
        return (*MIXTURE_CHECKS, *(c for c in CHECKS if c.name in generic))
    if isinstance(objective, ir.Composition):
        pairs = ("pair_labels", "pair_rates") if objective.pair is not None else ()
        generic = ("epochs", "dynamic", *pairs, *form)
        return (*COMPOSITION_CHECKS, *(c for c in CHECKS if c.name in generic))
    skip = {name for names in FORM_CHECKS.values() for name in names} - set(form)
    if not isinstance(objective.select, ir.Bernoulli):
        skip.add("rate")
    else:
        skip.add("budget")
    if objective.views is None:
        skip.add("views")
    if not (isinstance(objective.select, ir.Fragment) and objective.select.length is not None):
        skip.add("fragment_lengths")
    else:
        skip.add("budget")  # the law sizes the fragment: fragment_lengths checks it
        if _fragment_size(objective) is None:
            skip.add("fragment_lengths")
    if objective.predict.target == "views":
        skip.update(("labels", "untouched", "mix", "dynamic"))  # no targets: 'views' checks it
    if objective.unit.kind == "token":
        skip.add("whole_words")
    if not isinstance(objective.select, ir.Spans):
        skip.add("span_support")
    if objective.masks.kind == "static" and objective.masks.copies == 1:
        skip.add("dynamic")
    if objective.predict.target != "sentinels":
        skip.add("reconstruct")
    if objective.predict.target != "sequence":
        skip.add("sequence")
    split = (
        isinstance(objective.select, ir.Suffix)
        and objective.replace.share_of("delete") == 1.0
        and objective.predict.target == "selected"
        and objective.output.seq2seq
    )
    if not split:
        skip.add("split")
    if not any(t.kind == "fim" for t in objective.transforms):
        skip.update(("fim", "fim_rates"))
    if not (
        isinstance(objective.select, ir.CountedSpans) and objective.predict.target == "sequence"
    ):
        skip.update(("moved_spans", "span_counts"))
    blanks = objective.predict.target == "blanks"
    if not blanks:
        skip.update(("blanks", "blank_positions", "block_order"))
    else:
        skip.update(("infilling", "packed"))  # 'blanks' checks the layout; packing refuses it
    if not (objective.replace.collapse or objective.inserts):
        skip.add("infilling")
    if not any(t.kind == "shuffle_trigrams" for t in objective.transforms):
        skip.add("shuffle")
    if objective.attention.kind != "permutation":
        skip.add("factorization")
    if objective.attention.kind != "unilm":
        skip.update(("unilm", "unilm_rates"))
    if objective.input.kind != "parallel":
        skip.add("translation")
    else:
        skip.update(SAME_LENGTH_CHECKS)  # the masked LM runs on the joined row: 'translation'
    if objective.pair is None:
        skip.update(("pairs", "pair_labels", "pair_rates", "segments"))
    elif objective.pair.labelled:
        skip.update((*SAME_LENGTH_CHECKS, "segments"))
        if any(s.relation == "random" for s in objective.pair.shares):
            skip.add("batch_invariance")  # a random partner is the batch's: pair_labels instead
    else:  # segments for a masked LM, which runs on the pair row: 'segments' checks it
        skip.update((*SAME_LENGTH_CHECKS, "pairs", "pair_labels", "pair_rates"))
    if not (isinstance(objective.select, ir.Exact) and objective.select.alpha is not None):
        skip.add("frequency")
    transforms = {t.kind for t in objective.transforms} - {"shuffle_trigrams"}
    nothing = isinstance(objective.select, ir.NoSelection)
    if not (nothing and transforms == {"permute_sentences"}):
        skip.add("permutation")
    if not (nothing and transforms == {"rotate"}):
        skip.add("rotation")
    if objective.predict.target != "all":
        skip.add("document_target")
    else:
        skip.add("labels")  # the labels are the whole row: document_target checks them
    if objective.replace.share_of("delete") != 1.0 or not isinstance(objective.select, ir.Exact):
        skip.add("deletion")
    if not isinstance(objective.select, ir.RandomSpans) or objective.predict.target != "sentinels":
        skip.add("t5_counts")
    mask_only = objective.replace.share_of("mask") == 1.0 and not objective.transforms
    mass = objective.predict.target == "selected" and isinstance(objective.select, ir.Fragment)
    same_length = not objective.output.seq2seq or (
        objective.output.kind == "encoder_decoder"
        and (mass or mask_only)
        and objective.replace.share_of("delete") == 0
        and not objective.replace.collapse
        and not objective.inserts
    )
    if not same_length:
        skip.update(SAME_LENGTH_CHECKS)
    return tuple(c for c in CHECKS if c.name not in skip)


def run_check(check: Check, objective: ir.Spec, compiled: Any, max_examples: int) -> CheckResult:
    """Run one check: once on the fixed big case if statistical, else under Hypothesis."""
    try:
        if check.statistical:
            check.run(objective, compiled, big_case())
        else:
            _hypothesis(check, objective, compiled, max_examples)
    except CheckFailure as exc:
        return CheckResult(check.name, check.promise, False, str(exc).splitlines()[0])
    except Exception as exc:  # a crash is a failed check too, reported with its type
        return CheckResult(check.name, check.promise, False, f"{type(exc).__name__}: {exc}")
    return CheckResult(check.name, check.promise, True)


@contextmanager
def _storage_outside_cwd() -> Iterator[None]:
    """Point Hypothesis' storage (its example database, and the cache of constants it reads
    from local modules, written even with ``database=None``) at a temporary folder for the
    duration, so that a check writes nothing into the current directory."""
    previous = vars(configuration).get("__hypothesis_home_directory")
    with tempfile.TemporaryDirectory(prefix="objspec-hypothesis-") as folder:
        configuration.set_hypothesis_home_dir(folder)
        try:
            yield
        finally:
            configuration.set_hypothesis_home_dir(previous)


def _hypothesis(check: Check, objective: ir.Spec, compiled: Any, max_examples: int) -> None:
    @settings(
        max_examples=max_examples,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
        phases=(Phase.explicit, Phase.generate),  # a check reports its first failure unshrunk
    )
    @given(cases())
    def property_holds(case: Case) -> None:
        check.run(objective, compiled, case)

    with _storage_outside_cwd():
        property_holds()


def run_checks(
    objective: ir.Spec, compiled: Any, max_examples: int = 40, statistical: bool = True
) -> list[CheckResult]:
    """Every applicable check of a compiled objective; for a mixture, also every member's own
    checks on the member compiled alone (reported as ``member:check``). ``statistical=False``
    leaves out the checks that run once on the big fixed case (rates, mixes, laws)."""

    def chosen(spec: ir.Spec) -> list[Check]:
        return [c for c in applicable(spec) if statistical or not c.statistical]

    results = [run_check(c, objective, compiled, max_examples) for c in chosen(objective)]
    if isinstance(objective, ir.Mixture | ir.Composition):
        parts = objective.members if isinstance(objective, ir.Mixture) else objective.tasks
        for m in parts:
            sub = member_compiled(objective, m)
            for c in chosen(m.objective):
                r = run_check(c, m.objective, sub, max_examples)
                results.append(CheckResult(f"{m.name}:{r.name}", r.promise, r.passed, r.detail))
    return results

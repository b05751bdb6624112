"""``Collator(..., fused=True)``: the corruption through ``torch.compile(fullgraph=True)``, the
same bits as eager.

Every bundled spec, in every output form it accepts, on list and padded input: the fused
collator's batch equals the eager one's, tensor for tensor, and its corruption traces whole
(strictly: a graph break or a compiler error fails the test). The all-spec runs use
``backend="aot_eager"`` (it proves the graph is whole and identical, without paying for C++
builds); inductor itself, C++/OpenMP kernels, runs on the forms in ``INDUCTOR`` here and on
every form with ``OBJSPEC_FUSED_DEEP=1``. A step that does not trace (a user's runtime
function with a host read) falls back to eager with one notice: tested on a patched step.

Wall time on the development machine (2 shared cores): 65 to 100 s with inductor's kernel
cache warm, longer cold; the deep run (all 49 forms through inductor) about 2.5 minutes more.
"""

from __future__ import annotations

import os
import shutil
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import torch

from objspec import bundled, compile_file
from objspec.runtime.fused import FusedUnavailable, toolchain_reason
from tests.test_batch_safety import examples_for, padded
from tests.test_checks_forms import accepted_forms

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.objspec"))
FORMS = [(path.stem, form) for path in SPECS for form in accepted_forms(path)]

# inductor in the default run (one form, padded input: a C++ build is seconds on 2 cores)
INDUCTOR = {
    ("bert_mlm", "encoder"),
    ("spanbert", "encoder"),
    ("t5_span", "encoder_decoder"),
    ("bart", "encoder_decoder"),
}
DEEP = os.environ.get("OBJSPEC_FUSED_DEEP") == "1"
NO_CXX = toolchain_reason(torch.device("cpu"))


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    return bundled.load_tokenizer()


@pytest.fixture(scope="module")
def rows(tokenizer: Any) -> list[dict[str, Any]]:
    examples = bundled.encode_examples(tokenizer, bundled.load_documents()[:12], 40)
    return [dict(e) for e in examples[:7]]


@cache
def compiled(name: str, form: str) -> Any:
    return compile_file(ROOT / "specs" / f"{name}.objspec", output=form)


def collator(name: str, form: str, tokenizer: Any, **kwargs: Any) -> Any:
    module = compiled(name, form)
    if module.Collator.modes:
        tokenizer = bundled.with_special_tokens(bundled.load_tokenizer(), module.Collator.modes)
    kwargs.update(bundled.run_time_inputs(tokenizer, module.Collator.needs))
    return module.Collator(tokenizer, seed=3, **kwargs)


def inputs(
    name: str, tokenizer: Any, rows: list[dict[str, Any]], extra_columns: int = 3
) -> dict[str, Any]:
    """The spec's examples as a list, and padded with ``extra_columns`` padding columns past
    the longest row (0: the list's width, so that both forms share one traced graph)."""
    examples = examples_for(ROOT / "specs" / f"{name}.objspec", tokenizer, rows)
    width = max(len(e["input_ids"]) for e in examples) + extra_columns
    return {"list": examples, "padded": padded(examples, "right", width, bundled.PAD_ID)}


def assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].dtype == b[key].dtype, key
        assert torch.equal(a[key], b[key]), key


def check(
    name: str,
    form: str,
    backend: str,
    tokenizer: Any,
    rows: list[Any],
    forms: tuple[str, ...] | None = None,
    extra_columns: int = 3,
    **kw: Any,
) -> None:
    eager = collator(name, form, tokenizer, **kw)
    fused = collator(name, form, tokenizer, fused=backend, **kw)
    fused._fuser.strict = True  # a graph break or a compiler error raises
    for input_form, given in inputs(name, tokenizer, rows, extra_columns).items():
        if forms is not None and input_form not in forms:
            continue
        for epoch in (0, 1):  # a new epoch: new keys, the same graph
            eager.set_epoch(epoch)
            fused.set_epoch(epoch)
            assert_same(fused(given), eager(given))
    assert fused._fuser.reason is None


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize(("name", "form"), FORMS, ids=[f"{n}-{f}" for n, f in FORMS])
def test_fused_equals_eager_for_every_spec(
    name: str, form: str, tokenizer: Any, rows: list[Any]
) -> None:
    # list and padded input of one width: one trace each (padding columns past the longest
    # row, which change the graph's shape, are run through inductor below and in the buckets)
    check(name, form, "aot_eager", tokenizer, rows, extra_columns=0)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.skipif(NO_CXX is not None, reason=f"inductor on CPU: {NO_CXX}")
@pytest.mark.parametrize(
    ("name", "form"),
    [p for p in FORMS if DEEP or p in INDUCTOR],
    ids=lambda v: str(v),
)
def test_inductor_fused_equals_eager(name: str, form: str, tokenizer: Any, rows: list[Any]) -> None:
    if DEEP:  # both inputs at one width: one C++ build per form
        check(name, form, "inductor", tokenizer, rows, extra_columns=0)
    else:  # padding columns past the longest row
        check(name, form, "inductor", tokenizer, rows, forms=("padded",))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_buckets_compile_once_per_width_bucket(tokenizer: Any, rows: list[Any]) -> None:
    """pad_to_multiple_of widens the batch before the corruption: rows of different lengths in
    one bucket share a graph, and the batch is still the eager one's."""
    eager = collator("bert_mlm", "encoder", tokenizer, pad_to_multiple_of=16)
    fused = collator("bert_mlm", "encoder", tokenizer, pad_to_multiple_of=16, fused="aot_eager")
    fused._fuser.strict = True
    for cut in (40, 38, 35):  # widths 40, 38, 35 -> one bucket of 48
        given = [{"input_ids": e["input_ids"][:cut], "index": e["index"]} for e in rows]
        assert_same(fused(given), eager(given))
    assert {shape[2] for shape in fused._fuser.warm} == {48}


def test_no_toolchain_falls_back_with_one_notice(
    tokenizer: Any, rows: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    eager = collator("bert_mlm", "encoder", tokenizer)
    fused = collator("bert_mlm", "encoder", tokenizer, fused=True)
    eager.set_epoch(0)
    fused.set_epoch(0)
    with pytest.warns(RuntimeWarning, match="no C\\+\\+ compiler") as caught:
        first, second = fused(rows), fused(rows)
    assert len([w for w in caught if "fused=True" in str(w.message)]) == 1
    assert_same(first, eager(rows))
    assert_same(second, eager(rows))


@pytest.fixture
def host_read_step(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A freshly compiled bert_mlm whose ``labels_at`` step reads a count to the host (as a
    user's own runtime function might): it cannot trace whole."""
    from objspec import runtime

    labels_at = runtime.labels_at

    def counted(ids: torch.Tensor, selected: torch.Tensor) -> torch.Tensor:
        if int(selected.sum()) < 0:  # a host read: a graph break under fullgraph=True
            raise AssertionError("unreachable")
        return labels_at(ids, selected)

    monkeypatch.setattr(runtime, "labels_at", counted)
    return compile_file(ROOT / "specs" / "bert_mlm.objspec")  # a class of its own: a new trace


def test_strict_raises_where_it_cannot_fuse(
    tokenizer: Any, rows: list[Any], host_read_step: Any
) -> None:
    fused = host_read_step.Collator(tokenizer, seed=3, fused="aot_eager")
    fused._fuser.strict = True
    with pytest.raises(FusedUnavailable):
        fused(rows)


def test_a_step_that_does_not_trace_falls_back_with_one_notice(
    tokenizer: Any, rows: list[Any], host_read_step: Any
) -> None:
    eager = host_read_step.Collator(tokenizer, seed=3)
    fused = host_read_step.Collator(tokenizer, seed=3, fused="aot_eager")
    assert_one_notice_and_eager_batches(eager, fused, rows, "fused=True runs eager")
    assert fused._fuser.reason is not None


def assert_one_notice_and_eager_batches(
    eager: Any, fused: Any, rows: list[Any], match: str
) -> None:
    """Two epochs of ``rows``: the fused collator's batches are eager's, with one notice."""
    with pytest.warns(RuntimeWarning, match=match) as caught:
        for epoch in (0, 1):
            eager.set_epoch(epoch)
            fused.set_epoch(epoch)
            assert_same(fused(rows), eager(rows))
    assert len([w for w in caught if "fused=True" in str(w.message)]) == 1


@pytest.mark.parametrize("rounding", ["round", "ceil", "floor", "stochastic"])
@pytest.mark.parametrize(("minimum", "maximum"), [(0, None), (1, 20), (5, 3), (40, None)])
def test_the_budget_bound_holds_for_every_row_count(
    rounding: str, minimum: int, maximum: int | None
) -> None:
    """The fused path's static span widths: no row of L columns gets a bigger budget."""
    from objspec.runtime import budget_bound, budget_counts

    for rate in (0.0, 0.15, 0.3, 1 / 3, 0.5, 1.0):
        for length in (1, 2, 7, 64, 127, 512):
            n = torch.arange(length + 1)
            u = torch.full_like(n, 2**32 - 1)  # the largest stochastic draw
            most = budget_counts(n, rate, rounding, minimum=minimum, maximum=maximum, u=u)
            bound = budget_bound(length, rate, minimum=minimum, maximum=maximum)
            assert int(most.max()) <= bound <= length, (rate, length)


def test_a_full_row_bounds_t5_counts() -> None:
    """T5's noise and span counts grow with the row: a full row's bound every shorter one."""
    from objspec.runtime.rewrite import full_row_counts, t5_noise_counts

    for density, mean, sentinels in ((0.15, 3.0, None), (0.5, 32.0, 100), (0.15, 8.0, 2)):
        for length in (1, 2, 3, 9, 128, 513):
            noise, spans = t5_noise_counts(torch.arange(length + 1), density, mean, sentinels)
            most_noise, most_spans = full_row_counts(length, density, mean, sentinels)
            assert int(noise.max()) <= most_noise and int(spans.max()) <= most_spans


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_batch_past_the_static_rounds_is_redone_eager(
    tokenizer: Any, rows: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whole words take rounds of a first-fit greedy; the fused graph runs a fixed number.
    With one round (whole words overflow it), the host's check sends every batch back to
    eager's rounds: the same batch, and no notice (the graph itself is fine)."""
    from objspec.runtime import selection

    monkeypatch.setattr(selection, "FUSED_ROUNDS", 1)
    module = compile_file(ROOT / "specs" / "wwm.objspec")  # a class of its own: a new trace
    eager = module.Collator(tokenizer, seed=3)
    fused = module.Collator(tokenizer, seed=3, fused="aot_eager")
    fused._fuser.strict = True
    redone = []
    fused.corrupt = lambda batch, keys: redone.append(1) or type(fused).corrupt(fused, batch, keys)
    for epoch in (0, 1):
        eager.set_epoch(epoch)
        fused.set_epoch(epoch)
        assert_same(fused(rows), eager(rows))
    assert len(redone) == 3  # the first shape's warm-up, then each batch redone once


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("max_length", [None, 24, 60])
def test_pair_rows_at_a_static_width_are_cut_as_eager(
    tokenizer: Any, rows: list[Any], max_length: int | None
) -> None:
    """Pair rows (BERT's MLM + NSP) are laid out at a static width in the fused graph (two
    rows and three specials, or ``max_length`` when it is less) and cut to the longest pair
    after: the same batch as eager's, whose width is the longest pair."""
    check("bert", "encoder", "aot_eager", tokenizer, rows, max_length=max_length)


def test_a_compiled_batch_that_differs_from_eager_falls_back(
    tokenizer: Any, rows: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first batch of each shape runs eager too (the warm-up): a compiled graph whose
    batch differs (a compiler's miscompile, as inductor's of BART's token deletion was) is
    caught there, with one notice, and eager's batches are used from then on."""
    from objspec.runtime import fused as fused_module

    def miscompiled(cls: Any, backend: str) -> Any:
        def run(collator: Any, batch: Any, keys: Any) -> dict[str, torch.Tensor]:
            out = cls.corrupt(collator, batch, keys)
            return {**out, "labels": out["labels"].roll(1, dims=1)}

        return run

    monkeypatch.setattr(fused_module, "compiled_corrupt", miscompiled)
    eager = collator("bert_mlm", "encoder", tokenizer)
    fused = collator("bert_mlm", "encoder", tokenizer, fused="aot_eager")
    assert_one_notice_and_eager_batches(eager, fused, rows, "differed from eager")
    fused._fuser.reason = None  # strict: the same difference raises
    fused._fuser.strict = True
    fused._fuser.warm.clear()
    with pytest.raises(FusedUnavailable, match="differed from eager"):
        fused(rows)

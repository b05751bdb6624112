"""Plan -> Python source: one collator class and one heads module per objective.

The output is deterministic (same plan and compiler version, same bytes), imports only ``torch``
and ``objspec.runtime``, and reads like hand-written code: the spec's steps in order, constants
named at the top. Nothing from a spec reaches the source except identifiers that passed
validation and ``repr()`` of validated values (the spec text itself is a ``repr``'d constant);
the result is checked with ``ast.parse`` before it is returned.
"""

from __future__ import annotations

import ast
import builtins
import hashlib
import keyword
import linecache
import re
import types
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from compiler import lower as L
from objspec import __version__
from objspec.errors import CodegenError, IntegrityError
from objspec.runtime.generated import PickledBySource, register_rebuild

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def checked_identifier(name: str) -> str:
    """``name`` if it is a plain, non-keyword Python identifier, else CodegenError."""
    if not _IDENTIFIER.match(name) or keyword.iskeyword(name):
        raise CodegenError(f"{name!r} cannot be used as an identifier in generated code")
    return name


def class_prefix(name: str) -> str:
    """``bert_mlm`` -> ``BertMlm`` (always a valid identifier)."""
    camel = "".join(part[:1].upper() + part[1:] for part in checked_identifier(name).split("_"))
    return camel if camel[:1].isalpha() else "Spec" + camel


@dataclass(frozen=True)
class GeneratedModule:
    """Generated source and the names it defines."""

    name: str
    source: str
    collator_class: str
    heads_class: str

    @property
    def filename(self) -> str:
        return f"{self.name}.py"


class _Writer:
    """Lines with indentation."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._depth = 0

    def __call__(self, line: str = "") -> None:
        self.lines.append(("    " * self._depth + line) if line else "")

    @contextmanager
    def indent(self) -> Iterator[None]:
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


# Names the emitted code spells out itself: no name the registry makes may take one of them.
HEADER_NAMES = ("torch", "rt", "SPEC_NAME", "SPEC_SHA256", "OBJSPEC_VERSION", "SPEC_SOURCE")
FIXED_CONSTANTS = (
    "MIXTURE_CDF",
    "MIXTURE_MEMBERS",
    "LABEL_KEY",
    "GENERATOR_SIZE",
    "GENERATOR_TEMPERATURE",
)
# Characters that may end a line of Python (or hide one) besides '\n': none may appear in the
# emitted source, where spec text is only ever a repr (which escapes them all).
_RAW_LINE_BREAK = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")


def reserved_names(plan: L.Plan) -> frozenset[str]:
    """The names a module's registry must not hand out: the header's, the random streams',
    the fixed constants and the head weights the emitted code names, its classes, builtins."""
    prefix = class_prefix(plan.name)
    return frozenset(
        (*HEADER_NAMES, *FIXED_CONSTANTS, f"{prefix}Collator", f"{prefix}Heads")
        + tuple(f"STREAM_{stream.upper()}" for stream in L.STREAMS)
        + tuple(f"{kind.upper()}_WEIGHT" for kind in HEAD_CONSTRUCTORS)
        + tuple(dir(builtins))
    )


class _Namespace:
    """One registry for the names a module defines (torch.fx's ``_Namespace``): each (owner,
    candidate) gets one name, unique in the module: the candidate itself, or ``candidate_1``,
    ``candidate_2``, ... when another owner (a mixture member) or the module has it. Reserved
    names go to the module itself (owner ``""``) only."""

    def __init__(self, reserved: Iterable[str] = ()) -> None:
        self._reserved = frozenset(reserved)
        self._used: set[str] = set()
        self._names: dict[tuple[str, str], str] = {}

    def claim(self, candidate: str, owner: str = "") -> str:
        key = (owner, checked_identifier(candidate))
        if key not in self._names:
            self._names[key] = self._unique(candidate, fixed=not owner)
        return self._names[key]

    def mark(self, name: str) -> None:
        """A name the module uses as spelled (one claimed, or a reserved one)."""
        self._used.add(checked_identifier(name))

    def _unique(self, candidate: str, fixed: bool) -> str:
        name, n = candidate, 0
        while name in self._used or (name in self._reserved and not (fixed and n == 0)):
            n += 1
            name = f"{candidate}_{n}"
        self._used.add(name)
        return name


class _Constants:
    """Module-level constants, emitted in the order they are first named; their names come
    from one :class:`_Namespace`."""

    def __init__(self, reserved: Iterable[str] = ()) -> None:
        self.items: dict[str, str] = {}
        self.comments: dict[str, str] = {}
        self.names = _Namespace(reserved)

    def add(self, name: str, value: Any, comment: str | None = None) -> str:
        self.names.mark(name)
        text = _literal(value)
        if self.items.get(name, text) != text:
            raise CodegenError(f"constant {name} defined twice with different values")
        self.items[name] = text
        if comment:
            self.comments[name] = comment
        return name


def _literal(value: Any) -> str:
    """``repr`` of a plain value, checked to be a literal (no objects, no nan/inf)."""
    if isinstance(value, float) and value != value or value in (float("inf"), float("-inf")):
        raise CodegenError(f"{value!r} cannot be a constant")
    text = repr(value)
    try:
        ast.literal_eval(text)
    except (ValueError, SyntaxError) as exc:
        raise CodegenError(f"{text} is not a literal") from exc
    return text


def _source_block(source: str) -> str:
    lines = source.splitlines(keepends=True) or [""]
    body = "\n".join(f"    {line!r}" for line in lines)
    return f"(\n{body}\n)"


class Generator:
    """Emit the module of one plan: ``emit_<step>`` per plan step (sqlglot-style dispatch)."""

    def __init__(
        self,
        plan: L.Plan,
        consts: _Constants | None = None,
        body: _Writer | None = None,
        const_prefix: str = "",
        owner: str = "",
    ) -> None:
        self.plan = plan
        self.prefix = class_prefix(plan.name)
        self.consts = consts if consts is not None else _Constants(reserved_names(plan))
        self.body = body if body is not None else _Writer()
        self.const_prefix = const_prefix
        self.owner = owner  # the mixture member whose constants these are ('' for the module)
        self.word_units = False
        self.span_start_expr = "rt.run_start_position(selected)"
        self.returned = False
        self.original = "batch"  # the uncorrupted batch the targets read

    def cname(self, name: str) -> str:
        """A module constant's name: prefixed by the mixture member that owns it, unique in
        the module (members ``a`` and ``A`` get ``A_RATE`` and ``A_RATE_1``)."""
        return self.consts.names.claim(self.const_prefix + name, self.owner)

    def method_name(self, member: str) -> str:
        """The collator's method that corrupts with one mixture member, unique in the module."""
        return self.consts.names.claim(f"denoise_{member}", member)

    # --- the module ----------------------------------------------------------------------
    def generate(self) -> GeneratedModule:
        self._collator()
        self.body()
        self.body()
        self._heads()
        head = self._header()
        source = head + self.body.text()
        raw = _RAW_LINE_BREAK.search(source)
        if raw is not None:  # pragma: no cover - a compiler bug: spec text reached the source
            raise CodegenError(f"generated code holds the raw character {raw.group()!r}")
        try:
            ast.parse(source)
        except SyntaxError as exc:  # pragma: no cover - a compiler bug
            raise CodegenError(f"generated code does not parse: {exc}") from exc
        return GeneratedModule(
            self.plan.name, source, f"{self.prefix}Collator", f"{self.prefix}Heads"
        )

    def _header(self) -> str:
        w = _Writer()
        w(f'"""Collator and loss heads for the objective `{self.plan.name}`.')
        w()
        w(f"Generated by objspec {__version__} from a spec with sha256 {self.plan.sha256}.")
        w("Do not edit: change the spec and compile it again.")
        w('"""')
        w()
        w("import torch")
        w()
        w("from objspec import runtime as rt")
        w()
        w(f"SPEC_NAME = {self.plan.name!r}")
        w(f"SPEC_SHA256 = {self.plan.sha256!r}")
        w(f"OBJSPEC_VERSION = {__version__!r}")
        w(f"SPEC_SOURCE = {_source_block(self.plan.source)}")
        w()
        w("# Random streams: one per kind of decision, so no step shifts another's draws.")
        for name, number in self.plan.streams.items():
            w(f"STREAM_{name.upper()} = {number!r}")
        w()
        for name, text in self.consts.items.items():
            if name in self.consts.comments:
                w(f"# {self.consts.comments[name]}")
            w(f"{name} = {text}")
        w()
        w()
        return w.text()

    # --- the collator --------------------------------------------------------------------
    def _collator(self) -> None:
        if self.plan.members:
            self._mixture_collator()
            return
        w = self.body
        w(f"class {self.prefix}Collator(rt.Collator):")
        with w.indent():
            w(f'"""The `{self.plan.name}` corruption: batch in, corrupted batch and targets out.')
            w()
            w("Call it on a list of examples (dicts with input_ids; optional index, word_ids,")
            w("sentence_ids) or on a padded dict of tensors; outputs use Hugging Face key names.")
            w('"""')
            w()
            w(f"needs = {_literal(self.plan.needs)}")
            w(f"mask_copies = {_literal(self.plan.mask_copies)}")
            w(f"outputs = {_literal(self.plan.outputs)}")
            if self.plan.tokens:
                w(f"modes = {_literal(self.plan.tokens)}  # special tokens, looked up by text")
            if self.plan.output == "decoder_only":
                w("decoder_only = True  # labels are next tokens: packing cuts them at documents")
            self._declared_fields()
            w()
            w("def corrupt(self, batch: rt.Batch, keys: rt.Keys) -> dict[str, torch.Tensor]:")
            with w.indent():
                w("device = batch.device")
                for step in self.plan.steps:
                    w(f"# {step.text}")
                    self._dispatch(step)
                if not self.returned:
                    w("return {")
                    with w.indent():
                        for key in self.plan.outputs:
                            w(f"{key!r}: {OUTPUT_EXPRESSIONS[key]},")
                    w("}")

    def _mixture_collator(self) -> None:
        w = self.body
        plan = self.plan
        modes = tuple(m.mode for m in plan.members if m.mode is not None)
        cdf = self.consts.add("MIXTURE_CDF", plan.mixture_cdf)
        self.consts.add("MIXTURE_MEMBERS", tuple(m.name for m in plan.members))
        w(f"class {self.prefix}Collator(rt.Collator):")
        with w.indent():
            w(f'"""The `{plan.name}` mixture: each example is corrupted by one member, drawn')
            w("with the member rates from the example's own key; outputs use Hugging Face names.")
            w('"""')
            w()
            w(f"needs = {_literal(plan.needs)}")
            w(f"mask_copies = {_literal(plan.mask_copies)}")
            w(f"outputs = {_literal(plan.outputs)}")
            w(f"modes = {_literal(modes)}")
            if plan.output == "decoder_only":
                w("decoder_only = True  # labels are next tokens: packing cuts them at documents")
            self._declared_fields()
            w()
            w("def corrupt(self, batch: rt.Batch, keys: rt.Keys) -> dict[str, torch.Tensor]:")
            with w.indent():
                w("device = batch.device")
                shares = ", ".join(
                    f"{m.name} {m.rate * 100:.4g}%" + (f" {m.mode!r}" if m.mode else "")
                    for m in plan.members
                )
                w(f"# mixture per example: {shares}")
                w(f"choice = rt.choose_member(keys, STREAM_MIXTURE, self.const({cdf}, device))")
                w("parts = (")
                with w.indent():
                    for m in plan.members:
                        w(f"self.{self.method_name(m.name)}(batch, keys),")
                w(")")
                if plan.output == "encoder":
                    self._merged_encoder_rows()
                else:
                    self._merged_sequences(modes)
            for m in plan.members:
                w()
                self._member_method(m)

    def _declared_fields(self) -> None:
        """The class attributes a spec's own statements set: its per-token input fields and
        its packing."""
        if self.plan.fields:
            self.body(f"fields = {_literal(self.plan.fields)}  # per-token inputs: (name, purpose)")
        if self.plan.pack is not None:
            self.body(f"pack_default = {_literal(self.plan.pack)}  # pack=None turns it off")

    def _merged_encoder_rows(self) -> None:
        """An encoder mixture's rows: each from its member, every row keeping its length."""
        w = self.body
        w("input_ids, labels = rt.choose_rows(choice, parts)")
        w("return {")
        with w.indent():
            for key in self.plan.outputs:
                w(f"{key!r}: {OUTPUT_EXPRESSIONS[key]},")
        w("}")

    def _merged_sequences(self, modes: tuple[str, ...]) -> None:
        """A sequence-to-sequence mixture's rows: inputs and targets from each row's member,
        the member's mode token first."""
        w, plan = self.body, self.plan
        w("input_ids, input_valid, target_ids, target_valid = rt.merge_members(")
        with w.indent():
            w("choice, parts, self.pad_id")
        w(")")
        if modes:
            w("# each input starts with its member's mode token")
            w(
                "input_ids, input_valid = rt.prepend("
                "input_ids, input_valid, self.mode_ids(device)[choice])"
            )
        if plan.output == "decoder_only":
            causal = ", prefix_lm=False" if plan.attention == "causal" else ""
            w(
                "return rt.decoder_only_outputs("
                f"input_ids, input_valid, target_ids, target_valid, self.pad_id{causal})"
            )
        else:
            w(
                "decoder_input_ids = rt.shift_right("
                "target_ids, target_valid, self.decoder_start_id, self.pad_id)"
            )
            w(
                "return rt.encoder_decoder_outputs("
                "input_ids, input_valid, target_ids, target_valid, decoder_input_ids)"
            )

    def _member_method(self, member: L.MemberPlan) -> None:
        w = self.body
        name = checked_identifier(member.name)
        encoder = self.plan.output == "encoder"
        returned = MEMBER_RETURNS[encoder]
        w(
            f"def {self.method_name(name)}(self, batch: rt.Batch, keys: rt.Keys) -> "
            f"tuple[{', '.join(['torch.Tensor'] * len(returned))}]:"
        )
        with w.indent():
            w(f'"""Member `{name}`: ({", ".join(returned).replace("_", " ")})."""')
            w("device = batch.device")
            sub = Generator(member.plan, self.consts, self.body, f"{name.upper()}_", name)
            for step in member.plan.steps:
                if isinstance(step, L.Output):
                    continue
                w(f"# {step.text}")
                sub._dispatch(step)
            w(f"return {', '.join(returned)}")

    def _dispatch(self, step: L.Step) -> None:
        handler: Callable[[Any], None] | None = getattr(
            self, f"emit_{type(step).__name__.lower()}", None
        )
        if handler is None:
            raise CodegenError(f"unsupported plan step {type(step).__name__}")
        handler(step)

    def emit_candidates(self, step: L.Candidates) -> None:
        self.body(
            "candidates = rt.candidate_mask("
            f"batch, self.vocab, exclude_special={step.exclude_special!r}, "
            f"exclude_first={step.exclude_first!r}, exclude_last={step.exclude_last!r})"
        )
        if step.exclude_prompt:
            self.body("prompt = self.token_field(batch, 'prompt_mask', binary=True).bool()")
            self.body("candidates = candidates & ~prompt  # the prompt is never touched")

    def emit_units(self, step: L.Units) -> None:
        w = self.body
        self.word_units = step.kind != "token"
        if step.kind == "field":
            w(f"unit_ids = self.token_field(batch, {step.field!r})")
            w("unit_start = rt.id_unit_starts(batch, unit_ids, self.vocab)")
        elif self.word_units:
            w(f"unit_start = rt.{step.kind}_unit_starts(batch, self.vocab)")
        if self.word_units:
            w("candidate_starts = unit_start & candidates")
        else:
            w("unit_start = rt.token_unit_starts(batch)")
            w("candidate_starts = candidates")

    def _emit_budget(self, budget: L.BudgetPlan) -> None:
        w = self.body
        rate = self.consts.add(self.cname("BUDGET_RATE"), budget.rate)
        if budget.basis == "tokens":
            w("counted = candidates.sum(dim=1)")
        elif budget.basis == "all_tokens":
            w("counted = batch.valid.sum(dim=1)  # every token of the row, specials included")
        else:
            w("counted = candidate_starts.sum(dim=1)")
        stochastic = ""
        if budget.rounding == "stochastic":
            w("budget_draw = keys.draw(STREAM_BUDGET, 1)[:, 0]")
            stochastic = ", u=budget_draw"
        w(
            f"budget = rt.budget_counts(counted, {rate}, {budget.rounding!r}, "
            f"minimum={budget.minimum!r}, maximum={budget.maximum!r}{stochastic})"
        )

    def _emit_expand(self) -> None:
        if self.word_units:
            self.body("selected = rt.expand_units(starts, unit_start) & candidates")
        else:
            self.body("selected = starts  # token units: a unit is its start")

    def emit_selectbernoulli(self, step: L.SelectBernoulli) -> None:
        if step.rate_range is None:
            rate = self.consts.add(self.cname("SELECT_RATE"), step.rate)
            self.body(
                f"starts = rt.bernoulli_select(keys, STREAM_SELECT, candidate_starts, {rate})"
            )
        else:
            low = self.consts.add(self.cname("RATE_LOW"), step.rate_range[0])
            high = self.consts.add(self.cname("RATE_HIGH"), step.rate_range[1])
            self.body(f"rates = rt.uniform_rates(keys, STREAM_RATE, {low}, {high})  # (B,)")
            self.body(
                "starts = rt.bernoulli_select_rates(keys, STREAM_SELECT, candidate_starts, rates)"
            )
        self._emit_expand()
        self.span_start_expr = "rt.start_position(unit_start)"  # a unit is its own span

    def emit_selectexact(self, step: L.SelectExact) -> None:
        w = self.body
        self._emit_budget(step.budget)
        if step.budget.basis != "units":
            w("sizes = rt.unit_lengths(unit_start, candidates)  # excluded pieces cost nothing")
        else:
            w("sizes = candidate_starts.long()")
        weighted = ""
        if step.alpha is not None:
            alpha = self.consts.add(self.cname("FREQUENCY_ALPHA"), step.alpha)
            w(f"weights = self.frequency_weights(device, {alpha})[batch.input_ids]")
            weighted = ", weights=weights"
        w("starts = rt.take_in_random_order(")
        with w.indent():
            w(f"keys, STREAM_SELECT, candidate_starts, sizes, budget{weighted}")
        w(")")
        self._emit_expand()
        self.span_start_expr = "rt.start_position(unit_start)"  # a unit is its own span

    def emit_selectspans(self, step: L.SelectSpans) -> None:
        w = self.body
        self._emit_budget(step.budget)
        self.consts.add(self.cname("SPAN_LENGTH_LAW"), step.law)
        mean = self.consts.add(
            self.cname("SPAN_LENGTH_MEAN"), step.mean, "the law's mean, in units"
        )
        values = self.consts.add(self.cname("SPAN_LENGTH_VALUES"), step.values)
        cdf = self.consts.add(self.cname("SPAN_LENGTH_CDF"), step.cdf)
        w("spans = rt.place_spans(")
        with w.indent():
            w("keys,")
            w("(STREAM_SPAN_LENGTH, STREAM_SPAN_ORDER, STREAM_SPAN_PLACE),")
            w("candidate_starts,")
            w("unit_start,")
            w("candidates,")
            w("budget,")
            w(f"self.const({values}, device),")
            w(f"self.const({cdf}, device),")
            if step.budget.basis == "units":
                w("budget_in_units=True,")
            w(f"mean_length={mean},  # sizes the length draws")
            if step.nonzero_share < 1:
                share = self.consts.add(
                    self.cname("SPAN_NONZERO_SHARE"), step.nonzero_share, "P(length >= 1)"
                )
                w(f"nonzero_share={share},")
        w(")")
        w("selected = spans.selected")
        self.span_start_expr = "spans.span_start"

    def emit_selectcountedspans(self, step: L.SelectCountedSpans) -> None:
        w = self.body
        self.consts.add(self.cname("SPAN_COUNT_LAW"), step.law, f"mean {step.mean:.4f} spans")
        values = self.consts.add(self.cname("SPAN_COUNT_VALUES"), step.values)
        cdf = self.consts.add(self.cname("SPAN_COUNT_CDF"), step.cdf)
        w("selected = rt.counted_spans(")
        with w.indent():
            w("keys,")
            w("(STREAM_SPAN_COUNT, STREAM_SPAN_ENDS),")
            w("candidates,  # the document: spans' ends are uniform over its tokens")
            w(f"self.const({values}, device),")
            w(f"self.const({cdf}, device),")
            w("max_spans=self.sentinel_count or None,  # one sentinel per span")
        w(")")

    def emit_selectrandomspans(self, step: L.SelectRandomSpans) -> None:
        density = self.consts.add(self.cname("NOISE_DENSITY"), step.density)
        mean = self.consts.add(self.cname("MEAN_NOISE_SPAN_LENGTH"), step.mean)
        w = self.body
        w("selected = rt.random_spans_noise(")
        with w.indent():
            w("keys,")
            w("(STREAM_NOISE_LENGTHS, STREAM_NONNOISE_LENGTHS),")
            w("candidates,")
            w(f"{density},")
            w(f"{mean},")
            if step.random_roll:
                w("roll_stream=STREAM_ROLL,  # T5's random_roll")
            w("max_spans=self.sentinel_count or None,")
        w(")")

    def emit_selectsuffix(self, step: L.SelectSuffix) -> None:
        rate = self.consts.add(self.cname("SUFFIX_RATE"), step.rate)
        self.body(f"selected = rt.suffix(keys, STREAM_SUFFIX, candidates, {rate})")

    def emit_selectwindows(self, step: L.SelectWindows) -> None:
        w = self.body
        self.consts.add(self.cname("SPAN_LENGTH_LAW"), step.law, f"mean {step.mean:.4f} tokens")
        values = self.consts.add(self.cname("SPAN_LENGTH_VALUES"), step.values)
        cdf = self.consts.add(self.cname("SPAN_LENGTH_CDF"), step.cdf)
        rate = self.consts.add(self.cname("WINDOW_RATE"), step.rate)
        w("selected = rt.window_spans(")
        with w.indent():
            w("keys,")
            w("(STREAM_WINDOW_LENGTH, STREAM_WINDOW_OFFSET),")
            w("candidates,")
            w(f"self.const({values}, device),")
            w(f"self.const({cdf}, device),")
            w(f"{rate},")
        w(")")

    def emit_unilmattention(self, step: L.UnilmAttention) -> None:
        w = self.body
        self.consts.add(self.cname("ATTENTION_MODES"), step.masks)
        modes = self.consts.add(self.cname("ATTENTION_MODE_VALUES"), step.indices)
        cdf = self.consts.add(self.cname("ATTENTION_MODE_CDF"), step.cdf)
        w(f"drawn = rt.choose_member(keys, STREAM_ATTENTION_MODE, self.const({cdf}, device))")
        w(f"attention_mode = self.const({modes}, device)[drawn]")
        segment = "pairs.token_type_ids" if "token_type_ids" in self.plan.outputs else "None"
        w(f"self_attention_mask = rt.unilm_masks(attention_mode, batch.valid, {segment})")

    def emit_permutationattention(self, step: L.PermutationAttention) -> None:
        w = self.body
        w("order = rt.factorization_order(keys, STREAM_FACTORIZATION, selected)")
        if step.layout == "dense":
            w("perm_mask = rt.permutation_masks(order)")
            w("target_mapping = rt.target_mapping_dense(selected)")

    def emit_jointranslation(self, step: L.JoinTranslation) -> None:
        w = self.body
        w("joined = rt.join_translation(batch, self.end_id, self.pad_id)")
        w("batch = joined.batch")

    def emit_buildpairs(self, step: L.BuildPairs) -> None:
        w = self.body
        relations = self.consts.add(self.cname("PAIR_RELATIONS"), step.relations)
        cdf = self.consts.add(self.cname("PAIR_CDF"), step.cdf)
        w("pairs = rt.build_pairs(")
        with w.indent():
            w("keys,")
            w("STREAM_PAIR,")
            w("batch,")
            w(f"{relations},")
            w(f"self.const({cdf}, device),")
            w("cls_id=self.vocab.require('cls'),")
            w("sep_id=self.vocab.require('sep'),")
            w("pad_id=self.pad_id,")
            w("max_length=self.max_length,  # longer pairs lose tokens from the longer side")
        w(")")
        w("batch = pairs.batch")

    def emit_selectnone(self, step: L.SelectNone) -> None:
        self.body("input_ids, input_valid = batch.input_ids, batch.valid")

    def emit_selectfragment(self, step: L.SelectFragment) -> None:
        w = self.body
        if step.budget is not None:
            self._emit_budget(step.budget)
        else:
            self.consts.add(self.cname("FRAGMENT_LENGTH_LAW"), step.law, f"mean {step.mean:.4f}")
            values = self.consts.add(self.cname("FRAGMENT_LENGTH_VALUES"), step.values)
            cdf = self.consts.add(self.cname("FRAGMENT_LENGTH_CDF"), step.cdf)
            w("budget = rt.sample_lengths(")
            w("    keys.draw(STREAM_SPAN_LENGTH, 1)[:, 0],")
            w(f"    self.const({values}, device),")
            w(f"    self.const({cdf}, device),")
            w(")")
        w("selected = rt.fragment(keys, STREAM_SPAN_PLACE, candidates, budget)")

    def emit_views(self, step: L.Views) -> None:
        if step.kind == "selected":
            self.body(
                "view_input_ids, view_valid = rt.selected_rows("
                "batch.input_ids, selected, self.vocab.require('cls'), self.pad_id)"
            )
        elif step.kind == "paired":
            self.body("view_input_ids, view_valid = rt.paired_view(batch)  # positive_ids")
        else:
            self.body("view_input_ids, view_valid = batch.input_ids, batch.valid  # the clean row")

    def emit_samplekeys(self, step: L.SampleKeys) -> None:
        self.body("sample_keys = keys.draw(STREAM_SAMPLE, batch.input_ids.shape[1])")

    def emit_permutesentences(self, step: L.PermuteSentences) -> None:
        rate = self.consts.add(self.cname("PERMUTE_SENTENCES_RATE"), step.rate)
        self.body("original = batch  # the target: the document before any noise")
        self.body(f"batch = rt.permute_sentences(keys, STREAM_SENTENCE_ORDER, batch, {rate})")
        self.original = "original"

    def emit_rotate(self, step: L.Rotate) -> None:
        rate = self.consts.add(self.cname("ROTATE_RATE"), step.rate)
        w = self.body
        w("input_ids = rt.rotate(")
        with w.indent():
            w("keys,")
            w("STREAM_ROTATE,")
            w("input_ids,")
            w("input_valid,")
            w("self.vocab.special_table(device)[input_ids],")
            w(f"{rate},")
        w(")")

    def emit_shufflengrams(self, step: L.ShuffleNgrams) -> None:
        w = self.body
        rate = self.consts.add(self.cname("SHUFFLE_BLOCK_RATE"), step.block_rate)
        flat = tuple(i for perm in step.permutations for i in perm)
        perms = self.consts.add(self.cname("SHUFFLE_ORDERS"), flat, "every order of a block")
        w("unselected = candidates & ~selected")
        w(f"blocks = rt.budget_counts(unselected.sum(dim=1), {rate}, 'round')")
        w("input_ids, shuffled = rt.shuffle_ngrams(")
        with w.indent():
            w("keys,")
            w("(STREAM_SHUFFLE_PLACE, STREAM_SHUFFLE_ORDER),")
            w("input_ids,")
            w("unselected,")
            w(f"{step.n!r},")
            w("blocks,")
            w(f"self.const({perms}, device).view(-1, {step.n!r}),")
        w(")")
        w("selected = selected | shuffled  # the original order is predicted too")

    def emit_sentinels(self, step: L.Sentinels) -> None:
        w = self.body
        w("first = rt.run_starts(selected)")
        w("sentinel = rt.sentinels_at(first, self.sentinels(device))")
        w("input_ids, input_valid = rt.rewrite(")
        with w.indent():
            w("batch.input_ids,")
            w("batch.valid & ~selected,")
            w("insert=first,")
            w("inserted=sentinel,")
            w("fill=self.pad_id,")
        w(")")

    def emit_fillinmiddle(self, step: L.FillInMiddle) -> None:
        w = self.body
        rate = self.consts.add(self.cname("FIM_RATE"), step.rate, "the share of rows rearranged")
        spm = self.consts.add(self.cname("FIM_SPM_RATE"), step.spm, "of them, the share in SPM")
        w("input_ids, input_valid = rt.fill_in_middle(")
        with w.indent():
            w("keys,")
            w("(STREAM_FIM, STREAM_FIM_ORDER, STREAM_FIM_CUT),")
            w("input_ids,")
            w("input_valid,")
            w("candidates,  # the document: its first to its last candidate token")
            w(f"{rate},")
            w(f"{spm},")
            w("self.mode_ids(device),  # <prefix> <middle> <suffix>, looked up by text")
            w("fill=self.pad_id,")
        w(")")

    def emit_blankinfilling(self, step: L.BlankInfilling) -> None:
        w = self.body
        w("return rt.blank_infilling(")
        with w.indent():
            w("keys,")
            w("STREAM_BLOCK_ORDER,  # the spans' order in Part B" if step.shuffled else "None,")
            w("batch.input_ids,")
            w("batch.valid,")
            w("selected,")
            w("spans.span_start,")
            w("mask_id=self.mask_id,  # Part A: one [MASK] per span")
            w("piece_ids=self.mode_ids(device),  # [sop], [eop], looked up by text")
            w("fill=self.pad_id,")
        w(")")
        self.returned = True

    def emit_targets(self, step: L.Targets) -> None:
        w = self.body
        moved = any(isinstance(s, L.Sentinels) for s in self.plan.steps)
        if step.target == "sequence" and not moved:
            w("# every token of the row is a target, the end token (eos, else sep) appended")
            return
        if step.target in ("sentinels", "sequence"):
            w("target_ids, target_valid = rt.rewrite(")
            with w.indent():
                w("batch.input_ids,")
                w("selected,")
                w("insert=first,")
                w("inserted=sentinel,")
                w("fill=self.pad_id,")
                w("append=self.end_id,")
            w(")")
        elif step.target == "all":
            w(f"target_ids, target_valid = {self.original}.input_ids, {self.original}.valid")
        else:
            w("target_ids, target_valid = rt.rewrite(batch.input_ids, selected, fill=self.pad_id)")
        if "decoder_input_ids" not in self.plan.outputs:
            return
        if "decoder_position_ids" in self.plan.outputs:
            w("# the decoder reads the token before each target, at the target's own position")
            w(
                "previous = rt.shift_right(batch.input_ids, batch.valid, "
                "self.decoder_start_id, self.pad_id)"
            )
            w("decoder_input_ids, _ = rt.rewrite(previous, selected, fill=self.pad_id)")
            w(
                "decoder_position_ids, _ = rt.rewrite("
                "rt.positions_like(batch.input_ids), selected, fill=0)"
            )
        else:
            w(
                "decoder_input_ids = rt.shift_right("
                "target_ids, target_valid, self.decoder_start_id, self.pad_id)"
            )

    def emit_output(self, step: L.Output) -> None:
        w = self.body
        if step.kind == "decoder_only" and step.sequence:
            moved = any(isinstance(s, L.Sentinels) for s in self.plan.steps)
            targets = ", target_ids=target_ids, target_valid=target_valid" if moved else ""
            w(
                "return rt.sequence_outputs("
                f"input_ids, input_valid, self.pad_id, end_id=self.end_id{targets})"
            )
        elif step.kind == "decoder_only":
            causal = ", prefix_lm=False" if step.attention == "causal" else ""
            w(
                "return rt.decoder_only_outputs("
                f"input_ids, input_valid, target_ids, target_valid, self.pad_id{causal})"
            )
        elif "decoder_position_ids" in self.plan.outputs:
            w(
                "outputs = rt.encoder_decoder_outputs("
                "input_ids, input_valid, target_ids, target_valid, decoder_input_ids)"
            )
            w("outputs['decoder_position_ids'] = decoder_position_ids")
            w("return outputs")
        else:
            w(
                "return rt.encoder_decoder_outputs("
                "input_ids, input_valid, target_ids, target_valid, decoder_input_ids)"
            )
        self.returned = True

    def _emit_replace_call(
        self,
        target: str,
        streams: tuple[str, str],
        where: str,
        step: L.Replace,
        per_span: bool,
    ) -> None:
        w = self.body
        actions = self.consts.add(self.cname("REPLACE_ACTIONS"), step.actions)
        cdf = self.consts.add(self.cname("REPLACE_CDF"), step.cdf)
        w(f"{target} = rt.replace_selected(")
        with w.indent():
            w("keys,")
            w(f"{streams[0]},")
            w("batch.input_ids,")
            w(f"{where},")
            w(f"{actions},")
            w(f"{cdf},")
            if "mask" in step.actions:
                w("mask_id=self.mask_id,")
            if "random" in step.actions or "similar" in step.actions:
                w("pool=self.random_pool(device),")
                w(f"random_stream={streams[1]},")
                if step.random_from == "unigram":
                    w("unigram=self.unigram(device),  # random tokens by corpus frequency")
            if "similar" in step.actions:
                w("similar=self.table('similar', device),")
            if per_span:
                w(f"span_start={self.span_start_expr},  # one decision per span")
        w(")")

    def emit_replace(self, step: L.Replace) -> None:
        w = self.body
        if step.collapse:
            self._emit_collapse(step)
            return
        streams = ("STREAM_REPLACE", "STREAM_RANDOM_TOKEN")
        self._emit_replace_call("input_ids", streams, "selected", step, step.per == "span")
        if not any(isinstance(s, L.Output) for s in self.plan.steps):
            return
        if step.insert_random is not None:
            if "delete" in step.actions:
                w("dropped = selected & (input_ids == rt.DELETED)")
            else:
                w("dropped = torch.zeros_like(selected)  # every token stays, masked or not")
            self._emit_insertions(step)
        elif "delete" in step.actions:
            w("input_ids, input_valid = rt.rewrite(")
            with w.indent():
                w("input_ids, batch.valid & (input_ids != rt.DELETED), fill=self.pad_id")
            w(")")
        else:
            w("input_valid = batch.valid")

    def _emit_collapse(self, step: L.Replace) -> None:
        """BART's replace_length=1: a span becomes its first token, replaced; zero-length spans
        insert one token each."""
        w = self.body
        w("first = selected & (spans.span_start == rt.positions_like(selected))")
        w("dropped = selected & ~first")
        streams = ("STREAM_REPLACE", "STREAM_RANDOM_TOKEN")
        self._emit_replace_call("input_ids", streams, "first", step, per_span=False)
        self._emit_insertions(step)

    def _emit_insertions(self, step: L.Replace) -> None:
        """The ``dropped`` positions leave the input; then zero-length spans insert tokens as
        fairseq's ``add_insertion_noise`` does (token-level places, ceil(n x r) random)."""
        w = self.body
        assert step.insert_random is not None
        w(
            "input_ids, input_valid = "
            "rt.rewrite(input_ids, batch.valid & ~dropped, fill=self.pad_id)"
        )
        w("# zero-length spans: as many tokens inserted at random inner positions (fairseq)")
        ratio = self.consts.add(
            self.cname("INSERT_RANDOM_RATIO"), step.insert_random, "ceil(n x ratio) random"
        )
        w("input_ids, input_valid = rt.insertion_noise(")
        with w.indent():
            w("keys,")
            w("STREAM_INSERT_PLACE,")
            w("input_ids,")
            w("input_valid,")
            w("spans.insertions,")
            w(f"{ratio},")
            w("mask_id=self.mask_id,")
            w("fill=self.pad_id,")
            if step.insert_random > 0:
                w("pool=self.random_pool(device),")
                w("random_stream=STREAM_INSERT_RANDOM_TOKEN,")
        w(")")

    def emit_labels(self, step: L.Labels) -> None:
        self.body("labels = rt.labels_at(batch.input_ids, selected)")

    def emit_lossweights(self, step: L.LossWeights) -> None:
        over = self.consts.add("LOSS_OVER", step.over, "what the loss is averaged over")
        rates = "rates" if step.weighted else "None"
        self.body(f"label_weights = rt.label_weights(labels, candidates, {rates}, {over})")

    # --- the heads -----------------------------------------------------------------------
    def _heads(self) -> None:
        w = self.body
        heads = {head.kind: head for head in self.plan.heads}
        for head in self.plan.heads:
            self.consts.add(f"{head.kind.upper()}_WEIGHT", head.weight)
        for step in self.plan.steps:
            if isinstance(step, L.BuildPairs):
                self.consts.add("LABEL_KEY", step.label_key, "the pair label's Hugging Face name")
        views = next((s.kind for s in self.plan.steps if isinstance(s, L.Views)), None)
        rtd = heads.get("replaced_token_detection")
        w(f"class {self.prefix}Heads(rt.Heads):")
        with w.indent():
            w(f'"""The `{self.plan.name}` losses: the model run on a collated batch, its hidden')
            w("states through each head.")
            w()
            w("``model`` follows the protocol of ``objspec.runtime.encoders`` (a tiny model, or")
            w("``rt.HuggingFaceEncoder(AutoModel...)``); it is a submodule, so one optimizer over")
            w("``heads.parameters()`` trains it all. forward(batch) -> dict of losses; 'loss' is")
            w("their weighted sum.")
            if self.plan.output == "decoder_only":
                w()
                w("Decoder-only form: ``labels`` are unshifted (Hugging Face's causal-LM")
                w("convention); the model runs causally, bidirectionally within ``prefix_mask``,")
                w("and the head shifts: hidden state t predicts ``labels[:, t + 1]``, so no loss")
                w("sees its target or a later token. For Hugging Face decoders:")
                w("``rt.HuggingFaceCausalLM``.")
            w('"""')
            w()
            if rtd is not None:
                params = dict(rtd.params)
                self.consts.add("GENERATOR_SIZE", params["generator_size"], "of the hidden size")
                self.consts.add("GENERATOR_TEMPERATURE", params["temperature"])
                w(
                    "def __init__(self, model: torch.nn.Module, "
                    "generator: torch.nn.Module | None = None) -> None:"
                )
            else:
                w("def __init__(self, model: torch.nn.Module) -> None:")
            with w.indent():
                w("super().__init__()")
                w("self.model = model")
                if rtd is not None:
                    w("# ELECTRA's generator: smaller, sharing the token embedding")
                    w("if generator is None:")
                    w("    generator = rt.smaller(model, GENERATOR_SIZE)")
                    w("self.generator = generator")
                constructors = self._head_constructors()
                for head in self.plan.heads:
                    w(f"self.{head.kind} = {constructors[head.kind](head, rtd is not None)}")
            w()
            w("def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:")
            with w.indent():
                self._model_passes(heads, views)
                w("losses = {")
                with w.indent():
                    for head in self.plan.heads:
                        call = _head_call(head.kind, views, rtd is not None)
                        if head.kind == "mlm" and "label_weights" in self.plan.outputs:
                            call = WEIGHTED_MLM_CALL
                        w(f"{head.kind!r}: {call},")
                w("}")
                total = " + ".join(
                    f"{head.kind.upper()}_WEIGHT * losses[{head.kind!r}]"
                    for head in self.plan.heads
                )
                w(f"losses['loss'] = {total}")
                w("return losses")

    def _head_constructors(self) -> dict[str, HeadConstructor]:
        """The head classes of this plan's batch form: the decoder-only form's seq2seq head
        shifts the labels (``rt.CausalLMHead``); it is the form's only head (the IR's rule)."""
        if self.plan.output != "decoder_only":
            return HEAD_CONSTRUCTORS
        if {head.kind for head in self.plan.heads} != set(DECODER_ONLY_HEADS):
            raise CodegenError("the decoder-only form is trained by the seq2seq head alone")
        return DECODER_ONLY_HEADS

    def _model_passes(self, heads: dict[str, L.HeadPlan], views: str | None) -> None:
        """The model's forward passes the heads read, in order."""
        w = self.body
        if self.plan.output == "decoder_only":
            w("# decoder-only: causal attention, bidirectional within batch['prefix_mask'];")
            w("# the head shifts the labels (hidden state t predicts the token at t + 1)")
            w("hidden_states = rt.encode(self.model, batch, causal=True)")
            return
        if "replaced_token_detection" in heads:
            w("# the generator's masked LM; its samples replace the selected tokens (no gradient)")
            w("generator_states = rt.encode(self.generator, batch)")
            w("mlm_loss, mlm_logits = self.mlm.loss_and_logits(generator_states, batch['labels'])")
            w("fake = rt.sample_replacements(")
            w("    batch['input_ids'], batch['labels'], mlm_logits, batch['sample_keys'],")
            w("    GENERATOR_TEMPERATURE,")
            w(")")
            w("# the discriminator reads the fake row and tells replaced tokens from originals")
            w("hidden_states = rt.encode(self.model, batch, fake.input_ids)")
            return
        if views == "dropout":
            w("# views dropout: the clean row encoded twice, with independent dropout")
            w("view_states = rt.encode(self.model, batch, batch['view_input_ids'])")
            w("twin_states = rt.encode(self.model, batch, batch['view_input_ids'])")
            if set(heads) == {"contrastive"}:
                return  # no other head reads the row
        if views == "corrupted":
            w("# views corrupted: the clean row against its corruption")
            w("view_states = rt.encode(self.model, batch, batch['view_input_ids'])")
        w("hidden_states = rt.encode(self.model, batch)")
        if views in ("selected", "paired"):
            w(f"# views {views}: {VIEW_COMMENTS[views]}")
            w("view_states = self.model(batch['view_input_ids'], batch['view_attention_mask'])")


def _head_call(kind: str, views: str | None, electra: bool) -> str:
    """The expression of one head's loss in the generated forward."""
    if kind == "mlm" and electra:
        return "mlm_loss"  # computed with the generator's logits, before sampling
    if kind == "contrastive":
        anchor, positive = CONTRASTIVE_SIDES[views or "dropout"]
        return f"self.contrastive({anchor}, {positive})"
    return f"self.{kind}({HEAD_INPUTS[kind]})"


# The MLM loss weighted per label and averaged over LOSS_OVER (masked diffusion's 1/t).
WEIGHTED_MLM_CALL = (
    "self.mlm.weighted_loss_and_logits(hidden_states, batch['labels'], batch['label_weights'], "
    "rt.loss_total(batch['labels'], batch.get('attention_mask'), LOSS_OVER))[0]"
)

# What a mixture member's method returns: a same-length encoder member its rewritten ids and
# labels, a sequence-to-sequence member its input and target rows.
MEMBER_RETURNS = {
    True: ("input_ids", "labels"),
    False: ("input_ids", "input_valid", "target_ids", "target_valid"),
}

VIEW_COMMENTS = {
    "selected": "the corrupted row against its selected tokens, their own row",
    "paired": "the row against the example's positive_ids, their own row",
}

CONTRASTIVE_SIDES = {
    "dropout": (
        "view_states, batch['view_attention_mask']",
        "twin_states, batch['view_attention_mask']",
    ),
    "corrupted": (
        "view_states, batch['view_attention_mask']",
        "hidden_states, batch['attention_mask']",
    ),
    "selected": (
        "hidden_states, batch['attention_mask']",
        "view_states, batch['view_attention_mask'],"
        " rows=batch['view_attention_mask'].sum(dim=1) > 1",  # rows with a selection
    ),
    "paired": (
        "hidden_states, batch['attention_mask']",
        "view_states, batch['view_attention_mask']",
    ),
}


OUTPUT_EXPRESSIONS = {
    "input_ids": "input_ids",
    "attention_mask": "batch.valid.long()",
    "labels": "labels",
    "span_start": "spans.span_start",
    "span_end": "spans.span_end",
    "shuffled_mask": "shuffled.long()",
    "perm_mask": "perm_mask",
    "perm_order": "order",
    "token_type_ids": "pairs.token_type_ids",
    "self_attention_mask": "self_attention_mask",
    "attention_mode": "attention_mode",
    "position_ids": "joined.position_ids",
    "langs": "joined.langs",
    "next_sentence_label": "pairs.label",
    "sentence_order_label": "pairs.label",
    "sentence_structure_label": "pairs.label",
    "target_mapping": "target_mapping",
    "target_positions": "rt.target_positions(selected)",
    "view_input_ids": "view_input_ids",
    "view_attention_mask": "view_valid.long()",
    "sample_keys": "sample_keys",
    "label_weights": "label_weights",
}

HEAD_INPUTS = {
    "mlm": "hidden_states, batch['labels']",
    "seq2seq": "hidden_states, batch['labels']",
    "sentence_classification": "hidden_states, batch[LABEL_KEY]",
    "span_boundary": "hidden_states, batch['labels'], batch['span_start'], batch['span_end']",
    "replaced_token_detection": "hidden_states, fake.replaced, batch['attention_mask']",
}


def _head_ctor(runtime_class: str, takes_params: bool = True) -> HeadConstructor:
    def build(head: L.HeadPlan, electra: bool) -> str:
        params = "".join(f", {checked_identifier(k)}={_literal(v)}" for k, v in head.params)
        # ELECTRA's masked LM is the generator's: its hidden size, the shared embedding
        size = (
            "self.generator.hidden_size" if electra and head.kind == "mlm" else "model.hidden_size"
        )
        return f"rt.{runtime_class}({size}, model.embeddings{params if takes_params else ''})"

    return build


HeadConstructor = Callable[[L.HeadPlan, bool], str]
HEAD_CONSTRUCTORS: dict[str, HeadConstructor] = {
    "mlm": _head_ctor("MLMHead"),
    "span_boundary": _head_ctor("SpanBoundaryHead"),
    "seq2seq": _head_ctor("Seq2SeqHead"),
    "sentence_classification": _head_ctor("SentenceClassificationHead"),
    "replaced_token_detection": _head_ctor("ReplacedTokenDetectionHead", takes_params=False),
    "contrastive": _head_ctor("ContrastiveHead"),
}
DECODER_ONLY_HEADS: dict[str, HeadConstructor] = {"seq2seq": _head_ctor("CausalLMHead")}


def generate(plan: L.Plan) -> GeneratedModule:
    """The module source of a plan."""
    return Generator(plan).generate()


def load(module: GeneratedModule) -> types.ModuleType:
    """Execute generated source as a module; tracebacks show its lines (via linecache). The
    same source is executed once per process, so its classes stay the same objects."""
    return _load_source(module.name, module.source)


_LOADED: dict[tuple[str, str], types.ModuleType] = {}  # (name, source) -> module; small


def _load_source(name: str, source: str) -> types.ModuleType:
    digest = hashlib.sha256(source.encode()).hexdigest()[:12]
    filename = f"<objspec:{name}:{digest}>"  # one per source: tracebacks show the right lines
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    if (name, source) not in _LOADED:
        mod = types.ModuleType(f"objspec_generated_{name}")
        mod.__file__ = filename
        exec(compile(source, filename, "exec"), mod.__dict__)  # noqa: S102 - our own output
        for value in list(vars(mod).values()):  # what a pickle needs to rebuild them elsewhere
            own = isinstance(value, type) and value.__module__ == mod.__name__
            if own and issubclass(value, PickledBySource):
                value.generated_from = (name, source, value.__name__)
        _LOADED[name, source] = mod
    return _LOADED[name, source]


def rebuild_generated(generated_from: tuple[str, str, str], state: dict[str, Any]) -> Any:
    """A pickled instance of a generated class, unpickled: its module loaded from the source it
    carries (once per process), its state restored. A source this process did not load already
    runs only if this compiler generates exactly it from the spec it embeds
    (:func:`verified_source`); else IntegrityError, and nothing of it runs."""
    name, source, class_name = generated_from
    if (name, source) not in _LOADED:
        verified_source(name, source)
    cls = getattr(_load_source(name, source), class_name)
    obj = cls.__new__(cls)
    if hasattr(obj, "__setstate__"):  # nn.Module restores its own state
        obj.__setstate__(state)
    else:
        obj.__dict__.update(state)
    return obj


HEADER_CONSTANTS = ("SPEC_NAME", "SPEC_SHA256", "OBJSPEC_VERSION", "SPEC_SOURCE")
OUTPUT_FORMS = (None, "encoder", "encoder_decoder", "decoder_only")  # None: the spec's own


def verified_source(name: str, source: str) -> str:
    """``source`` if this compiler generates exactly it from the spec source it embeds (the
    sha256 chain checked first), else IntegrityError. Nothing of ``source`` is run: its header
    is read with ``ast`` and the spec compiled again."""
    header = header_constants(source)
    spec_source, recorded = header["SPEC_SOURCE"], header["SPEC_SHA256"]
    if header["OBJSPEC_VERSION"] != __version__:
        raise IntegrityError(
            f"refusing generated code of objspec {header['OBJSPEC_VERSION']}: this is objspec "
            f"{__version__}; recompile its spec (objspec.load_shared)"
        )
    if hashlib.sha256(spec_source.encode("utf-8")).hexdigest() != recorded:
        raise IntegrityError("refusing generated code whose spec source does not match its sha256")
    if header["SPEC_NAME"] != name:
        raise IntegrityError(f"refusing generated code of {header['SPEC_NAME']!r} named {name!r}")
    if source not in _recompiled(spec_source):
        raise IntegrityError(
            f"refusing generated code of {name!r}: it is not what objspec {__version__} "
            "generates from the spec it embeds"
        )
    return source


def header_constants(source: str) -> dict[str, str]:
    """SPEC_NAME, SPEC_SHA256, OBJSPEC_VERSION and SPEC_SOURCE of generated source, read as
    literals (never run). IntegrityError if one is missing or not a string."""
    try:
        tree = ast.parse(source)
        found = {
            node.targets[0].id: ast.literal_eval(node.value)
            for node in tree.body
            if isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id in HEADER_CONSTANTS
        }
    except (SyntaxError, ValueError, TypeError, RecursionError, MemoryError) as exc:
        raise IntegrityError(f"refusing generated code that cannot be read: {exc}") from None
    if any(not isinstance(found.get(key), str) for key in HEADER_CONSTANTS):
        raise IntegrityError("refusing generated code without its spec header")
    return found


def _recompiled(spec_source: str) -> Iterator[str]:
    """The sources this compiler generates from a spec, in each batch form it compiles to (the
    spec's own first; generated lazily, so a match stops the compiling)."""
    from compiler.lower import lower
    from objspec.errors import SpecError
    from objspec.parser import parse_spec

    try:
        spec = parse_spec(spec_source)
    except SpecError as exc:
        raise IntegrityError(
            f"refusing generated code whose spec does not compile:\n{exc}"
        ) from None
    for form in OUTPUT_FORMS:
        try:
            shaped = spec if form is None else spec.with_output(form)
        except SpecError:
            continue  # a form this spec has not
        yield generate(lower(shaped)).source


register_rebuild(rebuild_generated)  # how generated objects unpickle (runtime/generated.py)

"""Plan steps -> the lines of a collator's ``corrupt``: one ``emit_<step>`` per plan step
(sqlglot-style dispatch), each writing the runtime call that implements it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from compiler import plan as L
from compiler.codegen.writing import Constants, Writer
from objspec.errors import CodegenError


class StepEmitter:
    """Writes the steps of one plan into ``body``, naming its constants in ``consts``."""

    def __init__(
        self,
        plan: L.Plan,
        consts: Constants,
        body: Writer,
        const_prefix: str = "",
        owner: str = "",
    ) -> None:
        self.plan = plan
        self.consts = consts
        self.body = body
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

    def emit_return(self) -> None:
        """``return`` of the plan's outputs, each the expression that holds it."""
        w = self.body
        w("return {")
        with w.indent():
            for key in self.plan.outputs:
                w(f"{key!r}: {OUTPUT_EXPRESSIONS[key]},")
        w("}")

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

    def _budget_bound(self, budget: L.BudgetPlan) -> str:
        """The expression of a static bound on every row's budget (the row's width bounds
        its count): ``rt.budget_bound`` of the budget's constants."""
        rate = self.consts.add(self.cname("BUDGET_RATE"), budget.rate)
        return (
            f"rt.budget_bound(batch.input_ids.shape[1], {rate}, "
            f"minimum={budget.minimum!r}, maximum={budget.maximum!r})"
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
        if step.budget.basis != "units" and self.word_units:
            w("sizes = rt.unit_lengths(unit_start, candidates)  # excluded pieces cost nothing")
        else:
            w("sizes = None  # every unit costs one: the first budget units in the order")
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
            w(f"most_budget={self._budget_bound(step.budget)},  # the fused path's widths")
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

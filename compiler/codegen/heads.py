"""The generated ``Heads`` module: the model's forward passes and each head's loss."""

from __future__ import annotations

from collections.abc import Callable

from compiler import plan as L
from compiler.codegen.writing import Constants, Writer, checked_identifier, literal
from objspec.errors import CodegenError


class HeadsWriter:
    """Writes the ``Heads`` class of one plan into ``body``, naming constants in ``consts``."""

    def __init__(self, plan: L.Plan, consts: Constants, body: Writer, prefix: str) -> None:
        self.plan = plan
        self.consts = consts
        self.body = body
        self.prefix = prefix
        self.weights: dict[str, str] = {}  # loss name -> its weight's constant

    def write(self) -> None:
        w = self.body
        every = self.plan.heads + tuple(h for t in self.plan.tasks for h in t.plan.heads)
        modules = {head.kind: head for head in reversed(every)}  # one per kind: the first's
        self._weights()
        for step in self.plan.steps:
            if isinstance(step, L.BuildPairs):
                self.consts.add("LABEL_KEY", step.label_key, "the pair label's Hugging Face name")
        rtd = modules.get("replaced_token_detection")
        w(f"class {self.prefix}Heads(rt.Heads):")
        with w.indent():
            self._docstring()
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
                for kind, head in sorted(modules.items(), key=lambda kv: every.index(kv[1])):
                    w(f"self.{kind} = {constructors[kind](head, rtd is not None)}")
            w()
            w("def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:")
            with w.indent():
                if self.plan.tasks:
                    self._task_losses()
                else:
                    self._model_passes(self.plan, "batch")
                    w("losses = {")
                    with w.indent():
                        self._losses(self.plan, self.plan.heads, "batch")
                    w("}")
                total = " + ".join(f"{w} * losses[{name!r}]" for name, w in self.weights.items())
                w(f"losses['loss'] = {total}")
                w("return losses")

    def _docstring(self) -> None:
        w = self.body
        w(f'"""The `{self.plan.name}` losses: the model run on a collated batch, its hidden')
        w("states through each head.")
        w()
        w("``model`` follows the protocol of ``objspec.runtime.encoders`` (a tiny model, or")
        w("``rt.HuggingFaceEncoder(AutoModel...)``); it is a submodule, so one optimizer over")
        w("``heads.parameters()`` trains it all. forward(batch) -> dict of losses; 'loss' is")
        w("their weighted sum.")
        if self.plan.tasks:
            w()
            w("Each task's loss reads the model run on the task's own batch (its keys, under its")
            w("name, over the rows' own), and is named ``task.head``; heads of one kind are one")
            w("module, shared by the tasks that train it.")
        if self.plan.output == "decoder_only":
            w()
            w("Decoder-only form: ``labels`` are unshifted (Hugging Face's causal-LM")
            w("convention); the model runs causally, bidirectionally within ``prefix_mask``,")
            w("and the head shifts: hidden state t predicts ``labels[:, t + 1]``, so no loss")
            w("sees its target or a later token. For Hugging Face decoders:")
            w("``rt.HuggingFaceCausalLM``.")
        w('"""')
        w()

    def _weights(self) -> None:
        """Each loss's weight as a named constant (a task's heads' named by the task)."""
        pair = [("", head) for head in self.plan.heads]  # the whole plan's, or the pair task's
        tasks = [(t.name, head) for t in self.plan.tasks for head in t.plan.heads]
        for task, head in tasks + pair:
            name = f"{task}.{head.kind}" if task else head.kind
            weight = self.consts.names.claim(f"{name.replace('.', '_').upper()}_WEIGHT", task)
            self.weights[name] = self.consts.add(weight, head.weight)

    def _losses(
        self, plan: L.Plan, heads: tuple[L.HeadPlan, ...], batch: str, task: str = ""
    ) -> None:
        """One dict entry per head, its loss on ``batch``; each weight a named constant."""
        views = _views(plan)
        electra = any(h.kind == "replaced_token_detection" for h in plan.heads)
        for head in heads:
            name = f"{task}.{head.kind}" if task else head.kind
            call = _head_call(head.kind, views, electra)
            if head.kind == "mlm" and "label_weights" in plan.outputs:
                call = WEIGHTED_MLM_CALL
            self.body(f"{name!r}: {call.format(batch=batch)},")

    def _task_losses(self) -> None:
        """Each task's pass on its own batch and its heads' losses; the pair task's head reads
        the first task's pass (BERT's NSP reads the masked row)."""
        w = self.body
        w("losses = {}")
        for i, task in enumerate(self.plan.tasks):
            name = checked_identifier(task.name)
            reads_row = i == 0 and bool(self.plan.heads)
            w(f"# task {name}: the model on its own batch")
            w(f"task = rt.task_batch(batch, {name!r})")
            self._model_passes(task.plan, "task", reads_row)
            w("losses.update({")
            with w.indent():
                self._losses(task.plan, task.plan.heads, "task", name)
                if reads_row:
                    w("# the pair task's head reads this pass, as BERT's NSP the masked row")
                    self._losses(self.plan, self.plan.heads, "batch")
            w("})")

    def _head_constructors(self) -> dict[str, HeadConstructor]:
        """The head classes of this plan's batch form: the decoder-only form's seq2seq head
        shifts the labels (``rt.CausalLMHead``); it is the form's only head (the IR's rule)."""
        if self.plan.output != "decoder_only":
            return HEAD_CONSTRUCTORS
        if {head.kind for head in self.plan.heads} != set(DECODER_ONLY_HEADS):
            raise CodegenError("the decoder-only form is trained by the seq2seq head alone")
        return DECODER_ONLY_HEADS

    def _model_passes(self, plan: L.Plan, batch: str, reads_row: bool = False) -> None:
        """The model's forward passes the heads of ``plan`` read, in order, on the batch
        variable ``batch``; ``reads_row``: another head reads ``hidden_states`` too."""
        w = self.body
        heads = {head.kind for head in plan.heads}
        views = _views(plan)
        if plan.output == "decoder_only":
            w("# decoder-only: causal attention, bidirectional within batch['prefix_mask'];")
            w("# the head shifts the labels (hidden state t predicts the token at t + 1)")
            w(f"hidden_states = rt.encode(self.model, {batch}, causal=True)")
            return
        if "replaced_token_detection" in heads:
            w("# the generator's masked LM; its samples replace the selected tokens (no gradient)")
            w(f"generator_states = rt.encode(self.generator, {batch})")
            w(
                "mlm_loss, mlm_logits = self.mlm.loss_and_logits("
                f"generator_states, {batch}['labels'])"
            )
            w("fake = rt.sample_replacements(")
            w(f"    {batch}['input_ids'], {batch}['labels'], mlm_logits, {batch}['sample_keys'],")
            w("    GENERATOR_TEMPERATURE,")
            w(")")
            w("# the discriminator reads the fake row and tells replaced tokens from originals")
            w(f"hidden_states = rt.encode(self.model, {batch}, fake.input_ids)")
            return
        if views == "dropout":
            w("# views dropout: the clean row encoded twice, with independent dropout")
            w(f"view_states = rt.encode(self.model, {batch}, {batch}['view_input_ids'])")
            w(f"twin_states = rt.encode(self.model, {batch}, {batch}['view_input_ids'])")
            if heads == {"contrastive"} and not reads_row:
                return  # no other head reads the row
        if views == "corrupted":
            w("# views corrupted: the clean row against its corruption")
            w(f"view_states = rt.encode(self.model, {batch}, {batch}['view_input_ids'])")
        w(f"hidden_states = rt.encode(self.model, {batch})")
        if views in ("selected", "paired"):
            w(f"# views {views}: {VIEW_COMMENTS[views]}")
            w(
                f"view_states = self.model({batch}['view_input_ids'], "
                f"{batch}['view_attention_mask'])"
            )


def _views(plan: L.Plan) -> str | None:
    """The kind of the plan's contrastive views, if it has any."""
    return next((s.kind for s in plan.steps if isinstance(s, L.Views)), None)


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
    "self.mlm.weighted_loss_and_logits(hidden_states, {batch}['labels'], {batch}['label_weights'], "
    "rt.loss_total({batch}['labels'], {batch}.get('attention_mask'), LOSS_OVER))[0]"
)

VIEW_COMMENTS = {
    "selected": "the corrupted row against its selected tokens, their own row",
    "paired": "the row against the example's positive_ids, their own row",
}

CONTRASTIVE_SIDES = {
    "dropout": (
        "view_states, {batch}['view_attention_mask']",
        "twin_states, {batch}['view_attention_mask']",
    ),
    "corrupted": (
        "view_states, {batch}['view_attention_mask']",
        "hidden_states, {batch}['attention_mask']",
    ),
    "selected": (
        "hidden_states, {batch}['attention_mask']",
        "view_states, {batch}['view_attention_mask'],"
        " rows={batch}['view_attention_mask'].sum(dim=1) > 1",  # rows with a selection
    ),
    "paired": (
        "hidden_states, {batch}['attention_mask']",
        "view_states, {batch}['view_attention_mask']",
    ),
}


HEAD_INPUTS = {
    "mlm": "hidden_states, {batch}['labels']",
    "seq2seq": "hidden_states, {batch}['labels']",
    "sentence_classification": "hidden_states, {batch}[LABEL_KEY]",
    "span_boundary": "hidden_states, {batch}['labels'], {batch}['span_start'], {batch}['span_end']",
    "replaced_token_detection": "hidden_states, fake.replaced, {batch}['attention_mask']",
}


def _head_ctor(runtime_class: str, takes_params: bool = True) -> HeadConstructor:
    def build(head: L.HeadPlan, electra: bool) -> str:
        params = "".join(f", {checked_identifier(k)}={literal(v)}" for k, v in head.params)
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

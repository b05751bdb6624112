"""The spec gallery: one Markdown page per bundled spec (``python -m objspec.gallery``).

A page gives the spec's own notes (paper, variant chosen), its parameters as the compiler
lowered them, the spec text, and a rendered corruption of the bundled corpus' first example
(seed 0, epoch 0). The test suite checks that the committed pages are up to date.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

import compiler.plan as L
from compiler import compile_objective, load
from compiler.lower import lower
from objspec import CompiledObjective, bundled, ir, variants
from objspec.parser import parse_file, parse_tree
from objspec.runtime import Vocab, task_batch
from objspec.runtime.tasks import base_key, task_names

ROOT = Path(__file__).resolve().parent.parent
GALLERY = ROOT / "docs" / "gallery"
MARK_OPEN, MARK_CLOSE = "\u00ab", "\u00bb"  # « »


def _notes(source: str) -> list[str]:
    """The spec's leading comment block, without the '#'."""
    lines = []
    for line in source.splitlines():
        if not line.startswith("#"):
            break
        lines.append(line[1:].strip())
    return lines


def _pct(x: float) -> str:
    return f"{x * 100:g}%"


def _mixture_parameters(mixture: ir.Mixture, plan: L.Plan) -> list[str]:
    lines = ["| member | rate | mode token | corruption |", "|---|---:|---|---|"]
    for m in plan.members:
        steps = "; ".join(
            s.text for s in m.plan.steps if not isinstance(s, L.Candidates | L.Units | L.Output)
        )
        lines.append(f"| {m.name} | {m.rate * 100:.4g}% | {m.mode or ''} | {steps} |")
    lines += [
        "",
        f"Batch form: {plan.output}; outputs: " + ", ".join(f"`{o}`" for o in plan.outputs),
    ]
    return lines


def _composition_parameters(composition: ir.Composition, plan: L.Plan) -> list[str]:
    lines = ["| task | weight | heads | steps |", "|---|---:|---|---|"]
    for task in composition.tasks:
        steps = "; ".join(
            s.text
            for s in lower(task.objective).steps
            if not isinstance(s, L.Candidates | L.Units | L.SelectNone)
        )
        heads = ", ".join(h.name for h in task.objective.heads)
        lines.append(f"| {task.name} | {task.weight:g} | {heads} | {steps} |")
    layout = (
        "each task's outputs are under its name; the batch's own keys are the rows they read"
        if composition.namespaced
        else "the tasks' outputs share the batch"
    )
    outputs = ", ".join(f"`{o}`" for o in plan.outputs)
    lines += ["", f"Outputs ({layout}): {outputs}"]
    return lines


def _shares(names: Sequence[str], cdf: Sequence[int]) -> str:
    """'a 80%, b 10%, ...': each name with its share of a lowered 32-bit CDF."""
    bounds = (0, *cdf)
    return ", ".join(
        f"{name} {(hi - lo) / 2**32 * 100:.4g}%"
        for name, lo, hi in zip(names, bounds, bounds[1:], strict=False)
    )


def _basis(basis: str) -> str:
    """A budget's count in words: ``all_tokens`` -> ``all tokens``."""
    return basis.replace("_", " ")


def _parameters(objective: ir.Spec, plan: L.Plan) -> list[str]:
    if isinstance(objective, ir.Mixture):
        return _mixture_parameters(objective, plan)
    if isinstance(objective, ir.Composition):
        return _composition_parameters(objective, plan)
    rows = [
        ("unit", objective.unit.kind),
        ("never selected", ", ".join([*objective.exclude, "padding"])),
    ]
    for step in plan.steps:
        if isinstance(step, L.SelectBernoulli) and step.rate_range is not None:
            low, high = step.rate_range
            rate = f"a rate drawn per example, uniform on [{low:g}, {high:g})"
            rows.append(("selection", f"i.i.d. Bernoulli at {rate}"))
        elif isinstance(step, L.SelectBernoulli):
            rows.append(("selection", f"i.i.d. Bernoulli, {_pct(step.rate)} of units"))
        elif isinstance(step, L.SelectExact | L.SelectSpans):
            b = step.budget
            cap = f", min {b.minimum}" if b.minimum else ""
            cap += f", max {b.maximum}" if b.maximum is not None else ""
            kind = "exact count" if isinstance(step, L.SelectExact) else "spans"
            rows.append(
                (
                    "selection",
                    f"{kind}, budget {b.rounding}({_pct(b.rate)} x {_basis(b.basis)}){cap}",
                )
            )
        if isinstance(step, L.SelectFragment) and step.budget is not None:
            b = step.budget
            rows.append(
                ("selection", f"one fragment of {b.rounding}({_pct(b.rate)} x {_basis(b.basis)})")
            )
        if isinstance(step, L.SelectFragment) and step.law is not None:
            rows.append(("selection", f"one fragment per row, length ~ {step.law}"))
            rows.append(("fragment length", f"mean {step.mean:.3f} tokens"))
        if isinstance(step, L.Views):
            rows.append(("contrastive views", VIEW_TEXT[step.kind]))
        if isinstance(step, L.SampleKeys):
            rows.append(("sampling", "the generator samples in the training step (Gumbel-max)"))
        if isinstance(step, L.SelectCountedSpans):
            rows.append(
                (
                    "selection",
                    f"k ~ {step.law} spans per row (mean {step.mean:.3f}), their 2k ends uniform"
                    " over the document, never overlapping",
                )
            )
        if isinstance(step, L.SelectRandomSpans):
            roll = ", rolled (random_roll)" if step.random_roll else ""
            rows.append(
                (
                    "selection",
                    f"T5 random segmentation: noise density {_pct(step.density)}, "
                    f"mean span {step.mean:g}{roll}",
                )
            )
        if isinstance(step, L.SelectWindows):
            rows.append(
                (
                    "selection",
                    f"windows of floor(n / {step.rate:.4g}) tokens, one span of n ~ {step.law} "
                    f"(mean {step.mean:.3f}) in each",
                )
            )
        if isinstance(step, L.UnilmAttention):
            rows.append(("attention", f"UniLM masks per example: {_shares(step.masks, step.cdf)}"))
        if isinstance(step, L.PermutationAttention):
            written = {
                "dense": "perm_mask and target_mapping, (B, L, L) each",
                "sparse": "perm_order (B, L), expanded on the model's device",
            }[step.layout]
            order = "a random factorization order of the targets"
            rows.append(("attention", f"permutation: {order}, written as {written}"))
        if isinstance(step, L.BuildPairs):
            mix = _shares(step.relations, step.cdf)
            if len(step.relations) == 1:
                rows.append(("pair", f"{mix}: the two segments only, no label"))
            else:
                labels = f"labels 0..{len(step.relations) - 1} in this order"
                rows.append(("pair", f"{mix} ({labels}); label key `{step.label_key}`"))
        if isinstance(step, L.SelectSuffix):
            rows.append(("selection", f"a suffix of about {_pct(step.rate)} (prefix LM)"))
        if isinstance(step, L.Sentinels):
            rows.append(("replacement", "each span becomes one unique sentinel"))
        if isinstance(step, L.Targets):
            rows.append(("targets", TARGET_TEXT[step.target]))
        if isinstance(step, L.Output):
            form = step.kind
            if step.kind == "decoder_only":
                form += f", {step.attention} attention" + (
                    " (prefix_mask: the input bidirectional)" if step.attention == "prefix" else ""
                )
            rows.append(("batch form", form))
        if isinstance(step, L.FillInMiddle):
            tokens = " ".join(f"`{t}`" for t in step.tokens)
            rows.append(
                (
                    "fill-in-the-middle",
                    f"{_pct(step.rate)} of rows, SPM {_pct(step.spm)} of them (else PSM); "
                    f"two uniform cut points; sentinels {tokens}",
                )
            )
        if isinstance(step, L.SelectSpans):
            rows.append(("span length", f"{step.law}, mean {step.mean:.3f} units"))
        if isinstance(step, L.Replace):
            rows.append(("replacement", f"per {step.per}: {_shares(step.actions, step.cdf)}"))
            rows += _replacement_sources(step)
        if isinstance(step, L.LossWeights):
            weight = "each label weighted by 1 / its example's rate, " if step.weighted else ""
            rows.append(("loss", f"{weight}averaged over {LOSS_OVER_TEXT[step.over]}"))
    rows.append(
        (
            "masks",
            "dynamic (new each epoch)"
            if plan.mask_copies is None
            else f"static, {plan.mask_copies} copies",
        )
    )
    heads = ", ".join(
        f"{h.kind} x {h.weight:g}" + (f" {dict(h.params)}" if h.params else "") for h in plan.heads
    )
    rows.append(("heads (loss weight)", heads))
    rows.append(("outputs", ", ".join(f"`{o}`" for o in plan.outputs)))
    return ["| parameter | value |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows)]


RUN_TIME_ARGUMENTS = {
    "counts": "token_counts=counts",  # a count per vocabulary id
    "similar": "tables={'similar': table}",
    "pool": "tables={'pool': ids}",
}


def _collator_lines(needs: tuple[str, ...]) -> list[str]:
    """The 'Use it' lines that build the collator, with the run-time tables it needs."""
    given = [RUN_TIME_ARGUMENTS[n] for n in needs if n in RUN_TIME_ARGUMENTS]
    if "similar" in needs and "pool" in needs:
        given = [a for a in given if "tables" not in a] + ["tables={'similar': table, 'pool': ids}"]
    lines = ["collator = compiled.Collator(tokenizer, seed=0)  # any HF tokenizer, or a Vocab"]
    if given:
        lines = [
            "# the run-time tables this spec reads (stand-ins: objspec.bundled.run_time_inputs)",
            f"collator = compiled.Collator(tokenizer, seed=0, {', '.join(given)})",
        ]
    return lines


def _replacement_sources(step: L.Replace) -> list[tuple[str, str]]:
    """Where random and similar tokens come from, when not the plain vocabulary."""
    rows = []
    if "similar" in step.actions:
        rows.append(("similar tokens", "a run-time table (`tables={'similar': ...}`)"))
    if step.random_from != "vocabulary":
        rows.append(("random tokens", RANDOM_FROM_TEXT[step.random_from]))
    return rows


RANDOM_FROM_TEXT = {
    "unigram": "by corpus frequency (`token_counts=`)",
    "pool": "uniformly from a run-time pool (`tables={'pool': ...}`)",
}

LOSS_OVER_TEXT = {
    "selected": "the labelled positions",
    "tokens": "the batch's real tokens",
    "examples": "the examples, each one's sum over its candidate tokens",
}

VIEW_TEXT = {
    "dropout": "the clean row, encoded twice with independent dropout",
    "corrupted": "the clean row against its corruption",
    "selected": "the corrupted row against [CLS] + its selected tokens, encoded alone",
}

TARGET_TEXT = {
    "selected": "the selected tokens, in order, at their original positions",
    "all": "the whole original sequence",
    "sentinels": "each sentinel followed by the span it replaced, then the end token",
    "sequence": "every token of the row, then the end-of-text token (eos, else sep)",
}


def _law_table(step: L.SelectSpans) -> list[str]:
    out = ["| length | probability | |", "|---:|---:|---|"]
    cdf = (0, *step.cdf)
    for value, lo, hi in zip(step.values, cdf, cdf[1:], strict=False):
        p = (hi - lo) / 2**32
        out.append(f"| {value} | {p:.4f} | {'#' * round(p * 60)} |")
    return out


def render_example(compiled: CompiledObjective, max_length: int = 64) -> list[str]:
    """Before/after of the corpus' first example, selected tokens between « »."""
    tokenizer = bundled.load_tokenizer()
    example: dict[str, Any]
    if reads_translations(compiled.Collator.outputs):  # a stand-in pair (monolingual corpus)
        example = bundled.parallel_examples(tokenizer, max_length)[0]
    else:
        example = dict(
            bundled.encode_examples(tokenizer, bundled.load_documents()[:1], max_length)[0]
        )
    tables = bundled.run_time_inputs(tokenizer, compiled.Collator.needs)
    vocab = Vocab.from_tokenizer(bundled.with_special_tokens(tokenizer, compiled.Collator.modes))
    collator = compiled.Collator(vocab, seed=0, **tables)
    [example] = bundled.stand_in_fields([example], collator.fields)  # a demo: stand-ins
    out = collator([example])
    if not collator.tasks:
        return render_batch(tokenizer, example, out)
    lines: list[str] = []
    for task in collator.tasks:  # each task's batch of its own, shown apart
        batch = task_batch(out, task)
        lines += [f"Task `{task}`:", "", *render_batch(tokenizer, example, batch), ""]
    return lines[:-1]


def reads_translations(outputs: Sequence[str]) -> bool:
    """Whether a collator (or one of its tasks) joins each example with its translation."""
    tasks = task_names(outputs)
    return any(base_key(key, tasks) == "langs" for key in outputs)


def render_batch(
    tokenizer: Any, example: dict[str, Any], out: dict[str, torch.Tensor]
) -> list[str]:
    """Row 0 of one batch (``out``) of ``example``, in the form its keys tell."""
    if "langs" in out:
        lines = translation_lines(tokenizer, example, out)
        return ["```text", *lines[:-1], "```", lines[-1]]
    if "block_position_ids" in out:
        lines = blank_lines(tokenizer, example["input_ids"], out)
        return ["```text", *lines[:-1], "```", lines[-1]]
    views_only = "view_input_ids" in out and "labels" not in out
    if is_rewrite(out) or "token_type_ids" in out or views_only:
        render = rewrite_lines if is_rewrite(out) else pair_lines
        lines = (view_lines if views_only else render)(tokenizer, example["input_ids"], out)
        return ["```text", *lines[:-1], "```", lines[-1]]
    if is_sequence(out):
        lines = sequence_lines(tokenizer, example["input_ids"], out)
        return ["```text", *lines[:-1], "```", lines[-1]]
    n = len(example["input_ids"])
    labels = out["labels"][0, :n].tolist()
    after_ids = out["input_ids"][0, :n].tolist()

    def mark(ids: list[int]) -> str:
        words = []
        for tok_id, label in zip(ids, labels, strict=True):
            tok = tokenizer.id_to_token(tok_id) or "[UNK]"
            words.append(f"{MARK_OPEN}{tok}{MARK_CLOSE}" if label != -100 else tok)
        return " ".join(words)

    selected = sum(label != -100 for label in labels)
    view = [f"view:   {view_lines(tokenizer, [], out)[0]}"] if "view_input_ids" in out else []
    return [
        "```text",
        f"before: {mark(example['input_ids'])}",
        f"after:  {mark(after_ids)}",
        *view,
        "```",
        f"{selected} of {n} tokens selected (between {MARK_OPEN} {MARK_CLOSE}); "
        "the model predicts the original token at each of them"
        + ("; the other view is shown last." if view else "."),
    ]


def view_lines(tokenizer: Any, original: list[int], out: dict[str, torch.Tensor]) -> list[str]:
    """Row 0's contrastive view, and a summary."""
    view = out["view_input_ids"][0][out["view_attention_mask"][0].bool()].tolist()
    return [
        " ".join(tokenizer.id_to_token(i) or "[UNK]" for i in view),
        "A contrastive view: its positive is the other view of the same row, its negatives "
        "the other rows of the batch.",
    ]


def is_rewrite(out: dict[str, torch.Tensor]) -> bool:
    """Whether a collator's output is a sequence-to-sequence batch (inputs and targets differ)."""
    return "decoder_attention_mask" in out or "prefix_mask" in out


def is_sequence(out: dict[str, torch.Tensor]) -> bool:
    """Whether a collator's output is a causal LM's rows: every token its own label."""
    valid = out["attention_mask"].bool()
    return "prefix_mask" not in out and torch.equal(out["labels"][valid], out["input_ids"][valid])


def sequence_lines(tokenizer: Any, original: list[int], out: dict[str, torch.Tensor]) -> list[str]:
    """Before and the whole row 0 of a causal LM's batch (a rearranged row is longer than
    its example), then a one-line summary."""
    row = out["input_ids"][0, : int(out["attention_mask"][0].sum())].tolist()
    words = " ".join(tokenizer.id_to_token(i) or "[UNK]" for i in original)
    return [
        f"before: {words}",
        f"row:    {' '.join(tokenizer.id_to_token(i) or '[UNK]' for i in row)}",
        f"{len(original)} tokens in, {len(row)} in the row, every one its own label "
        "(the model shifts: each token predicts the next).",
    ]


def blank_lines(tokenizer: Any, original: list[int], out: dict[str, torch.Tensor]) -> list[str]:
    """GLM's row 0: before, Part A, Part B, and the 2D positions of Part B."""
    n = int(out["attention_mask"][0].sum())
    n_a = int(out["prefix_mask"][0].sum())
    row = out["input_ids"][0, :n].tolist()

    def words(tokens: list[int]) -> str:
        return " ".join(tokenizer.id_to_token(i) or "[UNK]" for i in tokens)

    targets = int((out["labels"][0] != -100).sum())
    return [
        f"before:         {words(original)}",
        f"Part A:         {words(row[:n_a])}",
        f"Part B:         {words(row[n_a:])}",
        f"B's positions:  {out['position_ids'][0, n_a:n].tolist()}",
        f"B's blocks:     {out['block_position_ids'][0, n_a:n].tolist()}",
        f"{len(original)} tokens in; Part A ({n_a} tokens) attended bidirectionally, Part B "
        f"({n - n_a}) causally; {targets} targets: each span's tokens and its closing "
        "<|endofpiece|> (the model shifts: each token predicts the next).",
    ]


def translation_lines(
    tokenizer: Any, example: dict[str, Any], out: dict[str, torch.Tensor]
) -> list[str]:
    """The sentence, its (stand-in) translation, and the joined, masked row of row 0."""
    n = int(out["attention_mask"][0].sum())

    def words(tokens: list[int]) -> str:
        return " ".join(tokenizer.id_to_token(i) or "[UNK]" for i in tokens)

    targets = int((out["labels"][0] != -100).sum())
    return [
        f"sentence:    {words(example['input_ids'])}",
        f"translation: {words(example['translation_ids'])}",
        f"row:         {words(out['input_ids'][0, :n].tolist())}",
        f"positions:   {out['position_ids'][0, :n].tolist()}",
        f"{targets} masked-LM targets across both sentences; langs "
        f"{out['langs'][0, :n].unique().tolist()}.",
    ]


PAIR_LABELS = ("next_sentence_label", "sentence_order_label", "sentence_structure_label")


def pair_lines(tokenizer: Any, original: list[int], out: dict[str, torch.Tensor]) -> list[str]:
    """Before, the pair (the two token-type segments) and what was drawn, of row 0."""
    key = next((k for k in PAIR_LABELS if k in out), None)
    n = int(out["attention_mask"][0].sum())
    ids = out["input_ids"][0, :n].tolist()
    kinds = out["token_type_ids"][0, :n].tolist()

    def words(tokens: list[int]) -> str:
        return " ".join(tokenizer.id_to_token(i) or "[UNK]" for i in tokens)

    first = [t for t, k in zip(ids, kinds, strict=True) if k == 0]
    second = [t for t, k in zip(ids, kinds, strict=True) if k == 1]
    drawn = f"{key} = {int(out[key][0])}" if key else "segments only"
    if "attention_mode" in out:
        drawn += f", attention_mode = {int(out['attention_mode'][0])}"
    return [
        f"before: {words(original)}",
        f"pair:   {words(first)} | {words(second)}",
        f"{drawn} (token_type_ids 0 | 1 shown either side of the bar)",
    ]


def rewrite_lines(tokenizer: Any, original: list[int], out: dict[str, torch.Tensor]) -> list[str]:
    """Before, encoder input (or prefix) and target of row 0, then a one-line summary."""
    mask = out["prefix_mask"] if "prefix_mask" in out else out["attention_mask"]
    inputs = out["input_ids"][0, : int(mask[0].sum())].tolist()
    labels = [t for t in out["labels"][0].tolist() if t != -100]

    def words(ids: list[int]) -> str:
        return " ".join(tokenizer.id_to_token(i) or "[UNK]" for i in ids)

    return [
        f"before: {words(original)}",
        f"input:  {words(inputs)}",
        f"target: {words(labels)}",
        f"{len(original)} tokens in, {len(inputs)} in the encoder input, "
        f"{len(labels)} in the target.",
    ]


def _variant_section(spec: Path) -> list[str]:
    """For a variant: what it starts from, what it changes, and the file as written (the
    Spec section below shows it flattened, as compiled)."""
    text = spec.read_text(encoding="utf-8")
    tree = parse_tree(text, str(spec))
    if not variants.is_variant(tree):
        return []
    flat = variants.flatten(tree, text, str(spec))
    changes = [f"- {change}" for change in flat.changes]
    return [
        f"## A variant of [`{flat.base}`]({flat.base}.md)",
        "",
        *changes,
        "",
        "As written:",
        "",
        "```",
        text.rstrip("\n"),
        "```",
        "",
    ]


def render_page(spec: Path) -> str:
    objective = parse_file(spec.relative_to(ROOT) if spec.is_absolute() else spec)
    plan = lower(objective)
    generated = compile_objective(objective)
    compiled = CompiledObjective(generated.name, generated.source, load(generated))
    lines = [f"# `{objective.name}`", ""]
    lines += [f"> {note}" if note else ">" for note in _notes(objective.source)]
    lines += ["", "## Parameters", "", *_parameters(objective, plan), ""]
    for step in plan.steps:
        if isinstance(step, L.SelectSpans):
            lines += ["### Span-length table (as compiled)", "", *_law_table(step), ""]
    lines += _variant_section(spec)
    lines += ["## Spec", "", "```", objective.source.rstrip("\n"), "```", ""]
    lines += ["## Example (bundled corpus, seed 0, epoch 0)", "", *render_example(compiled), ""]
    lines += [
        "## Use it",
        "",
        "```python",
        "import objspec",
        f'compiled = objspec.compile_file("specs/{spec.name}")',
        *_collator_lines(compiled.Collator.needs),
        *(f"# each example also brings {name}: {why}" for name, why in compiled.Collator.fields),
        "heads = compiled.Heads(model)  # model: objspec.runtime.encoders' protocol",
        "losses = heads(collator(examples))  # a dict; losses['loss'] is the weighted sum",
        "```",
        "",
        f"or train the tiny model on the bundled corpus: `objspec pretrain specs/{spec.name}`.",
        "",
    ]
    return "\n".join(lines)


def render_index(specs: list[Path]) -> str:
    lines = [
        "# Spec gallery",
        "",
        "One page per bundled spec (generated by `python -m objspec.gallery`).",
        "",
    ]
    for spec in specs:
        notes = _notes(spec.read_text(encoding="utf-8"))
        title = notes[0] if notes else spec.stem
        lines.append(f"- [`{spec.stem}`]({spec.stem}.md): {title}")
    return "\n".join(lines) + "\n"


def pages() -> dict[Path, str]:
    """Every gallery file and its content."""
    specs = sorted((ROOT / "specs").glob("*.objspec"))
    out = {GALLERY / f"{s.stem}.md": render_page(s) for s in specs}
    out[GALLERY / "README.md"] = render_index(specs)
    return out


def main(argv: list[str] | None = None) -> int:
    GALLERY.mkdir(parents=True, exist_ok=True)
    for path, text in pages().items():
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

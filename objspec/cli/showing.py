"""``objspec show``: one example before and after its corruption."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.text import Text

from objspec.cli.args import LENGTH, SEED_MAX, integer
from objspec.cli.common import EXIT_OK, UsageError, is_utf8, load_spec, out, say, spec_file

SHOW_STYLES = {"mask": "bold white on red", "random": "bold black on yellow", "keep": "bold green"}


def _styled(tokens: list[str], kinds: list[str]) -> Text:
    text = Text()
    for tok, kind in zip(tokens, kinds, strict=True):
        if text:
            text.append(" ")
        text.append(tok, style=SHOW_STYLES.get(kind, ""))
    return text


def render_corruption(
    tokenizer: Any, example: dict[str, Any], result: dict[str, Any]
) -> tuple[Text, Text]:
    """(before, after) lines: selected tokens coloured by what happened to them."""
    original = list(example["input_ids"])
    n = len(original)
    corrupted = result["input_ids"][0, :n].tolist()
    labels = result["labels"][0, :n].tolist()
    mask_id = tokenizer.token_to_id("[MASK]")
    kinds = []
    for old, new, label in zip(original, corrupted, labels, strict=True):
        if label == -100:
            kinds.append("")
        elif new == mask_id:
            kinds.append("mask")
        elif new != old:
            kinds.append("random")
        else:
            kinds.append("keep")
    before = [tokenizer.id_to_token(i) for i in original]
    after = [tokenizer.id_to_token(i) for i in corrupted]
    return _styled(before, ["keep" if k else "" for k in kinds]), _styled(after, kinds)


def show_one(spec: Path, text: str | None, seed: int, epoch: int, max_length: int) -> None:
    from objspec import bundled
    from objspec.gallery import reads_translations
    from objspec.runtime import Vocab, task_batch

    objective, compiled = load_spec(spec)
    # the tokens a spec names by text (FIM's sentinels) added where the tokenizer lacks them
    tokenizer = bundled.with_special_tokens(bundled.load_tokenizer(), compiled.Collator.modes)
    if reads_translations(compiled.Collator.outputs):  # a stand-in pair (monolingual corpus)
        example: dict[str, Any] = bundled.parallel_examples(tokenizer, max_length)[0]
    elif text is None:
        first = bundled.encode_examples(tokenizer, bundled.load_documents()[:1], max_length)[0]
        example = dict(first)
    else:
        enc = tokenizer.encode(text)
        ids = enc.ids[:max_length]
        words = [-1 if w is None else w for w in enc.word_ids][:max_length]
        example = {"input_ids": ids, "word_ids": words, "index": 0}
    tables = bundled.run_time_inputs(tokenizer, compiled.Collator.needs)
    collator = compiled.Collator(Vocab.from_tokenizer(tokenizer), seed=seed, epoch=epoch, **tables)
    [example] = bundled.stand_in_fields([example], collator.fields)  # a demo: stand-ins
    result = collator([example])
    say((objective.name, "bold"), f" ({spec}), seed {seed}, epoch {epoch}")
    if not collator.tasks:
        show_batch(tokenizer, example, result)
        return
    for task in collator.tasks:  # each task's batch of its own
        say((f"task {task}", "bold"))
        show_batch(tokenizer, example, task_batch(result, task))


def show_batch(tokenizer: Any, example: dict[str, Any], result: dict[str, Any]) -> None:
    """Row 0 of one batch (``result``) of ``example``, in the form its keys tell."""
    from objspec.gallery import (
        is_rewrite,
        pair_lines,
        rewrite_lines,
        translation_lines,
        view_lines,
    )

    if "langs" in result:
        for line in translation_lines(tokenizer, example, result):
            out.print(Text(line))
        return
    views_only = "view_input_ids" in result and "labels" not in result
    if is_rewrite(result) or "token_type_ids" in result or views_only:
        render = rewrite_lines if is_rewrite(result) else pair_lines
        render = view_lines if views_only else render
        for line in render(tokenizer, list(example["input_ids"]), result):
            out.print(Text(line))
        return
    before, after = render_corruption(tokenizer, example, result)
    out.print(Text("before: ") + before)
    out.print(Text("after:  ") + after)
    if "view_input_ids" in result:
        out.print(Text("view:   " + view_lines(tokenizer, [], result)[0]))
    legend = Text("legend: ")
    for kind, style in SHOW_STYLES.items():
        legend.append(f" {kind} ", style=style)
        legend.append(" ")
    out.print(legend)


def cmd_show(args: argparse.Namespace) -> int:
    text = args.text
    if text is not None and not is_utf8(text):
        raise UsageError("--text is not valid UTF-8")
    show_one(spec_file(args.spec), text, args.seed, args.epoch, args.max_length)
    return EXIT_OK


def add_show(sub: Any) -> None:
    p = sub.add_parser("show", help="show a corrupted example, before and after")
    p.add_argument("spec", help=".objspec file or bundled spec name")
    p.add_argument("--text", help="text to corrupt (default: the bundled corpus' first example)")
    p.add_argument("--seed", type=integer(0, SEED_MAX), default=0, help="the collator's seed")
    p.add_argument("--epoch", type=integer(0, SEED_MAX), default=0, help="the collator's epoch")
    p.add_argument("--max-length", type=LENGTH, default=64, help="tokens kept of the text")
    p.set_defaults(run=cmd_show)

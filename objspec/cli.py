"""``objspec compile | check | show | pretrain | demo``.

Exit codes: 0 success; 1 a spec failed to parse or validate (the located report is printed);
2 bad command-line usage; 3 a property check failed.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from objspec.errors import ObjspecError, SpecError

EXIT_OK, EXIT_SPEC, EXIT_USAGE, EXIT_CHECK = 0, 1, 2, 3
OUTPUT_FORMS = ("encoder", "encoder_decoder", "decoder_only")

out = Console(highlight=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _compile(path: Path, form: str | None = None) -> tuple[Any, Any]:
    """(objective IR, generated module) of one spec file, in batch form ``form`` if given."""
    from compiler import compile_objective
    from objspec.parser import parse_file

    objective = parse_file(path)
    if form is not None:
        objective = objective.with_output(form)
    return objective, compile_objective(objective)


def _load(path: Path, form: str | None = None) -> tuple[Any, Any]:
    """(objective IR, loaded CompiledObjective) of one spec file, in batch form ``form``."""
    from compiler import load
    from objspec import CompiledObjective

    objective, generated = _compile(path, form)
    return objective, CompiledObjective(generated.name, generated.source, load(generated))


def cmd_compile(args: argparse.Namespace) -> int:
    outdir = Path(args.output)
    outdir.mkdir(parents=True, exist_ok=True)
    for spec in args.specs:
        _, generated = _compile(Path(spec), args.form)
        target = outdir / generated.filename
        target.write_text(generated.source, encoding="utf-8")
        out.print(f"[green]compiled[/] {spec} -> {target}")
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    from objspec.checks import run_checks

    failed = False
    for spec in args.specs:
        objective, compiled = _load(Path(spec), args.form)
        results = run_checks(objective, compiled, max_examples=args.examples)
        form = f", output {args.form}" if args.form else ""
        table = Table(title=f"{objective.name} ({spec}{form})", title_justify="left")
        table.add_column("check")
        table.add_column("result")
        table.add_column("promise / failure")
        for r in results:
            verdict = "[green]pass[/]" if r.passed else "[red]FAIL[/]"
            table.add_row(r.name, verdict, r.promise if r.passed else r.detail)
            failed |= not r.passed
        out.print(table)
    return EXIT_CHECK if failed else EXIT_OK


def _styled(tokens: list[str], kinds: list[str]) -> Text:
    text = Text()
    for tok, kind in zip(tokens, kinds, strict=True):
        if text:
            text.append(" ")
        text.append(tok, style=SHOW_STYLES.get(kind, ""))
    return text


SHOW_STYLES = {"mask": "bold white on red", "random": "bold black on yellow", "keep": "bold green"}


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


def _show_one(spec: Path, text: str | None, seed: int, epoch: int, max_length: int) -> None:
    from objspec import bundled
    from objspec.gallery import (
        is_rewrite,
        pair_lines,
        rewrite_lines,
        translation_lines,
        view_lines,
    )
    from objspec.runtime import Vocab

    objective, compiled = _load(spec)
    tokenizer = bundled.load_tokenizer()
    if "langs" in compiled.Collator.outputs:  # a stand-in pair (the corpus is monolingual)
        example: dict[str, Any] = bundled.parallel_examples(tokenizer, max_length)[0]
    elif text is None:
        first = bundled.encode_examples(tokenizer, bundled.load_documents()[:1], max_length)[0]
        example = dict(first)
    else:
        enc = tokenizer.encode(text)
        ids = enc.ids[:max_length]
        words = [-1 if w is None else w for w in enc.word_ids][:max_length]
        example = {"input_ids": ids, "word_ids": words, "index": 0}
    counts = bundled.token_counts(tokenizer) if "counts" in compiled.Collator.needs else None
    collator = compiled.Collator(
        Vocab.from_tokenizer(tokenizer), seed=seed, epoch=epoch, token_counts=counts
    )
    result = collator([example])
    out.print(f"[bold]{objective.name}[/] ({spec}), seed {seed}, epoch {epoch}")
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
    _show_one(Path(args.spec), args.text, args.seed, args.epoch, args.max_length)
    return EXIT_OK


def bundled_specs_dir() -> Path:
    """``specs/`` of the working tree or of the source checkout objspec was installed from."""
    for candidate in (Path.cwd() / "specs", Path(__file__).resolve().parent.parent / "specs"):
        if candidate.is_dir() and any(candidate.glob("*.objspec")):
            return candidate
    raise ObjspecError("cannot find the bundled specs/ folder; run from the objspec checkout")


def cmd_demo(args: argparse.Namespace) -> int:
    from objspec.checks import run_checks

    specs = sorted(bundled_specs_dir().glob("*.objspec"))
    out.rule("[bold]objspec demo[/]: every bundled spec, compiled, shown and checked")
    failed = []
    for spec in specs:
        out.print()
        _show_one(spec, None, args.seed, 0, 40)
        objective, compiled = _load(spec)
        results = run_checks(objective, compiled, max_examples=args.examples)
        passed = sum(r.passed for r in results)
        colour = "green" if passed == len(results) else "red"
        out.print(f"checks: [{colour}]{passed}/{len(results)} passed[/]")
        for r in results:
            if not r.passed:
                out.print(f"  [red]FAIL[/] {r.name}: {r.detail}")
                failed.append(f"{spec.name}:{r.name}")
    out.print()
    out.rule(
        "[green]all checks passed[/]" if not failed else f"[red]{len(failed)} checks failed[/]"
    )
    out.print()
    out.rule("[bold]objspec pretrain[/]: the tiny model trained with one compiled objective")
    spec = bundled_specs_dir() / DEMO_PRETRAIN
    trained = cmd_pretrain(
        build_parser().parse_args(["pretrain", str(spec), "--out", "runs/demo", *DEMO_STEPS])
    )
    return EXIT_CHECK if failed else trained


DEMO_PRETRAIN = "spanbert.objspec"
DEMO_STEPS = ("--steps", "150", "--lr", "2e-3")


def cmd_pretrain(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from objspec.pretrain import (
        CheckpointError,
        PretrainConfig,
        Pretrainer,
        StopRequests,
        init_distributed,
        sparkline,
    )

    distributed = init_distributed()
    given = {f.name: getattr(args, f.name) for f in fields(PretrainConfig) if hasattr(args, f.name)}
    config = PretrainConfig(**{**given, "text": list(args.text or [])})
    trainer = Pretrainer(config)
    lead = trainer.rank == 0
    try:
        resumed = args.resume and trainer.resume()
    except CheckpointError as exc:
        err.print(Text(f"error: {exc}"))
        return EXIT_USAGE
    if resumed and lead:
        out.print(f"resumed from {trainer.out / 'checkpoint.pt'} at step {trainer.step}")
    if lead:
        ranks = f", {trainer.world_size} ranks" if distributed else ""
        out.print(
            f"[bold]pretrain[/] {args.spec}: {len(trainer.examples)} examples, "
            f"batch {config.batch_size}{ranks}, {config.steps} steps -> {trainer.out}"
        )
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} loss {task.fields[loss]:.4f}"),
        TimeRemainingColumn(),
        console=out,
        disable=not lead,
    )
    with progress, StopRequests() as stop:
        task = progress.add_task(
            "training", total=config.steps, completed=trainer.step, loss=float("nan")
        )
        trainer.run(lambda row: progress.update(task, advance=1, loss=row["loss"]), stop)
    if stop.signal_number is not None:
        if lead:
            name = signal.Signals(stop.signal_number).name
            out.print(
                f"{name}: stopped after step {trainer.step}, checkpoint written to "
                f"{trainer.out / 'checkpoint.pt'}; continue with --resume"
            )
        return 128 + stop.signal_number
    if lead and trainer.rows:
        curve = [r["loss"] for r in trainer.rows]
        out.print(f"loss {curve[0]:.4f} -> {curve[-1]:.4f}  {sparkline(curve)}")
        png = trainer.out / "losses.png"
        shown = f" and {png}" if png.exists() else " (install matplotlib for the PNG)"
        out.print(f"loss curve: {trainer.out / 'losses.csv'}{shown}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="objspec", description="Pre-training objectives as specs, compiled to collators."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("compile", help="compile specs to Python modules")
    p.add_argument("specs", nargs="+", help=".objspec files")
    p.add_argument("-o", "--output", default="build", help="output folder (default: build)")
    p.add_argument(
        "--form",
        choices=("encoder", "encoder_decoder", "decoder_only"),
        help="override the spec's 'output' batch form (e.g. decoder_only for a prefix LM)",
    )
    p.set_defaults(run=cmd_compile)

    p = sub.add_parser("check", help="property-test the compiled collator of each spec")
    p.add_argument("specs", nargs="+", help=".objspec files")
    p.add_argument("--examples", type=int, default=40, help="Hypothesis examples per check")
    p.add_argument(
        "--output",
        "--form",
        dest="form",
        choices=OUTPUT_FORMS,
        help="check the spec compiled in another batch form (as 'objspec compile --form')",
    )
    p.set_defaults(run=cmd_check)

    p = sub.add_parser("show", help="show a corrupted example, before and after")
    p.add_argument("spec", help=".objspec file")
    p.add_argument("--text", help="text to corrupt (default: the bundled corpus' first example)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epoch", type=int, default=0)
    p.add_argument("--max-length", type=int, default=64)
    p.set_defaults(run=cmd_show)

    p = sub.add_parser(
        "pretrain",
        help="train the tiny model with a spec's collator and heads (torchrun for several ranks)",
    )
    p.add_argument("spec", help=".objspec file")
    p.add_argument("--out", default="runs/pretrain", help="folder for curve and checkpoint")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=32, help="global batch (all ranks)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-length", type=int, default=64, help="tokens per packed example")
    p.add_argument("--hidden-size", type=int, default=64)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--checkpoint-every", type=int, default=50)
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument(
        "--text", nargs="*", help="corpus files: a sentence per line, blank line between docs"
    )
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    p.set_defaults(run=cmd_pretrain)

    p = sub.add_parser("demo", help="compile, show and check every bundled spec")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--examples", type=int, default=25, help="Hypothesis examples per check")
    p.set_defaults(run=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except SpecError as exc:
        err.print(Text(exc.render()))
        return EXIT_SPEC
    except ObjspecError as exc:
        err.print(Text(f"error: {exc}"))
        return EXIT_SPEC
    except (OSError, ValueError) as exc:
        err.print(Text(f"error: {exc}"))
        return EXIT_SPEC


if __name__ == "__main__":
    sys.exit(main())

"""``objspec compile | check | show | pretrain | demo``.

Exit codes: 0 success; 1 a spec failed to parse or validate (the located report is printed);
2 bad command-line usage (a missing file, a bad flag value, an unwritable output); 3 a property
check failed; 70 an internal error (a bug: one line asks for a report; ``OBJSPEC_DEBUG=1``
shows the traceback). A signal that stops ``pretrain`` exits 128 + its number.

Nothing the user wrote (paths, spec names, messages) is printed as Rich markup: it goes out as
``rich.text.Text``, so a path holding ``[/]`` prints as itself.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any, NoReturn

from rich.console import Console
from rich.table import Table
from rich.text import Text

from objspec import __version__
from objspec.errors import ObjspecError, SpecError

EXIT_OK, EXIT_SPEC, EXIT_USAGE, EXIT_CHECK = 0, 1, 2, 3
EXIT_INTERNAL = 70  # EX_SOFTWARE (sysexits.h): an unexpected exception, i.e. a bug
DEBUG_ENV = "OBJSPEC_DEBUG"
OUTPUT_FORMS = ("encoder", "encoder_decoder", "decoder_only")
DEVICE_TYPES = ("cpu", "cuda")

out = Console(highlight=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)


class UsageError(Exception):
    """Bad command-line usage found after parsing (a missing file, a folder given as a spec,
    an output that is a file): one line, exit 2."""


def say(*parts: str | tuple[str, str] | Text) -> None:
    """Print one line to stdout; plain strings are literal text (never markup), ``(text,
    style)`` pairs are styled."""
    out.print(Text.assemble(*parts))


def error_line(message: str) -> None:
    """``error: message`` on stderr, its first line only, literal text."""
    first = message.strip().splitlines()[0] if message.strip() else "unknown error"
    err.print(Text(f"error: {first}"))


def spec_file(spec: str) -> Path:
    """The file of a spec argument: an existing file, else a bundled spec by name (so
    ``objspec check bert_mlm`` works from any folder). UsageError otherwise."""
    from objspec import spec_path

    try:
        return spec_path(spec)
    except OSError as exc:
        raise UsageError(str(exc)) from None


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


def output_folder(name: str) -> Path:
    """``-o``: a folder, created if missing; a file there is a usage error."""
    folder = Path(name)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"-o {name}: exists and is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"-o {name}: cannot create the folder: {exc.strerror or exc}") from None
    return folder


def shadowed_module(name: str, target: Path) -> str | None:
    """Why ``target`` (``NAME.py``) must not be written: it would shadow the standard library's
    or an installed module of that name for code run from its folder. None if it would not."""
    import importlib.util

    from objspec import ir

    reserved: frozenset[str] = getattr(
        ir, "SHADOWED_MODULES", frozenset()
    )  # the compiler's list, when it has one
    if name in sys.stdlib_module_names or name in reserved:
        return f"the module {name!r}"
    try:
        found = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    origin = found.origin if found is not None else None
    if found is None or (origin and Path(origin).resolve() == target.resolve()):
        return None  # nothing to shadow, or the file this command wrote before
    return f"the installed module {name!r}"


def cmd_compile(args: argparse.Namespace) -> int:
    outdir = output_folder(args.output)
    for spec in args.specs:
        path = spec_file(spec)
        _, generated = _compile(path, args.form)
        target = outdir / generated.filename
        shadowed = shadowed_module(generated.name, target)
        if shadowed is not None:
            raise ObjspecError(
                f"{path}: objective {generated.name!r} would be written as {target}, which "
                f"shadows {shadowed}; rename the objective (e.g. {generated.name}_objective)"
            )
        try:
            target.write_text(generated.source, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write {target}: {exc.strerror or exc}") from None
        say(("compiled", "green"), f" {spec} -> {target}")
    return EXIT_OK


def check_table(title: str, results: Sequence[Any]) -> Table:
    table = Table(title=Text(title), title_justify="left")
    table.add_column("check")
    table.add_column("result")
    table.add_column("promise / failure")
    for r in results:
        verdict = Text("pass", style="green") if r.passed else Text("FAIL", style="red")
        table.add_row(Text(r.name), verdict, Text(r.promise if r.passed else r.detail))
    return table


def check_record(spec: str, objective: Any, form: str | None, results: Sequence[Any]) -> dict:
    """One spec's results for ``check --json``."""
    checks = [
        {"name": r.name, "passed": r.passed, "promise": r.promise, "detail": r.detail}
        for r in results
    ]
    passed = all(r.passed for r in results)
    return {
        "spec": spec,
        "objective": objective.name,
        "form": form,
        "passed": passed,
        "checks": checks,
    }


def cmd_check(args: argparse.Namespace) -> int:
    from objspec.checks import run_checks

    records = []
    for spec in args.specs:
        objective, compiled = _load(spec_file(spec), args.form)
        results = run_checks(objective, compiled, max_examples=args.examples)
        records.append(check_record(spec, objective, args.form, results))
        if not args.json:
            form = f", output {args.form}" if args.form else ""
            out.print(check_table(f"{objective.name} ({spec}{form})", results))
    passed = all(r["passed"] for r in records)
    if args.json:
        print(json.dumps({"passed": passed, "specs": records}, indent=2))
    return EXIT_OK if passed else EXIT_CHECK


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
    # the tokens a spec names by text (FIM's sentinels) added where the tokenizer lacks them
    tokenizer = bundled.with_special_tokens(bundled.load_tokenizer(), compiled.Collator.modes)
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
    say((objective.name, "bold"), f" ({spec}), seed {seed}, epoch {epoch}")
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
    _show_one(spec_file(args.spec), text, args.seed, args.epoch, args.max_length)
    return EXIT_OK


def is_utf8(text: str) -> bool:
    """False for a command-line string holding undecodable bytes (surrogate escapes)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def bundled_specs_dir() -> Path:
    """The bundled specs (installed with the package; see :func:`objspec.bundled_specs_dir`)."""
    from objspec import bundled_specs_dir as installed

    return installed()


def cmd_demo(args: argparse.Namespace) -> int:
    from objspec.checks import run_checks

    specs = sorted(bundled_specs_dir().glob("*.objspec"))
    out.rule(
        Text.assemble(("objspec demo", "bold"), ": every bundled spec, compiled, shown and checked")
    )
    failed = []
    for spec in specs:
        out.print()
        _show_one(spec, None, args.seed, 0, 40)
        objective, compiled = _load(spec)
        results = run_checks(objective, compiled, max_examples=args.examples)
        passed = sum(r.passed for r in results)
        colour = "green" if passed == len(results) else "red"
        say("checks: ", (f"{passed}/{len(results)} passed", colour))
        for r in results:
            if not r.passed:
                say("  ", ("FAIL", "red"), f" {r.name}: {r.detail}")
                failed.append(f"{spec.name}:{r.name}")
    out.print()
    verdict = (
        ("all checks passed", "green") if not failed else (f"{len(failed)} checks failed", "red")
    )
    out.rule(Text.assemble(verdict))
    out.print()
    out.rule(
        Text.assemble(("objspec pretrain", "bold"), ": the tiny model trained with one objective")
    )
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

    for path in args.text or []:
        check_text_file(path)
    distributed = init_distributed()
    given = {f.name: getattr(args, f.name) for f in fields(PretrainConfig) if hasattr(args, f.name)}
    config = PretrainConfig(**{**given, "spec": str(spec_file(args.spec)), "text": args.text or []})
    try:
        trainer = Pretrainer(config)
    except ValueError as exc:  # settings that do not fit together (or the corpus)
        raise UsageError(str(exc)) from None
    lead = trainer.rank == 0
    try:
        resumed = args.resume and trainer.resume()
    except CheckpointError as exc:
        error_line(str(exc))
        return EXIT_USAGE
    if resumed and lead:
        say(f"resumed from {trainer.out / 'checkpoint.pt'} at step {trainer.step}")
    if lead:
        ranks = f", {trainer.world_size} ranks" if distributed else ""
        say(
            ("pretrain", "bold"),
            f" {args.spec}: {len(trainer.examples)} examples, "
            f"batch {config.batch_size}{ranks}, {config.steps} steps -> {trainer.out}",
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
            say(
                f"{name}: stopped after step {trainer.step}, checkpoint written to "
                f"{trainer.out / 'checkpoint.pt'}; continue with --resume"
            )
        return 128 + stop.signal_number
    if lead and trainer.rows:
        curve = [r["loss"] for r in trainer.rows]
        say(f"loss {curve[0]:.4f} -> {curve[-1]:.4f}  {sparkline(curve)}")
        png = trainer.out / "losses.png"
        shown = f" and {png}" if png.exists() else " (install matplotlib for the PNG)"
        say(f"loss curve: {trainer.out / 'losses.csv'}{shown}")
    return EXIT_OK


def check_text_file(path: str) -> None:
    """A ``--text`` corpus file: readable and UTF-8 throughout, else a one-line UsageError
    naming it (and the first bad byte's line)."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                line += _decoded_lines(decoder, chunk, path, line)
            _decoded_lines(decoder, b"", path, line, final=True)
    except IsADirectoryError:
        raise UsageError(f"--text {path}: is a folder, not a text file") from None
    except OSError as exc:
        raise UsageError(f"--text {path}: cannot read it: {exc.strerror or exc}") from None


def _decoded_lines(decoder: Any, chunk: bytes, path: str, line: int, final: bool = False) -> int:
    """Newlines in ``chunk`` once decoded; UsageError at the first invalid UTF-8 byte."""
    try:
        return decoder.decode(chunk, final).count("\n")
    except UnicodeDecodeError as exc:
        at = line + chunk[: exc.start].count(b"\n")
        raise UsageError(
            f"--text {path}: not valid UTF-8 (line {at}: {exc.reason}); save it as UTF-8"
        ) from None


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every default in ``--help``, except where there is none (None, a flag's False) or the
    help text says it already."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default in (None, False) or "default" in text:
            return text
        return super()._get_help_string(action) or text


class Parser(argparse.ArgumentParser):
    """argparse with a one-line usage error (``objspec pretrain: error: ...``, exit 2) and every
    default shown in ``--help``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        err.print(Text(f"{self.prog}: error: {message} (see {self.prog} --help)"))
        raise SystemExit(EXIT_USAGE)


def integer(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer in low..high."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low or (high is not None and value > high):
            bound = f"from {low} to {high}" if high is not None else f">= {low}"
            raise argparse.ArgumentTypeError(f"must be an integer {bound}, got {text!r}")
        return value

    return parse


def real(low: float, high: float, *, open_low: bool = False, open_high: bool = False) -> Any:
    """An argparse type: a finite number in the interval (closed unless told otherwise)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        above = value > low if open_low else value >= low
        below = value < high if open_high else value <= high
        if not (math.isfinite(value) and above and below):
            interval = f"{'(' if open_low else '['}{low:g}, {high:g}{')' if open_high else ']'}"
            raise argparse.ArgumentTypeError(f"must be a finite number in {interval}, got {text!r}")
        return value

    return parse


def device(text: str) -> str:
    """An argparse type: a torch device this machine has (cpu, cuda, cuda:N)."""
    import torch

    try:
        chosen = torch.device(text)
    except (RuntimeError, ValueError, TypeError):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a device (cpu, cuda, cuda:1, ...)"
        ) from None
    if chosen.type not in DEVICE_TYPES:
        raise argparse.ArgumentTypeError(f"{text!r}: pretrain runs on {' or '.join(DEVICE_TYPES)}")
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(f"{text!r}: CUDA is not available here")
    if chosen.type == "cuda" and (chosen.index or 0) >= torch.cuda.device_count():
        count = torch.cuda.device_count()
        raise argparse.ArgumentTypeError(f"{text!r}: this machine has {count} CUDA device(s)")
    return text


SEED_MAX = 2**63 - 1
SIZE_MAX = 1 << 20  # counts and sizes past this are typos, not runs of the tiny model
POSITIVE = integer(1, SIZE_MAX)
LENGTH = integer(3, 1 << 16)  # [CLS] token [SEP] at least


def add_compile(sub: Any) -> None:
    p = sub.add_parser("compile", help="compile specs to Python modules")
    p.add_argument("specs", nargs="+", help=".objspec files or bundled spec names")
    p.add_argument("-o", "--output", default="build", help="output folder (created if missing)")
    p.add_argument(
        "--form",
        choices=OUTPUT_FORMS,
        help="override the spec's 'output' batch form (e.g. decoder_only for a prefix LM; "
        "default: the spec's own)",
    )
    p.set_defaults(run=cmd_compile)


def add_check(sub: Any) -> None:
    p = sub.add_parser("check", help="property-test the compiled collator of each spec")
    p.add_argument("specs", nargs="+", help=".objspec files or bundled spec names")
    p.add_argument("--examples", type=POSITIVE, default=40, help="Hypothesis examples per check")
    p.add_argument(
        "--output",
        "--form",
        dest="form",
        choices=OUTPUT_FORMS,
        help="check the spec compiled in another batch form (as 'objspec compile --form'; "
        "default: the spec's own)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print the results as JSON (per spec, per check: name, passed, promise, detail)",
    )
    p.set_defaults(run=cmd_check)


def add_show(sub: Any) -> None:
    p = sub.add_parser("show", help="show a corrupted example, before and after")
    p.add_argument("spec", help=".objspec file or bundled spec name")
    p.add_argument("--text", help="text to corrupt (default: the bundled corpus' first example)")
    p.add_argument("--seed", type=integer(0, SEED_MAX), default=0, help="the collator's seed")
    p.add_argument("--epoch", type=integer(0, SEED_MAX), default=0, help="the collator's epoch")
    p.add_argument("--max-length", type=LENGTH, default=64, help="tokens kept of the text")
    p.set_defaults(run=cmd_show)


def add_pretrain(sub: Any) -> None:
    p = sub.add_parser(
        "pretrain",
        help="train the tiny model with a spec's collator and heads (torchrun for several ranks)",
    )
    p.add_argument("spec", help=".objspec file or bundled spec name")
    p.add_argument("--out", default="runs/pretrain", help="folder for curve and checkpoint")
    p.add_argument("--steps", type=integer(0), default=200, help="optimizer steps in all")
    p.add_argument("--batch-size", type=POSITIVE, default=32, help="global batch (all ranks)")
    p.add_argument(
        "--lr", type=real(0, 1e3, open_low=True), default=1e-3, help="AdamW learning rate"
    )
    p.add_argument(
        "--seed", type=integer(0, SEED_MAX), default=0, help="data order, masks and init"
    )
    p.add_argument("--max-length", type=LENGTH, default=64, help="tokens per packed example")
    p.add_argument(
        "--hidden-size", type=integer(1, 1 << 14), default=64, help="the tiny model's width"
    )
    p.add_argument("--layers", type=integer(1, 256), default=2, help="the tiny model's layers")
    p.add_argument(
        "--dropout", type=real(0, 1, open_high=True), default=0.1, help="the tiny model's dropout"
    )
    p.add_argument(
        "--checkpoint-every", type=POSITIVE, default=50, help="steps between checkpoints"
    )
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument(
        "--text",
        nargs="*",
        help="UTF-8 corpus files: a sentence per line, blank line between docs "
        "(default: the bundled corpus)",
    )
    p.add_argument("--device", type=device, default="cpu", help="cpu, cuda, cuda:1, ...")
    p.set_defaults(run=cmd_pretrain)


def add_demo(sub: Any) -> None:
    p = sub.add_parser("demo", help="compile, show and check every bundled spec")
    p.add_argument("--seed", type=integer(0, SEED_MAX), default=0, help="the collators' seed")
    p.add_argument("--examples", type=POSITIVE, default=25, help="Hypothesis examples per check")
    p.set_defaults(run=cmd_demo)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="objspec",
        description="Pre-training objectives as specs, compiled to collators. Exit codes: 0 ok, "
        "1 invalid spec, 2 usage, 3 a check failed, 70 internal error.",
    )
    parser.add_argument("--version", action="version", version=f"objspec {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for add in (add_compile, add_check, add_show, add_pretrain, add_demo):
        add(sub)
    return parser


USER_INPUT_ERRORS = (
    "BatchError",
    "VocabError",
    "ConsumerError",
    "CheckpointError",
    "OutOfMemoryError",
)


def run(args: argparse.Namespace) -> int:
    """The command, its failures mapped to exit codes and one-line messages."""
    try:
        return int(args.run(args))
    except SpecError as exc:
        err.print(Text(exc.render()))
        return EXIT_SPEC
    except ObjspecError as exc:
        error_line(str(exc))
        return EXIT_SPEC
    except UsageError as exc:
        error_line(str(exc))
        return EXIT_USAGE
    except OSError as exc:  # the machine's files: permissions, a full disk
        error_line(str(exc))
        return EXIT_USAGE
    except MemoryError:
        error_line("out of memory: try a smaller --batch-size, --max-length or --hidden-size")
        return EXIT_USAGE
    except (ValueError, RuntimeError) as exc:
        if not is_user_input_error(exc):
            raise
        error_line(str(exc))
        return EXIT_USAGE


def is_user_input_error(exc: BaseException) -> bool:
    """A runtime error about the user's input or machine (a bad batch or vocabulary, a foreign
    checkpoint, a GPU out of memory), not a bug. By name: importing the classes would load
    torch and the runtime just to report an error."""
    return any(c.__name__ in USER_INPUT_ERRORS for c in type(exc).__mro__)


def internal_error(exc: BaseException) -> int:
    """One line for an unexpected exception (a bug), or its traceback with OBJSPEC_DEBUG=1."""
    reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
    what = f"{type(exc).__name__}: {reason}" if reason else type(exc).__name__
    err.print(
        Text(
            f"objspec: internal error ({what}); please report this bug with the command you "
            f"ran ({DEBUG_ENV}=1 shows the traceback)"
        )
    )
    return EXIT_INTERNAL


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        return run(args)
    except KeyboardInterrupt:
        err.print(Text("interrupted"))
        return 128 + signal.SIGINT
    except Exception as exc:
        if os.environ.get(DEBUG_ENV, "") not in ("", "0"):
            raise
        return internal_error(exc)


if __name__ == "__main__":
    sys.exit(main())

"""``objspec pretrain``: the tiny model trained with a spec (``torchrun`` for several ranks).

A signal that stops it exits 128 + its number.
"""

from __future__ import annotations

import argparse
import signal
from dataclasses import fields
from typing import Any

from objspec.cli.args import LENGTH, POSITIVE, SEED_MAX, device, integer, real
from objspec.cli.common import EXIT_OK, EXIT_USAGE, UsageError, error_line, out, say, spec_file


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

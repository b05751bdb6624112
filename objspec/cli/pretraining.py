"""``objspec pretrain``: a model pre-trained with a spec on accelerate (``torchrun`` or
``accelerate launch`` for several ranks); see docs/pretrain.md.

A signal that stops it exits 128 + its number.
"""

from __future__ import annotations

import argparse
import signal
from dataclasses import fields
from typing import Any

from objspec.cli.args import (
    LENGTH,
    POSITIVE,
    SEED_MAX,
    add_corpus_arguments,
    device,
    integer,
    real,
)
from objspec.cli.common import EXIT_OK, EXIT_USAGE, UsageError, error_line, out, say, spec_file

# the choices, without importing torch for --help
LOSS_FROM = ("auto", "model", "objspec")
MIXED_PRECISION = ("no", "bf16", "fp16")
SCHEDULERS = ("constant", "linear", "cosine")
LOGS = ("csv", "tensorboard")
LATEST = "latest"


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
    if args.model is not None:  # save_pretrained's own bars would cut through ours
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
    given = {f.name: getattr(args, f.name) for f in fields(PretrainConfig) if hasattr(args, f.name)}
    config = PretrainConfig(**{**given, "spec": str(spec_file(args.spec)), "text": args.text or []})
    try:
        trainer = Pretrainer(config)
    except ValueError as exc:  # settings that do not fit together (or the corpus, the model)
        raise UsageError(one_line(exc)) from None
    lead = trainer.rank == 0
    try:
        resumed = args.resume is not None and trainer.resume(
            None if args.resume == LATEST else args.resume
        )
    except CheckpointError as exc:
        error_line(str(exc))
        return EXIT_USAGE
    if resumed and lead:
        say(f"resumed from {trainer.resumed_from} at step {trainer.step}")
    if lead:
        ranks = f", {trainer.world_size} ranks" if distributed else ""
        accum = f" in {config.grad_accum} micro-batches" if config.grad_accum > 1 else ""
        held = f", {len(trainer.eval_examples)} for evaluation" if trainer.eval_examples else ""
        say(
            ("pretrain", "bold"),
            f" {args.spec}: {trainer.model_description}; {len(trainer.examples)} examples{held}, "
            f"batch {config.batch_size}{accum}{ranks}, {config.steps} steps -> {trainer.out}",
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
                f"{trainer.last_checkpoint}; continue with --resume"
            )
        return 128 + stop.signal_number
    if lead and trainer.rows:
        curve = [r["loss"] for r in trainer.rows]
        say(f"loss {curve[0]:.4f} -> {curve[-1]:.4f}  {sparkline(curve)}")
        if trainer.eval_rows:
            say(f"eval loss {trainer.eval_rows[-1]['loss']:.4f} (step {trainer.step})")
        png = trainer.out / "losses.png"
        shown = f" and {png}" if png.exists() else " (install matplotlib for the PNG)"
        say(f"loss curve: {trainer.out / 'losses.csv'}{shown}")
        if trainer.last_checkpoint is not None:
            say(f"checkpoint: {trainer.last_checkpoint}")
    return EXIT_OK


def one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


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
        help="pre-train a model with a spec's collator and heads (tiny model by default; a "
        "local Hugging Face model with --model; torchrun / accelerate launch for several ranks)",
    )
    p.add_argument("spec", help=".objspec file or bundled spec name")
    p.add_argument("--out", default="runs/pretrain", help="folder for curves and checkpoints")
    p.add_argument("--steps", type=integer(0), default=200, help="optimizer steps in all")
    p.add_argument(
        "--batch-size", type=POSITIVE, default=32, help="global batch per step (all ranks)"
    )
    p.add_argument(
        "--lr",
        type=real(0, 1e3, open_low=True),
        default=1e-3,
        help="AdamW peak learning rate (a resumed run uses the one given now)",
    )
    p.add_argument(
        "--seed",
        type=integer(0, SEED_MAX),
        default=0,
        help="data order, masks and init (default: 0)",
    )
    p.add_argument("--max-length", type=LENGTH, default=64, help="tokens per packed example")
    model = p.add_argument_group("model and tokenizer (local files only: nothing is downloaded)")
    model.add_argument(
        "--model",
        default=None,
        help="a local Hugging Face model folder (config.json, weights if any) or a config.json "
        "(initialised from it); default: the tiny model",
    )
    model.add_argument(
        "--tokenizer",
        default=None,
        help="a tokenizer.json or a Hugging Face tokenizer folder (fast); default: the bundled "
        "WordPiece tokenizer",
    )
    model.add_argument(
        "--loss-from",
        choices=LOSS_FROM,
        default="auto",
        help="with --model: 'model' trains the pre-training class's own loss, 'objspec' the "
        "spec's heads over the base model, 'auto' the class where it reads the whole batch "
        "and trains every head, else the spec's heads",
    )
    model.add_argument(
        "--hidden-size", type=integer(1, 1 << 14), default=64, help="the tiny model's width"
    )
    model.add_argument("--layers", type=integer(1, 256), default=2, help="the tiny model's layers")
    model.add_argument(
        "--attention-heads",
        dest="heads",
        type=integer(1, 1024),
        default=4,
        help="the tiny model's attention heads",
    )
    model.add_argument(
        "--dropout", type=real(0, 1, open_high=True), default=0.1, help="the tiny model's dropout"
    )
    data = p.add_argument_group("data")
    add_corpus_arguments(data)
    data.add_argument("--train-split", default="train", help="the DatasetDict split to train on")
    data.add_argument(
        "--eval-split", default=None, help="a DatasetDict split to evaluate on (default: none)"
    )
    data.add_argument(
        "--eval-fraction",
        type=real(0, 1, open_high=True),
        default=0.0,
        help="the last fraction of the documents held out for evaluation, without --eval-split "
        "(default: 0, none)",
    )
    data.add_argument("--eval-every", type=POSITIVE, default=50, help="steps between evaluations")
    data.add_argument(
        "--workers",
        type=integer(0, 256),
        default=0,
        help="DataLoader worker processes (default: 0, collate in-process)",
    )
    train = p.add_argument_group("optimisation")
    train.add_argument(
        "--grad-accum",
        type=POSITIVE,
        default=1,
        help="micro-batches per step (each rank's share of --batch-size, cut in N)",
    )
    train.add_argument(
        "--mixed-precision", choices=MIXED_PRECISION, default="no", help="accelerate's autocast"
    )
    train.add_argument(
        "--scheduler", choices=SCHEDULERS, default="constant", help="learning rate after warm-up"
    )
    train.add_argument(
        "--warmup-steps",
        type=integer(0),
        default=0,
        help="steps of linear warm-up from 0 (default: 0)",
    )
    train.add_argument(
        "--weight-decay",
        type=real(0, 1e3),
        default=0.0,
        help="AdamW weight decay, not on biases and norms (default: 0)",
    )
    train.add_argument(
        "--max-grad-norm",
        type=real(0, 1e9),
        default=1.0,
        help="gradient clipping norm (0: none)",
    )
    train.add_argument("--device", type=device, default="cpu", help="cpu, cuda, cuda:1, ...")
    saving = p.add_argument_group("checkpoints and logs")
    saving.add_argument(
        "--checkpoint-every", type=POSITIVE, default=50, help="steps between checkpoints"
    )
    saving.add_argument(
        "--keep-last",
        type=integer(0),
        default=3,
        help="checkpoint folders kept (the newest; 0 keeps all)",
    )
    saving.add_argument(
        "--resume",
        nargs="?",
        const=LATEST,
        default=None,
        metavar="CHECKPOINT",
        help="continue from the newest OUT/checkpoint-STEP, or from the folder given",
    )
    saving.add_argument(
        "--log",
        choices=LOGS,
        default="csv",
        help="csv: losses.csv, eval.csv, losses.png; tensorboard: those and OUT/tensorboard",
    )
    p.set_defaults(run=cmd_pretrain)

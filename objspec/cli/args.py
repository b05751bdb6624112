"""Argument types and the parser: one-line usage errors (exit 2), every default in ``--help``."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any, NoReturn

from rich.text import Text

from objspec.cli.common import EXIT_USAGE, err

OUTPUT_FORMS = ("encoder", "encoder_decoder", "decoder_only")


DEVICE_TYPES = ("cpu", "cuda")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every default in ``--help``, except where there is none (None, a flag's False) or the
    help text says it already."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default is None or action.default is False or "default" in text:
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


def add_corpus_arguments(group: Any) -> None:
    """The corpus a command reads (``pretrain``, ``materialize``): ``--text`` files or a
    ``--dataset`` folder (its ``--text-column``, split into sentences in ``--language``), else
    the bundled corpus."""
    group.add_argument(
        "--text",
        nargs="*",
        help="UTF-8 corpus files: a sentence per line, blank line between docs "
        "(default: the bundled corpus)",
    )
    group.add_argument(
        "--dataset",
        default=None,
        help="a datasets folder written by save_to_disk (a Dataset or a DatasetDict): one "
        "document per row of --text-column (a str, or a list of sentences), or rows already "
        "prepared (input_ids, ...)",
    )
    group.add_argument("--text-column", default="text", help="the --dataset column of documents")
    group.add_argument(
        "--language", default="en", help="ISO 639 code for sentence splitting of --dataset text"
    )

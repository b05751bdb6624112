"""``objspec compile | check | show | pretrain | demo``: one module per command, this one builds
the parser and maps failures to exit codes.

Exit codes: 0 success; 1 a spec failed to parse or validate (the located report is printed);
2 bad command-line usage (a missing file, a bad flag value, an unwritable output); 3 a property
check failed; 70 an internal error (a bug: one line asks for a report; ``OBJSPEC_DEBUG=1``
shows the traceback). A signal that stops ``pretrain`` exits 128 + its number.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence

from rich.text import Text

from objspec import __version__
from objspec.cli.args import Parser
from objspec.cli.checking import add_check
from objspec.cli.common import (
    DEBUG_ENV,
    EXIT_CHECK,
    EXIT_INTERNAL,
    EXIT_OK,
    EXIT_SPEC,
    EXIT_USAGE,
    UsageError,
    err,
    error_line,
)
from objspec.cli.compiling import add_compile
from objspec.cli.demo import add_demo
from objspec.cli.materializing import add_materialize
from objspec.cli.pretraining import add_pretrain
from objspec.cli.showing import add_show
from objspec.errors import ObjspecError, SpecError

__all__ = [
    "DEBUG_ENV",
    "EXIT_CHECK",
    "EXIT_INTERNAL",
    "EXIT_OK",
    "EXIT_SPEC",
    "EXIT_USAGE",
    "build_parser",
    "main",
]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="objspec",
        description="Pre-training objectives as specs, compiled to collators. Exit codes: 0 ok, "
        "1 invalid spec, 2 usage, 3 a check failed, 70 internal error.",
    )
    parser.add_argument("--version", action="version", version=f"objspec {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for add in (add_compile, add_check, add_show, add_pretrain, add_demo, add_materialize):
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

"""What every command shares: exit codes, the consoles, one-line messages, spec arguments.

Nothing the user wrote (paths, spec names, messages) is printed as Rich markup: it goes out as
``rich.text.Text``, so a path holding ``[/]`` prints as itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

EXIT_OK, EXIT_SPEC, EXIT_USAGE, EXIT_CHECK = 0, 1, 2, 3


EXIT_INTERNAL = 70  # EX_SOFTWARE (sysexits.h): an unexpected exception, i.e. a bug


DEBUG_ENV = "OBJSPEC_DEBUG"


out = Console(highlight=False, soft_wrap=True)  # paths and tokens are never cut


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


def compile_spec(path: Path, form: str | None = None) -> tuple[Any, Any]:
    """(objective IR, generated module) of one spec file, in batch form ``form`` if given."""
    from compiler import compile_objective
    from objspec.parser import parse_file

    objective = parse_file(path)
    if form is not None:
        objective = objective.with_output(form)
    return objective, compile_objective(objective)


def load_spec(path: Path, form: str | None = None) -> tuple[Any, Any]:
    """(objective IR, loaded CompiledObjective) of one spec file, in batch form ``form``."""
    from compiler import load
    from objspec import CompiledObjective

    objective, generated = compile_spec(path, form)
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


def is_utf8(text: str) -> bool:
    """False for a command-line string holding undecodable bytes (surrogate escapes)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True

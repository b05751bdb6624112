"""``objspec compile``: specs to Python modules in a folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from objspec.cli.args import OUTPUT_FORMS
from objspec.cli.common import EXIT_OK, UsageError, compile_spec, output_folder, say, spec_file
from objspec.errors import ObjspecError


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
        _, generated = compile_spec(path, args.form)
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

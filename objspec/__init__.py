"""objspec: pre-training objectives as short specs, compiled to vectorized PyTorch collators.

>>> import objspec
>>> compiled = objspec.compile_file("specs/bert_mlm.objspec")
>>> collator = compiled.Collator(objspec.bundled_vocab(), seed=0)
>>> spanbert = objspec.load("spanbert")  # a bundled spec by name, from any folder
"""

from __future__ import annotations

__version__ = "0.1.0"

import re
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from objspec.errors import IntegrityError, ObjspecError, SpecError
from objspec.parser import parse_file, parse_spec
from objspec.sharing import load_shared, spec_sha256


@dataclass(frozen=True)
class CompiledObjective:
    """A compiled spec: its generated source and the loaded module's collator and heads classes."""

    name: str
    source: str
    module: ModuleType

    @property
    def Collator(self) -> Any:  # noqa: N802 - it is a class
        return getattr(self.module, f"{_prefix(self.name)}Collator")

    @property
    def Heads(self) -> Any:  # noqa: N802 - it is a class
        return getattr(self.module, f"{_prefix(self.name)}Heads")


def _prefix(name: str) -> str:
    from compiler.codegen import class_prefix

    return class_prefix(name)


def compile_spec(
    text: str, path: str | Path | None = None, *, output: str | None = None
) -> CompiledObjective:
    """Parse, validate, lower, generate and load a spec given as text. ``output`` overrides
    the spec's batch form (e.g. ``"decoder_only"`` for the prefix-LM form of a seq2seq spec)."""
    return _compiled(parse_spec(text, path), output)


def compile_file(path: str | Path, *, output: str | None = None) -> CompiledObjective:
    """Compile a ``.objspec`` file (``output`` as in :func:`compile_spec`)."""
    return _compiled(parse_file(path), output)


def _compiled(objective: Any, output: str | None) -> CompiledObjective:
    from compiler import compile_objective, load

    if output is not None:
        objective = objective.with_output(output)
    generated = compile_objective(objective)
    return CompiledObjective(generated.name, generated.source, load(generated))


SPEC_SUFFIX = ".objspec"
_BUNDLED_NAME = re.compile(r"^[A-Za-z0-9_]+$")  # a bare name: never a path out of the folder


def bundled_specs_dir() -> Path:
    """The folder of the bundled specs: ``objspec/specs/`` in an installed wheel, the checkout's
    ``specs/`` in an editable install or a source tree (pyproject maps one onto the other)."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "specs", here.parent / "specs"):
        if candidate.is_dir() and any(candidate.glob(f"*{SPEC_SUFFIX}")):
            return candidate
    raise ObjspecError("the bundled specs are missing from this installation of objspec")


def bundled_specs() -> list[str]:
    """The names of the bundled specs (``bert_mlm``, ``spanbert``, ...), sorted."""
    return sorted(p.stem for p in bundled_specs_dir().glob(f"*{SPEC_SUFFIX}"))


def spec_path(spec: str | Path) -> Path:
    """The file of ``spec``: an existing path as given, else the bundled spec of that name
    (``"spanbert"``, ``"spanbert.objspec"`` or the checkout's ``"specs/spanbert.objspec"``).
    FileNotFoundError names both places looked at; IsADirectoryError for a folder."""
    path = Path(spec)
    if path.is_dir():
        raise IsADirectoryError(f"{spec} is a folder, not a spec file")
    if path.exists():
        return path
    parts = path.parts
    name = (parts[-1] if parts[:-1] == ("specs",) else str(spec)).removesuffix(SPEC_SUFFIX)
    if _BUNDLED_NAME.match(name):
        bundled = bundled_specs_dir() / f"{name}{SPEC_SUFFIX}"
        if bundled.is_file():
            return bundled
        raise FileNotFoundError(
            f"no spec file {str(spec)!r} here and no bundled spec {name!r} "
            f"(bundled: {', '.join(bundled_specs())})"
        )
    raise FileNotFoundError(f"no spec file {str(spec)!r}")


def load(spec: str | Path, *, output: str | None = None) -> CompiledObjective:
    """The compiled objective of ``spec``: a file, or a bundled spec by name (see
    :func:`spec_path`): ``objspec.load("spanbert")``."""
    return compile_file(spec_path(spec), output=output)


def bundled_vocab() -> Any:
    """The :class:`~objspec.runtime.Vocab` of the bundled WordPiece tokenizer."""
    from objspec.bundled import load_tokenizer
    from objspec.runtime import Vocab

    return Vocab.from_tokenizer(load_tokenizer())


__all__ = [
    "CompiledObjective",
    "IntegrityError",
    "ObjspecError",
    "SpecError",
    "__version__",
    "bundled_specs",
    "bundled_specs_dir",
    "bundled_vocab",
    "compile_file",
    "compile_spec",
    "load_shared",
    "load",
    "parse_file",
    "parse_spec",
    "spec_sha256",
    "spec_path",
]

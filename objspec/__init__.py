"""objspec: pre-training objectives as short specs, compiled to vectorized PyTorch collators.

>>> import objspec
>>> compiled = objspec.compile_file("specs/bert_mlm.objspec")
>>> collator = compiled.Collator(objspec.bundled_vocab(), seed=0)
"""

from __future__ import annotations

__version__ = "0.1.0"

from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from objspec.errors import ObjspecError, SpecError
from objspec.parser import parse_file, parse_spec


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


def bundled_vocab() -> Any:
    """The :class:`~objspec.runtime.Vocab` of the bundled WordPiece tokenizer."""
    from objspec.bundled import load_tokenizer
    from objspec.runtime import Vocab

    return Vocab.from_tokenizer(load_tokenizer())


__all__ = [
    "CompiledObjective",
    "ObjspecError",
    "SpecError",
    "bundled_vocab",
    "compile_file",
    "compile_spec",
    "parse_file",
    "parse_spec",
]

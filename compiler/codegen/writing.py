"""The pieces generated source is written with: lines with indentation, one registry of the
names a module defines (torch.fx's ``Namespace``), its constants as checked literals."""

from __future__ import annotations

import ast
import keyword
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from objspec.errors import CodegenError

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def checked_identifier(name: str) -> str:
    """``name`` if it is a plain, non-keyword Python identifier, else CodegenError."""
    if not _IDENTIFIER.match(name) or keyword.iskeyword(name):
        raise CodegenError(f"{name!r} cannot be used as an identifier in generated code")
    return name


def class_prefix(name: str) -> str:
    """``bert_mlm`` -> ``BertMlm`` (always a valid identifier)."""
    camel = "".join(part[:1].upper() + part[1:] for part in checked_identifier(name).split("_"))
    return camel if camel[:1].isalpha() else "Spec" + camel


@dataclass(frozen=True)
class GeneratedModule:
    """Generated source and the names it defines."""

    name: str
    source: str
    collator_class: str
    heads_class: str

    @property
    def filename(self) -> str:
        return f"{self.name}.py"


class Writer:
    """Lines with indentation."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._depth = 0

    def __call__(self, line: str = "") -> None:
        self.lines.append(("    " * self._depth + line) if line else "")

    @contextmanager
    def indent(self) -> Iterator[None]:
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


class Namespace:
    """One registry for the names a module defines (torch.fx's ``Namespace``): each (owner,
    candidate) gets one name, unique in the module: the candidate itself, or ``candidate_1``,
    ``candidate_2``, ... when another owner (a mixture member) or the module has it. Reserved
    names go to the module itself (owner ``""``) only."""

    def __init__(self, reserved: Iterable[str] = ()) -> None:
        self._reserved = frozenset(reserved)
        self._used: set[str] = set()
        self._names: dict[tuple[str, str], str] = {}

    def claim(self, candidate: str, owner: str = "") -> str:
        key = (owner, checked_identifier(candidate))
        if key not in self._names:
            self._names[key] = self._unique(candidate, fixed=not owner)
        return self._names[key]

    def mark(self, name: str) -> None:
        """A name the module uses as spelled (one claimed, or a reserved one)."""
        self._used.add(checked_identifier(name))

    def _unique(self, candidate: str, fixed: bool) -> str:
        name, n = candidate, 0
        while name in self._used or (name in self._reserved and not (fixed and n == 0)):
            n += 1
            name = f"{candidate}_{n}"
        self._used.add(name)
        return name


class Constants:
    """Module-level constants, emitted in the order they are first named; their names come
    from one :class:`Namespace`."""

    def __init__(self, reserved: Iterable[str] = ()) -> None:
        self.items: dict[str, str] = {}
        self.comments: dict[str, str] = {}
        self.names = Namespace(reserved)

    def add(self, name: str, value: Any, comment: str | None = None) -> str:
        self.names.mark(name)
        text = literal(value)
        if self.items.get(name, text) != text:
            raise CodegenError(f"constant {name} defined twice with different values")
        self.items[name] = text
        if comment:
            self.comments[name] = comment
        return name


def literal(value: Any) -> str:
    """``repr`` of a plain value, checked to be a literal (no objects, no nan/inf)."""
    if isinstance(value, float) and value != value or value in (float("inf"), float("-inf")):
        raise CodegenError(f"{value!r} cannot be a constant")
    text = repr(value)
    try:
        ast.literal_eval(text)
    except (ValueError, SyntaxError) as exc:
        raise CodegenError(f"{text} is not a literal") from exc
    return text


def source_block(source: str) -> str:
    lines = source.splitlines(keepends=True) or [""]
    body = "\n".join(f"    {line!r}" for line in lines)
    return f"(\n{body}\n)"

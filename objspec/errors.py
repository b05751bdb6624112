"""Located errors: ``file:line:col``, the source line, a caret under the fault, and a hint.

Every stage raises a subclass of :class:`ObjspecError`. A spec's faults are reported as a
:class:`SpecError` holding one or more :class:`Diagnostic` (like sqlglot's ParseError, errors are
collected and reported together, capped at :data:`MAX_REPORTED`).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

MAX_REPORTED = 10


@dataclass(frozen=True, order=True)
class Loc:
    """A 1-based source span: from (line, column) to (end_line, end_column), end exclusive."""

    line: int
    column: int
    end_line: int
    end_column: int

    def __str__(self) -> str:
        return f"{self.line}:{self.column}"


@dataclass(frozen=True)
class Diagnostic:
    """One fault in a spec: what is wrong, where, and what would be valid."""

    message: str
    loc: Loc | None = None
    hint: str | None = None


class ObjspecError(Exception):
    """Root of every error objspec raises on purpose."""


class SpecError(ObjspecError):
    """A spec that does not parse or does not validate. ``str()`` is the rendered report."""

    def __init__(
        self,
        diagnostics: Sequence[Diagnostic],
        *,
        source: str | None = None,
        path: str | None = None,
    ) -> None:
        if not diagnostics:
            raise ValueError("a SpecError needs at least one diagnostic")
        self.diagnostics = tuple(sorted(diagnostics, key=_diagnostic_order))
        self.source = source
        self.path = path or "<spec>"
        super().__init__(self.render())

    @property
    def first(self) -> Diagnostic:
        return self.diagnostics[0]

    def render(self) -> str:
        """Every diagnostic as ``path:line:col: error: message``, source line, caret, hint."""
        shown = [render_diagnostic(d, self.source, self.path) for d in self.diagnostics]
        hidden = len(shown) - MAX_REPORTED
        text = "\n".join(shown[:MAX_REPORTED])
        if hidden > 0:
            text += f"\n... and {hidden} more"
        return text


class LoweringError(ObjspecError):
    """A valid IR that this compiler cannot lower (a bug, or a construct it does not support)."""


class CodegenError(ObjspecError):
    """The code generator produced something that is not valid Python (always a bug)."""


class IntegrityError(ObjspecError):
    """Shared or pickled compiled code that does not match its recorded spec: a spec text whose
    sha256 is not the one recorded, or generated source that this compiler does not produce from
    the spec it embeds. Nothing of it was run."""


def _diagnostic_order(d: Diagnostic) -> tuple[int, int]:
    return (d.loc.line, d.loc.column) if d.loc else (0, 0)


def render_diagnostic(d: Diagnostic, source: str | None, path: str) -> str:
    """Render one diagnostic: location header, the offending line, a caret run, the hint."""
    where = f"{path}:{d.loc.line}:{d.loc.column}" if d.loc else path
    lines = [f"{where}: error: {d.message}"]
    if d.loc and source is not None:
        src_lines = source.splitlines()
        if 1 <= d.loc.line <= len(src_lines):
            text = src_lines[d.loc.line - 1].expandtabs(1)
            start = max(d.loc.column - 1, 0)
            if d.loc.end_line == d.loc.line and d.loc.end_column > d.loc.column:
                width = d.loc.end_column - d.loc.column
            else:
                width = max(len(text.rstrip()) - start, 1)
            lines.append(f"  {text}")
            lines.append("  " + " " * start + "^" * max(width, 1))
    if d.hint:
        lines.append(f"  hint: {d.hint}")
    return "\n".join(lines)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A hint naming the closest valid choice, or listing them all when none is close."""
    options = sorted(set(choices))
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}? (valid: {', '.join(options)})"
    return f"valid: {', '.join(options)}"

"""Spec text -> IR.

Lark (LALR, with an indentation post-lexer) turns the text into a tree; :class:`ToIR`, a Transformer
that only changes shapes, turns the tree into plain dicts that keep every node's source location;
:func:`objspec.ir.build_objective` validates them into the frozen Pydantic IR. Lark's exceptions
and Pydantic's are both mapped to a located :class:`~objspec.errors.SpecError`.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import (
    LarkError,
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
)
from lark.indenter import DedentError, Indenter

from objspec import ir, variants
from objspec.errors import Diagnostic, Loc, SpecError, did_you_mean
from objspec.sharing import BYTE_ORDER_MARK

MAX_NESTING = 32  # brackets inside brackets: the transformer recurses once per level
MAX_NUMBER_DIGITS = 300  # a longer integer is read as a float (inf past 1e308)

STATEMENT_KEYWORDS = (
    "input",
    "unit",
    "exclude",
    "select",
    "budget",
    "replace",
    "transform",
    "pair",
    "attention",
    "predict",
    "loss",
    "head",
    "masks",
    "output",
    "task",
    "mixture",
)

# Terminal names -> what a person would call them, for "expected ..." hints.
_TERMINAL_WORDS = {
    "NAME": "a name",
    "NUMBER": "a number",
    "PERCENT": "a percentage like 15%",
    "STRING": 'a quoted string like "[MASK]"',
    "COMMA": "','",
    "COLON": "':'",
    "LPAR": "'('",
    "RPAR": "')'",
    "LSQB": "'['",
    "RSQB": "']'",
    "TILDE": "'~'",
    "EQUAL": "'='",
    "SLASH": "'/'",
    "_NL": "end of line",
    "_INDENT": "an indented line",
    "_DEDENT": "end of block",
    "BOUND": "truncated / clipped / on",
    "PREP": "'at' or 'as'",
    "$END": "end of file",
}


class _SpecIndenter(Indenter):
    NL_type = "_NL"
    OPEN_PAREN_types = ["LPAR", "LSQB"]
    CLOSE_PAREN_types = ["RPAR", "RSQB"]
    INDENT_type = "_INDENT"
    DEDENT_type = "_DEDENT"
    tab_len = 8


@lru_cache(maxsize=1)
def grammar_text() -> str:
    """The language's grammar (objspec/grammar.lark)."""
    return resources.files("objspec").joinpath("grammar.lark").read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def _lark() -> Lark:
    return Lark(
        grammar_text(),
        parser="lalr",
        postlex=_SpecIndenter(),
        propagate_positions=True,
        maybe_placeholders=True,
    )


def _loc_of(meta: Any) -> Loc:
    return Loc(meta.line, meta.column, meta.end_line, meta.end_column)


def _span_loc(first: Token, last: Token) -> Loc:
    """From the start of ``first`` to the end of ``last`` (two words of one clause)."""
    start, end = _token_loc(first), _token_loc(last)
    return Loc(start.line, start.column, end.end_line, end.end_column)


def _token_loc(tok: Token) -> Loc:
    line = tok.line or 1
    col = tok.column or 1
    end_line = tok.end_line or line
    end_col = tok.end_column or col + max(len(tok), 1)
    return Loc(line, col, end_line, end_col)


def _number(text: str) -> int | float:
    if text.isdigit() and len(text) <= MAX_NUMBER_DIGITS:
        return int(text)  # exact, however large: the IR's limits refuse it with its value
    value = float(text)
    return int(value) if value.is_integer() and not any(c in text for c in ".eE") else value


@v_args(meta=True)
class ToIR(Transformer[Token, dict[str, Any]]):
    """Shape-only: every rule becomes a dict (or a Python value) carrying its ``loc``."""

    # --- values -------------------------------------------------------------------------
    def number(self, meta: Any, children: list[Token]) -> int | float:
        return _number(children[0])

    def percent(self, meta: Any, children: list[Token]) -> float:
        return float(children[0][:-1]) / 100.0

    def fraction(self, meta: Any, children: list[Token]) -> dict[str, Any]:
        return {"fraction": (_number(children[0]), _number(children[1])), "loc": _loc_of(meta)}

    def range(self, meta: Any, children: list[Token]) -> dict[str, Any]:
        return {"range": (_number(children[0]), _number(children[1])), "loc": _loc_of(meta)}

    def name(self, meta: Any, children: list[Token]) -> dict[str, Any]:
        return {"word": str(children[0]), "loc": _loc_of(meta)}

    def string(self, meta: Any, children: list[Token]) -> str:
        return str(children[0])[1:-1]

    def value_list(self, meta: Any, children: list[Any]) -> list[Any]:
        return [c for c in children if not isinstance(c, Token)]

    # --- calls and laws -------------------------------------------------------------------
    def keyword(self, meta: Any, children: list[Any]) -> dict[str, Any]:
        return {"keyword": str(children[0]), "value": children[1], "loc": _loc_of(meta)}

    def arguments(self, meta: Any, children: list[Any]) -> list[Any]:
        return children

    def call(self, meta: Any, children: list[Any]) -> dict[str, Any]:
        args = children[2] if len(children) > 2 and children[2] is not None else []
        positional = [a for a in args if not (isinstance(a, dict) and "keyword" in a)]
        keywords = [a for a in args if isinstance(a, dict) and "keyword" in a]
        return {
            "name": str(children[0]),
            "args": positional,
            "kwargs": keywords,
            "loc": _loc_of(meta),
        }

    def law(self, meta: Any, children: list[Any]) -> dict[str, Any]:
        call, bound, rng = children
        return {
            **call,
            "bound": str(bound) if bound is not None else None,
            "range": rng["range"] if rng is not None else None,
            "loc": _loc_of(meta),
        }

    # --- clauses -------------------------------------------------------------------------
    def amount_clause(self, meta: Any, children: list[Any]) -> dict[str, Any]:
        """``15% of tokens``: ``of`` is the basis's words joined (``'all tokens'``), or None."""
        amount, *words = children
        named = [w for w in words if w is not None]
        return {
            "amount": amount,
            "of": " ".join(str(w) for w in named) if named else None,
            "of_loc": _span_loc(named[0], named[-1]) if named else None,
            "loc": _loc_of(meta),
        }

    def flag(self, meta: Any, children: list[Token]) -> dict[str, Any]:
        return {"flag": str(children[0]), "loc": _loc_of(meta)}

    def option(self, meta: Any, children: list[Any]) -> dict[str, Any]:
        return {"option": str(children[0]), "value": children[1], "loc": _loc_of(meta)}

    def law_clause(self, meta: Any, children: list[Any]) -> dict[str, Any]:
        return {"option": str(children[0]), "law": children[1], "loc": _loc_of(meta)}

    def share(self, meta: Any, children: list[Any]) -> dict[str, Any]:
        source = str(children[2]) if len(children) > 2 and children[2] is not None else None
        return {
            "action": str(children[0]),
            "share": children[1],
            "source": source,
            "loc": _loc_of(meta),
        }

    # --- statements ----------------------------------------------------------------------
    def _statement(self, statement: str, meta: Any, **fields: Any) -> dict[str, Any]:
        return {"statement": statement, **fields, "loc": _loc_of(meta)}

    def input(self, meta: Any, children: list[Any]) -> dict[str, Any]:
        return self._statement("input", meta, call=children[0])

    def unit(self, meta: Any, children: list[Any]) -> dict[str, Any]:
        return self._statement("unit", meta, call=children[0])

    def exclude(self, meta: Any, children: list[Token]) -> dict[str, Any]:
        names = [{"word": str(t), "loc": _token_loc(t)} for t in children]
        return self._statement("exclude", meta, names=names)

    def select(self, meta: Any, children: list[Any]) -> dict[str, Any]:
        kind, *clauses = children
        return self._statement(
            "select", meta, kind=str(kind), clauses=[c for c in clauses if c is not None]
        )

    def budget(self, meta: Any, children: list[Any]) -> dict[str, Any]:
        return self._statement("budget", meta, clauses=children)

    def replace(self, meta: Any, children: list[Any]) -> dict[str, Any]:
        modes = [str(c) for c in children if isinstance(c, Token)]
        shares = [c for c in children if isinstance(c, dict)]
        return self._statement("replace", meta, modes=modes, shares=shares)

    def transform_stmt(self, meta: Any, children: list[Any]) -> dict[str, Any]:
        kind, *clauses = children
        return self._statement(
            "transform", meta, kind=str(kind), clauses=[c for c in clauses if c is not None]
        )

    def pair(self, meta: Any, children: list[Any]) -> dict[str, Any]:
        return self._statement("pair", meta, shares=children)

    def attention(self, meta: Any, children: list[Any]) -> dict[str, Any]:
        return self._statement("attention", meta, call=children[0])

    def predict(self, meta: Any, children: list[Any]) -> dict[str, Any]:
        what, prep, where, *clauses = children
        return self._statement(
            "predict",
            meta,
            what=str(what),
            prep=str(prep) if prep is not None else None,
            where=str(where) if where is not None else None,
            clauses=clauses,
        )

    def loss(self, meta: Any, children: list[Any]) -> dict[str, Any]:
        call, *clauses = children
        return self._statement("loss", meta, call=call, clauses=[c for c in clauses if c])

    def head(self, meta: Any, children: list[Any]) -> dict[str, Any]:
        return self._statement("head", meta, call=children[0], weight=children[1])

    def masks(self, meta: Any, children: list[Any]) -> dict[str, Any]:
        return self._statement("masks", meta, call=children[0])

    def output(self, meta: Any, children: list[Any]) -> dict[str, Any]:
        return self._statement("output", meta, call=children[0])

    def views(self, meta: Any, children: list[Any]) -> dict[str, Any]:
        return self._statement("views", meta, call=children[0])

    def task(self, meta: Any, children: list[Any]) -> dict[str, Any]:
        name, weight, *body = children
        return self._statement("task", meta, name=str(name), weight=weight, body=body)

    def member(self, meta: Any, children: list[Any]) -> dict[str, Any]:
        name, rate, *rest = children
        clauses = [c for c in rest if isinstance(c, dict) and "statement" not in c]
        body = [c for c in rest if isinstance(c, dict) and "statement" in c]
        loc = _loc_of(meta)
        return {"name": str(name), "rate": rate, "clauses": clauses, "body": body, "loc": loc}

    def pack(self, meta: Any, children: list[Any]) -> dict[str, Any]:
        (size,) = children
        return self._statement(
            "pack", meta, size=size if not isinstance(size, Token) else str(size)
        )

    def drop(self, meta: Any, children: list[Any]) -> dict[str, Any]:
        what, name = children
        return self._statement(
            "drop", meta, what=str(what), name=str(name) if name is not None else None
        )

    def base(self, meta: Any, children: list[Any]) -> dict[str, Any]:
        (token,) = children
        text = str(token)
        quoted = token.type == "STRING"
        return {"base": text[1:-1] if quoted else text, "file": quoted, "loc": _loc_of(meta)}

    def mixture(self, meta: Any, children: list[Any]) -> dict[str, Any]:
        per, *members = children
        return self._statement("mixture", meta, per=str(per), members=members)

    def objective(self, meta: Any, children: list[Any]) -> dict[str, Any]:
        name, base, *statements = children
        return {
            "name": str(name),
            "name_loc": _token_loc(name),
            "base": base,
            "statements": statements,
            "loc": _loc_of(meta),
        }

    def start(self, meta: Any, children: list[Any]) -> dict[str, Any]:
        return children[-1]


def parse_tree(text: str, path: str | None = None) -> dict[str, Any]:
    """Parse spec text into the located dict form (no validation). Raises SpecError."""
    text = text.removeprefix(BYTE_ORDER_MARK)
    source = text if text.endswith("\n") else text + "\n"
    try:
        tree = _lark().parse(source)
        _check_nesting(tree, text, path)
        return ToIR().transform(tree)
    except UnexpectedInput as exc:
        raise SpecError([_syntax_diagnostic(exc, source)], source=text, path=path) from None
    except DedentError as exc:
        diag = Diagnostic(
            "inconsistent indentation",
            hint="indent the statements of a block by the same amount",
        )
        raise SpecError([_with_line(diag, str(exc), source)], source=text, path=path) from None
    except VisitError as exc:  # a bug in ToIR, never the user's fault
        raise RuntimeError(f"objspec parser bug: {exc.orig_exc!r}") from exc
    except LarkError as exc:
        raise SpecError([Diagnostic(f"cannot parse: {exc}")], source=text, path=path) from None


def _check_nesting(tree: Tree[Token], source: str, path: str | None) -> None:
    """Refuse lists nested deeper than MAX_NESTING (walked without recursion)."""
    stack = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if node.data == "value_list":
            depth += 1
            if depth > MAX_NESTING:
                diag = Diagnostic(
                    f"lists nested more than {MAX_NESTING} deep",
                    _loc_of(node.meta),
                    "a parameter is a number, a word or a flat list",
                )
                raise SpecError([diag], source=source, path=path)
        stack.extend((child, depth) for child in node.children if isinstance(child, Tree))


def parse_spec(text: str, path: str | Path | None = None) -> ir.Spec:
    """Parse and validate spec text into an :class:`objspec.ir.Objective` (or a Mixture).
    A UTF-8 byte order mark at the start is dropped (it is no part of the spec or its hash).

    Raises SpecError.
    """
    text = text.removeprefix(BYTE_ORDER_MARK)
    where = str(path) if path is not None else None
    tree = parse_tree(text, where)
    if not variants.is_variant(tree):
        variants.require_plain(tree, text, where)
        return ir.build_objective(tree, source=text, path=where)
    flat = variants.flatten(tree, text, where)
    try:
        return ir.build_objective(parse_tree(flat.text), source=flat.text, path=where)
    except SpecError as error:
        raise variants.relocated(error, flat) from None


def parse_file(path: str | Path) -> ir.Spec:
    """Read a ``.objspec`` file and parse it."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise SpecError([Diagnostic(f"cannot read spec: {exc}")], path=str(p)) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _undecodable(data, exc, str(p)) from None
    return parse_spec(text, p)


def _undecodable(data: bytes, exc: UnicodeDecodeError, path: str) -> SpecError:
    """Invalid UTF-8, located at line:column of the first bad byte (the text before it is
    valid, so its characters are counted)."""
    before = data[: exc.start].decode("utf-8")
    line = before.count("\n") + 1
    column = len(before) - (before.rfind("\n") + 1) + 1
    diag = Diagnostic(
        f"the spec is not valid UTF-8 (byte 0x{data[exc.start]:02x}: {exc.reason})",
        Loc(line, column, line, column + 1),
        "save the spec as UTF-8",
    )
    return SpecError([diag], source=data.decode("utf-8", errors="replace"), path=path)


def _with_line(diag: Diagnostic, message: str, source: str) -> Diagnostic:
    # DedentError carries no position; find the first line whose indentation is off.
    widths: list[int] = []
    for lineno, line in enumerate(source.splitlines(), start=1):
        stripped = line.lstrip(" \t")
        if not stripped or stripped.startswith("#"):
            continue
        width = len(line.expandtabs(8)) - len(stripped.expandtabs(8))
        if widths and width < widths[-1] and width not in widths:
            return Diagnostic(diag.message, Loc(lineno, 1, lineno, width + 2), diag.hint)
        while widths and width < widths[-1]:
            widths.pop()
        if not widths or width > widths[-1]:
            widths.append(width)
    return diag


def _syntax_diagnostic(exc: UnexpectedInput, source: str) -> Diagnostic:
    line = getattr(exc, "line", None) or 1
    column = getattr(exc, "column", None) or 1
    if isinstance(exc, UnexpectedCharacters):
        pos = exc.pos_in_stream or 0
        char = source[pos] if pos < len(source) else ""
        return Diagnostic(
            f"unexpected character {char!r}",
            Loc(line, column, line, column + 1),
            _expected_hint(exc.allowed),
        )
    if isinstance(exc, UnexpectedToken):
        tok = exc.token
        if tok.type == "$END":
            return _eof_diagnostic(source, exc.expected)
        loc = _token_loc(tok) if tok.line else Loc(line, column, line, column + 1)
        if tok.type == "_INDENT":
            # the token spans the newline before the indented line: point at that line
            line_after = loc.end_line
            indented = Loc(line_after, 1, line_after, max(loc.end_column, 2))
            return Diagnostic("unexpected indentation", indented, "a statement is indented too far")
        if tok.type == "_DEDENT":
            return _eof_diagnostic(source, exc.expected)
        text = str(tok).strip() or tok.type
        if tok.type == "_NL":
            text = "end of line"
        hint = _expected_hint(exc.expected)
        if tok.type == "NAME" and any(k.upper() in exc.expected for k in STATEMENT_KEYWORDS):
            hint = (
                f"a statement starts with a keyword; {did_you_mean(str(tok), STATEMENT_KEYWORDS)}"
            )
        elif tok.type == "NAME" and "OBJECTIVE" in exc.expected:
            hint = "a spec starts with 'objective NAME'"
        return Diagnostic(
            f"unexpected {text!r}" if tok.type != "_NL" else f"unexpected {text}", loc, hint
        )
    if isinstance(exc, UnexpectedEOF):
        return _eof_diagnostic(source, exc.expected)
    return Diagnostic(str(exc), Loc(line, column, line, column + 1))


def _eof_diagnostic(source: str, expected: Any) -> Diagnostic:
    lines = source.rstrip("\n").splitlines() or [""]
    last = len(lines)
    end = len(lines[-1]) + 1
    if "OBJECTIVE" in set(expected):
        return Diagnostic(
            "empty spec", None, "a spec starts with 'objective NAME' on its first line"
        )
    hint = _expected_hint(expected)
    if "_INDENT" in set(expected):
        hint = "the objective needs statements, indented under 'objective NAME'"
    return Diagnostic("unexpected end of spec", Loc(last, end, last, end + 1), hint)


def _expected_hint(expected: Any) -> str | None:
    if not expected:
        return None
    words = sorted({_TERMINAL_WORDS.get(t, t.lower().strip("_")) for t in expected})
    if len(words) > 8:
        return None
    return "expected " + ", ".join(words)

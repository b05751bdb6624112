"""Variants by reference: a spec that starts from another one and changes some statements.

``objective NAME from BASE`` takes BASE (a bundled spec by name, or a file in quotes, relative
to the variant's folder; BASE may itself be a variant) and applies the variant's statements:

- a statement replaces BASE's statement of the same kind, in its place (a ``head`` or a
  ``transform``: the one of the same name), or is added after BASE's statements;
- ``drop KIND [NAME]`` removes one (``drop budget``, ``drop head span_boundary``,
  ``drop transform rotate``, ``drop member x_mean64``, ``drop task sop``);
- a ``mixture`` block merges its members into BASE's by name: a member with a block replaces
  BASE's member (or is added), a member line without a block changes only its rate (and mode);
  ``task`` blocks merge by name the same way.

The result is flattened to one self-contained spec text, BASE's lines and the variant's: that
text is what is validated, compiled, hashed and embedded in the generated module, so a
compiled variant rebuilds anywhere without its base. An error is reported at the line it came
from, in the file it came from (BASE's own line when BASE's statement is what is wrong).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from objspec.errors import Diagnostic, Loc, SpecError

MAX_DEPTH = 8  # variants of variants, at most this deep (a cycle is an error before that)
INDENT = "  "


@dataclass(frozen=True)
class Origin:
    """Where a line of a flattened spec came from: its file (None for text), the file's
    text, the line number there and how many columns its indentation was cut by."""

    path: str | None
    source: str
    line: int
    shift: int = 0


@dataclass
class Block:
    """A statement's lines, dedented, each with its origin; a mixture's or task list's
    members by name."""

    key: tuple[str, ...]
    lines: list[tuple[str, Origin]]
    members: dict[str, Block] = field(default_factory=dict)


@dataclass
class Flat:
    """A variant flattened: the spec text, each line's origin, what it started from and what
    it changed (for the gallery)."""

    text: str
    origins: list[Origin]
    base: str
    changes: list[str]


def is_variant(tree: dict[str, Any]) -> bool:
    return tree.get("base") is not None


def require_plain(tree: dict[str, Any], source: str, path: str | None) -> None:
    """A spec that is no variant has no ``drop`` and no member without a block."""
    for st in tree["statements"]:
        if st["statement"] == "drop":
            _fail("'drop' belongs to a variant", st["loc"], source, path, _VARIANT_HINT)
        for m in st.get("members", ()) if st["statement"] == "mixture" else ():
            if not m["body"]:
                _fail(f"member {m['name']!r} has no block", m["loc"], source, path, _MEMBER_HINT)


_VARIANT_HINT = "start from a spec: 'objective NAME from BASE', BASE a bundled name or a file"
_MEMBER_HINT = "a member's statements go in an indented block after 'NAME RATE:'"


def flatten(
    tree: dict[str, Any], source: str, path: str | None, seen: tuple[str, ...] = ()
) -> Flat:
    """The variant ``tree`` (of ``source`` at ``path``) applied to its base, as one spec."""
    from objspec.parser import parse_tree

    ref = tree["base"]
    base_path, base_source = _read_base(ref, source, path, seen)
    base_tree = parse_tree(base_source, base_path)
    if is_variant(base_tree):
        base = flatten(base_tree, base_source, base_path, (*seen, base_path))
        base_tree = parse_tree(base.text)
        base_lines = _lines(base.text, base.origins)
    else:
        require_plain(base_tree, base_source, base_path)
        base_lines = _lines(base_source, _origins(base_source, base_path))
    own = _lines(source, _origins(source, path))
    merge = _Merge([_block(st, base_lines) for st in base_tree["statements"]], own, source, path)
    for st in tree["statements"]:
        merge.apply(st)
    blocks, changes = merge.blocks, merge.changes
    header = [(line, origin) for line, origin in own[: tree["loc"].line - 1]]
    title = (f"objective {tree['name']}", own[tree["loc"].line - 1][1])
    what = "; ".join(changes) if changes else "nothing changed"
    header.append((f"# A variant of {ref['base']} ({what}), flattened.", title[1]))
    body = [(INDENT + text, o) for b in blocks for text, o in _rendered(b)]
    lines = [*header, title, *body]
    flat_text = "".join(text + "\n" for text, _ in lines)
    return Flat(flat_text, [_shifted(t, o) for t, o in lines], ref["base"], changes)


def relocated(error: SpecError, flat: Flat) -> SpecError:
    """``error`` (raised on the flattened text) located where each fault came from: the
    diagnostics of the first one's file, at their lines there."""
    mapped = [(d, _origin_of(d, flat)) for d in error.diagnostics]
    first = next((o for _, o in mapped if o is not None), None)
    if first is None:
        return error
    same = [
        _moved(d, o)
        for d, o in mapped
        if o is not None and (o.path, o.source) == (first.path, first.source)
    ]
    return SpecError(same, source=first.source, path=first.path)


# --- reading the base ---------------------------------------------------------------------


def _read_base(
    ref: dict[str, Any], source: str, path: str | None, seen: tuple[str, ...]
) -> tuple[str, str]:
    """(path, text) of the base a variant names; a located SpecError when there is none, or
    when the chain of bases loops or runs too deep."""
    from objspec import spec_path

    if ref["file"]:
        folder = Path(path).parent if path is not None else Path.cwd()
        found: Path | None = folder / ref["base"]
    else:
        try:
            found = spec_path(ref["base"])
        except OSError:
            found = None
    if found is None or not found.is_file():
        what = "file" if ref["file"] else "bundled spec"
        _fail(f"no {what} {ref['base']!r} to start from", ref["loc"], source, path, _VARIANT_HINT)
    assert found is not None
    key = str(found.resolve())
    if key in seen or len(seen) >= MAX_DEPTH:
        _fail(
            f"the chain of bases loops or runs deeper than {MAX_DEPTH} at {ref['base']!r}",
            ref["loc"],
            source,
            path,
        )
    try:
        return key, found.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        _fail(f"cannot read {ref['base']!r}: {exc}", ref["loc"], source, path)
        raise  # unreachable: _fail raises


def _origins(source: str, path: str | None) -> list[Origin]:
    return [Origin(path, source, i + 1) for i in range(len(source.splitlines()))]


def _lines(text: str, origins: list[Origin]) -> list[tuple[str, Origin]]:
    return list(zip(text.splitlines(), origins, strict=False))


# --- statements as blocks of lines --------------------------------------------------------


def _key(st: dict[str, Any]) -> tuple[str, ...]:
    kind = st["statement"]
    if kind == "head":
        return ("head", st["call"]["name"])
    if kind == "transform":
        return ("transform", st["kind"])
    if kind == "task":
        return ("task", st["name"])
    return (kind,)


def _span(loc: Loc, lines: list[tuple[str, Origin]]) -> list[tuple[str, Origin]]:
    """The lines of ``loc``, dedented by the first one's indentation, trailing blanks cut."""
    chosen = lines[loc.line - 1 : loc.end_line]
    while chosen and not chosen[-1][0].strip():
        chosen.pop()
    cut = len(chosen[0][0]) - len(chosen[0][0].lstrip())
    return [(text[cut:] if not text[:cut].strip() else text.lstrip(), o) for text, o in chosen]


def _block(st: dict[str, Any], lines: list[tuple[str, Origin]]) -> Block:
    if st["statement"] == "mixture":
        text, origin = lines[st["loc"].line - 1]
        members = {
            m["name"]: Block(("member", m["name"]), _span(_block_loc(m), lines))
            for m in st["members"]
        }
        return Block(("mixture",), [(text.strip(), origin)], members)
    loc = _block_loc(st) if st["statement"] == "task" else st["loc"]
    return Block(_key(st), _span(loc, lines))


def _block_loc(block: dict[str, Any]) -> Loc:
    """A member's or task's lines: its header to its block's last statement (the rule's own
    end runs on to the next line's indentation)."""
    start = block["loc"]
    last = block["body"][-1]["loc"] if block["body"] else start
    end_line = last.end_line if block["body"] else start.line
    return Loc(start.line, start.column, end_line, last.end_column)


def _rendered(block: Block) -> list[tuple[str, Origin]]:
    out = list(block.lines)
    for member in block.members.values():
        out += [(INDENT + text, o) for text, o in member.lines]
    return out


# --- applying the variant -----------------------------------------------------------------


@dataclass
class _Merge:
    """The base's blocks as the variant's statements change them, one statement at a time;
    ``own`` are the variant's lines, ``changes`` what was done (for the gallery)."""

    blocks: list[Block]
    own: list[tuple[str, Origin]]
    source: str
    path: str | None
    changes: list[str] = field(default_factory=list)

    def apply(self, st: dict[str, Any]) -> None:
        kind = st["statement"]
        if kind == "drop":
            self.drop(st)
        elif kind == "mixture":
            self.merge_mixture(st)
        else:
            self.put(_block(st, self.own))

    def put(self, new: Block) -> None:
        """``new`` in place of the block with its key, or after the others."""
        at = self.find(new.key)
        label = " ".join(new.key)
        if at is None:
            self.blocks.append(new)
            self.changes.append(f"added `{label}`")
        else:
            self.blocks[at] = new
            self.changes.append(f"replaced `{label}`")

    def find(self, key: tuple[str, ...]) -> int | None:
        return next((i for i, b in enumerate(self.blocks) if b.key == key), None)

    def fail(self, message: str, loc: Loc, hint: str | None = None) -> None:
        _fail(message, loc, self.source, self.path, hint)

    def drop(self, st: dict[str, Any]) -> None:
        key = (st["what"],) if st["name"] is None else (st["what"], st["name"])
        label = " ".join(key)
        if st["what"] == "member":
            at = self.find(("mixture",))
            if at is None or st["name"] not in self.blocks[at].members:
                self.fail(f"the base has no member {st['name']!r} to drop", st["loc"])
            assert at is not None
            del self.blocks[at].members[st["name"]]
        else:
            at = self.find(key)
            if at is None:
                self.fail(f"the base has no `{label}` to drop", st["loc"])
            assert at is not None
            del self.blocks[at]
        self.changes.append(f"dropped `{label}`")

    def merge_mixture(self, st: dict[str, Any]) -> None:
        at = self.find(("mixture",))
        new = _block(st, self.own)
        for m in st["members"]:
            known = at is not None and m["name"] in self.blocks[at].members
            if not m["body"] and not known:
                self.fail(f"the base has no member {m['name']!r}", m["loc"], _MEMBER_HINT)
        if at is None:
            self.put(new)
            return
        members = self.blocks[at].members
        for m in st["members"]:
            name = m["name"]
            if m["body"]:
                self.changes.append(f"{'replaced' if name in members else 'added'} member `{name}`")
                members[name] = new.members[name]
                continue
            line, origin = new.members[name].lines[0]
            body = members[name].lines[1:]
            members[name] = Block(("member", name), [(_with_colon(line), origin), *body])
            self.changes.append(f"re-weighted member `{name}`")


def _with_colon(line: str) -> str:
    """A member line without a block (``r_mean3 2/7``), as the header of one (``...:``);
    a trailing comment outside quotes is dropped."""
    quoted = False
    for i, ch in enumerate(line):
        if ch == '"':
            quoted = not quoted
        elif ch == "#" and not quoted:
            line = line[:i]
            break
    return line.rstrip() + ":"


# --- errors -------------------------------------------------------------------------------


def _fail(
    message: str, loc: Loc | None, source: str, path: str | None, hint: str | None = None
) -> None:
    raise SpecError([Diagnostic(message, loc, hint)], source=source, path=path)


def _indent(text: str) -> int:
    return len(text) - len(text.lstrip())


def _shifted(flat_line: str, origin: Origin) -> Origin:
    """``origin`` with the columns its line moved by in the flattened text (only the
    indentation changes)."""
    lines = origin.source.splitlines()
    there = lines[origin.line - 1] if 1 <= origin.line <= len(lines) else flat_line
    return replace(origin, shift=_indent(there) - _indent(flat_line))


def _origin_of(d: Diagnostic, flat: Flat) -> Origin | None:
    if d.loc is None or not 1 <= d.loc.line <= len(flat.origins):
        return None
    return flat.origins[d.loc.line - 1]


def _moved(d: Diagnostic, origin: Origin) -> Diagnostic:
    assert d.loc is not None
    shift = origin.shift
    end_line = origin.line + (d.loc.end_line - d.loc.line)
    loc = Loc(origin.line, d.loc.column + shift, end_line, d.loc.end_column + shift)
    return Diagnostic(d.message, loc, d.hint)

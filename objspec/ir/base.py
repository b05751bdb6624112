"""Limits, the base node every IR node derives from, and the helpers they share."""

from __future__ import annotations

import keyword
import sys
import unicodedata
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from objspec.errors import Diagnostic, Loc

RATE_TOLERANCE = 1e-9
# Limits that keep what compiles small and runnable: no count past MAX_LENGTH tokens, no weight
# that overflows a loss, no exponent that underflows every frequency weight to zero.
MAX_WEIGHT = 1e6
MAX_ALPHA = 10.0
MAX_COPIES = 65_536
MIN_WINDOW_RATE = 1e-6


def _identifier(name: str) -> str:
    if not name.isidentifier() or not name.isascii() or keyword.iskeyword(name):
        raise _fail(
            f"{name!r} is not a valid objective name",
            "use a Python identifier that is not a keyword, e.g. my_objective",
        )
    return name


Identifier = Annotated[str, AfterValidator(_identifier)]

# The modules an objective's name must not be: its compiled file, NAME.py, would shadow them.
SHADOWED_MODULES = frozenset(sys.stdlib_module_names) | {
    "objspec",
    "compiler",
    "torch",
    "numpy",
    "lark",
    "pydantic",
    "hypothesis",
    "tokenizers",
    "rich",
    "transformers",
    "accelerate",
    "lightning",
    "pytest",
}


def _not_a_module(name: str) -> str:
    if name in SHADOWED_MODULES:
        raise _fail(
            f"objective name {name!r} is the name of the module {name!r}: its compiled file "
            f"{name}.py would shadow it",
            f"rename it, e.g. {name}_objective",
        )
    return name


ObjectiveName = Annotated[str, AfterValidator(_identifier), AfterValidator(_not_a_module)]


def text_problem(text: str) -> str | None:
    """Why ``text`` (a quoted string of a spec) cannot be used, or None: a control character
    (C0, DEL, C1) or a Unicode line or paragraph separator, any of which could end a line."""
    for char in text:
        if unicodedata.category(char) in ("Cc", "Zl", "Zp"):
            return f"contains the control character U+{ord(char):04X}"
    return None


def _fail(message: str, hint: str | None = None, at: Any = None) -> PydanticCustomError:
    """A validation failure whose message and hint survive Pydantic's wrapping. ``at``, a node
    of the spec, locates it at that statement (when the spec wrote one) rather than at the
    objective: a rule that ties statements together names the one to change."""
    where = at if isinstance(at, Loc) else getattr(at, "loc", None)
    return PydanticCustomError(
        "objspec",
        message.replace("{", "{{").replace("}", "}}"),
        {"hint": hint, "at": where},
    )


def _pct(x: float) -> str:
    return f"{x * 100:g}%"


class Node(BaseModel):
    """Base of every IR node: frozen, no unknown fields, a source location."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    loc: Loc | None = Field(default=None, repr=False)


Rate = Annotated[float, Field(ge=0.0, le=1.0)]


def _dedup(diags: list[Diagnostic]) -> list[Diagnostic]:
    """The diagnostics without repeats, in order."""
    return list(dict.fromkeys(diags))

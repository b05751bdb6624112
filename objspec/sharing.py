"""Sharing a compiled objective safely: the spec's text and its recorded sha256, compiled again.

Generated code, a pickle of a generated class and a checkpoint are code: run them only from a
trusted source. What is safe to take from anyone is a spec's text (a spec is data: it compiles to
code made only of validated identifiers and ``repr()`` of validated values) with the sha256 that
a generated module records as ``SPEC_SHA256``; :func:`load_shared` compiles it with this objspec.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from objspec.errors import IntegrityError

if TYPE_CHECKING:
    from objspec import CompiledObjective

BYTE_ORDER_MARK = "\ufeff"


def spec_sha256(text: str) -> str:
    """The sha256 a compiled spec records (``SPEC_SHA256``): of its UTF-8 text, a leading byte
    order mark dropped."""
    return hashlib.sha256(text.removeprefix(BYTE_ORDER_MARK).encode("utf-8")).hexdigest()


def load_shared(
    spec_text: str,
    sha256: str,
    *,
    version: str | None = None,
    output: str | None = None,
) -> CompiledObjective:
    """Compile a spec someone shared, after checking its text against the sha256 they recorded
    (and, given ``version``, that it was compiled by this objspec version). IntegrityError on a
    mismatch; SpecError if the text is not a valid spec."""
    from objspec import __version__, compile_spec

    if spec_sha256(spec_text) != sha256.strip().lower():
        raise IntegrityError(
            f"the shared spec's sha256 is {spec_sha256(spec_text)}, not the recorded {sha256}"
        )
    if version is not None and version != __version__:
        raise IntegrityError(
            f"the shared objective was compiled by objspec {version}; this is objspec "
            f"{__version__}, whose code for it may differ"
        )
    return compile_spec(spec_text, output=output)

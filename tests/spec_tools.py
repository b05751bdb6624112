"""Shared by the decoder-objective tests: bundled specs compiled once, located errors caught."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest

from objspec import compile_file, parse_spec
from objspec.errors import SpecError

SPECS = Path(__file__).resolve().parent.parent / "specs"


@cache
def compiled(name: str) -> Any:
    """The compiled bundled spec ``specs/<name>.objspec`` (once per test session)."""
    return compile_file(SPECS / f"{name}.objspec")


def spec_error(text: str) -> SpecError:
    """The SpecError that parsing ``text`` (as ``x.objspec``) raises."""
    with pytest.raises(SpecError) as caught:
        parse_spec(text, "x.objspec")
    return caught.value

"""Shared by the decoder-objective tests: bundled specs compiled once, located errors caught."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

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


def broken(name: str, damage: Callable[[dict[str, torch.Tensor], Any], None]) -> Any:
    """Bundled spec ``name``'s compiled module with a collator that applies ``damage(out,
    collator)`` to each batch it returns (what a check must catch)."""
    base = compiled(name).Collator

    class Broken(base):  # type: ignore[misc, valid-type]
        def __call__(self, examples: Any) -> dict[str, torch.Tensor]:
            out = super().__call__(examples)
            damage(out, self)
            return out

    return SimpleNamespace(Collator=Broken)

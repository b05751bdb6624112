"""Docs are part of the product: the gallery is generated and must be current."""

from __future__ import annotations

import pytest

from objspec.gallery import ROOT, pages

PAGES = pages()  # every page rendered once (each render compiles and collates every spec)


@pytest.mark.parametrize("path", sorted(PAGES), ids=lambda p: p.name)
def test_gallery_page_is_up_to_date(path) -> None:  # type: ignore[no-untyped-def]
    assert path.exists(), f"missing {path.relative_to(ROOT)}: run `python -m objspec.gallery`"
    assert path.read_text(encoding="utf-8") == PAGES[path], (
        f"{path.relative_to(ROOT)} is stale: run `python -m objspec.gallery`"
    )


def test_every_spec_has_a_gallery_page() -> None:
    for spec in (ROOT / "specs").glob("*.objspec"):
        assert (ROOT / "docs" / "gallery" / f"{spec.stem}.md").exists()

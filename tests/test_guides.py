"""Docs that show code run it: every ```python block of each guide (docs/guides/*.md) and of
the README runs here, in order, in one namespace per page, in a fresh working folder. Blocks
marked ```bash, ```sh or ```text are shown only (a torchrun line, a shell session)."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GUIDES = sorted((ROOT / "docs" / "guides").glob("*.md"))
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
NEEDS = ("transformers", "datasets", "lightning", "accelerate", "sentencex")


def python_blocks(path: Path) -> list[str]:
    return PYTHON_BLOCK.findall(path.read_text(encoding="utf-8"))


def run_page(path: Path, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Exec the page's python blocks in one namespace, with the working folder ``folder`` (where
    the checkout's ``specs/`` is linked, as the docs' relative paths expect)."""
    (folder / "specs").symlink_to(ROOT / "specs")
    monkeypatch.chdir(folder)
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")
    namespace: dict[str, object] = {"__name__": "__guide__"}
    for number, code in enumerate(python_blocks(path), 1):
        try:
            exec(compile(code, f"{path.relative_to(ROOT)} block {number}", "exec"), namespace)
        except Exception as exc:
            where = f"{path.relative_to(ROOT)}, python block {number}"
            raise AssertionError(f"{where}: {exc!r}") from exc


@pytest.mark.parametrize("path", GUIDES, ids=lambda p: p.stem)
def test_guide_runs(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for module in NEEDS:
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"the guides need {module} (make test installs every extra)")
    assert python_blocks(path), f"{path.name} shows no python block"
    run_page(path, tmp_path, monkeypatch)


def test_readme_python_blocks_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("transformers")
    assert len(python_blocks(ROOT / "README.md")) >= 3
    run_page(ROOT / "README.md", tmp_path, monkeypatch)


def test_every_guide_is_in_the_site_nav() -> None:
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for path in GUIDES:
        assert f"guides/{path.name}" in nav, f"{path.name} is missing from mkdocs.yml's nav"
    assert (ROOT / "docs" / "index.md").exists()


def test_docs_site_builds_strict(tmp_path: Path) -> None:
    """`mkdocs build --strict`: a broken link, a missing page or an API docstring that does
    not resolve fails the build (``make docs`` runs the same)."""
    for module in ("mkdocs", "mkdocstrings", "mkdocstrings_handlers"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed: pip install -e '.[docs]' (make test does)")
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "site" / "api" / "collator" / "index.html").exists()
    assert time.monotonic() - start < 120

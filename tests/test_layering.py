"""The stages import one way: the runtime never imports the compiler (generated modules and
unpickling need only the runtime), and the rest of ``objspec`` reaches the compiler only from
inside the functions that compile, so no import circle exists at import time. Modules stay small
enough to find one's room: none over about 600 lines."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("objspec", "compiler")
MAX_LINES = 650  # "about 600"


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def imported(tree: ast.AST) -> set[str]:
    """The top-level package names a tree imports (absolute imports)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", modules("objspec/runtime"), ids=lambda p: p.name)
def test_the_runtime_never_imports_the_compiler(path: Path) -> None:
    assert "compiler" not in imported(ast.parse(path.read_text(encoding="utf-8")))


def loaded_by(statement: str) -> list[str]:
    """The objspec modules a fresh process has loaded after ``statement``."""
    listed = "print(*sorted(m for m in sys.modules if m.startswith('objspec')))"
    code = f"import sys; {statement}; {listed}"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_what_the_compiler_imports_imports_no_compiler_back() -> None:
    """No circle: no objspec module the compiler loads imports the compiler at its top level
    (the package's compile functions import it when they run)."""
    for name in loaded_by("import compiler"):
        path = ROOT / (name.replace(".", "/") + ".py")
        if not path.exists():
            path = ROOT / name.replace(".", "/") / "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imports = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
        assert "compiler" not in imported(ast.Module(body=imports, type_ignores=[])), name


def test_importing_objspec_loads_no_compiler() -> None:
    code = "import sys, objspec, objspec.runtime; print('compiler' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


@pytest.mark.parametrize("package", PACKAGES)
def test_no_module_is_over_about_600_lines(package: str) -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in modules(package)
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, long

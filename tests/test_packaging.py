"""Packaging: the wheel ships the bundled specs and data, and an installed objspec finds them
from any folder (``objspec check bert_mlm``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "README.md", "objspec", "compiler", "specs")
DATA = ("objspec/grammar.lark", "objspec/data/corpus.txt", "objspec/data/tokenizer.json")


def _can_build_wheels() -> bool:
    setuptools = pytest.importorskip("setuptools")
    major, minor = (int(p) for p in setuptools.__version__.split(".")[:2])
    has_bdist_wheel = (major, minor) >= (70, 1)  # setuptools builds wheels itself from 70.1
    if not has_bdist_wheel:
        try:
            import wheel  # noqa: F401
        except ImportError:
            return False
    return True


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """objspec's wheel, built without the network from a copy of the sources (so the build
    writes nothing into the checkout)."""
    if not _can_build_wheels():
        pytest.skip("this environment's setuptools cannot build wheels offline")
    src, dist = tmp_path_factory.mktemp("src"), tmp_path_factory.mktemp("dist")
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, src / name, ignore=skip)
        else:
            shutil.copy2(source, src / name)
    command = [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps"]
    command += ["--no-build-isolation", "--no-index", "-q", "-w", str(dist)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    [built] = dist.glob("objspec-*.whl")
    return built


def test_the_wheel_holds_the_specs_and_the_data(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        for spec in sorted((ROOT / "specs").glob("*.objspec")):
            packaged = f"objspec/specs/{spec.name}"
            assert packaged in names, packaged
            assert archive.read(packaged) == spec.read_bytes()
        for data in DATA:
            assert archive.read(data) == (ROOT / data).read_bytes(), data
        sources = {
            str(module.relative_to(ROOT))
            for package in ("objspec", "compiler")
            for module in (ROOT / package).rglob("*.py")
        }
        assert sources <= names, sorted(sources - names)  # every module, subpackages included
        [entry_points] = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        assert "objspec = objspec.cli:main" in archive.read(entry_points).decode()


def test_the_unpacked_wheel_checks_a_bundled_spec_by_name(wheel: Path, tmp_path: Path) -> None:
    """A pure-Python wheel unpacked on PYTHONPATH is an install: from an empty folder, with no
    checkout in sight, ``python -m objspec check bert_mlm`` finds the spec inside the package."""
    site, empty = tmp_path / "site", tmp_path / "empty"
    empty.mkdir()
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    probe = (
        "import sys, objspec; from objspec.cli import main; "
        "assert objspec.__file__.startswith(sys.argv[1]), objspec.__file__; "
        "assert objspec.bundled_specs_dir().is_relative_to(sys.argv[1]); "
        "sys.exit(main(['check', 'bert_mlm', '--examples', '2', '--json']))"
    )
    env = {**os.environ, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", probe, str(site)],
        cwd=empty,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert '"passed": true' in done.stdout
    assert list(empty.iterdir()) == []


def test_the_installed_command_checks_a_bundled_spec_from_an_empty_folder(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "objspec"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "objspec"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [*command, "check", "bert_mlm", "--examples", "2"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "bert_mlm" in done.stdout and "FAIL" not in done.stdout

"""Regenerate tests/golden/*.py from specs/*.objspec (``make golden``); review the diff."""

from __future__ import annotations

from pathlib import Path

from compiler import compile_objective
from objspec.parser import parse_file

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
GOLDEN = ROOT / "tests" / "golden"


def golden_source(spec: Path) -> str:
    """The compiled module of a spec, with the spec path as the test reads it."""
    return compile_objective(parse_file(spec.relative_to(ROOT))).source


def main() -> None:
    GOLDEN.mkdir(exist_ok=True)
    for spec in sorted(SPECS.glob("*.objspec")):
        (GOLDEN / f"{spec.stem}.py").write_text(golden_source(spec), encoding="utf-8")
        print(f"wrote tests/golden/{spec.stem}.py")


if __name__ == "__main__":
    main()

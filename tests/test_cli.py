"""The command line: exit codes, outputs, located errors without tracebacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from objspec.cli import EXIT_CHECK, EXIT_OK, EXIT_SPEC, EXIT_USAGE, main

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.objspec"))


def test_compile_writes_identical_importable_modules(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["compile", *map(str, SPECS), "-o", str(a)]) == EXIT_OK
    assert main(["compile", *map(str, SPECS), "-o", str(b)]) == EXIT_OK
    for spec in SPECS:
        first = (a / f"{spec.stem}.py").read_text()
        assert first == (b / f"{spec.stem}.py").read_text()
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]); import spanbert; print(spanbert.SPEC_NAME)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, str(a)], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "spanbert"


def test_bad_spec_gives_located_error_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.objspec"
    bad.write_text(
        "objective bad\n"
        "  select   bernoulli 15%\n"
        "  replace  per token: mask 80%, random 20%, keep 10%\n"
        "  predict  original at selected\n"
        "  head     mlm\n"
    )
    assert main(["compile", str(bad), "-o", str(tmp_path)]) == EXIT_SPEC
    err = capsys.readouterr().err
    assert f"{bad}:3:" in err
    assert "sums to 110%" in err
    assert "Traceback" not in err


def test_typo_gives_did_you_mean(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "typo.objspec"
    text = (ROOT / "specs" / "spanbert.objspec").read_text().replace("geometric(", "geometrc(")
    bad.write_text(text)
    assert main(["check", str(bad)]) == EXIT_SPEC
    err = capsys.readouterr().err
    assert "did you mean 'geometric'" in err


def test_missing_file_is_a_clean_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compile", "no/such.objspec"]) == EXIT_SPEC
    assert "cannot read spec" in capsys.readouterr().err


def test_usage_errors_exit_2() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["frobnicate"])
    assert exc.value.code == EXIT_USAGE


def test_check_prints_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(ROOT / "specs" / "bert_mlm.objspec"), "--examples", "5"]) == EXIT_OK
    out = capsys.readouterr().out
    for name in ("labels", "untouched", "batch_invariance", "rate", "mix"):
        assert name in out
    assert "FAIL" not in out


def test_show_renders_before_and_after(capsys: pytest.CaptureFixture[str]) -> None:
    spec = str(ROOT / "specs" / "wwm.objspec")
    assert main(["show", spec, "--text", "The fishermen rebuilt the harbour."]) == EXIT_OK
    out = capsys.readouterr().out
    assert "before:" in out and "after:" in out and "[CLS]" in out


def test_exit_code_constants_are_distinct() -> None:
    assert len({EXIT_OK, EXIT_SPEC, EXIT_USAGE, EXIT_CHECK}) == 4

"""The command line: exit codes, outputs, located errors without tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import objspec
from objspec import cli
from objspec.cli import EXIT_CHECK, EXIT_INTERNAL, EXIT_OK, EXIT_SPEC, EXIT_USAGE, main
from objspec.runtime import BatchError

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
    assert main(["compile", "no/such.objspec"]) == EXIT_USAGE
    assert one_line(capsys.readouterr().err).startswith("error: no spec file 'no/such.objspec'")


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["frobnicate"]) == EXIT_USAGE
    assert "invalid choice" in one_line(capsys.readouterr().err)


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


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_show_runs_on_every_bundled_spec(spec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """What `objspec demo` shows for each bundled spec, with the bundled tokenizer."""
    assert main(["show", str(spec)]) == EXIT_OK, capsys.readouterr().err


def test_exit_code_constants_are_distinct() -> None:
    assert len({EXIT_OK, EXIT_SPEC, EXIT_USAGE, EXIT_CHECK, EXIT_INTERNAL}) == 5


def one_line(stderr: str) -> str:
    """The message of a clean failure: exactly one line, no traceback."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


@pytest.mark.parametrize(
    "argv, says",
    [
        (["pretrain", "bert_mlm", "--device", "foo"], "'foo' is not a device"),
        (["pretrain", "bert_mlm", "--device", "meta"], "runs on cpu or cuda"),
        (["pretrain", "bert_mlm", "--layers", "0"], "--layers: must be an integer from 1 to 256"),
        (["pretrain", "bert_mlm", "--steps", "-1"], "--steps: must be an integer >= 0"),
        (["pretrain", "bert_mlm", "--lr", "nan"], "--lr: must be a finite number"),
        (["pretrain", "bert_mlm", "--dropout", "1"], "--dropout: must be a finite number"),
        (["pretrain", "bert_mlm", "--seed", "x"], "--seed: expected an integer"),
        (["pretrain", "bert_mlm", "--hidden-size", "99999999"], "--hidden-size: must be"),
        (["check", "bert_mlm", "--examples", "0"], "--examples: must be an integer from 1"),
        (["show", "bert_mlm", "--max-length", "2"], "--max-length: must be an integer from 3"),
    ],
)
def test_bad_flags_are_one_line_usage_errors(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == EXIT_USAGE
    line = one_line(capsys.readouterr().err)
    assert line.startswith(f"objspec {argv[0]}: error: argument") and says in line


def test_bad_paths_are_one_line_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a_file = tmp_path / "taken"
    a_file.write_text("")
    for argv, says in (
        (["check", str(tmp_path)], "is a folder, not a spec file"),
        (["compile", "bert_mlm", "-o", str(a_file)], "exists and is not a folder"),
        (["check", "no_such_spec"], "no bundled spec 'no_such_spec' (bundled: albert"),
        (["pretrain", "bert_mlm", "--text", str(tmp_path / "none.txt")], "none.txt: cannot"),
        (["pretrain", "bert_mlm", "--hidden-size", "50"], "positive multiple of the 4"),
    ):
        assert main(argv) == EXIT_USAGE, argv
        assert says in one_line(capsys.readouterr().err), argv
    assert not any((tmp_path / "runs").glob("*"))


def test_text_that_is_not_utf8_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = tmp_path / "latin1.txt"
    corpus.write_bytes("first line\ncaf\u00e9 au lait\n".encode("latin-1"))
    argv = ["pretrain", "bert_mlm", "--text", str(corpus), "--out", str(tmp_path / "run")]
    assert main(argv) == EXIT_USAGE
    line = one_line(capsys.readouterr().err)
    assert f"--text {corpus}: not valid UTF-8 (line 2" in line
    assert main(["show", "wwm", "--text", "caf\udce9"]) == EXIT_USAGE  # argv's undecodable bytes
    assert "--text is not valid UTF-8" in one_line(capsys.readouterr().err)


def test_markup_in_paths_and_text_prints_as_itself(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rich markup in user text ([/] closes nothing, [red] colours nothing): printed as is."""
    weird = tmp_path / "we[/]ird [red]"  # a folder "we[" holding "]ird [red]"
    weird.mkdir(parents=True)
    spec = weird / "x[bold].objspec"
    spec.write_text((ROOT / "specs" / "bert_mlm.objspec").read_text())
    assert main(["compile", str(spec), "-o", str(weird)]) == EXIT_OK
    assert (weird / "bert_mlm.py").exists()
    assert main(["show", str(spec), "--text", "[bold]a[/] b"]) == EXIT_OK
    captured = capsys.readouterr()
    assert f"{spec} ->" in captured.out.replace("\n", "") and not captured.err
    assert "[ bo ##ld ]" in captured.out or "[bold]" in captured.out


def test_an_unexpected_exception_is_a_one_line_internal_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(args: object) -> int:
        raise ZeroDivisionError("division by zero\nsecond line")

    monkeypatch.setattr(cli.showing, "cmd_show", broken)
    monkeypatch.delenv(cli.DEBUG_ENV, raising=False)
    assert main(["show", "bert_mlm"]) == EXIT_INTERNAL
    line = one_line(capsys.readouterr().err)
    assert "internal error (ZeroDivisionError: division by zero)" in line
    assert "report" in line and "OBJSPEC_DEBUG=1" in line
    monkeypatch.setenv(cli.DEBUG_ENV, "1")
    with pytest.raises(ZeroDivisionError):
        main(["show", "bert_mlm"])


@pytest.mark.parametrize(
    "raised, code, says",
    [
        (KeyboardInterrupt(), 130, "interrupted"),
        (MemoryError(), EXIT_USAGE, "error: out of memory"),
        (BatchError("example 0, position 3: id 99 is outside"), EXIT_USAGE, "error: example 0"),
        (RuntimeError("CUDA error: device-side assert"), EXIT_INTERNAL, "internal error"),
        (OSError(28, "No space left on device"), EXIT_USAGE, "No space left"),
    ],
)
def test_each_failure_has_its_exit_code(
    raised: BaseException,
    code: int,
    says: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def failing(args: object) -> int:
        raise raised

    monkeypatch.setattr(cli.showing, "cmd_show", failing)
    monkeypatch.delenv(cli.DEBUG_ENV, raising=False)
    assert main(["show", "bert_mlm"]) == code
    assert says in one_line(capsys.readouterr().err)


def _renamed(tmp_path: Path, name: str) -> Path:
    spec = tmp_path / f"{name}.objspec"
    text = (ROOT / "specs" / "bert_mlm.objspec").read_text()
    spec.write_text(text.replace("objective bert_mlm", f"objective {name}"))
    return spec


def test_compile_refuses_a_module_name_that_shadows_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    installed = tmp_path / "site"
    installed.mkdir()
    (installed / "objspec_probe_mod.py").write_text("")
    monkeypatch.syspath_prepend(str(installed))
    build = tmp_path / "build"
    for name in ("torch", "json", "objspec_probe_mod"):
        assert main(["compile", str(_renamed(tmp_path, name)), "-o", str(build)]) == EXIT_SPEC
        message = capsys.readouterr().err
        assert f"{name}.py" in message and "shadow" in message and "Traceback" not in message
    assert not any(build.iterdir())
    # the folder's own earlier output is no module to protect: compiling again overwrites it
    spec = str(_renamed(tmp_path, "objspec_probe_fresh"))
    assert main(["compile", spec, "-o", str(build)]) == EXIT_OK
    monkeypatch.syspath_prepend(str(build))
    assert main(["compile", spec, "-o", str(build)]) == EXIT_OK


def test_version_help_and_python_m(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == EXIT_OK
    assert capsys.readouterr().out.strip() == f"objspec {objspec.__version__}"
    assert main(["pretrain", "--help"]) == EXIT_OK
    help_text = " ".join(capsys.readouterr().out.split())
    for shown in ("(default: 200)", "(default: 0.001)", "(default: cpu)", "(default: 50)"):
        assert shown in help_text
    pretrain = cli.build_parser()._subparsers._group_actions[0].choices["pretrain"]  # type: ignore[union-attr]
    assert all(action.help for action in pretrain._actions), "every pretrain flag has help"
    done = subprocess.run(
        [sys.executable, "-m", "objspec", "--version"], capture_output=True, text=True
    )
    assert (done.returncode, done.stdout.strip()) == (0, f"objspec {objspec.__version__}")


def test_check_json_from_an_empty_folder_by_bundled_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # no specs/ here: the names resolve to the bundled specs
    assert main(["check", "bert_mlm", "--examples", "2", "--json"]) == EXIT_OK
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] is True
    [record] = report["specs"]
    assert (record["spec"], record["objective"], record["form"]) == ("bert_mlm", "bert_mlm", None)
    assert {"labels", "rate", "mix"} <= {c["name"] for c in record["checks"]}
    assert all(set(c) == {"name", "passed", "promise", "detail"} for c in record["checks"])
    assert objspec.load("spanbert").name == "spanbert"
    assert objspec.spec_path("specs/wwm.objspec") == objspec.bundled_specs_dir() / "wwm.objspec"


def test_check_json_reports_a_failure(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from objspec import checks

    failing = [checks.CheckResult("rate", "15% selected", False, "selected 3%")]
    monkeypatch.setattr(checks, "run_checks", lambda *a, **k: failing)
    assert main(["check", "bert_mlm", "--json"]) == EXIT_CHECK
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] is False
    assert report["specs"][0]["checks"] == [
        {"name": "rate", "passed": False, "promise": "15% selected", "detail": "selected 3%"}
    ]

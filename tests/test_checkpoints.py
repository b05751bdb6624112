"""``objspec pretrain`` checkpoints are safe: loaded without running code, written atomically
(a numbered folder appears complete or not at all), rotated, resumed only by the run whose
contents (spec, text) they were written from, and a signal stops a run with a checkpoint and
exit 128 + the signal."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from objspec import pretrain
from objspec.cli import main
from objspec.pretrain import CheckpointError, PretrainConfig, Pretrainer
from objspec.pretrain.checkpoints import STATE

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "specs" / "bert_mlm.objspec"


def config(
    out: Path, steps: int, spec: Path = SPEC, text: list[str] | None = None
) -> PretrainConfig:
    return PretrainConfig(
        spec=str(spec),
        out=str(out),
        steps=steps,
        batch_size=4,
        max_length=24,
        hidden_size=16,
        layers=1,
        heads=2,
        checkpoint_every=2,
        limit=16,
        text=text or [],
    )


class Planted:
    """An object whose unpickling would write a file (what a malicious checkpoint does)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (shutil.copy, (__file__, str(self.marker)))


def state_file(out: Path, step: int) -> Path:
    return out / f"checkpoint-{step}" / STATE


def test_a_planted_checkpoint_runs_nothing(tmp_path: Path) -> None:
    Pretrainer(config(tmp_path, 2)).run()
    marker = tmp_path / "pwned"
    state = torch.load(state_file(tmp_path, 2), weights_only=True)
    state["rows"] = Planted(marker)
    torch.save(state, state_file(tmp_path, 2))
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        Pretrainer(config(tmp_path, 4)).resume()
    assert not marker.exists()


@pytest.mark.parametrize(
    "content", [b"", b"garbage", b"PK\x03\x04 truncated zip"], ids=["empty", "foreign", "truncated"]
)
def test_unreadable_checkpoints_are_one_line_errors(tmp_path: Path, content: bytes) -> None:
    state_file(tmp_path, 2).parent.mkdir(parents=True)
    state_file(tmp_path, 2).write_bytes(content)
    with pytest.raises(CheckpointError) as caught:
        Pretrainer(config(tmp_path, 4)).resume()
    assert "\n" not in str(caught.value)


def test_a_truncated_real_checkpoint_and_a_foreign_one(tmp_path: Path) -> None:
    Pretrainer(config(tmp_path, 2)).run()
    path = state_file(tmp_path, 2)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError):
        Pretrainer(config(tmp_path, 4)).resume()
    torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(CheckpointError, match="not an objspec pretrain checkpoint"):
        Pretrainer(config(tmp_path, 4)).resume()


def test_a_kill_during_a_checkpoint_write_keeps_the_previous_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Pretrainer(config(tmp_path, 2)).run()  # a good checkpoint at step 2

    def dies_half_way(obj: object, f: object) -> None:
        f.write(b"PK\x03\x04 half a checkpoint")  # type: ignore[attr-defined]
        raise KeyboardInterrupt  # the process is killed mid-write

    trainer = Pretrainer(config(tmp_path, 4))
    assert trainer.resume() and trainer.step == 2
    monkeypatch.setattr(pretrain.torch, "save", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        trainer.run()
    monkeypatch.undo()
    again = Pretrainer(config(tmp_path, 4))
    assert again.resume() and again.step == 2  # the previous checkpoint, intact
    assert not (tmp_path / "checkpoint-4").exists()  # the half-written one never appeared


def test_numbered_checkpoints_rotate_and_any_one_resumes(tmp_path: Path) -> None:
    """checkpoint-STEP folders every 2 steps; --keep-last 2 keeps the newest two; resume takes
    the newest, or the folder given."""
    settings = config(tmp_path, 8)
    settings.keep_last = 2
    Pretrainer(settings).run()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("checkpoint")) == [
        "checkpoint-6",
        "checkpoint-8",
    ]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no partial left
    newest = Pretrainer(config(tmp_path, 10))
    assert newest.resume() and newest.step == 8
    older = Pretrainer(config(tmp_path, 10))
    assert older.resume(tmp_path / "checkpoint-6") and older.step == 6
    with pytest.raises(CheckpointError, match="not an objspec pretrain checkpoint folder"):
        Pretrainer(config(tmp_path, 10)).resume(tmp_path / "nowhere")


def test_resume_compares_contents_not_path_strings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = tmp_path / "spec.objspec"
    spec.write_text(SPEC.read_text())
    text = tmp_path / "corpus.txt"
    text.write_text(
        "One sentence here.\nAnother one follows.\n\nA second document.\nIt ends.\n" * 8
    )
    out = tmp_path / "run"
    Pretrainer(config(out, 2, spec, [str(text)])).run()
    monkeypatch.chdir(tmp_path)  # the same files spelled another way resume
    respelled = Pretrainer(config(out, 4, Path("./spec.objspec"), ["./corpus.txt"]))
    assert respelled.resume()
    spec.write_text(SPEC.read_text().replace("15%", "20%"))
    with pytest.raises(CheckpointError, match="spec contents"):
        Pretrainer(config(out, 4, spec, [str(text)])).resume()
    spec.write_text(SPEC.read_text())
    text.write_text(text.read_text() + "More words.\n")
    with pytest.raises(CheckpointError, match="text contents"):
        Pretrainer(config(out, 4, spec, [str(text)])).resume()


def test_resume_refuses_a_missing_rng_state(tmp_path: Path) -> None:
    Pretrainer(config(tmp_path, 2)).run()
    (tmp_path / "checkpoint-2" / "rng-rank0.pt").unlink()
    with pytest.raises(CheckpointError, match="cannot resume exactly"):
        Pretrainer(config(tmp_path, 4)).resume()


def test_a_bad_checkpoint_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state_file(tmp_path, 2).parent.mkdir(parents=True)
    state_file(tmp_path, 2).write_bytes(b"garbage")
    args = ["pretrain", str(SPEC), "--out", str(tmp_path), "--steps", "2", "--resume"]
    assert main(args) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_with_a_checkpoint_and_its_exit_code(tmp_path: Path, number: int) -> None:
    args = ["pretrain", str(SPEC), "--out", str(tmp_path), "--batch-size", "4"]
    args += ["--hidden-size", "16", "--layers", "1", "--checkpoint-every", "3"]
    command = [sys.executable, "-m", "objspec.cli", *args, "--steps", "100000"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    # the loop has run 3 steps: a checkpoint exists (checkpoint-3 may be gone already: only
    # the last --keep-last are kept, and a fast loop writes several between two looks)
    while not any(tmp_path.glob("checkpoint-*")):
        assert process.poll() is None and time.monotonic() < deadline, process.stderr
        time.sleep(0.1)
    process.send_signal(number)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + number, stderr
    assert "continue with --resume" in stdout and "Traceback" not in stderr
    newest = max(int(p.name.split("-")[1]) for p in tmp_path.glob("checkpoint-*"))
    step = torch.load(state_file(tmp_path, newest), weights_only=True)["step"]
    assert step == newest >= 3
    assert main([*args, "--steps", str(step + 1), "--resume"]) == 0


def test_a_resumed_run_takes_its_own_learning_rate(tmp_path: Path) -> None:
    """--resume --lr X: every step after the checkpoint uses X (the optimizer state's own lr
    is not kept), with the schedule applied to it."""
    Pretrainer(config(tmp_path, 2)).run()
    changed = config(tmp_path, 4)
    changed.lr = 5e-4
    resumed = Pretrainer(changed)
    assert resumed.resume()
    resumed.run()
    assert {g["lr"] for g in resumed.optimizer.param_groups} == {5e-4}
    linear = config(tmp_path / "linear", 4)
    linear.scheduler, linear.warmup_steps = "linear", 2
    trainer = Pretrainer(linear)
    seen = []
    for _ in range(4):
        trainer.train_step()
        seen.append(trainer.optimizer.param_groups[0]["lr"])
    assert seen == pytest.approx([0.0, 0.5e-3, 1e-3, 0.5e-3])  # warm-up 0, 1/2; then 1, 1/2

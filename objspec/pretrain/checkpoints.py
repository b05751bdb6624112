"""Numbered checkpoint folders, written atomically and loaded without running code.

``OUT/checkpoint-STEP/`` holds ``objspec_state.pt`` (the trained module, the optimizer, the
step, the loss rows, the config and the content hashes of what the run trains on), one
``rng-rank{r}.pt`` per rank (its generator state at STEP) and, for a Hugging Face model, the
``save_pretrained`` output of the model and the tokenizer (``config.json``,
``model.safetensors``, ``tokenizer.json``, ...), so ``AutoModel*.from_pretrained`` reads the
folder as it is.

A checkpoint is assembled in ``OUT/.checkpoint-STEP.partial/`` and renamed into place once
every file is written and synced: a folder named ``checkpoint-STEP`` is always complete, and a
run killed while writing keeps its previous checkpoints. ``--keep-last N`` removes the older
folders after the new one is in place. Files are loaded with
``torch.load(weights_only=True)``: a checkpoint runs no code.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
import shutil
import zipfile
from pathlib import Path
from typing import Any

import torch

STATE = "objspec_state.pt"
PREFIX = "checkpoint-"
_NUMBERED = re.compile(r"^checkpoint-(\d+)$")


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed from (unreadable, foreign, another run's)."""


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def folder_sha256(folder: str | Path, names: tuple[str, ...] | None = None) -> str:
    """One sha256 over a folder's files (``names`` only, where given; sorted by name): the
    contents of the small files, and the name and size of those over 64 MiB (data shards)."""
    digest = hashlib.sha256()
    root = Path(folder)
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
    for path in files:
        rel = path.relative_to(root).as_posix()
        if names is not None and rel not in names:
            continue
        size = path.stat().st_size
        digest.update(f"{rel}\0{size}\0".encode())
        if size <= 64 << 20:
            digest.update(path.read_bytes())
    return digest.hexdigest()


def save_atomically(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file beside ``path``, fsync, then rename over it: a crash
    leaves either the old file or the new one, never a truncated one."""
    partial = path.with_name(f".{path.name}.partial")
    with open(partial, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(partial, path)


def load_safely(path: Path) -> Any:
    """``torch.load(weights_only=True)``; any unreadable, truncated or foreign file is a
    one-line CheckpointError."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path} is not a readable checkpoint: {reason[:200]}") from None
    except OSError as e:
        raise CheckpointError(f"{path} cannot be read: {e.strerror or e}") from None


def sync_folder(folder: Path) -> None:
    """fsync every file in ``folder`` and the folder itself (best effort where unsupported)."""
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as f:
                os.fsync(f.fileno())
    _sync_dir(folder)


def checkpoint_folder(out: Path, step: int) -> Path:
    return out / f"{PREFIX}{step}"


def partial_folder(out: Path, step: int) -> Path:
    return out / f".{PREFIX}{step}.partial"


def publish(partial: Path, final: Path) -> None:
    """Rename the finished ``partial`` folder to ``final``; an existing ``final`` (the same step
    saved again) is moved aside first and removed after."""
    sync_folder(partial)
    old = final.with_name(f".{final.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        os.replace(final, old)
    os.replace(partial, final)
    _sync_dir(final.parent)  # the rename itself
    if old.exists():
        shutil.rmtree(old, ignore_errors=True)


def _sync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def numbered(out: Path) -> list[tuple[int, Path]]:
    """The complete checkpoint folders in ``out``, (step, folder), oldest first."""
    if not out.is_dir():
        return []
    found = []
    for path in out.iterdir():
        match = _NUMBERED.match(path.name)
        if match and path.is_dir() and (path / STATE).exists():
            found.append((int(match.group(1)), path))
    return sorted(found)


def latest(out: Path) -> Path | None:
    """The newest checkpoint folder in ``out``, or None."""
    found = numbered(out)
    return found[-1][1] if found else None


def rotate(out: Path, keep_last: int) -> None:
    """Remove all but the ``keep_last`` newest checkpoint folders (0 keeps them all)."""
    if keep_last < 1:
        return
    for _, path in numbered(out)[:-keep_last]:
        doomed = path.with_name(f".{path.name}.removing")
        os.replace(path, doomed)  # gone from the listing at once, even if removal is cut short
        shutil.rmtree(doomed, ignore_errors=True)


def rng_state() -> dict[str, Any]:
    """torch's CPU generator and, when CUDA is up, every GPU's (dropout draws from them)."""
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    return {"cpu": torch.get_rng_state(), "cuda": cuda}


def set_rng_state(state: dict[str, Any] | torch.Tensor) -> None:
    if isinstance(state, torch.Tensor):  # a CPU generator state alone
        torch.set_rng_state(state)
        return
    torch.set_rng_state(state["cpu"])
    if state["cuda"] is not None:
        torch.cuda.set_rng_state_all(state["cuda"])

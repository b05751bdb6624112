"""Offline materialization: the corruption of whole epochs written to Parquet, and read back.

:func:`materialize` runs a compiled collator over a ``datasets.Dataset`` of examples through
``Dataset.map(batched=True, num_proc=...)`` and writes, per epoch, Parquet shards with one row
per example: each output key's own unpadded values (a token-width key cut to its group's
length, a (L, L) key to (n, n), a per-example key as a scalar), the example's ``example_key``
and, when given, its ``index``; next to them a ``manifest.json`` (spec sha256, objspec version,
seed, epoch, vocabulary and run-time table hashes, the keys with their dtypes).

:class:`MaterializedCollator` pads a list of such rows into the batch the live collator gives
for the same examples in the same order, bit for bit (padding side and ``pad_to_multiple_of``
as the live collator's); :func:`load_epoch` opens an epoch and checks its manifest against the
live collator first. Only objectives whose rows do not depend on their batch can be
materialized: :func:`refusal` says why one cannot (see docs/materialize.md).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from objspec.runtime.collator import SPEC_DEFAULT
from objspec.runtime.layout import (
    POSITION_OUTPUTS,
    SQUARE_OUTPUTS,
    fill_value,
    group_of,
    pad_to_multiple,
    to_left_padding,
)
from objspec.runtime.packing import pack_rows
from objspec.runtime.tasks import base_key, per_task, split_tasks, task_names, under

MANIFEST = "manifest.json"
FORMAT = 1
KEY_COLUMN = "example_key"
INDEX_COLUMN = "index"

__all__ = [
    "MANIFEST",
    "MaterializeError",
    "MaterializedCollator",
    "epoch_folder",
    "load_epoch",
    "materialize",
    "read_manifest",
    "refusal",
    "unpad",
]


class MaterializeError(ValueError):
    """An objective that cannot be materialized faithfully, or materialized rows read with a
    collator that is not the one they were written with: one line."""


# --------------------------------------------------------------------------------------------
# what can be materialized


def refusal(collator: Any) -> str | None:
    """Why ``collator``'s rows cannot be materialized (one line), or None when each example's
    outputs depend on that example alone (its key, the seed and the epoch). Packing is no
    reason: the rows are written unpacked and packed when read, as the live collator packs."""
    name = spec_name(collator)
    source = getattr(_module(collator), "SPEC_SOURCE", None)
    if source is None:
        return f"{name}: not a compiled objspec collator (no SPEC_SOURCE)"
    from objspec.parser import parse_spec

    for objective in _objectives(parse_spec(source)):
        pair = getattr(objective, "pair", None)
        if pair is not None and any(s.relation == "random" and s.share > 0 for s in pair.shares):
            return (
                f"{name}: its sentence-pair task takes a random partner's segment from another "
                "row of the same batch, so a row depends on its batch (a fixed partner would "
                "not be the objective); collate it on the fly"
            )
    return None


def _objectives(spec: Any) -> list[Any]:
    """The objectives of a parsed spec: itself, or each member of a mixture."""
    members = getattr(spec, "members", None)
    if members is None:
        return [spec]
    return [o for m in members for o in _objectives(m.objective)]


class _Globals:
    """A generated module's globals (``SPEC_SOURCE``, ``SPEC_SHA256``, ...) as attributes."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.__dict__.update(values)


def _module(collator: Any) -> Any:
    """The generated module of ``collator``'s class (read through its ``corrupt``'s globals:
    a generated module is not in ``sys.modules``)."""
    corrupt = getattr(type(collator), "corrupt", None)
    return _Globals(getattr(corrupt, "__globals__", {}))


def spec_name(collator: Any) -> str:
    return str(getattr(_module(collator), "SPEC_NAME", type(collator).__name__))


def _own_widths(collator: Any) -> bool:
    """Whether a row's width may differ from what its group's mask says (a (B, P) positions
    key is sized from the row lengths): then each row is collated alone, and its own width is
    kept."""
    tasks = task_names(collator.outputs)
    return any(base_key(k, tasks) in POSITION_OUTPUTS for k in collator.outputs)


# --------------------------------------------------------------------------------------------
# identities recorded in (and checked against) the manifest


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def vocab_sha256(vocab: Any) -> str:
    """A hash of everything the collator reads of its vocabulary (size, special ids and
    tokens, word starts)."""
    names = [f.name for f in dataclasses.fields(vocab) if not f.name.startswith("_")]
    fields = {name: getattr(vocab, name) for name in names}
    return _sha256(json.dumps(fields, sort_keys=True, default=list).encode())


def tables_sha256(collator: Any) -> str:
    """A hash of the run-time inputs the corruption reads: ``token_counts`` and ``tables``."""
    digest = hashlib.sha256()
    parts: list[tuple[str, Any]] = [("token_counts", collator.token_counts)]
    parts += sorted(collator.tables.items())
    for name, value in parts:
        digest.update(name.encode())
        if value is not None:
            array = torch.as_tensor(value).detach().cpu().contiguous()
            digest.update(str(array.dtype).encode() + str(tuple(array.shape)).encode())
            digest.update(array.numpy().tobytes())
    return digest.hexdigest()


def identity(collator: Any) -> dict[str, Any]:
    """What the rows depend on besides the examples: checked on read."""
    from objspec import __version__

    module = _module(collator)
    return {
        "spec": spec_name(collator),
        "spec_sha256": getattr(module, "SPEC_SHA256", None),
        "collator": type(collator).__name__,
        "objspec_version": __version__,
        "seed": collator.seed,
        "vocab_sha256": vocab_sha256(collator.vocab),
        "tables_sha256": tables_sha256(collator),
        "decoder_start_id": collator.decoder_start_id,
        "max_length": collator.max_length,
        "max_target_length": collator.max_target_length,
        "pad_id": collator.pad_id,
        "decoder_only": bool(collator.decoder_only),
    }


CHECKED = {
    "spec_sha256": "spec",
    "collator": "collator class (batch form)",
    "seed": "seed",
    "vocab_sha256": "vocabulary",
    "tables_sha256": "run-time tables (token_counts, tables)",
    "decoder_start_id": "decoder_start_id",
    "max_length": "max_length",
    "max_target_length": "max_target_length",
}


def check_manifest(manifest: Mapping[str, Any], collator: Any, where: str = "") -> None:
    """A MaterializeError naming the first way ``collator`` differs from the one that wrote
    ``manifest`` (its spec, seed, vocabulary, tables or lengths)."""
    if manifest.get("format") != FORMAT:
        raise MaterializeError(f"{where or 'rows'}: not an objspec materialization (format)")
    mine = identity(collator)
    for key, what in CHECKED.items():
        if manifest.get(key) != mine[key]:
            raise MaterializeError(
                f"{where or 'rows'} were materialized with another {what} "
                f"({manifest.get(key)!r}) than this collator's ({mine[key]!r}); "
                "rematerialize or use the collator they were written with"
            )


# --------------------------------------------------------------------------------------------
# unpadding and padding


def unpad(out: dict[str, torch.Tensor]) -> list[dict[str, torch.Tensor]]:
    """Each row of a right-padded collated batch cut to its own extent (see
    :func:`unpad_batch`); a composition's tasks each cut as the batch of their own they are."""
    own, tasks = split_tasks(out)
    rows = unpad_batch(own)
    for task, keys in tasks.items():
        for row, part in zip(rows, unpad_batch(keys), strict=True):
            row.update(under(task, part))
    return rows


def unpad_batch(out: dict[str, torch.Tensor]) -> list[dict[str, torch.Tensor]]:
    """Each row of a right-padded batch cut to its own extent: a row-shaped key to its
    group's length (the row's ``<group>attention_mask`` sum; (L, L) keys in both dimensions),
    a positions key to its entries before the first -1, a per-example key as its value; any
    other key (fixed width) whole."""
    lengths = {
        key: out[key].sum(dim=1).tolist()
        for key in out
        if key.endswith("attention_mask") and out[key].dim() == 2
    }
    rows: list[dict[str, torch.Tensor]] = [{} for _ in range(len(out["input_ids"]))]
    for key, value in out.items():
        prefix = group_of(key, out)
        if prefix is not None:
            widths = lengths[f"{prefix}attention_mask"]
            for b, n in enumerate(widths):
                rows[b][key] = value[b, :n, :n] if key in SQUARE_OUTPUTS else value[b, :n]
        elif key in POSITION_OUTPUTS:
            counts = (value >= 0).int().cumprod(dim=1).sum(dim=1).tolist()
            for b, n in enumerate(counts):
                rows[b][key] = value[b, :n]
        else:
            for b in range(len(rows)):
                rows[b][key] = value[b]
    return rows


def _columns(out: Mapping[str, torch.Tensor]) -> list[dict[str, Any]]:
    """The manifest's description of each output key, in the live batch's order."""
    return [
        {"name": key, "dtype": str(value.dtype).removeprefix("torch."), "dim": value.dim()}
        for key, value in out.items()
    ]


def pad_rows(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[Mapping[str, Any]], pad_id: int
) -> dict[str, torch.Tensor]:
    """The right-padded batch of ``rows`` (each key's values as :func:`unpad` cut them), each
    key as wide as its widest row, padded with its layout fill value."""
    out: dict[str, torch.Tensor] = {}
    tasks = task_names(column["name"] for column in columns)
    for column in columns:
        key, dim = column["name"], column["dim"]
        dtype = getattr(torch, column["dtype"])
        values = [torch.as_tensor(np.asarray(r[key]), dtype=dtype) for r in rows]
        if dim == 1:
            out[key] = torch.stack(values) if values else torch.zeros(0, dtype=dtype)
            continue
        width = max((v.shape[0] for v in values), default=0)
        square = base_key(key, tasks) in SQUARE_OUTPUTS
        fill = fill_value(base_key(key, tasks), pad_id)  # a task's key pads as the key it names
        tail = next((tuple(v.shape[1:]) for v in values if v.shape[0]), None)
        if square:
            tail = (width,)
        elif tail is None:
            tail = (0,) * (dim - 2)
        grid = torch.full((len(values), width, *tail), fill, dtype=dtype)
        for b, v in enumerate(values):
            n = v.shape[0]
            if square:
                grid[b, :n, :n] = v.reshape(n, n)
            else:
                grid[b, :n] = v.reshape(n, *tail)
        out[key] = grid
    return out


class MaterializedCollator:
    """Pads a list of materialized rows into the batch the live collator gives for the same
    examples in the same order (keys, dtypes, values: bit for bit): ``DataLoader(dataset,
    collate_fn=MaterializedCollator(manifest, live))``. ``padding_side`` and
    ``pad_to_multiple_of`` are the live collator's unless given, and so is ``pack``: the rows
    are packed as the live collator packs its corrupted examples."""

    def __init__(
        self,
        manifest: Mapping[str, Any],
        collator: Any = None,
        *,
        padding_side: str | None = None,
        pad_to_multiple_of: int | None = None,
        pack: Any = SPEC_DEFAULT,
    ) -> None:
        if collator is not None:
            check_manifest(manifest, collator)
            padding_side = padding_side or collator.padding_side
            pad_to_multiple_of = pad_to_multiple_of or collator.pad_to_multiple_of
            pack = collator.pack if pack is SPEC_DEFAULT else pack
        if pack is SPEC_DEFAULT:
            pack = None
        if padding_side not in (None, "right", "left"):
            raise ValueError(f"padding_side must be 'right' or 'left', got {padding_side!r}")
        self.columns = list(manifest["columns"])
        self.pad_id = int(manifest["pad_id"])
        self.padding_side = padding_side or "right"
        self.pad_to_multiple_of = pad_to_multiple_of
        self.pack = pack
        self.decoder_only = bool(manifest.get("decoder_only", False))

    def __call__(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        out = pad_rows(rows, self.columns, self.pad_id)
        if self.pack is not None:
            out = pack_rows(out, self.pack, self.pad_id, self.decoder_only)
        if self.pad_to_multiple_of is not None:
            multiple = self.pad_to_multiple_of
            out = per_task(out, lambda part: pad_to_multiple(part, multiple, self.pad_id))
        return per_task(out, to_left_padding) if self.padding_side == "left" else out


# --------------------------------------------------------------------------------------------
# writing


class _Corrupt:
    """The ``Dataset.map`` function of one epoch: a batch of examples in, one row per example
    out (picklable: the collator pickles by its generated source)."""

    def __init__(self, collator: Any, columns: list[dict[str, Any]] | None) -> None:
        self.collator = collator
        self.own_widths = _own_widths(collator)
        self.columns = columns

    def examples(self, batch: Mapping[str, list[Any]]) -> list[dict[str, Any]]:
        """The examples as the live collator gets them from the dataset: every column (the
        fields it does not read pass through into its outputs, and so into the rows)."""
        names = list(batch)
        size = len(batch[names[0]]) if names else 0
        return [{k: batch[k][i] for k in names} for i in range(size)]

    def rows(self, examples: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict]:
        """(each example's row, the live batch) of a list of examples."""
        out = self.collator(examples)
        if self.own_widths:  # each row as collated alone: its own width, padding and all
            rows = [{k: v[0] for k, v in self.collator([e]).items()} for e in examples]
        else:
            rows = unpad(out)
        return rows, out

    def __call__(self, batch: Mapping[str, list[Any]]) -> dict[str, list[Any]]:
        from objspec.runtime.batch import read_batch

        examples = self.examples(batch)
        rows, out = self.rows(examples)
        columns = self.columns or _columns(out)
        again = pad_rows(rows, columns, self.collator.pad_id)  # the promise, checked as written
        for column in columns:
            key = column["name"]
            if key not in out or not torch.equal(again[key], out[key]):
                raise MaterializeError(
                    f"cannot materialize {spec_name(self.collator)}: its output {key!r} holds "
                    "row-dependent values in padded columns (not a fill value) or is wider "
                    "than its longest row, so a padded batch cannot be rebuilt from unpadded "
                    "rows; collate it on the fly"
                )
        if set(out) != {c["name"] for c in columns}:
            raise MaterializeError(
                f"{spec_name(self.collator)}: its batches do not all have the same keys "
                f"({', '.join(out)}); give every example the same fields"
            )
        keys = read_batch(examples, self.collator.vocab.pad_id).index
        result: dict[str, list[Any]] = {KEY_COLUMN: keys.tolist()}
        if INDEX_COLUMN in batch:
            result[INDEX_COLUMN] = list(batch[INDEX_COLUMN])
        for column in columns:
            key = column["name"]
            result[key] = [r[key].numpy() if r[key].dim() else r[key].item() for r in rows]
        return result


def _check_alone(collator: Any, examples: list[dict[str, Any]]) -> None:
    """Each of ``examples`` cut from their batch as it is collated alone (the premise of
    cutting rows by their lengths), else a MaterializeError naming the output."""
    if _own_widths(collator):
        return  # rows are collated alone already
    for example, row in zip(examples, unpad(collator(examples)), strict=True):
        alone = collator([example])
        for key, value in alone.items():
            got = row.get(key)
            if not isinstance(got, torch.Tensor) or not torch.equal(value[0], got):
                raise MaterializeError(
                    f"cannot materialize {spec_name(collator)}: its output {key!r} for an "
                    "example collated alone is not the example's row cut from a batch (the "
                    "row depends on its batch); collate it on the fly"
                )


def epoch_folder(out: str | Path, epoch: int) -> Path:
    return Path(out) / f"epoch-{epoch}"


def materialize(
    collator: Any,
    examples: Any,
    out: str | Path,
    epochs: Sequence[int],
    *,
    batch_size: int = 256,
    num_proc: int | None = None,
    rows_per_shard: int = 100_000,
) -> list[Path]:
    """Write the corruption of ``examples`` (a ``datasets.Dataset`` of examples, or a list of
    example dicts) by ``collator`` at each epoch of ``epochs`` under ``out/epoch-<e>/``:
    Parquet shards of ``rows_per_shard`` rows and a ``manifest.json``. Returns the epoch
    folders. A MaterializeError (one line) for an objective whose rows depend on their batch."""
    import datasets

    reason = refusal(collator)
    if reason is not None:
        raise MaterializeError(f"cannot materialize {reason}")
    collator = collator.with_epoch(epochs[0] if len(epochs) else 0)  # a copy of its own
    collator.pack = None  # rows unpacked: packed when read (MaterializedCollator)
    if not isinstance(examples, datasets.Dataset):
        examples = datasets.Dataset.from_list([dict(e) for e in examples])
    if len(examples) == 0:
        raise MaterializeError("no examples to materialize")
    probe = _Corrupt(collator, None)
    first = probe.examples(examples[: min(len(examples), 16)])
    columns = _columns(probe.rows(first)[1])
    _Corrupt(collator, columns)(examples[: min(len(examples), 16)])  # refused before any map
    _check_alone(collator, first)
    folders = []
    for epoch in epochs:
        live = collator.with_epoch(epoch)
        mapped = examples.map(
            _Corrupt(live, columns),
            batched=True,
            batch_size=batch_size,
            num_proc=num_proc if num_proc and num_proc > 1 else None,
            remove_columns=examples.column_names,
            load_from_cache_file=False,
            new_fingerprint=_sha256(  # the function's own hash: no pickling-hash warning
                json.dumps([examples._fingerprint, identity(live), epoch, batch_size]).encode()
            )[:32],
            desc=f"epoch {epoch}",
        )
        folder = epoch_folder(out, epoch)
        folder.mkdir(parents=True, exist_ok=True)
        shards = max(1, -(-len(mapped) // rows_per_shard))
        names = []
        for i in range(shards):
            name = f"part-{i:05d}-of-{shards:05d}.parquet"
            mapped.shard(shards, i, contiguous=True).to_parquet(str(folder / name))
            names.append(name)
        manifest = {
            "format": FORMAT,
            **identity(live),
            "epoch": epoch,
            "mask_epoch": live.mask_epoch(),
            "rows": len(mapped),
            "columns": columns,
            "row_columns": mapped.column_names,
            "shards": names,
        }
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        folders.append(folder)
    return folders


# --------------------------------------------------------------------------------------------
# reading


def read_manifest(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / MANIFEST
    try:
        manifest: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        raise MaterializeError(f"{folder}: no {MANIFEST} (not a materialized epoch)") from None
    except json.JSONDecodeError as exc:
        raise MaterializeError(f"{path}: not valid JSON ({exc})") from None
    return manifest


def load_epoch(
    out: str | Path, epoch: int, collator: Any, **kwargs: Any
) -> tuple[Any, MaterializedCollator]:
    """(the epoch's rows as a ``datasets.Dataset``, the collate function that pads them as
    ``collator`` would): its manifest is checked against ``collator`` first (spec, seed,
    vocabulary, tables: a MaterializeError names what differs). ``kwargs`` go to
    :class:`MaterializedCollator` (``padding_side``, ``pad_to_multiple_of``)."""
    import datasets

    folder = epoch_folder(out, epoch)
    manifest = read_manifest(folder)
    check_manifest(manifest, collator, str(folder))
    if manifest.get("epoch") != epoch:
        raise MaterializeError(f"{folder}: holds epoch {manifest.get('epoch')}, not {epoch}")
    files = [str(folder / name) for name in manifest["shards"]]
    rows = datasets.Dataset.from_parquet(files) if files else None
    return rows, MaterializedCollator(manifest, collator, **kwargs)

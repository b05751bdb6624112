"""The examples of a run: the bundled corpus, ``--text`` files or a ``--dataset`` folder,
packed to ``max_length`` tokens with their ``word_ids`` and ``sentence_ids``; an evaluation
set split off by documents; the per-step data order."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from objspec import bundled
from objspec.runtime.distributed import shard
from objspec.runtime.rng import hash32, stream_key

ORDER_STREAM = 0  # the data order's key; stream 0 is never a corruption stream


class DataError(ValueError):
    """A corpus or dataset that cannot be read or split as asked (one line)."""


@lru_cache(maxsize=2)
def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """(n,) int64: the order of the examples in ``epoch``, a permutation keyed by (seed,
    epoch) alone (every rank computes the same one). Cached: every step of an epoch reads it,
    and sorting the whole corpus each step would cost O(n log n) per batch. Read-only."""
    key = stream_key(seed, epoch, ORDER_STREAM)
    return torch.argsort(hash32(torch.arange(n, dtype=torch.int64) ^ key), stable=True)


def step_indices(step: int, n: int, batch_size: int, seed: int) -> tuple[int, torch.Tensor]:
    """(epoch, this rank's example indices) of global batch ``step``: epochs of ``n //
    batch_size`` full batches (the last partial batch dropped, as drop_last), then this rank's
    interleaved shard."""
    per_epoch = n // batch_size
    epoch, k = divmod(step, per_epoch)
    order = epoch_order(n, seed, epoch)[k * batch_size : (k + 1) * batch_size]
    return epoch, shard(order)


def micro_batches(indices: torch.Tensor, count: int) -> list[list[int]]:
    """This rank's indices of one step cut into ``count`` consecutive micro-batches."""
    size = len(indices) // count
    values = indices.tolist()
    return [values[i * size : (i + 1) * size] for i in range(count)]


class Rows(Sequence[dict[str, Any]]):
    """A prepared ``datasets.Dataset`` read as a list of example dicts (rows on demand)."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return Rows(self.dataset.select(range(*i.indices(len(self)))))
        return self.dataset[int(i)]


class ExampleSet(torch.utils.data.Dataset):
    """Examples for a DataLoader: ``dataset[i]`` is example i."""

    def __init__(self, examples: Sequence[dict[str, Any]]) -> None:
        self.examples = examples

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.examples[i]


def eval_count(documents: int, fraction: float) -> int:
    """How many of ``documents`` go to evaluation: ceil(fraction x documents), at least one
    when the fraction is positive, never all of them."""
    if fraction <= 0:
        return 0
    count = max(1, math.ceil(fraction * documents))
    if count >= documents:
        raise DataError(f"--eval-fraction {fraction:g} leaves no training document of {documents}")
    return count


def text_documents(files: Sequence[str]) -> list[list[str]]:
    """The bundled corpus, or the ``--text`` files' documents (one sentence per line, blank
    lines between documents)."""
    if files:
        return [doc for path in files for doc in bundled.load_documents(path)]
    return bundled.load_documents()


def encode(
    tokenizer: Any, documents: Sequence[Sequence[str]], max_length: int, parallel: bool
) -> list[dict[str, Any]]:
    if parallel:  # translation pairs: see bundled.parallel_examples
        return bundled.parallel_examples(tokenizer, max_length, documents)
    return [dict(e) for e in bundled.encode_examples(tokenizer, documents, max_length)]


def load_text(
    tokenizer: Any, files: Sequence[str], max_length: int, fraction: float, parallel: bool
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(training, evaluation) examples of the text corpus; the last ``fraction`` of its
    documents are the evaluation set."""
    documents = text_documents(files)
    held = eval_count(len(documents), fraction)
    train = documents[: len(documents) - held]
    held_out = documents[len(documents) - held :]
    return (
        encode(tokenizer, train, max_length, parallel),
        encode(tokenizer, held_out, max_length, parallel) if held else [],
    )


def load_dataset_folder(
    path: str,
    tokenizer: Any,
    max_length: int,
    *,
    text_column: str,
    train_split: str,
    eval_split: str | None,
    fraction: float,
    language: str,
    workers: int,
) -> tuple[Rows, Rows | list[dict[str, Any]]]:
    """(training, evaluation) rows of a folder written by ``save_to_disk``: a ``Dataset``, or
    a ``DatasetDict`` whose ``train_split`` trains and ``eval_split`` (if named) evaluates;
    otherwise the last ``fraction`` of the training documents evaluate. Each document (a str,
    split into sentences by sentencex, or a list of sentences) is prepared by
    :func:`objspec.data.prepare_dataset` (``word_ids``, ``sentence_ids``, ``index``); a
    dataset that already has ``input_ids`` and no ``text_column`` (such rows, saved) is used
    as it is (its fraction then counts rows)."""
    try:
        import datasets
    except ImportError:  # pragma: no cover - depends on the environment
        raise DataError(
            "--dataset needs the 'datasets' package: pip install 'objspec[data]'"
        ) from None
    from objspec.data import prepare_dataset

    folder = Path(path)
    if not folder.is_dir():
        raise DataError(f"--dataset {path}: no such folder (one written by save_to_disk)")
    try:
        loaded = datasets.load_from_disk(str(folder))
    except (FileNotFoundError, ValueError, OSError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"--dataset {path}: not a saved dataset ({reason[:200]})") from None
    if isinstance(loaded, datasets.DatasetDict):
        if train_split not in loaded:
            raise DataError(
                f"--dataset {path} has no split {train_split!r} (splits: {', '.join(loaded)})"
            )
        train = loaded[train_split]
        held = None
        if eval_split is not None:
            if eval_split not in loaded:
                raise DataError(
                    f"--dataset {path} has no split {eval_split!r} (splits: {', '.join(loaded)})"
                )
            held = loaded[eval_split]
    else:
        if eval_split is not None:
            raise DataError(f"--eval-split {eval_split}: {path} is one dataset, not a DatasetDict")
        train, held = loaded, None
    prepared_already = "input_ids" in train.column_names and text_column not in train.column_names
    if not prepared_already and text_column not in train.column_names:
        raise DataError(
            f"--dataset {path}: no column {text_column!r} "
            f"(columns: {', '.join(train.column_names)})"
        )
    if held is None and fraction > 0:
        count = eval_count(len(train), fraction)
        held = train.select(range(len(train) - count, len(train)))
        train = train.select(range(len(train) - count))

    def prepared(part: Any) -> Rows:
        if prepared_already:  # rows of objspec.data.prepare_dataset, saved: used as they are
            return Rows(part.with_format(None))
        rows = prepare_dataset(
            part,
            tokenizer,
            max_length,
            text_column=text_column,
            language=language,
            num_proc=workers if workers > 1 else None,
            keep_in_memory=True,  # no cache files written into the user's dataset folder
        )
        return Rows(rows.with_format(None))

    return prepared(train), (prepared(held) if held is not None else [])


def token_counts(examples: Sequence[dict[str, Any]], size: int) -> list[int]:
    """How often each id occurs in ``examples`` (a spec's frequency table on a corpus of one's
    own)."""
    counts = torch.zeros(size, dtype=torch.int64)
    for example in examples:
        ids = torch.as_tensor(example["input_ids"], dtype=torch.int64)
        counts += torch.bincount(ids, minlength=size)[:size]
    return counts.tolist()


def chunks(n: int, size: int) -> Iterator[range]:
    for start in range(0, n, size):
        yield range(start, min(start + size, n))

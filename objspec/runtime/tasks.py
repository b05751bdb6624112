"""A composition of several row tasks: each task's outputs are a batch of their own, under its
name (``mlm.input_ids``, ``mlm.labels``, ``simcse.view_input_ids``), beside the batch's own
keys, which are the rows every task read (``input_ids``, ``attention_mask``, the pair task's
``token_type_ids`` and label).

A task's keys are a complete batch (its own ``attention_mask`` included), so the layout steps
(width, padding side) run on each namespace as on any batch, and the heads run the model on
each task's batch (:func:`task_batch`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

SEPARATOR = "."
TASK_INPUTS = SEPARATOR + "input_ids"


def under(task: str, out: dict[str, Any]) -> dict[str, Any]:
    """``out``'s keys under the name ``task`` (``labels`` -> ``task.labels``)."""
    return {f"{task}{SEPARATOR}{key}": value for key, value in out.items()}


def task_names(keys: Iterable[str]) -> frozenset[str]:
    """The tasks whose batches a batch holds: each name whose ``name.input_ids`` is a key (a
    task's batch always has its input_ids). Any other key with a dot in it (a dataset's
    ``src.tags``, passed through) is the batch's own."""
    return frozenset(
        key[: -len(TASK_INPUTS)] for key in keys if key.endswith(TASK_INPUTS) and key != "input_ids"
    )


def task_of(key: str, tasks: frozenset[str]) -> str | None:
    """The task (of ``tasks``) a batch key belongs to, or None for the batch's own keys."""
    task, separator, _ = key.partition(SEPARATOR)
    return task if separator and task in tasks else None


def base_key(key: str, tasks: frozenset[str]) -> str:
    """The key a task's key names (``mlm.labels`` -> ``labels``); a batch's own key itself."""
    task = task_of(key, tasks)
    return key if task is None else key[len(task) + 1 :]


def split_tasks(out: dict[str, Any]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The batch's own keys, and each task's keys without its name, in order."""
    names = task_names(out)
    own: dict[str, Any] = {}
    tasks: dict[str, dict[str, Any]] = {}
    for key, value in out.items():
        task = task_of(key, names)
        if task is None:
            own[key] = value
        else:
            tasks.setdefault(task, {})[key[len(task) + 1 :]] = value
    return own, tasks


def per_task(
    out: dict[str, Any], layout: Callable[[dict[str, Any]], dict[str, Any]]
) -> dict[str, Any]:
    """``layout`` applied to the batch's own keys and to each task's batch apart (padding,
    widths, the padding side), the names kept."""
    own, tasks = split_tasks(out)
    if not tasks:
        return layout(out)
    laid = layout(own)
    for task, keys in tasks.items():
        laid.update(under(task, layout(keys)))
    return laid


def task_batch(batch: dict[str, Any], task: str) -> dict[str, Any]:
    """The batch a task's heads read: the batch's own keys (the rows, the pair's
    ``token_type_ids``), overridden by the task's (``task.input_ids`` -> ``input_ids``)."""
    own, tasks = split_tasks(batch)
    if task not in tasks:
        raise KeyError(f"the batch has no task {task!r}: its tasks are {sorted(tasks)}")
    return own | tasks[task]

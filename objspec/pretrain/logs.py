"""What a run writes about itself: ``losses.csv`` and ``losses.png`` (training), ``eval.csv``
(evaluation), TensorBoard event files under ``OUT/tensorboard`` (``--log tensorboard``) and a
one-line sparkline of the curve."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

LOGS = ("csv", "tensorboard")


def write_rows(rows: Sequence[dict[str, float]], path: Path) -> None:
    """``rows`` as a CSV file (the step as an integer, losses to 6 significant digits)."""
    if not rows:
        return
    keys = list(rows[0])
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: int(v) if k == "step" else f"{v:.6g}" for k, v in row.items()})


def write_curve(
    rows: Sequence[dict[str, float]],
    out: Path,
    eval_rows: Sequence[dict[str, float]] = (),
    plot: bool = True,
) -> None:
    """``losses.csv``, ``eval.csv`` (when there is an evaluation set) and, with matplotlib
    installed and ``plot`` set, ``losses.png`` of the run so far."""
    if not rows:
        return
    write_rows(rows, out / "losses.csv")
    write_rows(eval_rows, out / "eval.csv")
    if not plot:
        return
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # the curve is in the CSV; the PNG needs the 'pretrain' extra
        return
    keys = list(rows[0])
    fig, ax = plt.subplots(figsize=(7, 4))
    steps = [r["step"] for r in rows]
    for key in keys[1:]:
        ax.plot(steps, [r[key] for r in rows], label=key, linewidth=2 if key == "loss" else 1)
    if eval_rows:
        ax.plot(
            [r["step"] for r in eval_rows],
            [r["loss"] for r in eval_rows],
            "o-",
            label="eval loss",
            linewidth=2,
        )
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "losses.png", dpi=100)
    plt.close(fig)


class TensorBoard:
    """Scalars to TensorBoard event files in ``folder`` (``train/loss``, ``train/<head>``,
    ``train/lr``, ``eval/loss``, ...). A resumed run purges the events after its step, so a
    curve never shows the steps of a run that was cut short twice."""

    def __init__(self, folder: Path, purge_step: int | None = None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer: Any = SummaryWriter(str(folder), purge_step=purge_step)

    def scalars(self, prefix: str, row: dict[str, float], step: int) -> None:
        for key, value in row.items():
            if key != "step":
                self.writer.add_scalar(f"{prefix}/{key}", value, step)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def tensorboard_missing() -> str | None:
    """Why TensorBoard logging cannot run here, or None."""
    try:
        import tensorboard  # noqa: F401
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        return "--log tensorboard needs the 'tensorboard' package: pip install 'objspec[pretrain]'"
    return None


SPARKS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float], width: int = 60) -> str:
    """The curve as one line of block characters (``width`` buckets, each a mean)."""
    if not values:
        return ""
    buckets = min(width, len(values))
    means = []
    for b in range(buckets):
        part = values[b * len(values) // buckets : (b + 1) * len(values) // buckets]
        means.append(sum(part) / len(part))
    low, high = min(means), max(means)
    span = (high - low) or 1.0
    return "".join(SPARKS[int((m - low) / span * (len(SPARKS) - 1))] for m in means)

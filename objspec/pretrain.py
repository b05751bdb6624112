"""``objspec pretrain``: train a tiny model with a spec's compiled collator and heads.

Everything random is a function of the seed: the data order of epoch e is a permutation keyed
by (seed, e), the corruption of an example by (seed, e, its index) and ELECTRA's samples by
(seed, e, index, position). So a run resumed from a checkpoint sees exactly the batches the
uninterrupted run would have, and under ``torchrun`` each rank takes an interleaved shard of
every global batch, each example corrupted exactly as a one-process run corrupts it.

Files written to ``out``: ``losses.csv`` (step, total and per-head losses, averaged over the
ranks), ``losses.png`` (the curve), ``checkpoint.pt`` (model, heads, optimizer, step, losses,
the content hashes of the spec and the text) and ``rng-rank{r}-step{s}.pt`` (each rank's
generator state at step s).

Checkpoints are written atomically (a temporary file in the same folder, fsync, rename): a run
killed while writing keeps its previous checkpoint, and each rank's RNG file of step s is
written before the checkpoint that names s, so a checkpoint never exists without the state it
needs. They are loaded with ``torch.load(weights_only=True)``: a checkpoint runs no code.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import os
import pickle
import signal
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from objspec import CompiledObjective, bundled, compile_file
from objspec.runtime import TinyEncoder, TinySeq2Seq, Vocab
from objspec.runtime.distributed import shard, world
from objspec.runtime.rng import hash32, stream_key

ORDER_STREAM = 0  # the data order's key; stream 0 is never a corruption stream


@dataclass
class PretrainConfig:
    """What a run trains, on what, and where it writes. ``batch_size`` is the global batch
    (split over the ranks under torchrun)."""

    spec: str
    out: str = "runs/pretrain"
    steps: int = 200
    batch_size: int = 32
    lr: float = 1e-3
    seed: int = 0
    max_length: int = 64
    hidden_size: int = 64
    layers: int = 2
    heads: int = 4
    dropout: float = 0.1
    clip: float = 1.0
    checkpoint_every: int = 50
    text: list[str] = field(default_factory=list)
    device: str = "cpu"
    limit: int | None = None  # train on the corpus' first ``limit`` examples only


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


def load_examples(config: PretrainConfig, compiled: CompiledObjective) -> list[dict[str, Any]]:
    """The training examples: the bundled corpus or the user's text files (one sentence per
    line, documents separated by blank lines), packed to ``max_length`` tokens."""
    tokenizer = bundled.load_tokenizer()
    documents = (
        [doc for path in config.text for doc in bundled.load_documents(path)]
        if config.text
        else bundled.load_documents()
    )
    if "langs" in compiled.Collator.outputs:  # translation pairs: see parallel_examples
        return bundled.parallel_examples(tokenizer, config.max_length, documents)
    return [dict(e) for e in bundled.encode_examples(tokenizer, documents, config.max_length)]


def build_model(compiled: CompiledObjective, vocab: Vocab, config: PretrainConfig) -> nn.Module:
    """The tiny reference model the batch form needs: encoder-decoder for decoder targets."""
    seq2seq = "decoder_input_ids" in compiled.Collator.outputs
    model_class = TinySeq2Seq if seq2seq else TinyEncoder
    return model_class(
        vocab.size,
        hidden_size=config.hidden_size,
        layers=config.layers,
        heads=config.heads,
        max_length=4 * config.max_length,  # room for joined translation pairs
        dropout=config.dropout,
    )


RESUME_FIXED = (
    "seed",
    "batch_size",
    "max_length",
    "hidden_size",
    "layers",
    "heads",
    "limit",
)  # what a resumed run must share with the checkpoint's (beside the spec's and text's contents)
CHECKPOINT_KEYS = ("config", "sources", "step", "heads", "optimizer", "rows")


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed from (unreadable, foreign, another run's)."""


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def source_hashes(config: PretrainConfig) -> dict[str, Any]:
    """The contents a run trains on: the spec's sha256 and each text file's, in order."""
    return {"spec": file_sha256(config.spec), "text": [file_sha256(t) for t in config.text]}


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


class StopRequests:
    """SIGINT and SIGTERM while training: note the signal, let the step finish (the run then
    checkpoints and stops). ``signal_number`` is the first one received, or None."""

    def __init__(self) -> None:
        self.signal_number: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopRequests:
        for number in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):  # not the main thread: signals stay as they are
                self._previous[number] = signal.signal(number, self._note)
        return self

    def _note(self, number: int, frame: Any) -> None:
        self.signal_number = self.signal_number or number

    def __exit__(self, *exc: object) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)


class Pretrainer:
    """A training run: the compiled collator and heads around the tiny model, the data order,
    checkpoints. ``batch(step)`` is the collated batch of global step ``step`` on this rank."""

    def __init__(self, config: PretrainConfig) -> None:
        if config.steps < 0 or config.batch_size < 1 or config.checkpoint_every < 1:
            raise ValueError("steps must be >= 0, batch_size and checkpoint_every >= 1")
        if config.hidden_size < 1 or config.heads < 1 or config.hidden_size % config.heads:
            raise ValueError(
                f"hidden_size {config.hidden_size} must be a positive multiple of the "
                f"{config.heads} attention heads"
            )
        self.config = config
        self.rank, self.world_size = world()
        self.device = rank_device(config.device)
        if config.batch_size % self.world_size:
            raise ValueError(
                f"batch_size {config.batch_size} does not split over {self.world_size} ranks"
            )
        torch.manual_seed(config.seed)  # the same initial weights on every rank
        self.compiled = compile_file(config.spec)
        self.sources = source_hashes(config)
        # the special tokens the spec names by text (FIM's), added if the tokenizer lacks them
        tokenizer = bundled.with_special_tokens(
            bundled.load_tokenizer(), self.compiled.Collator.modes
        )
        self.vocab = Vocab.from_tokenizer(tokenizer)
        self.examples = load_examples(config, self.compiled)[: config.limit]
        if len(self.examples) < config.batch_size:
            raise ValueError(
                f"the corpus packs into {len(self.examples)} examples, fewer than one batch "
                f"of {config.batch_size}"
            )
        self.collator = self.compiled.Collator(
            self.vocab,
            seed=config.seed,
            device=self.device,
            **bundled.run_time_inputs(tokenizer, self.compiled.Collator.needs),
        )
        self.model = build_model(self.compiled, self.vocab, config)
        self.heads: nn.Module = self.compiled.Heads(self.model).to(self.device)
        self.trained: nn.Module = self.heads
        if self.world_size > 1:
            # the tiny model's token-type table is unused by single-segment objectives
            self.trained = nn.parallel.DistributedDataParallel(
                self.heads,
                device_ids=[self.device] if self.device.type == "cuda" else None,
                find_unused_parameters=True,
            )
        self.optimizer = torch.optim.Adam(self.heads.parameters(), lr=config.lr)
        self.step = 0
        self.rows: list[dict[str, float]] = []
        torch.manual_seed(config.seed + 1 + self.rank)  # dropout differs across ranks

    @property
    def out(self) -> Path:
        return Path(self.config.out)

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        """This rank's collated batch of global step ``step``."""
        epoch, indices = step_indices(
            step, len(self.examples), self.config.batch_size, self.config.seed
        )
        self.collator.set_epoch(epoch)
        return self.collator([self.examples[i] for i in indices.tolist()])

    def train_step(self) -> dict[str, float]:
        """One optimizer step on the next batch; the losses of that batch."""
        self.heads.train()
        losses = self.trained(self.batch(self.step))
        self.optimizer.zero_grad()
        losses["loss"].backward()
        nn.utils.clip_grad_norm_(self.heads.parameters(), self.config.clip)
        self.optimizer.step()
        logged = torch.stack([v.detach() for v in losses.values()])
        if self.world_size > 1:  # the mean over ranks: each rank's losses are of its shard
            dist.all_reduce(logged)
            logged /= self.world_size
        row = {"step": float(self.step), **dict(zip(losses, logged.tolist(), strict=True))}
        self.rows.append(row)
        self.step += 1
        return row

    def run(
        self,
        on_step: Callable[[dict[str, float]], None] | None = None,
        stop: StopRequests | None = None,
    ) -> list[float]:
        """Train up to ``config.steps``, checkpointing every ``checkpoint_every`` steps and at
        the end, or after the step during which ``stop`` noted a signal; the total losses of
        the steps run."""
        losses = []
        while self.step < self.config.steps:
            row = self.train_step()
            losses.append(row["loss"])
            if on_step is not None:
                on_step(row)
            stopping = self._stopping(stop)
            due = self.step % self.config.checkpoint_every == 0 or self.step == self.config.steps
            if stopping or due:
                self.save()
            if stopping:
                break
        return losses

    def _stopping(self, stop: StopRequests | None) -> bool:
        """Whether any rank was asked to stop (all ranks agree, so they stop at one step)."""
        asked = torch.tensor([float(stop is not None and stop.signal_number is not None)])
        if self.world_size > 1:
            dist.all_reduce(asked, op=dist.ReduceOp.MAX)
        return bool(asked.item())

    # --- checkpoints -----------------------------------------------------------------------
    def save(self) -> None:
        """Write this rank's RNG state of this step, then (rank 0) the checkpoint that names
        it and the loss curve, each atomically; older RNG files are removed after."""
        self.out.mkdir(parents=True, exist_ok=True)
        save_atomically(rng_state(), self._rng_path(self.step))
        if self.world_size > 1:
            dist.barrier()  # every rank's RNG file exists before the checkpoint names it
        if self.rank == 0:
            state = {
                "config": asdict(self.config),
                "sources": self.sources,
                "step": self.step,
                "heads": self.heads.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "rows": self.rows,
            }
            save_atomically(state, self.out / "checkpoint.pt")
            write_curve(self.rows, self.out)
        if self.world_size > 1:
            dist.barrier()
        for old in self.out.glob(f"rng-rank{self.rank}-step*.pt"):
            if old != self._rng_path(self.step):
                old.unlink(missing_ok=True)

    def _rng_path(self, step: int) -> Path:
        return self.out / f"rng-rank{self.rank}-step{step}.pt"

    def resume(self) -> bool:
        """Continue from ``out/checkpoint.pt`` if there is one (True when resumed). The spec's
        and text's contents, seed, batch size and model sizes must be the run's own, and this
        rank's RNG state of the checkpoint's step must be there; otherwise a CheckpointError
        says which."""
        path = self.out / "checkpoint.pt"
        if not path.exists():
            return False
        state = load_safely(path)
        if not isinstance(state, dict) or not set(CHECKPOINT_KEYS) <= state.keys():
            raise CheckpointError(f"{path} is not an objspec pretrain checkpoint")
        saved = state["config"]
        changed = [k for k in RESUME_FIXED if saved.get(k) != asdict(self.config)[k]]
        changed += [
            f"{k} contents" for k in ("spec", "text") if state["sources"].get(k) != self.sources[k]
        ]
        if changed:
            raise CheckpointError(
                f"{path} was written by a run with other {', '.join(changed)}; use another --out"
            )
        step = int(state["step"])
        rng = self._rng_path(step)
        if not rng.exists():
            raise CheckpointError(
                f"{rng} is missing: the run cannot resume exactly from step {step}"
            )
        self.heads.load_state_dict(state["heads"])
        self.optimizer.load_state_dict(state["optimizer"])
        for group in self.optimizer.param_groups:  # the run's own --lr, not the checkpoint's
            group["lr"] = self.config.lr
        self.step = step
        self.rows = list(state["rows"])
        set_rng_state(load_safely(rng))
        return True


def rank_device(device: str) -> torch.device:
    """The device of this rank: under torchrun, ``cuda`` means this rank's own GPU
    (``LOCAL_RANK``), made current for NCCL."""
    chosen = torch.device(device)
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but CUDA is not available here")
    if chosen.type == "cuda" and chosen.index is None and "LOCAL_RANK" in os.environ:
        chosen = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    if chosen.type == "cuda":
        torch.cuda.set_device(chosen)
    return chosen


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


def write_curve(rows: Sequence[dict[str, float]], out: Path) -> None:
    """``losses.csv`` and, with matplotlib installed, ``losses.png`` of the run so far."""
    if not rows:
        return
    keys = list(rows[0])
    with open(out / "losses.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: int(v) if k == "step" else f"{v:.6g}" for k, v in row.items()})
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # the curve is in the CSV; the PNG needs the 'pretrain' extra
        return
    fig, ax = plt.subplots(figsize=(7, 4))
    steps = [r["step"] for r in rows]
    for key in keys[1:]:
        ax.plot(steps, [r[key] for r in rows], label=key, linewidth=2 if key == "loss" else 1)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "losses.png", dpi=100)
    plt.close(fig)


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


def init_distributed() -> bool:
    """Join the process group torchrun describes (gloo on CPU, nccl on GPU); False when not
    launched by torchrun."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return False
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return True

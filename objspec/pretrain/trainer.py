"""The training run: :class:`Pretrainer` (the compiled collator and heads around the model,
the data order, the training step and its micro-batches, evaluation, checkpoints and resuming)
and the tiny reference model it trains without ``--model``. How the steps, their randomness and
the files written are defined: see :mod:`objspec.pretrain`."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from objspec import CompiledObjective, bundled, compile_file
from objspec.pretrain import hf
from objspec.pretrain.checkpoints import (
    STATE,
    CheckpointError,
    checkpoint_folder,
    latest,
    load_safely,
    partial_folder,
    publish,
    rng_state,
    rotate,
    save_atomically,
    set_rng_state,
)
from objspec.pretrain.config import RESUME_FIXED, PretrainConfig, check_config, source_hashes
from objspec.pretrain.data import (
    ExampleSet,
    chunks,
    load_dataset_folder,
    load_text,
    micro_batches,
    step_indices,
    token_counts,
)
from objspec.pretrain.logs import TensorBoard, tensorboard_missing, write_curve
from objspec.pretrain.optimization import lr_factor, parameter_groups
from objspec.pretrain.process import StopRequests, make_accelerator, rank_device
from objspec.runtime import TinyEncoder, TinySeq2Seq, Vocab
from objspec.runtime.distributed import world

IGNORE_INDEX = -100
CHECKPOINT_KEYS = ("config", "sources", "step", "heads", "optimizer", "rows")


class Pretrainer:
    """A training run: the compiled collator and heads around the model, the data order,
    evaluation, checkpoints. ``batch(step)`` is the collated batch of global step ``step`` on
    this rank."""

    def __init__(self, config: PretrainConfig) -> None:
        check_config(config)
        self.config = config
        # first: under torchrun or accelerate launch it joins the process group
        self.accelerator = make_accelerator(config)
        self.rank, self.world_size = world()
        self.device = rank_device(config.device)
        if config.batch_size % (self.world_size * config.grad_accum):
            raise ValueError(
                f"batch_size {config.batch_size} does not split over {self.world_size} ranks "
                f"x {config.grad_accum} micro-batches (--grad-accum)"
            )
        if config.log == "tensorboard" and (missing := tensorboard_missing()):
            raise ValueError(missing)
        torch.manual_seed(config.seed)  # the same initial weights on every rank
        self.compiled = compile_file(config.spec)
        collator_class = self.compiled.Collator
        self.tokenizer = hf.load_tokenizer(config.tokenizer, collator_class.modes)
        self.vocab = Vocab.from_tokenizer(self.tokenizer.data)
        self.model_source = hf.load_model_source(config.model) if config.model else None
        self.sources = source_hashes(config, self.tokenizer)
        self.examples, self.eval_examples = self._load_examples(collator_class)
        self.examples = self.examples[: config.limit]
        if len(self.examples) < config.batch_size:
            raise ValueError(
                f"the corpus packs into {len(self.examples)} examples, fewer than one batch "
                f"of {config.batch_size}"
            )
        built = self._build_model()
        self.module: nn.Module = built.module
        self.pretrained = built.pretrained
        self.also_saved = built.also_saved
        self.model_description = built.how
        self.collator = collator_class(
            self.vocab, seed=config.seed, device=self.device, **self._collator_options()
        )
        self.eval_collator = self.collator.with_epoch(0)
        optimizer = torch.optim.AdamW(
            parameter_groups(self.module, config.weight_decay), lr=config.lr, weight_decay=0.0
        )
        self.trained, self.optimizer = self.accelerator.prepare(self.module, optimizer)
        self.step = 0
        self.rows: list[dict[str, float]] = []
        self.eval_rows: list[dict[str, float]] = []
        self.resumed_from: Path | None = None
        self.last_checkpoint: Path | None = None
        self._board: TensorBoard | None = None
        torch.manual_seed(config.seed + 1 + self.rank)  # dropout differs across ranks

    # --- set-up ----------------------------------------------------------------------------
    def _load_examples(self, collator_class: Any) -> tuple[Any, Any]:
        config = self.config
        parallel = "langs" in collator_class.outputs
        fields = ", ".join(name for name, _ in collator_class.fields)
        if fields and (config.dataset is not None or config.text):
            raise ValueError(
                f"this spec reads per-token fields ({fields}) that objspec pretrain makes "
                "(as stand-ins) only for the bundled corpus; train it with your own loop on data "
                "that has them"
            )
        if config.dataset is not None:
            if parallel:
                raise ValueError("a translation spec (langs) reads --text or the bundled pairs")
            return load_dataset_folder(
                config.dataset,
                self.tokenizer.data,
                config.max_length,
                text_column=config.text_column,
                train_split=config.train_split,
                eval_split=config.eval_split,
                fraction=config.eval_fraction,
                language=config.language,
                workers=config.workers,
            )
        if config.eval_split is not None:
            raise ValueError("--eval-split names a split of --dataset; use --eval-fraction")
        if parallel and not self.tokenizer.bundled:
            raise ValueError("a translation spec (langs) runs with the bundled tokenizer")
        train, held = load_text(
            self.tokenizer.data, config.text, config.max_length, config.eval_fraction, parallel
        )
        if not fields:
            return train, held
        return (  # the bundled corpus: stand-in phrases and prompts (a demo)
            bundled.stand_in_fields(train, collator_class.fields),
            bundled.stand_in_fields(held, collator_class.fields),
        )

    def _collator_options(self) -> dict[str, Any]:
        """The run-time tables a spec needs (the bundled stand-ins, or counts of the run's own
        corpus) and an encoder-decoder model's decoder start token."""
        needs = self.compiled.Collator.needs
        options: dict[str, Any] = {}
        if self.tokenizer.bundled:
            options.update(bundled.run_time_inputs(self.tokenizer.data, needs))
        elif "counts" in needs:
            options["token_counts"] = token_counts(self.examples, self.vocab.size)
        if {"similar", "pool"} & set(needs) and not self.tokenizer.bundled:
            raise ValueError(
                "this spec reads a similar-token or random-pool table, which objspec pretrain "
                "builds only for the bundled tokenizer"
            )
        start = getattr(getattr(self.pretrained, "config", None), "decoder_start_token_id", None)
        if "decoder_input_ids" in self.compiled.Collator.outputs and isinstance(start, int):
            options["decoder_start_id"] = start
        return options

    def _build_model(self) -> hf.BuiltModel:
        config = self.config
        if self.model_source is None:
            model = build_tiny_model(self.compiled, self.vocab, config)
            heads = self.compiled.Heads(model)
            return hf.BuiltModel(heads, None, f"the tiny {type(model).__name__}")
        return hf.build_hf_model(
            self.model_source, self.compiled, self.vocab, config.loss_from, config.max_length
        )

    @property
    def out(self) -> Path:
        return Path(self.config.out)

    @property
    def heads(self) -> nn.Module:
        """The trained module (the spec's heads holding the model, or the model's own loss)."""
        return self.module

    # --- data ------------------------------------------------------------------------------
    def batch(self, step: int) -> dict[str, torch.Tensor]:
        """This rank's collated batch of global step ``step`` (all its micro-batches)."""
        epoch, indices = step_indices(
            step, len(self.examples), self.config.batch_size, self.config.seed
        )
        self.collator.set_epoch(epoch)
        return self.collator([self.examples[i] for i in indices.tolist()])

    def micro_batches(self, start: int) -> Iterator[list[dict[str, torch.Tensor]]]:
        """The micro-batches of each step from ``start`` on, collated in this process or, with
        ``workers``, by DataLoader workers (one loader per epoch, its epoch set before its
        first batch is asked for, so every worker masks with it)."""
        config = self.config
        n, size = len(self.examples), config.batch_size
        per_epoch = n // size
        step = start
        while True:
            epoch = step // per_epoch
            steps = range(step, (epoch + 1) * per_epoch)
            plans = [
                micro_batches(step_indices(s, n, size, config.seed)[1], config.grad_accum)
                for s in steps
            ]
            self.collator.set_epoch(epoch)
            if config.workers == 0:
                for plan in plans:
                    yield [self.collator([self.examples[i] for i in part]) for part in plan]
            else:
                loader = torch.utils.data.DataLoader(
                    ExampleSet(self.examples),
                    batch_sampler=[part for plan in plans for part in plan],
                    collate_fn=self.collator,
                    num_workers=config.workers,
                    generator=torch.Generator(),  # not the global one: dropout's draws stay
                )
                batches = iter(loader)
                for _ in plans:
                    yield [next(batches) for _ in range(config.grad_accum)]
            step = (epoch + 1) * per_epoch

    def _shares(self, parts: list[dict[str, torch.Tensor]]) -> list[float]:
        """Each micro-batch's weight: its targets over the step's (all ranks), times the
        world size (DDP averages the ranks' gradients); 1 / grad_accum without labels."""
        counts = [self._targets(b) for b in parts]
        if any(c is None for c in counts):
            return [1.0 / len(parts)] * len(parts)
        local = torch.tensor([float(sum(counts))], device=self.device)  # type: ignore[arg-type]
        if self.world_size > 1:
            dist.all_reduce(local)
        total = float(local.item())
        if total == 0:
            return [1.0 / len(parts)] * len(parts)
        return [float(c) * self.world_size / total for c in counts]  # type: ignore[arg-type]

    def _targets(self, batch: dict[str, torch.Tensor]) -> int | None:
        labels = batch.get("labels")
        if labels is None or labels.dim() != 2:
            return None
        if self.compiled.Collator.decoder_only:  # hidden state t predicts label t + 1
            labels = labels[:, 1:]
        return int((labels != IGNORE_INDEX).sum())

    # --- training --------------------------------------------------------------------------
    def train_step(self, parts: list[dict[str, torch.Tensor]] | None = None) -> dict[str, float]:
        """One optimizer step on the next batch (its micro-batches ``parts``; collated here
        when not given); the losses of that batch."""
        if parts is None:
            parts = next(self.micro_batches(self.step))
        self.trained.train()
        self.optimizer.zero_grad()
        shares = self._shares(parts)
        sums: dict[str, torch.Tensor] = {}
        for i, (part, share) in enumerate(zip(parts, shares, strict=True)):
            last = i == len(parts) - 1
            syncing = contextlib.nullcontext() if last else self.accelerator.no_sync(self.trained)
            with syncing:
                losses = self.trained(part)
                self.accelerator.backward(losses["loss"] * share)
            for key, value in losses.items():
                sums[key] = sums.get(key, 0.0) + value.detach().float() * share
        factor = lr_factor(
            self.step, self.config.steps, self.config.warmup_steps, self.config.scheduler
        )
        for group in self.optimizer.param_groups:
            group["lr"] = self.config.lr * factor
        if self.config.max_grad_norm > 0:
            self.accelerator.clip_grad_norm_(self.module.parameters(), self.config.max_grad_norm)
        self.optimizer.step()
        logged = torch.stack(list(sums.values()))
        if self.world_size > 1:  # the ranks' shares add up to the world size
            dist.all_reduce(logged)
        logged /= self.world_size
        row = {"step": float(self.step), **dict(zip(sums, logged.tolist(), strict=True))}
        self.rows.append(row)
        if self._board is not None:
            self._board.scalars("train", {**row, "lr": self.config.lr * factor}, self.step)
        self.step += 1
        return row

    def run(
        self,
        on_step: Callable[[dict[str, float]], None] | None = None,
        stop: StopRequests | None = None,
    ) -> list[float]:
        """Train up to ``config.steps``, evaluating every ``eval_every`` steps and checkpointing
        every ``checkpoint_every`` steps and at the end, or after the step during which
        ``stop`` noted a signal; the total losses of the steps run."""
        losses: list[float] = []
        if self.rank == 0 and self.config.log == "tensorboard":
            self._board = TensorBoard(self.out / "tensorboard", purge_step=self.step or None)
        try:
            batches = self.micro_batches(self.step)
            while self.step < self.config.steps:
                row = self.train_step(next(batches))
                losses.append(row["loss"])
                if on_step is not None:
                    on_step(row)
                end = self.step == self.config.steps
                if self.eval_examples and (self.step % self.config.eval_every == 0 or end):
                    self.evaluate()
                stopping = self._stopping(stop)
                if stopping or end or self.step % self.config.checkpoint_every == 0:
                    self.save(plot=stopping or end)
                if stopping:
                    break
        finally:
            if self._board is not None:
                self._board.close()
                self._board = None
        return losses

    def _stopping(self, stop: StopRequests | None) -> bool:
        """Whether any rank was asked to stop (all ranks agree, so they stop at one step)."""
        asked = torch.tensor([float(stop is not None and stop.signal_number is not None)])
        if self.world_size > 1:
            dist.all_reduce(asked, op=dist.ReduceOp.MAX)
        return bool(asked.item())

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """The evaluation set's losses, its examples masked as at epoch 0 (so evaluations
        compare), in micro-batches of the training size, weighted by their targets as a
        training step is; the row is logged. Training's random state is left as it was."""
        state = rng_state()
        self.module.eval()
        size = self.config.batch_size // self.config.grad_accum
        sums: dict[str, torch.Tensor] = {}
        weight = torch.zeros(1, device=self.device)
        for part in chunks(len(self.eval_examples), size):
            mine = list(part)[self.rank :: self.world_size]
            if not mine:
                continue
            batch = self.eval_collator([self.eval_examples[i] for i in mine])
            count = self._targets(batch)
            w = float(count if count is not None else len(mine))
            for key, value in self.module(batch).items():
                sums[key] = sums.get(key, torch.zeros((), device=self.device)) + value.float() * w
            weight += w
        keys = sorted(sums) if sums else ["loss"]
        if not sums:
            sums = {"loss": torch.zeros((), device=self.device)}
        totals = torch.cat([torch.stack([sums[k] for k in keys]).view(-1), weight])
        if self.world_size > 1:
            dist.all_reduce(totals)
        means = dict(zip(keys, (totals[:-1] / totals[-1].clamp(min=1.0)).tolist(), strict=True))
        loss = means.pop("loss")
        row = {"step": float(self.step), **means, "loss": loss}  # as losses.csv: loss last
        self.eval_rows.append(row)
        if self._board is not None:
            self._board.scalars("eval", row, self.step)
        set_rng_state(state)
        return row

    # --- checkpoints -----------------------------------------------------------------------
    def save(self, plot: bool = True) -> Path:
        """Write ``OUT/checkpoint-STEP/``: each rank's RNG state, then (rank 0) the training
        state, the Hugging Face model and tokenizer (``save_pretrained``) and the loss curve
        (the CSVs; the PNG when ``plot``); the folder appears complete or not at all; then the
        older folders beyond ``keep_last`` are removed."""
        final = checkpoint_folder(self.out, self.step)
        partial = partial_folder(self.out, self.step)
        if self.rank == 0:
            if partial.exists():
                shutil.rmtree(partial)
            partial.mkdir(parents=True)
        self._barrier()  # the folder exists before any rank writes into it
        save_atomically(rng_state(), partial / f"rng-rank{self.rank}.pt")
        self._barrier()  # every rank's RNG file exists before the folder is published
        if self.rank == 0:
            state = {
                "config": asdict(self.config),
                "sources": self.sources,
                "step": self.step,
                "heads": self.module.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "rows": self.rows,
                "eval_rows": self.eval_rows,
                "scaler": None if self._scaler is None else self._scaler.state_dict(),
            }
            save_atomically(state, partial / STATE)
            if self.pretrained is not None:
                self.pretrained.save_pretrained(str(partial))
                self.tokenizer.for_saving().save_pretrained(str(partial))
            for name, model in self.also_saved.items():  # ELECTRA's generator
                model.save_pretrained(str(partial / name))
            publish(partial, final)
            write_curve(self.rows, self.out, self.eval_rows, plot=plot)
            rotate(self.out, self.config.keep_last)
            if self._board is not None:
                self._board.flush()
        self._barrier()
        self.last_checkpoint = final
        return final

    @property
    def _scaler(self) -> Any:
        """accelerate's GradScaler (fp16 on a GPU), or None."""
        return getattr(self.accelerator, "scaler", None)

    def _barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()

    def resume(self, folder: str | Path | None = None) -> bool:
        """Continue from checkpoint ``folder``, or the newest in ``out`` (True when resumed;
        False when ``out`` has none). The spec's, text's, dataset's, model config's and
        tokenizer's contents, seed, batch size, model sizes and data split must be the run's
        own, and this rank's RNG state must be there; otherwise a CheckpointError says which.
        The run's own ``lr`` (and schedule) applies from the resumed step on."""
        if folder is None:
            found = latest(self.out)
            if found is None:
                return False
            folder = found
        folder = Path(folder)
        path = folder / STATE
        if not folder.is_dir() or not path.exists():
            raise CheckpointError(f"{folder} is not an objspec pretrain checkpoint folder")
        state = load_safely(path)
        if not isinstance(state, dict) or not set(CHECKPOINT_KEYS) <= state.keys():
            raise CheckpointError(f"{path} is not an objspec pretrain checkpoint")
        saved = state["config"]
        changed = [k for k in RESUME_FIXED if saved.get(k) != asdict(self.config)[k]]
        changed += [
            f"{k} contents" for k in self.sources if state["sources"].get(k) != self.sources[k]
        ]
        if changed:
            raise CheckpointError(
                f"{path} was written by a run with other {', '.join(changed)}; use another --out"
            )
        step = int(state["step"])
        rng = folder / f"rng-rank{self.rank}.pt"
        if not rng.exists():
            raise CheckpointError(
                f"{rng} is missing: the run cannot resume exactly from step {step}"
            )
        try:
            self.module.load_state_dict(state["heads"])
            self.optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as exc:
            reason = str(exc).strip().splitlines()[0][:200]
            raise CheckpointError(f"{path} does not fit this model: {reason}") from None
        if self._scaler is not None and state.get("scaler"):  # fp16 on GPU: the loss scale
            self._scaler.load_state_dict(state["scaler"])
        self.step = step
        self.rows = list(state["rows"])
        self.eval_rows = list(state.get("eval_rows", []))
        set_rng_state(load_safely(rng))
        self.resumed_from = folder
        return True


def build_tiny_model(
    compiled: CompiledObjective, vocab: Vocab, config: PretrainConfig
) -> nn.Module:
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


build_model = build_tiny_model  # the name earlier versions exported

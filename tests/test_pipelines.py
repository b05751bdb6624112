"""Dynamic masks where users run them: transformers.Trainer and Lightning (0 workers, 2
workers, persistent workers) with the one documented line, ``callbacks=[EpochCallback(...)]``;
accelerate; a streamed IterableDataset; and exact resume from a checkpoint."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import torch

import objspec
from objspec import bundled
from tests.tiny_hf import bert_config

transformers = pytest.importorskip("transformers")
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning", "ignore::FutureWarning")

SPEC = Path(__file__).resolve().parent.parent / "specs" / "bert_mlm.objspec"
EXAMPLES = 12
BATCH = 4


class Rows(torch.utils.data.Dataset):
    """Bundled rows, each with an ``example_id`` the model sees (passed through)."""

    def __init__(self) -> None:
        tokenizer = bundled.load_tokenizer()
        examples = bundled.encode_examples(tokenizer, bundled.load_documents()[:20], 32)
        self.rows = [{**e, "example_id": e["index"]} for e in examples[:EXAMPLES]]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.rows[i]


def recording_model(vocab_size: int) -> Any:
    """A tiny BertForMaskedLM that records each example's masked positions as it trains."""

    class Recording(transformers.BertForMaskedLM):
        def forward(self, input_ids: Any, attention_mask: Any, labels: Any, example_id: Any) -> Any:
            for row, key in zip(labels, example_id.tolist(), strict=True):
                self.seen.append((key, tuple((row != -100).nonzero().flatten().tolist())))
            return super().forward(
                input_ids=input_ids, attention_mask=attention_mask, labels=labels
            )

    torch.manual_seed(0)
    model = Recording(bert_config(transformers, vocab_size))
    model.seen = []
    return model


def train(
    tmp_path: Path, workers: int, persistent: bool, epochs: int, resume: str | None = None
) -> list[dict[int, tuple[int, ...]]]:
    """Masks per epoch: ``[{example_id: masked positions}]``, one dict per epoch trained."""
    from objspec.integrations.transformers import EpochCallback

    collator = objspec.compile_file(SPEC).Collator(bundled.load_tokenizer(), seed=0)
    model = recording_model(bundled.BUNDLED_VOCAB_SIZE)
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path),
        per_device_train_batch_size=BATCH,
        num_train_epochs=epochs,
        dataloader_num_workers=workers,
        dataloader_persistent_workers=persistent,
        remove_unused_columns=False,
        save_strategy="epoch",
        report_to=[],
        logging_strategy="no",
        use_cpu=True,
        seed=0,
        disable_tqdm=True,
    )
    trainer = transformers.Trainer(
        model=model,
        args=args,
        train_dataset=Rows(),
        data_collator=collator,
        callbacks=[EpochCallback(collator)],
    )
    trainer.train(resume_from_checkpoint=resume)
    per_epoch = [model.seen[i : i + EXAMPLES] for i in range(0, len(model.seen), EXAMPLES)]
    return [dict(part) for part in per_epoch]


@pytest.mark.parametrize("workers,persistent", [(0, False), (2, False), (2, True)])
def test_trainer_masks_change_every_epoch_and_resume_exactly(
    tmp_path: Path, workers: int, persistent: bool
) -> None:
    full = train(tmp_path / "full", workers, persistent, epochs=3)
    assert len(full) == 3
    for before, after in zip(full, full[1:], strict=False):
        changed = sum(before[k] != after[k] for k in before)
        assert changed >= EXAMPLES - 1, f"only {changed} of {EXAMPLES} masks changed"
    steps_per_epoch = EXAMPLES // BATCH
    checkpoint = tmp_path / "full" / f"checkpoint-{steps_per_epoch}"
    resumed = train(tmp_path / "full", workers, persistent, epochs=3, resume=str(checkpoint))
    assert resumed == full[1:]


def test_trainer_epoch_from_state() -> None:
    from objspec.integrations.transformers import trainer_epoch

    assert [trainer_epoch(e) for e in (None, 0.0, 1.0, 1.5, 2.9999999999, 3.0)] == [
        0,
        0,
        1,
        1,
        3,
        3,
    ]


def test_remove_unused_columns_is_warned_about() -> None:
    from objspec.integrations.transformers import EpochCallback

    collator = objspec.compile_file(SPEC).Collator(bundled.load_tokenizer(), seed=0)
    args = transformers.TrainingArguments(output_dir="unused", report_to=[], use_cpu=True)
    with pytest.warns(RuntimeWarning, match="remove_unused_columns=False"):
        EpochCallback(collator).on_init_end(args, None, None)


def masks_by_example(loader: Any) -> dict[int, tuple[int, ...]]:
    """Each example's masked positions over one pass of ``loader``, by its example_id."""
    return {
        key: tuple((row != -100).nonzero().flatten().tolist())
        for batch in loader
        for row, key in zip(batch["labels"], batch["example_id"].tolist(), strict=True)
    }


class Stream(torch.utils.data.IterableDataset):
    """A streamed dataset in two shards whose indices both start at 0 (they collide)."""

    def __iter__(self) -> Any:
        info = torch.utils.data.get_worker_info()
        rows = Rows().rows
        shard = rows if info is None else rows[info.id :: info.num_workers]
        for i, row in enumerate(shard):
            yield {**row, "index": i}


@pytest.mark.parametrize("workers,persistent", [(0, False), (2, True)])
def test_streamed_dataset_masks_change_with_the_epoch(workers: int, persistent: bool) -> None:
    collator = objspec.compile_file(SPEC).Collator(bundled.load_tokenizer(), seed=0)
    loader = torch.utils.data.DataLoader(
        Stream(),
        batch_size=BATCH,
        collate_fn=collator,
        num_workers=workers,
        persistent_workers=persistent,
    )

    def masks(epoch: int) -> dict[int, tuple[int, ...]]:
        collator.set_epoch(epoch)
        return masks_by_example(loader)

    first, second, again = masks(0), masks(1), masks(0)
    assert len(first) == EXAMPLES
    assert sum(first[k] != second[k] for k in first) >= EXAMPLES - 1
    assert first == again


def test_accelerate_loop_masks_change_with_the_epoch() -> None:
    accelerate = pytest.importorskip("accelerate")
    collator = objspec.compile_file(SPEC).Collator(bundled.load_tokenizer(), seed=0)
    loader = torch.utils.data.DataLoader(
        Rows(),
        batch_size=BATCH,
        shuffle=True,
        collate_fn=collator,
        num_workers=2,
        persistent_workers=True,
    )
    loader = accelerate.Accelerator(cpu=True).prepare(loader)

    def masks(epoch: int) -> dict[int, tuple[int, ...]]:
        loader.set_epoch(epoch)
        collator.set_epoch(epoch)
        return masks_by_example(loader)

    first, second, again = masks(0), masks(1), masks(0)
    assert sum(first[k] != second[k] for k in first) >= EXAMPLES - 1
    assert first == again


def lightning_masks(
    tmp_path: Path, workers: int, persistent: bool, epochs: int, resume: str | None = None
) -> list[dict[int, tuple[int, ...]]]:
    """Masks per epoch under ``lightning.Trainer``, as :func:`train` gives them."""
    lightning = pytest.importorskip("lightning")
    from objspec.integrations.lightning import EpochCallback

    collator = objspec.compile_file(SPEC).Collator(bundled.load_tokenizer(), seed=0)
    seen: list[tuple[int, tuple[int, ...]]] = []

    class Module(lightning.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.bert = transformers.BertForMaskedLM(
                bert_config(transformers, bundled.BUNDLED_VOCAB_SIZE)
            )

        def training_step(self, batch: dict[str, Any], index: int) -> Any:
            for row, key in zip(batch["labels"], batch["example_id"].tolist(), strict=True):
                seen.append((key, tuple((row != -100).nonzero().flatten().tolist())))
            return self.bert(
                input_ids=batch["input_ids"],
                attention_mask=batch["attention_mask"],
                labels=batch["labels"],
            ).loss

        def configure_optimizers(self) -> Any:
            return torch.optim.AdamW(self.parameters(), lr=1e-3)

    loader = torch.utils.data.DataLoader(
        Rows(),
        batch_size=BATCH,
        shuffle=True,
        collate_fn=collator,
        num_workers=workers,
        persistent_workers=persistent,
    )

    class SlowStart(lightning.pytorch.callbacks.Callback):
        """Lightning asks for the first batches before its first epoch hook: give persistent
        workers the time to collate them there, so a late epoch would show."""

        def on_train_start(self, trainer: Any, pl_module: Any) -> None:
            time.sleep(0.5)

    trainer = lightning.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
        callbacks=[
            EpochCallback(collator),
            SlowStart(),
            lightning.pytorch.callbacks.ModelCheckpoint(dirpath=str(tmp_path), save_top_k=-1),
        ],
    )
    lightning.seed_everything(0, verbose=False)
    trainer.fit(Module(), loader, ckpt_path=resume)
    return [dict(seen[i : i + EXAMPLES]) for i in range(0, len(seen), EXAMPLES)]


@pytest.mark.parametrize("workers,persistent", [(0, False), (2, True)])
def test_lightning_masks_change_every_epoch_and_resume_exactly(
    tmp_path: Path, workers: int, persistent: bool
) -> None:
    full = lightning_masks(tmp_path, workers, persistent, epochs=3)
    assert len(full) == 3
    for before, after in zip(full, full[1:], strict=False):
        assert sum(before[k] != after[k] for k in before) >= EXAMPLES - 1
    checkpoint = sorted(tmp_path.glob("epoch=0*.ckpt"))[0]
    resumed = lightning_masks(tmp_path / "resumed", workers, persistent, 3, str(checkpoint))
    assert resumed == full[1:]


def equal_rows(count: int, length: int = 24) -> list[dict[str, Any]]:
    """Bundled rows cut to one length (so every micro-batch labels as many tokens)."""
    tokenizer = bundled.load_tokenizer()
    rows = bundled.encode_examples(tokenizer, bundled.load_documents()[:40], 64)
    long = [r for r in rows if len(r["input_ids"]) >= length][:count]
    assert len(long) == count
    return [
        {"input_ids": r["input_ids"][: length - 1] + [bundled.SEP_ID], "index": i}
        for i, r in enumerate(long)
    ]


def objspec_trainer(tmp_path: Path, spec: str, rows: list[dict[str, Any]], **overrides: Any) -> Any:
    from objspec.integrations.transformers import ObjspecTrainer
    from objspec.runtime import TinyEncoder

    compiled = objspec.compile_file(SPEC.parent / f"{spec}.objspec")
    torch.manual_seed(0)
    model = TinyEncoder(bundled.BUNDLED_VOCAB_SIZE, hidden_size=32, layers=1, heads=2, dropout=0.0)
    heads = compiled.Heads(model)
    settings = {
        "output_dir": str(tmp_path),
        "per_device_train_batch_size": 4,
        "num_train_epochs": 2,
        "report_to": [],
        "logging_steps": 1,
        "save_strategy": "epoch",
        "use_cpu": True,
        "seed": 0,
        "disable_tqdm": True,
        "eval_strategy": "epoch",
        **overrides,
    }
    optimizer = overrides.pop("optimizer", None)
    settings.pop("optimizer", None)
    args = transformers.TrainingArguments(**settings)
    collator = compiled.Collator(bundled.load_tokenizer(), seed=0)
    return ObjspecTrainer(
        heads=heads,
        collator=collator,
        args=args,
        train_dataset=rows,
        eval_dataset=rows[:4],
        optimizers=(optimizer(heads.parameters()), None) if optimizer else (None, None),
    )


def test_objspec_trainer_trains_evaluates_saves_and_resumes_shared_weights(tmp_path: Path) -> None:
    rows = equal_rows(8)
    straight = objspec_trainer(tmp_path / "a", "electra", rows)
    straight.train()
    history = straight.state.log_history
    train_logs = [h for h in history if "loss" in h]
    assert all("loss_mlm" in h and "loss_replaced_token_detection" in h for h in train_logs)
    assert any("eval_loss" in h for h in history)
    checkpoint = tmp_path / "a" / "checkpoint-2"
    assert (checkpoint / "objspec_heads.pt").exists()
    resumed = objspec_trainer(tmp_path / "a", "electra", rows)
    resumed.train(resume_from_checkpoint=str(checkpoint))
    after = [h["loss"] for h in resumed.state.log_history if "loss" in h and h["step"] > 2]
    assert after == pytest.approx([h["loss"] for h in train_logs if h["step"] > 2], abs=1e-5)


def test_gradient_accumulation_takes_the_same_first_step(tmp_path: Path) -> None:
    rows = equal_rows(8)

    def first_step(batch: int, accumulation: int) -> tuple[float, torch.Tensor]:
        trainer = objspec_trainer(
            tmp_path / f"ga{accumulation}",
            "electra",
            rows,
            per_device_train_batch_size=batch,
            gradient_accumulation_steps=accumulation,
            max_steps=1,
            eval_strategy="no",
            save_strategy="no",
            optimizer=lambda p: torch.optim.SGD(p, lr=1.0),
        )
        before = torch.cat([p.detach().flatten().clone() for p in trainer.model.parameters()])
        trainer.train()
        after = torch.cat([p.detach().flatten() for p in trainer.model.parameters()])
        return trainer.state.log_history[0]["loss"], after - before

    loss_1, step_1 = first_step(8, 1)
    loss_2, step_2 = first_step(4, 2)
    assert loss_2 == pytest.approx(loss_1, rel=1e-4)
    assert torch.allclose(step_1, step_2, atol=1e-5)


def test_objspec_trainer_evaluates_with_fixed_masks(tmp_path: Path) -> None:
    rows = equal_rows(8)
    trainer = objspec_trainer(tmp_path, "bert_mlm", rows)

    def eval_labels() -> list[torch.Tensor]:
        return [batch["labels"] for batch in trainer.get_eval_dataloader()]

    trainer.data_collator.set_epoch(0)
    first = eval_labels()
    trainer.data_collator.set_epoch(3)  # a later training epoch
    assert all(torch.equal(a, b) for a, b in zip(first, eval_labels(), strict=True))
    assert trainer.get_train_dataloader().collate_fn.epoch == 3


def test_objspec_module_trains_any_objective_under_lightning(tmp_path: Path) -> None:
    lightning = pytest.importorskip("lightning")
    from objspec.integrations.lightning import EpochCallback, ObjspecModule
    from objspec.runtime import TinyEncoder

    compiled = objspec.compile_file(SPEC.parent / "electra.objspec")  # two heads, shared weights
    collator = compiled.Collator(bundled.load_tokenizer(), seed=0)
    torch.manual_seed(0)
    model = TinyEncoder(bundled.BUNDLED_VOCAB_SIZE, hidden_size=32, layers=1, heads=2, dropout=0.0)
    module = ObjspecModule(compiled.Heads(model), lr=3e-3)
    losses: list[float] = []

    class Record(lightning.pytorch.callbacks.Callback):
        def on_train_batch_end(self, trainer: Any, pl: Any, outputs: Any, *args: Any) -> None:
            losses.append(float(outputs["loss"]))

    rows = equal_rows(16)
    train = torch.utils.data.DataLoader(rows, batch_size=4, shuffle=True, collate_fn=collator)
    val = torch.utils.data.DataLoader(rows[:4], batch_size=4, collate_fn=collator.with_epoch(0))
    trainer = lightning.Trainer(
        max_epochs=5,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        default_root_dir=str(tmp_path),
        callbacks=[EpochCallback(collator), Record()],
    )
    trainer.fit(module, train, val)
    assert len(losses) == 20 and sum(losses[-4:]) < sum(losses[:4])
    logged = trainer.callback_metrics
    assert {
        "train/loss",
        "train/loss_mlm",
        "train/loss_replaced_token_detection",
        "val/loss",
    } <= set(logged)

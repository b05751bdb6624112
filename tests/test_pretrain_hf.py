"""``objspec pretrain`` with Hugging Face models and tokenizers on accelerate: tiny configs and a
tokenizer trained here from the bundled corpus (nothing is downloaded). The model class follows
the batch; gradient accumulation gives the whole batch's loss and gradients; numbered
checkpoints rotate, resume exactly and hold ``save_pretrained`` output that
``from_pretrained`` reloads to the same logits; evaluation, TensorBoard, bf16 on CPU and
DataLoader workers; a hub name is refused in one line."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch

transformers = pytest.importorskip("transformers")
pytest.importorskip("accelerate")

from objspec import bundled  # noqa: E402
from objspec.cli import main  # noqa: E402
from objspec.pretrain import PretrainConfig, Pretrainer  # noqa: E402
from objspec.pretrain.checkpoints import STATE  # noqa: E402
from objspec.pretrain.hf import ModelLoss  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
VOCAB = 400  # the tokenizer trained below: 292 WordPiece tokens, 8 specials, 100 sentinels


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A WordPiece tokenizer trained with ``tokenizers`` on the bundled corpus (as a
    tokenizer.json and as a save_pretrained folder) and tiny BERT, T5 and GPT-2 configs."""
    root = tmp_path_factory.mktemp("assets")
    tokenizer = bundled.train_tokenizer(bundled.load_documents(), vocab_size=VOCAB)
    tokenizer.save(str(root / "tokenizer.json"))
    folder = root / "tokenizer"
    transformers.PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        eos_token="[SEP]",
        additional_special_tokens=list(bundled.SENTINEL_TOKENS),
    ).save_pretrained(str(folder))
    configs = {
        "bert": bert_config(0.0),
        "bert_dropout": bert_config(0.1),
        "t5": transformers.T5Config(
            vocab_size=8,  # made the tokenizer's size (a config without weights)
            d_model=32,
            d_kv=16,
            d_ff=64,
            num_layers=1,
            num_heads=2,
            dropout_rate=0.0,
        ),
        "electra": transformers.ElectraConfig(
            vocab_size=8,
            embedding_size=32,
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=64,
        ),
        "gpt2": transformers.GPT2Config(
            vocab_size=8, n_embd=32, n_layer=1, n_head=2, n_positions=64, resid_pdrop=0.0
        ),
    }
    paths = {"tokenizer.json": root / "tokenizer.json", "tokenizer": folder}
    for name, config in configs.items():
        paths[name] = root / f"{name}.json"
        config.to_json_file(str(paths[name]))
    return paths


def bert_config(dropout: float) -> Any:
    return transformers.BertConfig(
        vocab_size=8,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )


def settings(
    out: Path, spec: str, model: Path | None, tokenizer: Path, **kw: Any
) -> PretrainConfig:
    values: dict[str, Any] = {
        "spec": str(SPECS / f"{spec}.objspec"),
        "out": str(out),
        "steps": 4,
        "batch_size": 8,
        "max_length": 32,
        "lr": 3e-3,
        "model": None if model is None else str(model),
        "tokenizer": str(tokenizer),
        "checkpoint_every": 50,
        "limit": 40,
    }
    return PretrainConfig(**{**values, **kw})


def same_logits(a: Any, b: Any, batch: dict[str, torch.Tensor]) -> bool:
    a.eval(), b.eval()
    with torch.no_grad():
        return torch.allclose(a(**batch).logits, b(**batch).logits, atol=1e-6)


# --- the model class follows the batch ---------------------------------------------------------


def test_a_tiny_bert_learns_mlm_and_its_checkpoint_loads_with_from_pretrained(
    tmp_path: Path, assets: dict[str, Path]
) -> None:
    """bert_mlm with a BERT config.json and a tokenizer.json: BertForMaskedLM trained by its own
    loss, its vocabulary the tokenizer's; the loss falls over 20 steps; the final checkpoint's
    save_pretrained output reloads with AutoModelForMaskedLM and the tokenizer with
    AutoTokenizer, giving the same logits."""
    config = settings(tmp_path, "bert_mlm", assets["bert"], assets["tokenizer.json"], steps=20)
    config.limit = None
    trainer = Pretrainer(config)
    assert isinstance(trainer.module, ModelLoss)
    assert type(trainer.pretrained).__name__ == "BertForMaskedLM"
    assert trainer.pretrained.config.vocab_size == VOCAB == trainer.vocab.size
    losses = trainer.run()
    assert sum(losses[-4:]) / 4 < sum(losses[:4]) / 4 - 0.3, losses  # 5.97 -> 5.47
    folder = tmp_path / "checkpoint-20"
    reloaded = transformers.AutoModelForMaskedLM.from_pretrained(str(folder))
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder))
    assert tokenizer.mask_token_id == trainer.vocab.mask_id and tokenizer.is_fast
    encoded = tokenizer(["the harbour town grew up"], return_tensors="pt")
    assert same_logits(trainer.pretrained, reloaded, dict(encoded))


def test_t5_from_a_config_with_a_tokenizer_folder(tmp_path: Path, assets: dict[str, Path]) -> None:
    """t5_span (encoder-decoder batch) with a T5 config: T5ForConditionalGeneration trained by
    its own loss; the collator starts decoder inputs with the model's decoder start token; the
    checkpoint reloads with AutoModelForSeq2SeqLM."""
    trainer = Pretrainer(settings(tmp_path, "t5_span", assets["t5"], assets["tokenizer"]))
    assert type(trainer.pretrained).__name__ == "T5ForConditionalGeneration"
    assert trainer.collator.decoder_start_id == trainer.pretrained.config.decoder_start_token_id
    losses = trainer.run()
    assert len(losses) == 4 and all(torch.isfinite(torch.tensor(losses)))
    reloaded = transformers.AutoModelForSeq2SeqLM.from_pretrained(str(tmp_path / "checkpoint-4"))
    batch = trainer.batch(0)
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "decoder_input_ids")}
    assert same_logits(trainer.pretrained, reloaded, inputs)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [("causal_lm", "GPT2LMHeadModel"), ("prefix_lm", "GPT2Model")],
    ids=["causal_lm", "prefix_lm"],
)
def test_decoder_only_specs_with_a_gpt2_config(
    tmp_path: Path, assets: dict[str, Path], spec: str, expected: str
) -> None:
    """A causal LM batch trains GPT2LMHeadModel by its own loss; a prefix LM batch
    (prefix_mask, which that class cannot read) trains the spec's heads over GPT2Model."""
    trainer = Pretrainer(settings(tmp_path, spec, assets["gpt2"], assets["tokenizer.json"]))
    assert type(trainer.pretrained).__name__ == expected
    assert isinstance(trainer.module, ModelLoss) == (spec == "causal_lm")
    losses = trainer.run()
    assert len(losses) == 4 and all(torch.isfinite(torch.tensor(losses)))


def test_a_packed_causal_lm_trains_the_specs_heads(tmp_path: Path, assets: dict[str, Path]) -> None:
    """A spec that packs its rows: GPT2LMHeadModel's own loss would attend across the
    documents of a row, so auto trains the spec's heads over GPT2Model (documents kept apart)."""
    spec = tmp_path / "packed.objspec"
    spec.write_text("objective packed_causal_lm from causal_lm\n  pack 64\n", encoding="utf-8")
    config = settings(tmp_path, "causal_lm", assets["gpt2"], assets["tokenizer.json"])
    config.spec = str(spec)
    trainer = Pretrainer(config)
    assert type(trainer.pretrained).__name__ == "GPT2Model"
    assert not isinstance(trainer.module, ModelLoss)
    assert "document_ids" in trainer.batch(0)
    losses = trainer.run()
    assert len(losses) == 4 and all(torch.isfinite(torch.tensor(losses)))


def test_spans_train_the_specs_heads_over_the_base_model(
    tmp_path: Path, assets: dict[str, Path]
) -> None:
    """spanbert's batch has span boundaries no BERT class reads: auto trains its own heads (MLM
    and SBO) over BertModel, whose save_pretrained output AutoModel reloads; --loss-from model
    refuses it in one line."""
    trainer = Pretrainer(settings(tmp_path, "spanbert", assets["bert"], assets["tokenizer.json"]))
    assert type(trainer.pretrained).__name__ == "BertModel"
    assert [k for k, _ in trainer.module.named_children()] == ["model", "mlm", "span_boundary"]
    trainer.run()
    assert set(trainer.rows[-1]) == {"step", "mlm", "span_boundary", "loss"}
    reloaded = transformers.AutoModel.from_pretrained(str(tmp_path / "checkpoint-4"))
    batch = {k: trainer.batch(0)[k] for k in ("input_ids", "attention_mask")}
    trainer.pretrained.eval(), reloaded.eval()
    with torch.no_grad():
        want = trainer.pretrained(**batch).last_hidden_state
        assert torch.allclose(reloaded(**batch).last_hidden_state, want, atol=1e-6)
    strict = settings(tmp_path / "m", "spanbert", assets["bert"], assets["tokenizer.json"])
    strict.loss_from = "model"
    with pytest.raises(ValueError, match="does not read the batch's span_start, span_end"):
        Pretrainer(strict)


def test_bert_with_nsp_trains_bert_for_pre_training(
    tmp_path: Path, assets: dict[str, Path]
) -> None:
    """The bert spec's batch (MLM labels and next_sentence_label) is BertForPreTraining's."""
    trainer = Pretrainer(settings(tmp_path, "bert", assets["bert"], assets["tokenizer.json"]))
    assert type(trainer.pretrained).__name__ == "BertForPreTraining"
    assert isinstance(trainer.module, ModelLoss)


def test_electra_trains_hugging_faces_generator_and_discriminator(
    tmp_path: Path, assets: dict[str, Path]
) -> None:
    """An ELECTRA config: ElectraForMaskedLM (a quarter of the width, the spec's generator
    size) and ElectraForPreTraining sharing the embeddings, losses weighted 1 and 50 as the
    spec says; the checkpoint holds the discriminator and generator/ the generator, each
    reloading with from_pretrained to the same logits."""
    trainer = Pretrainer(settings(tmp_path, "electra", assets["electra"], assets["tokenizer.json"]))
    module = trainer.module
    assert module.generator.config.hidden_size == 8
    assert module.generator.electra.embeddings is module.discriminator.electra.embeddings
    row = trainer.train_step()
    assert row["loss"] == pytest.approx(row["mlm"] + 50 * row["replaced_token_detection"])
    trainer.run()
    folder = tmp_path / "checkpoint-4"
    discriminator = transformers.ElectraForPreTraining.from_pretrained(str(folder))
    generator = transformers.AutoModelForMaskedLM.from_pretrained(str(folder / "generator"))
    batch = {k: trainer.batch(0)[k] for k in ("input_ids", "attention_mask")}
    assert same_logits(module.discriminator, discriminator, batch)
    assert same_logits(module.generator, generator, batch)


# --- gradient accumulation ---------------------------------------------------------------------


@pytest.mark.parametrize("model", ["bert", None], ids=["hf-bert", "tiny"])
def test_accumulating_two_micro_batches_of_4_is_one_batch_of_8(
    tmp_path: Path, assets: dict[str, Path], model: str | None
) -> None:
    """fp32, no dropout, no clipping: the first step's loss and every gradient at --grad-accum 2
    (two micro-batches of 4) equal those of one batch of 8 within 1e-6. The plain mean of the
    two micro-batch losses differs (they hold different numbers of masked tokens): the targets
    weighting is what makes them equal. The trained tokenizer's ids vary from run to run
    (``bundled.train_tokenizer``), and with them the masks: the seed is the first whose two
    micro-batches hold target counts at least a fifth apart, so that the control below (the
    plain mean would miss the weighted one) can fail."""

    def configured(accum: int, seed: int) -> PretrainConfig:
        return settings(
            tmp_path / f"{accum}-{seed}",
            "bert_mlm",
            assets[model] if model else None,
            assets["tokenizer.json"],
            grad_accum=accum,
            max_grad_norm=0.0,
            dropout=0.0,
            hidden_size=32,
            layers=1,
            seed=seed,
        )

    def target_counts(seed: int) -> list[int | None]:
        trainer = Pretrainer(configured(2, seed))
        return [trainer._targets(b) for b in next(trainer.micro_batches(0))]

    def apart(counts: list[int | None]) -> bool:
        a, b = (c or 0 for c in counts)
        return abs(a - b) >= max(a, b) / 5  # weights far enough from a half each

    seed = next(s for s in range(20) if apart(target_counts(s)))
    runs = {}
    for accum in (1, 2):
        trainer = Pretrainer(configured(accum, seed))
        row = trainer.train_step()
        grads = {
            n: p.grad.clone() for n, p in trainer.module.named_parameters() if p.grad is not None
        }
        runs[accum] = (row["loss"], grads, trainer)
    (whole, grads_1, trainer), (accumulated, grads_2, _) = runs[1], runs[2]
    assert accumulated == pytest.approx(whole, abs=1e-6)
    assert grads_1.keys() == grads_2.keys() and grads_1
    for name, grad in grads_1.items():
        assert torch.allclose(grads_2[name], grad, atol=1e-6, rtol=0), name
    naive_config = trainer.config
    naive_config.grad_accum = 2
    fresh = Pretrainer(naive_config)  # the same initial weights (the seed)
    micro = next(fresh.micro_batches(0))
    fresh.module.train()
    with torch.no_grad():
        naive = sum(float(fresh.module(b)["loss"]) for b in micro) / 2
    counts = [fresh._targets(b) for b in micro]
    # the unweighted mean would fail the 1e-6 equality above, ten times over
    assert abs(naive - whole) > 1e-5, (counts, naive, whole)


# --- checkpoints -------------------------------------------------------------------------------


def test_numbered_checkpoints_rotate_and_a_resumed_hf_run_is_exact(
    tmp_path: Path, assets: dict[str, Path]
) -> None:
    """BERT with dropout, linear schedule with warm-up, weight decay, accumulation 2: stopped
    at step 3 and resumed, the run reaches the uninterrupted run's losses; --keep-last 1 leaves
    one checkpoint folder, holding the model, the tokenizer and each rank's RNG state."""

    def config(out: Path, steps: int) -> PretrainConfig:
        return settings(
            out,
            "bert_mlm",
            assets["bert_dropout"],
            assets["tokenizer.json"],
            steps=steps,
            checkpoint_every=3,
            keep_last=1,
            grad_accum=2,
            scheduler="linear",
            warmup_steps=2,
            weight_decay=0.01,
        )

    expected = Pretrainer(config(tmp_path / "straight", 6)).run()
    first = Pretrainer(config(tmp_path / "stopped", 3))
    first.config.steps = 6  # the schedule of the 6-step run, stopped after 3
    for _ in range(3):
        first.train_step()
    first.save()
    resumed = Pretrainer(config(tmp_path / "stopped", 6))
    assert resumed.resume() and resumed.step == 3
    assert resumed.run() == pytest.approx(expected[3:], abs=1e-6)
    folders = sorted(p.name for p in (tmp_path / "stopped").iterdir() if p.is_dir())
    assert folders == ["checkpoint-6"]
    names = {p.name for p in (tmp_path / "stopped" / "checkpoint-6").iterdir()}
    assert {STATE, "rng-rank0.pt", "config.json", "model.safetensors", "tokenizer.json"} <= names


def test_a_changed_model_config_or_tokenizer_is_refused_on_resume(
    tmp_path: Path, assets: dict[str, Path]
) -> None:
    Pretrainer(settings(tmp_path, "bert_mlm", assets["bert"], assets["tokenizer.json"])).run()
    other = tmp_path / "other.json"
    values = json.loads(assets["bert"].read_text())
    other.write_text(json.dumps({**values, "intermediate_size": 48}))
    with pytest.raises(ValueError, match="model contents"):
        Pretrainer(settings(tmp_path, "bert_mlm", other, assets["tokenizer.json"])).resume()
    with pytest.raises(ValueError, match="tokenizer contents"):
        Pretrainer(settings(tmp_path, "bert_mlm", assets["bert"], assets["tokenizer"])).resume()


# --- data, evaluation, logging, precision, workers ---------------------------------------------


def test_a_saved_dataset_with_an_eval_split(tmp_path: Path, assets: dict[str, Path]) -> None:
    """A DatasetDict folder (documents as lists of sentences): rows prepared by objspec.data
    (word_ids, sentence_ids); the validation split evaluated every 2 steps with the masks of
    epoch 0, so the same weights give the same eval loss at any training epoch."""
    datasets = pytest.importorskip("datasets")
    documents = bundled.load_documents()
    datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict({"text": documents[:-4]}),
            "validation": datasets.Dataset.from_dict({"text": documents[-4:]}),
        }
    ).save_to_disk(str(tmp_path / "data"))
    config = settings(
        tmp_path / "run",
        "wwm",
        assets["bert"],
        assets["tokenizer.json"],
        dataset=str(tmp_path / "data"),
        eval_split="validation",
        eval_every=2,
        limit=None,
    )
    trainer = Pretrainer(config)
    assert {"word_ids", "sentence_ids", "index"} <= set(trainer.examples[0])
    trainer.run()
    assert [r["step"] for r in trainer.eval_rows] == [2.0, 4.0]
    lines = (tmp_path / "run" / "eval.csv").read_text().splitlines()
    assert lines[0] == "step,loss" and len(lines) == 3
    before = trainer.evaluate()["loss"]
    trainer.collator.set_epoch(7)
    assert trainer.evaluate()["loss"] == before


def test_a_saved_dataset_of_plain_text_and_an_eval_fraction(
    tmp_path: Path, assets: dict[str, Path]
) -> None:
    """A Dataset folder of documents as plain strings (split into sentences by sentencex):
    the last tenth of the documents evaluate, and no row of theirs is trained on."""
    datasets = pytest.importorskip("datasets")
    pytest.importorskip("sentencex")
    texts = [" ".join(document) for document in bundled.load_documents()]
    datasets.Dataset.from_dict({"body": texts}).save_to_disk(str(tmp_path / "data"))
    config = settings(
        tmp_path / "run",
        "bert",  # NSP reads sentence_ids
        assets["bert"],
        assets["tokenizer"],
        dataset=str(tmp_path / "data"),
        text_column="body",
        eval_fraction=0.1,
        steps=2,
        limit=None,
    )
    trainer = Pretrainer(config)
    held = math.ceil(0.1 * len(texts))
    documents = {row["index"] >> 20 for row in trainer.eval_examples}
    assert documents == set(range(held))  # indices count from 0 within the held-out split
    trained = {tuple(row["input_ids"]) for row in trainer.examples}
    assert not trained & {tuple(row["input_ids"]) for row in trainer.eval_examples}
    assert max(max(row["sentence_ids"]) for row in trainer.examples) > 0  # sentences found
    trainer.run()
    assert len(trainer.eval_rows) == 1
    from objspec.data import prepare_dataset

    rows = prepare_dataset(
        datasets.load_from_disk(str(tmp_path / "data")), trainer.tokenizer.data, 32, "body"
    )
    rows.save_to_disk(str(tmp_path / "rows"))
    config.dataset, config.eval_fraction = str(tmp_path / "rows"), 0.0
    again = Pretrainer(config)  # prepared rows, used as they are
    assert [r["input_ids"] for r in again.examples] == rows["input_ids"]


def test_an_eval_fraction_of_the_text_documents(tmp_path: Path) -> None:
    config = PretrainConfig(
        spec=str(SPECS / "bert_mlm.objspec"),
        out=str(tmp_path),
        steps=2,
        batch_size=8,
        hidden_size=16,
        layers=1,
        eval_fraction=0.1,
    )
    trainer = Pretrainer(config)
    documents = bundled.load_documents()
    held = documents[-math.ceil(0.1 * len(documents)) :]  # the last tenth of the documents
    assert len(held) == 2  # of 15
    expected = bundled.encode_examples(bundled.load_tokenizer(), held, 64)
    assert [e["input_ids"] for e in trainer.eval_examples] == [e["input_ids"] for e in expected]
    trainer.run()
    assert len(trainer.eval_rows) == 1


def test_tensorboard_event_files(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    args = ["pretrain", "bert_mlm", "--out", str(tmp_path), "--steps", "3", "--batch-size", "8"]
    args += ["--hidden-size", "16", "--layers", "1", "--log", "tensorboard"]
    assert main(args) == 0
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Scalars("train/loss")] == [0, 1, 2]
    assert "train/lr" in events.Tags()["scalars"]


def test_bf16_on_cpu_finishes(tmp_path: Path, assets: dict[str, Path]) -> None:
    config = settings(
        tmp_path, "bert_mlm", assets["bert"], assets["tokenizer.json"], mixed_precision="bf16"
    )
    trainer = Pretrainer(config)
    assert trainer.accelerator.mixed_precision == "bf16"
    losses = trainer.run()
    assert len(losses) == 4 and all(torch.isfinite(torch.tensor(losses)))


def test_dataloader_workers_see_the_epoch(tmp_path: Path) -> None:
    """With a DataLoader worker the batches are the in-process ones, across an epoch boundary
    (16 examples, 2 steps an epoch): the worker masks with the epoch set in the main process."""

    def config(out: Path, workers: int) -> PretrainConfig:
        return PretrainConfig(
            spec=str(SPECS / "bert_mlm.objspec"),
            out=str(out),
            steps=3,
            batch_size=8,
            hidden_size=16,
            layers=1,
            dropout=0.0,
            limit=16,
            workers=workers,
        )

    inline = Pretrainer(config(tmp_path / "inline", 0))
    pooled = Pretrainer(config(tmp_path / "pooled", 1))
    for (a,), (b,) in zip(inline.micro_batches(0), pooled.micro_batches(0), strict=False):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
        if pooled.collator.epoch == 1:
            break
    assert pooled.run() == pytest.approx(inline.run(), abs=1e-6)


# --- refusals ----------------------------------------------------------------------------------


def test_a_hub_name_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["pretrain", "bert_mlm", "--out", str(tmp_path), "--model", "bert-base-uncased"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "never downloads" in err and "bert-base-uncased" in err


def test_unreadable_weights_are_a_one_line_usage_error(
    tmp_path: Path, assets: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(assets["bert"].read_text())
    (folder / "model.safetensors").write_bytes(b"not a safetensors file")
    args = ["pretrain", "bert_mlm", "--out", str(tmp_path / "run"), "--model", str(folder)]
    assert main([*args, "--tokenizer", str(assets["tokenizer.json"])]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_every_pretrain_flag_has_help_and_its_default() -> None:
    """Each option's --help line has a text, and says its default (shown by the formatter, or
    in the text where there is none to show: --model, --resume, ...)."""
    import argparse

    from objspec.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    pretrain = sub.choices["pretrain"]
    formatter = pretrain._get_formatter()
    flags = [a for a in pretrain._actions if a.option_strings and a.dest != "help"]
    assert len(flags) >= 30
    for action in flags:
        text = formatter._get_help_string(action) or ""  # type: ignore[attr-defined]
        assert action.help, action.option_strings
        explained = "default" in text or action.dest in ("model", "resume", "dataset")
        assert explained, (action.option_strings, text)


def test_the_worked_example_of_the_docs_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/pretrain.md's worked example, as written but with 4 steps instead of 200: its
    Python builds the tokenizer and config, its command trains, its loading code reads the
    last checkpoint."""
    import re
    import shlex

    page = (ROOT / "docs" / "pretrain.md").read_text(encoding="utf-8")
    example = page[page.index("## Worked example") :]
    shell, python = re.findall(r"```(?:sh|python)\n(.*?)```", example, re.S)[:2]
    script = re.search(r"<<'EOF'\n(.*?)\nEOF", shell, re.S)
    command = shell[shell.index("objspec pretrain") :].replace("\\\n", " ")
    assert script is not None and "mkdir -p tiny" in shell
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny").mkdir()
    exec(compile(script.group(1), "docs/pretrain.md", "exec"), {})
    args = shlex.split(command)[1:]
    args[args.index("--steps") + 1] = "4"
    args[args.index("--eval-every") + 1] = "2"
    assert main(args) == 0
    loading = python.replace("checkpoint-200", "checkpoint-4")
    scope: dict[str, Any] = {}
    exec(compile(loading, "docs/pretrain.md", "exec"), scope)
    assert type(scope["model"]).__name__ == "BertForMaskedLM"
    assert scope["tokenizer"].mask_token == "[MASK]"

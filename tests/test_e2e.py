"""End to end: the tiny model trained a few dozen steps with each compiled collator and heads."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from objspec import bundled, compile_file
from objspec import runtime as rt
from objspec.pretrain import PretrainConfig, Pretrainer
from objspec.runtime import sparse_target_mapping
from objspec.runtime.encoders import attention_bias
from tests.tiny_hf import bert_config, bundled_batch, seq2seq_model

SPECS = sorted((Path(__file__).resolve().parent.parent / "specs").glob("*.objspec"))
STEPS = 60
BATCH = 16
EXAMPLES = 32  # two batches: the first 32 packed examples of the bundled corpus, seen 30 times


def train(spec: Path, tmp_path: Path, steps: int = STEPS) -> list[float]:
    """Total losses of ``steps`` Adam steps of the tiny model with the spec's compiled collator
    and heads: ``objspec pretrain``'s own loop (fixed seed, dropout 0.1, lr 3e-3)."""
    config = PretrainConfig(
        spec=str(spec),
        out=str(tmp_path),
        steps=steps,
        batch_size=BATCH,
        lr=3e-3,
        max_length=48,
        limit=EXAMPLES,
        checkpoint_every=steps,
    )
    return Pretrainer(config).run()


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_loss_goes_down(spec: Path, tmp_path: Path) -> None:
    losses = train(spec, tmp_path)
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    # Token-level objectives start near ln(2000) = 7.6 (ELECTRA's total near 31, SpanBERT's
    # two heads near 15) and lose 1.5 to 6 nats in 60 steps over 32 examples (measured); a
    # broken head or collator (labels off, decoder untied, views misaligned) stays near the
    # start. The contrastive objectives fall from about 1 to near 0 (SimCSE 0.89 -> 0.002).
    # Pair objectives start near ln(2) or ln(3) and fall 0.14 to 0.5: the head and labels
    # are wired; the relation itself takes far longer than a test to learn.
    margin = {"nsp": 0.1, "sop": 0.1, "structbert_sentence": 0.1, "simcse": 0.5}.get(spec.stem, 1.0)
    assert last < first - margin, f"loss {first:.3f} -> {last:.3f}"


def test_collator_works_as_hf_trainer_data_collator(tmp_path: Path) -> None:
    transformers = pytest.importorskip("transformers")
    tokenizer = bundled.load_hf_tokenizer()
    compiled = compile_file(SPECS[0].parent / "bert_mlm.objspec")
    collator = compiled.Collator(tokenizer, seed=0)
    model = transformers.BertForMaskedLM(bert_config(transformers, len(tokenizer)))
    examples = bundled.encode_examples(bundled.load_tokenizer(), bundled.load_documents()[:2], 48)
    dataset = [{"input_ids": e["input_ids"], "index": e["index"]} for e in examples]
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=3,
        per_device_train_batch_size=4,
        report_to=[],
        remove_unused_columns=False,
        use_cpu=True,
        save_strategy="no",
        logging_steps=1,
    )
    trainer = transformers.Trainer(
        model=model, args=args, train_dataset=dataset, data_collator=collator
    )
    result = trainer.train()
    assert result.global_step == 3
    assert torch.isfinite(torch.tensor(result.training_loss))


@pytest.mark.parametrize("spec", ["t5_span", "bart", "ul2"])
def test_seq2seq_batches_feed_hugging_face_models(spec: str) -> None:
    """The encoder-decoder batch is what HF's T5 and BART models take: one training step of a
    tiny model from a config (no download) gives a finite loss that backpropagates."""
    transformers = pytest.importorskip("transformers")
    vocab, batch = bundled_batch(spec, 48)
    model = seq2seq_model(transformers, "bart" if spec == "bart" else "t5", vocab)
    out = model(**batch)
    assert torch.isfinite(out.loss)
    out.loss.backward()
    assert out.logits.shape[:2] == batch["labels"].shape


def test_unilm_masks_feed_hugging_face_bert() -> None:
    """The (B, L, L) boolean self_attention_mask, given a head axis, is the 4-d attention mask
    Hugging Face's BertForMaskedLM takes."""
    transformers = pytest.importorskip("transformers")
    vocab, batch = bundled_batch("unilm", 48)
    model = transformers.BertForMaskedLM(bert_config(transformers, vocab.size))
    out = model(
        input_ids=batch["input_ids"],
        attention_mask=batch["self_attention_mask"][:, None],
        token_type_ids=batch["token_type_ids"],
        labels=batch["labels"],
    )
    assert torch.isfinite(out.loss)
    out.loss.backward()


def test_xlnet_batches_feed_hugging_face_xlnet() -> None:
    """perm_mask and target_mapping in HF's layout: XLNetLMHeadModel takes the compiled batch
    of rows of odd and even lengths (no even-length requirement, transformers#7341)."""
    transformers = pytest.importorskip("transformers")
    vocab, batch = bundled_batch("xlnet", 47)
    assert (batch["labels"] != -100).any()
    config = transformers.XLNetConfig(
        vocab_size=vocab.size, d_model=32, n_layer=1, n_head=2, d_inner=64
    )
    model = transformers.XLNetLMHeadModel(config)
    positions = batch.pop("target_positions")
    out = model(**batch)
    assert torch.isfinite(out.loss)
    out.loss.backward()
    # the sparse form, (B, P, L) one-hot target_mapping with labels (B, P), gives the same loss
    model.eval()  # no dropout: the two forms must agree
    mapping, labels = sparse_target_mapping(positions, batch["labels"])
    with torch.no_grad():
        dense = model(**batch).loss
        sparse = model(**{**batch, "target_mapping": mapping, "labels": labels}).loss
    assert torch.allclose(sparse, dense, atol=1e-5)


def test_sparse_permutation_layout_expands_to_the_dense_one() -> None:
    """xlnet_sparse writes the factorization order that xlnet writes as (B, L, L) tensors: its
    expansion gives the same perm_mask, the encoder the same attention, and XLNetLMHeadModel
    the same loss from rt.xlnet_inputs."""
    transformers = pytest.importorskip("transformers")
    vocab, dense = bundled_batch("xlnet", 47)
    _, sparse = bundled_batch("xlnet_sparse", 47)
    assert "perm_mask" not in sparse and sparse["perm_order"].shape == sparse["labels"].shape
    expanded = rt.xlnet_inputs(sparse)
    assert torch.equal(expanded["perm_mask"], dense["perm_mask"])
    assert torch.equal(attention_bias(sparse), attention_bias(dense))
    config = transformers.XLNetConfig(
        vocab_size=vocab.size, d_model=32, n_layer=1, n_head=2, d_inner=64
    )
    model = transformers.XLNetLMHeadModel(config).eval()
    with torch.no_grad():
        want = model(**{k: v for k, v in dense.items() if k != "target_positions"}).loss
        got = model(**expanded).loss
    assert torch.allclose(got, want, atol=1e-5)
    with pytest.raises(ValueError, match="permutation-LM batch"):
        rt.xlnet_inputs({k: v for k, v in sparse.items() if k != "perm_order"})

"""Each bundled spec's batch feeds the Hugging Face models docs/consumers.md names, through
``hf_inputs``; known wrong pairings are refused; keys a model would swallow are warned about."""

from __future__ import annotations

import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

import objspec
from objspec import bundled
from objspec.runtime import Vocab
from objspec.runtime.consumers import ConsumerError, electra_discriminator_inputs, hf_inputs
from tests.tiny_hf import seq2seq_model

transformers = pytest.importorskip("transformers")
ROOT = Path(__file__).resolve().parent.parent
V = bundled.BUNDLED_VOCAB_SIZE
VOCAB = Vocab.from_tokenizer(bundled.load_tokenizer())
SMALL = {"hidden_size": 32, "num_attention_heads": 2, "intermediate_size": 64}


def tiny(kind: str) -> Any:
    """A one-layer Hugging Face model of width 32 (built from a config, nothing downloaded)."""
    torch.manual_seed(0)
    t = transformers
    bert = {**SMALL, "vocab_size": V, "num_hidden_layers": 1, "max_position_embeddings": 128}
    builders = {
        "BertForMaskedLM": lambda: t.BertForMaskedLM(t.BertConfig(**bert)),
        "BertForPreTraining": lambda: t.BertForPreTraining(t.BertConfig(**bert)),
        "BertForNextSentencePrediction": lambda: t.BertForNextSentencePrediction(
            t.BertConfig(**bert)
        ),
        "AlbertForPreTraining": lambda: t.AlbertForPreTraining(
            t.AlbertConfig(**bert, embedding_size=16)
        ),
        "ElectraForMaskedLM": lambda: t.ElectraForMaskedLM(
            t.ElectraConfig(**bert, embedding_size=32)
        ),
        "T5ForConditionalGeneration": lambda: seq2seq_model(t, "t5", VOCAB),
        "BartForConditionalGeneration": lambda: seq2seq_model(t, "bart", VOCAB),
        "XLNetLMHeadModel": lambda: t.XLNetLMHeadModel(
            t.XLNetConfig(vocab_size=V, d_model=32, n_layer=1, n_head=2, d_inner=64)
        ),
        "XLMWithLMHeadModel": lambda: t.XLMWithLMHeadModel(
            t.XLMConfig(
                vocab_size=V, emb_dim=32, n_layers=1, n_heads=2, n_langs=2, use_lang_emb=True
            )
        ),
    }
    return builders[kind]().eval()


# (spec, Hugging Face class, keys the class does not read) — the table of docs/consumers.md.
CONSUMERS = [
    ("bert_mlm", "BertForMaskedLM", ()),
    ("roberta", "BertForMaskedLM", ()),
    ("wwm", "BertForMaskedLM", ()),
    ("spanbert", "BertForMaskedLM", ("span_start", "span_end")),
    ("bert", "BertForPreTraining", ()),
    ("nsp", "BertForNextSentencePrediction", ()),
    ("albert", "AlbertForPreTraining", ("span_start", "span_end")),
    ("electra", "ElectraForMaskedLM", ("sample_keys",)),
    ("t5_span", "T5ForConditionalGeneration", ()),
    ("ul2", "T5ForConditionalGeneration", ()),
    ("bart", "BartForConditionalGeneration", ()),
    ("bart_token_masking", "BartForConditionalGeneration", ()),
    ("bart_token_deletion", "BartForConditionalGeneration", ()),
    ("bart_text_infilling", "BartForConditionalGeneration", ()),
    ("bart_sentence_permutation", "BartForConditionalGeneration", ()),
    ("bart_document_rotation", "BartForConditionalGeneration", ()),
    ("mass", "BartForConditionalGeneration", ("decoder_position_ids",)),
    ("xlnet", "XLNetLMHeadModel", ()),
    ("xlnet_sparse", "XLNetLMHeadModel", ()),
    ("xlm_mlm", "XLMWithLMHeadModel", ()),
    ("xlm_tlm", "XLMWithLMHeadModel", ()),
    ("spanbert_unigram", "BertForMaskedLM", ("span_start", "span_end")),
    ("macbert", "BertForMaskedLM", ("span_start", "span_end")),
    ("ernie", "BertForMaskedLM", ()),
]


def batch_of(spec: str) -> dict[str, torch.Tensor]:
    tokenizer = bundled.load_tokenizer()
    compiled = objspec.compile_file(ROOT / "specs" / f"{spec}.objspec")
    tables = bundled.run_time_inputs(tokenizer, compiled.Collator.needs)
    collator = compiled.Collator(tokenizer, seed=0, **tables)
    if spec == "xlm_tlm":
        return collator(bundled.parallel_examples(tokenizer, 40)[:4])
    rows = bundled.encode_examples(tokenizer, bundled.load_documents()[:6], 40)[:4]
    return collator(bundled.stand_in_fields(rows, compiled.Collator.fields))


@pytest.mark.parametrize("spec,kind,unread", CONSUMERS, ids=[c[0] for c in CONSUMERS])
def test_the_batch_feeds_the_documented_model(
    spec: str, kind: str, unread: tuple[str, ...]
) -> None:
    model = tiny(kind)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        inputs = hf_inputs(model, batch_of(spec))
    said = " ".join(str(w.message) for w in caught)
    for key in unread:
        assert key in said
    if not unread:
        assert not caught, said
    loss = model(**inputs).loss
    assert loss is not None and torch.isfinite(loss)


def test_every_pairing_is_in_the_docs() -> None:
    page = (ROOT / "docs" / "consumers.md").read_text()
    for spec, kind, _ in CONSUMERS:
        assert f"| `{spec}` | `{kind}`" in page, (spec, kind)


def test_a_weighted_batch_is_refused_by_a_masked_lm_class() -> None:
    """mdlm's loss weighs each label by 1/t: BertForMaskedLM's own loss would not."""
    with pytest.raises(ConsumerError, match="label_weights"):
        hf_inputs(tiny("BertForMaskedLM"), batch_of("mdlm"))


def test_the_electra_generator_batch_is_refused_by_the_discriminator() -> None:
    batch = batch_of("electra")
    discriminator = transformers.ElectraForPreTraining(
        transformers.ElectraConfig(**SMALL, vocab_size=V, num_hidden_layers=1, embedding_size=32)
    )
    with pytest.raises(ConsumerError, match="electra_discriminator_inputs"):
        hf_inputs(discriminator, batch)
    generator = tiny("ElectraForMaskedLM")
    logits = generator(
        **hf_inputs(generator, {k: v for k, v in batch.items() if k != "sample_keys"})
    ).logits
    fed = electra_discriminator_inputs(batch, logits)
    assert set(fed["labels"].unique().tolist()) <= {0, 1}
    replaced = fed["input_ids"] != torch.where(
        batch["labels"] != -100, batch["labels"], batch["input_ids"]
    )
    assert torch.equal(replaced.long(), fed["labels"])
    assert torch.isfinite(discriminator(**hf_inputs(discriminator, fed)).loss)


def packed_causal_batch(pack: int | str) -> dict[str, Any]:
    compiled = objspec.compile_file(ROOT / "specs" / "causal_lm.objspec")
    collator = compiled.Collator(bundled.load_tokenizer(), seed=0, pack=pack)
    return collator(
        bundled.encode_examples(bundled.load_tokenizer(), bundled.load_documents()[:6], 24)[:6]
    )


def tiny_gpt2() -> Any:
    config = transformers.GPT2Config(vocab_size=V, n_embd=32, n_layer=1, n_head=2, n_positions=256)
    return transformers.GPT2LMHeadModel(config).eval()


@pytest.mark.parametrize("pack", [64, "flat"])
def test_a_packed_batch_is_refused_by_a_model_that_attends_across_documents(
    pack: int | str,
) -> None:
    """A GPT-2 with eager or SDPA attention reads one attention_mask: its tokens would see the
    other documents of their row, a silent wrong loss."""
    with pytest.raises(ConsumerError, match="attend across documents"):
        hf_inputs(tiny_gpt2(), packed_causal_batch(pack))


def test_a_padding_free_batch_feeds_flash_attention() -> None:
    """pack='flat' is Hugging Face's padding-free layout: flash attention reads each
    document's bounds. A stand-in model with a flash-attention config (this machine has no
    flash attention): the batch is let through."""

    class FlashModel(torch.nn.Module):
        config = SimpleNamespace(_attn_implementation="flash_attention_2")

        def forward(self, input_ids: Any, position_ids: Any, labels: Any) -> None: ...

    inputs = hf_inputs(FlashModel(), packed_causal_batch("flat"))
    assert set(inputs) == {"input_ids", "position_ids", "labels"}


def test_the_batches_of_several_tasks_are_refused() -> None:
    with pytest.raises(ConsumerError, match=r"rt.task_batch\(batch, 'contrastive'\)"):
        hf_inputs(tiny("BertForMaskedLM"), batch_of("simcse_mlm"))

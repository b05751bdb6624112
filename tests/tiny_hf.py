"""Shared by the end-to-end and training tests: one compiled batch of the bundled corpus, and
tiny Hugging Face models built from configs (nothing is downloaded)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from objspec import bundled, compile_file
from objspec.runtime import Vocab

SPECS = Path(__file__).resolve().parent.parent / "specs"


def bundled_batch(
    spec: str, max_length: int, documents: int = 3
) -> tuple[Vocab, dict[str, torch.Tensor]]:
    """The bundled vocabulary and the compiled batch of the corpus' first ``documents``."""
    tokenizer = bundled.load_tokenizer()
    vocab = Vocab.from_tokenizer(tokenizer)
    examples = bundled.encode_examples(tokenizer, bundled.load_documents()[:documents], max_length)
    collator = compile_file(SPECS / f"{spec}.objspec").Collator(vocab, seed=0)
    return vocab, collator(examples)


def bert_config(transformers: Any, vocab_size: int) -> Any:
    """A one-layer BERT of width 32."""
    return transformers.BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )


def seq2seq_model(transformers: Any, family: str, vocab: Vocab, *, base: bool = False) -> Any:
    """A one-layer BART or T5 of width 32: the base model (decoder states) or the one with its
    LM head."""
    if family == "bart":
        config = transformers.BartConfig(
            vocab_size=vocab.size,
            d_model=32,
            encoder_layers=1,
            decoder_layers=1,
            encoder_attention_heads=2,
            decoder_attention_heads=2,
            encoder_ffn_dim=64,
            decoder_ffn_dim=64,
            max_position_embeddings=128,
            pad_token_id=vocab.pad_id,
        )
        return (transformers.BartModel if base else transformers.BartForConditionalGeneration)(
            config
        )
    config = transformers.T5Config(
        vocab_size=vocab.size,
        d_model=32,
        d_kv=16,
        d_ff=64,
        num_layers=1,
        num_heads=2,
        pad_token_id=vocab.pad_id,
        decoder_start_token_id=vocab.pad_id,
    )
    return (transformers.T5Model if base else transformers.T5ForConditionalGeneration)(config)

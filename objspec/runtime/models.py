"""A tiny reference encoder for tests and the demo. Real users bring their own model."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class TinyEncoder(nn.Module):
    """Token + position embeddings and a small pre-norm Transformer encoder.

    forward(input_ids (B, L) int64, attention_mask (B, L) int/bool) -> hidden (B, L, H).
    ``embeddings`` is the token embedding the heads tie their decoders to.
    """

    def __init__(
        self,
        vocab_size: int,
        hidden_size: int = 64,
        layers: int = 2,
        heads: int = 4,
        max_length: int = 512,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.layers = layers
        self.layer_sizes: dict[str, Any] = {
            "d_model": hidden_size,
            "nhead": heads,
            "dim_feedforward": 4 * hidden_size,
            "dropout": dropout,
            "batch_first": True,
            "norm_first": True,
        }
        self.embeddings = nn.Embedding(vocab_size, hidden_size)
        self.positions = nn.Embedding(max_length, hidden_size)
        layer = nn.TransformerEncoderLayer(**self.layer_sizes)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(hidden_size)
        for table in (self.embeddings, self.positions):
            nn.init.normal_(table.weight, std=0.02)  # BERT's initializer range

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = self.embeddings(input_ids) + self.positions(positions).unsqueeze(0)
        x = self.encoder(x, src_key_padding_mask=~attention_mask.bool())
        return self.norm(x)


class TinySeq2Seq(TinyEncoder):
    """:class:`TinyEncoder` plus a causal Transformer decoder with cross-attention, sharing the
    token and position embeddings (for T5-, BART- and MASS-style objectives).

    forward(input_ids (B, L), attention_mask (B, L), decoder_input_ids (B, T),
    decoder_attention_mask (B, T), decoder_position_ids (B, T) or None) -> decoder hidden (B, T, H).
    """

    def __init__(self, vocab_size: int, **sizes: Any) -> None:
        super().__init__(vocab_size, **sizes)
        layer = nn.TransformerDecoderLayer(**self.layer_sizes)
        self.decoder = nn.TransformerDecoder(layer, self.layers)
        self.decoder_norm = nn.LayerNorm(self.hidden_size)

    def forward(  # type: ignore[override]
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        decoder_input_ids: torch.Tensor,
        decoder_attention_mask: torch.Tensor,
        decoder_position_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        memory = super().forward(input_ids, attention_mask)
        t = decoder_input_ids.shape[1]
        positions = (
            decoder_position_ids
            if decoder_position_ids is not None
            else torch.arange(t, device=decoder_input_ids.device).unsqueeze(0)
        )
        y = self.embeddings(decoder_input_ids) + self.positions(positions)
        causal = nn.Transformer.generate_square_subsequent_mask(t, device=y.device).isinf()
        y = self.decoder(
            y,
            memory,
            tgt_mask=causal,
            tgt_key_padding_mask=~decoder_attention_mask.bool(),
            memory_key_padding_mask=~attention_mask.bool(),
        )
        return self.decoder_norm(y)
